import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultModel } from '../../src/io/discover.js';
import { allowedModels } from '../../src/server/models.js';

// Reference: the repository's own file models-shipped/lmdyn-tiny-260K/model.bin.
const SHIPPED = resolve('models-shipped', 'lmdyn-tiny-260K', 'model.bin');

test('with no model folder, serve allows the shipped model and the demo picks it', () => {
  assert.ok(existsSync(SHIPPED));
  const empty = mkdtempSync(join(tmpdir(), 'lmdyn-models-'));
  try {
    assert.deepEqual(allowedModels([], [empty]), [
      { id: SHIPPED, label: 'lmdyn-tiny-260K/model.bin' },
    ]);
    assert.deepEqual(
      allowedModels([], []).map((m) => m.id),
      [SHIPPED],
    );
    // explicit models win; bare hub ids are kept as given
    assert.deepEqual(
      allowedModels(['Qwen/Qwen2.5-0.5B'], []).map((m) => m.id),
      ['Qwen/Qwen2.5-0.5B'],
    );
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
  const choice = defaultModel({ LMDYN_MODEL: '' });
  assert.ok(choice.spec === SHIPPED || choice.why.startsWith('first model found'), choice.why);
});
