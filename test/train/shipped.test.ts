import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { openModel, generateText } from '../../src/api.js';
import { defaultModel, shippedModel } from '../../src/io/discover.js';

// References: the folder's README (its stated shape and greedy text) and the checkpoint format
// the other commands load.

test('the shipped model loads, matches its README, and is the fallback before the hub', async () => {
  const path = shippedModel();
  assert.ok(path, 'models-shipped/lmdyn-tiny-260K/model.bin is in the repository');
  assert.ok(statSync(path).size < 4 * 2 ** 20, 'a few MB at most');
  const readme = readFileSync(join(dirname(path), 'README.md'), 'utf8');
  const model = await openModel(path);
  const c = model.config;
  assert.deepEqual(
    [c.dim, c.nLayers, c.nHeads, c.nKvHeads, c.hiddenDim, c.vocabSize, c.seqLen],
    [64, 5, 8, 4, 172, 512, 512],
  );
  const greedy = generateText(model, { maxTokens: 24, sampling: { temperature: 0 } });
  assert.ok(
    readme.includes(greedy.text.trim().split('\n')[0].slice(0, 60)),
    'the README quotes the greedy text',
  );
  // with no $LMDYN_MODEL and no local model folders, a command falls back to it
  const choice = defaultModel({});
  assert.ok(choice.spec === path || !choice.why.includes('hub'), choice.why);
});
