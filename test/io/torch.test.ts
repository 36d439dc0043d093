/**
 * pytorch_model.bin (torch.save's zip format) read without Python. Independent reference: the
 * files were written by torch.save itself (scripts/reference/neox_neo_fixtures.py, Debian
 * python3-torch), with the expected values beside them (torch-cases/cases.json), and
 * neox-parallel-bin holds the same weights as the safetensors folder neox-parallel, whose float64
 * reference logits the model must reproduce.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LmdynError } from '../../src/errors.js';
import { weightsSha256 } from '../../src/io/fingerprint.js';
import { loadHfFolder } from '../../src/io/hf.js';
import { closeSafetensors, readTensorData, readTensorF32 } from '../../src/io/safetensors.js';
import { openTorchCheckpoint } from '../../src/io/torch.js';
import { Transformer } from '../../src/model/forward.js';
import { ROOT } from '../helpers/paths.js';
import type { ModelWeights } from '../../src/model/types.js';

const ARCH = resolve(ROOT, 'test', 'fixtures', 'arch');
const CASES = join(ARCH, 'torch-cases');

const isCode = (code: string, text: RegExp) => (e: unknown) =>
  e instanceof LmdynError && e.code === code && text.test(e.message) && !e.message.includes('\n');

test('torch.save state dict: shapes, dtypes (F32, F16, BF16, I64) and values of cases.json; shared storages and views are byte ranges', () => {
  const expected = JSON.parse(readFileSync(join(CASES, 'cases.json'), 'utf8')) as Record<
    string,
    { shape: number[]; values: number[] }
  >;
  const file = openTorchCheckpoint(join(CASES, 'cases.bin'));
  try {
    assert.deepEqual([...file.byName.keys()].sort(), Object.keys(expected).sort());
    const dtypes = Object.fromEntries(file.tensors.map((t) => [t.name, t.dtype]));
    assert.deepEqual(dtypes, {
      'shared.a': 'F32',
      'shared.b': 'F32',
      view: 'F32',
      half: 'F16',
      bf16: 'BF16',
      steps: 'I64',
    });
    for (const [name, { shape, values }] of Object.entries(expected)) {
      assert.deepEqual(file.byName.get(name)?.shape, shape, name);
      const got =
        name === 'steps'
          ? Array.from(readTensorData(file, name) as BigInt64Array, Number)
          : Array.from(readTensorF32(file, name, new Float32Array(values.length)));
      assert.deepEqual(got, values, name);
    }
    const a = file.byName.get('shared.a');
    assert.equal(file.byName.get('shared.b')?.begin, a?.begin);
    assert.equal(file.byName.get('view')?.begin, (a?.begin ?? 0) + 6 * 4); // storage offset 6
  } finally {
    closeSafetensors(file);
  }
});

test('refused with one line, nothing run: a non-contiguous tensor, the pre-1.6 legacy format, a pickle calling os.system', () => {
  assert.throws(
    () => openTorchCheckpoint(join(CASES, 'noncontiguous.bin')),
    isCode('unsupported', /not contiguous/),
  );
  assert.throws(
    () => openTorchCheckpoint(join(CASES, 'legacy.bin')),
    isCode('unsupported', /legacy/),
  );
  assert.throws(
    () => openTorchCheckpoint(join(CASES, 'calls-os-system.bin')),
    isCode('unsupported', /calls posix\.system, which lmdyn does not run/),
  );
  assert.throws(
    () => openTorchCheckpoint(join(ARCH, 'neox-parallel', 'model.safetensors')),
    isCode('unsupported', /not a zip file/),
  );
});

/** Every weight array of a model with a readable name. */
function flat(w: ModelWeights): [string, Float32Array | null][] {
  const out: [string, Float32Array | null][] = [
    ['tokenEmbedding', w.tokenEmbedding.data],
    ['finalNorm', w.finalNorm],
    ['finalNormBias', w.finalNormBias],
    ['unembedding', w.unembedding.data],
  ];
  w.layers.forEach((l, i) => {
    for (const [k, v] of Object.entries(l)) {
      const data =
        v === null ? null : v instanceof Float32Array ? v : (v as { data: Float32Array }).data;
      out.push([`${i}.${k}`, data]);
    }
  });
  return out;
}

test('an HF folder with only pytorch_model.bin loads the same weights as its safetensors twin and gives the float64 reference logits', () => {
  const bin = loadHfFolder(join(ARCH, 'neox-parallel-bin'));
  const st = loadHfFolder(join(ARCH, 'neox-parallel'));
  assert.deepEqual(bin.config, st.config);
  const a = flat(bin.weights);
  const b = flat(st.weights);
  assert.deepEqual(
    a.map(([k]) => k),
    b.map(([k]) => k),
  );
  a.forEach(([k, v], i) => assert.deepEqual(v, b[i][1], k));
  assert.deepEqual(bin.source.details.files, ['pytorch_model.bin']);
  assert.deepEqual(bin.source.details.dtypes, { F16: 40 }); // 12 per layer × 3 + 4, as the twin
  assert.deepEqual(bin.source.details.dtypes, st.source.details.dtypes);
  const path = join(ARCH, 'neox-parallel-bin', 'pytorch_model.bin');
  assert.equal(
    weightsSha256(bin.source),
    createHash('sha256').update(readFileSync(path)).digest('hex'),
  );

  // The reference logits of neox-parallel (same weights), at the last position of its text.
  const meta = JSON.parse(readFileSync(join(ARCH, 'neox-parallel.reference.json'), 'utf8')) as {
    ids: number[];
  };
  const ref = readFileSync(join(ARCH, 'neox-parallel.reference.safetensors'));
  const n = Number(ref.readBigUInt64LE(0));
  const header = JSON.parse(ref.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { data_offsets: [number, number] }
  >;
  const [s, e] = header.logits.data_offsets;
  const logits = new Float64Array(
    ref.buffer.slice(ref.byteOffset + 8 + n + s, ref.byteOffset + 8 + n + e),
  );
  const tf = new Transformer(bin);
  const V = tf.config.vocabSize;
  const out = tf.forward(tf.newCache(1, meta.ids.length), [{ seq: 0, tokens: meta.ids }]);
  const last = logits.subarray((meta.ids.length - 1) * V);
  let num = 0;
  let den = 0;
  for (let i = 0; i < V; i++) {
    num = Math.max(num, Math.abs(out.logits[i] - last[i]));
    den = Math.max(den, Math.abs(last[i]));
  }
  assert.ok(num / den < 1e-4, `relative error ${num / den}`);
});

test('a sharded pytorch_model.bin.index.json folder loads through its weight_map (two shards written here by splitting nothing: each shard is the whole file)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-torch-'));
  try {
    const src = join(ARCH, 'neox-parallel-bin');
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      copyFileSync(join(src, f), join(dir, f));
    }
    const shards = ['pytorch_model-00001-of-00002.bin', 'pytorch_model-00002-of-00002.bin'];
    for (const s of shards) copyFileSync(join(src, 'pytorch_model.bin'), join(dir, s));
    const file = openTorchCheckpoint(join(src, 'pytorch_model.bin'));
    const names = file.tensors.map((t) => t.name);
    closeSafetensors(file);
    const weightMap = Object.fromEntries(names.map((n, i) => [n, shards[i % 2]]));
    writeFileSync(
      join(dir, 'pytorch_model.bin.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const sharded = loadHfFolder(dir);
    const st = loadHfFolder(join(ARCH, 'neox-parallel'));
    flat(sharded.weights).forEach(([k, v], i) => assert.deepEqual(v, flat(st.weights)[i][1], k));
    assert.deepEqual(sharded.source.details.files, shards);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
