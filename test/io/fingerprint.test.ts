import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { loadModel } from '../../src/io/load.js';
import { weightsSha256 } from '../../src/io/fingerprint.js';
import type { ModelSource } from '../../src/model/types.js';
import { model } from '../helpers/paths.js';

const tmp = mkdtempSync(join(tmpdir(), 'lmdyn-fingerprint-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

// The sha256 column of test/fixtures/models/MANIFEST.md.
const MANIFEST = {
  bin: 'b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696',
  gguf: '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d',
  hf: '407a7c581bdd66972383ce9ad24857713fb98786d06ea564a2fe9b34ebe77dfd',
};

test('weights sha256 of llama2.c, GGUF and HF-folder models equals MANIFEST.md', async () => {
  const cases: [string, string][] = [
    [model('stories260K', 'stories260K.bin'), MANIFEST.bin],
    [model('stories260K-gguf', 'stories260K.gguf'), MANIFEST.gguf],
    [model('stories260K-hf-derived'), MANIFEST.hf],
  ];
  for (const [path, want] of cases) {
    const loaded = await loadModel(path, { tokenizer: model('stories260K', 'tok512.bin') });
    assert.equal(loaded.source.sha256, null, 'loading does not hash');
    assert.equal(weightsSha256(loaded.source), want, path);
    assert.equal(loaded.source.sha256, want, 'memoised');
  }
});

test('sharded folder: sha256 of "name<TAB>sha256sum" lines in name order, as sha256sum computes them', () => {
  const dir = join(tmp, 'sharded');
  execFileSync('mkdir', ['-p', dir]);
  const shards = ['model-00002-of-00002.safetensors', 'model-00001-of-00002.safetensors'];
  shards.forEach((f, i) => writeFileSync(join(dir, f), Buffer.alloc(5_000_000 + i, i + 7)));
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({
      weight_map: { 'a.weight': shards[0], 'b.weight': shards[1], 'c.weight': shards[0] },
    }),
  );
  const sums = execFileSync('sha256sum', [...shards].sort(), { cwd: dir, encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => {
      const [hash, name] = l.split(/\s+\*?/);
      return `${name}\t${hash}\n`;
    });
  const want = createHash('sha256').update(sums.join('')).digest('hex');
  const source: ModelSource = {
    format: 'safetensors',
    path: dir,
    hubId: null,
    sha256: null,
    details: {},
  };
  assert.equal(weightsSha256(source), want);
  const gone: ModelSource = {
    format: 'llama2c',
    path: join(tmp, 'missing.bin'),
    hubId: null,
    sha256: null,
    details: {},
  };
  assert.equal(weightsSha256(gone), null);
  assert.equal(weightsSha256({ ...gone, path: '' }), null);
});
