import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdynError } from '../../src/errors.js';
import { loadLlama2cCheckpoint, writeLlama2cCheckpoint } from '../../src/io/llama2c.js';
import type { LoadedModel } from '../../src/model/types.js';
import { parameterCount, type ModelWeights } from '../../src/model/types.js';
import { newMatrix } from '../../src/tensor/matrix.js';
import { createRng } from '../../src/tensor/rng.js';
import { model } from '../helpers/paths.js';

const BIN = model('stories260K', 'stories260K.bin');
const tmp = mkdtempSync(join(tmpdir(), 'lmdyn-llama2c-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** Every tensor of a model in a fixed order (the tied classifier once). */
function tensors(w: ModelWeights): [string, Float32Array][] {
  const out: [string, Float32Array][] = [['tokenEmbedding', w.tokenEmbedding.data]];
  w.layers.forEach((l, i) => {
    out.push(
      [`${i}.attnNorm`, l.attnNorm],
      [`${i}.wq`, l.wq.data],
      [`${i}.wk`, l.wk.data],
      [`${i}.wv`, l.wv.data],
      [`${i}.wo`, l.wo.data],
      [`${i}.mlpNorm`, l.mlpNorm],
      [`${i}.wGate`, l.wGate!.data],
      [`${i}.wUp`, l.wUp.data],
      [`${i}.wDown`, l.wDown.data],
    );
  });
  out.push(['finalNorm', w.finalNorm]);
  if (w.unembedding !== w.tokenEmbedding) out.push(['unembedding', w.unembedding.data]);
  return out;
}

function assertBitEqual(a: LoadedModel, b: LoadedModel): void {
  const ta = tensors(a.weights);
  const tb = tensors(b.weights);
  assert.deepEqual(
    ta.map(([n]) => n),
    tb.map(([n]) => n),
  );
  ta.forEach(([name, x], i) => {
    const y = tb[i]![1];
    assert.ok(
      Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(
        Buffer.from(y.buffer, y.byteOffset, y.byteLength),
      ),
      name,
    );
  });
}

function expectError(code: string, fn: () => unknown, what: string): void {
  assert.throws(fn, (e: unknown) => e instanceof LmdynError && e.code === code, what);
}

test('stories260K.bin header and shapes match MANIFEST.md §1', () => {
  const m = loadLlama2cCheckpoint(BIN);
  const c = m.config;
  // MANIFEST §1: dim 64, hidden_dim 172, n_layers 5, n_heads 8, n_kv_heads 4, vocab 512, seq_len 512, shared classifier
  assert.deepEqual(
    [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.vocabSize, c.seqLen],
    [64, 172, 5, 8, 4, 512, 512],
  );
  assert.equal(c.headDim, 8); // MANIFEST: head_size 8
  assert.equal(c.nKvHeads * c.headDim, 32); // MANIFEST: kv_dim 32
  assert.equal(c.tiedEmbeddings, true);
  assert.equal(m.weights.unembedding, m.weights.tokenEmbedding);
  assert.deepEqual([c.bosId, c.eosId, c.ropeTheta, c.ropeDim, c.normEps], [1, 2, 10000, 8, 1e-5]);
  assert.deepEqual(m.source.details, { version: 0, sharedClassifier: true });
  assert.equal(m.tokenizer, null);
});

test('stories260K.bin parameter count is 260,032 (MANIFEST.md §1) and the file size is its closed form', () => {
  const m = loadLlama2cCheckpoint(BIN);
  const total = tensors(m.weights).reduce((s, [, t]) => s + t.length, 0);
  assert.equal(total, 260_032);
  assert.equal(parameterCount(m.config), 260_032);
  assert.equal(m.weights.tokenEmbedding.data.length, 32_768); // MANIFEST: embedding 32,768
  const perLayer = tensors(m.weights)
    .filter(([n]) => n.startsWith('0.'))
    .reduce((s, [, t]) => s + t.length, 0);
  assert.equal(perLayer, 45_440); // MANIFEST: 5 layers × 45,440
  // MANIFEST: 28 + 4 × (260,032 + 4,096 freq_cis floats) = 1,056,540 bytes
  assert.equal(statSync(BIN).size, 28 + 4 * (260_032 + 2 * 512 * 4));
});

test('writer: version 0 reproduces stories260K.bin (freq_cis within 1 ulp of PyTorch float32 cos/sin)', () => {
  const m = loadLlama2cCheckpoint(BIN);
  const out = join(tmp, 'v0.bin');
  writeLlama2cCheckpoint(out, m.config, m.weights, { version: 0 });
  const a = readFileSync(BIN);
  const b = readFileSync(out);
  assert.equal(b.length, a.length);
  // Everything but the freq_cis tables is byte-identical to the original export.
  const freqStart = 28 + 4 * 260_032; // after rms_final: header + every weight (tied, no wcls)
  const freqBytes = 4 * 2 * 512 * 4;
  assert.ok(a.subarray(0, freqStart).equals(b.subarray(0, freqStart)));
  assert.ok(a.subarray(freqStart + freqBytes).equals(b.subarray(freqStart + freqBytes)));
  // The tables are cos/sin of t / 10000^(2i/8) (llama2.c model.py); torch's float32 cos/sin
  // are not correctly rounded, so allow one float32 ulp below 1 (2^-24).
  for (let off = freqStart; off < freqStart + freqBytes; off += 4) {
    assert.ok(
      Math.abs(a.readFloatLE(off) - b.readFloatLE(off)) <= 2 ** -24,
      `freq_cis at byte ${off}`,
    );
  }
  assertBitEqual(m, loadLlama2cCheckpoint(out));
});

test('writer: v0 → v1 is bit-exact, with the layout of export.py version1_export', () => {
  const m = loadLlama2cCheckpoint(BIN);
  const out = join(tmp, 'v1.bin');
  writeLlama2cCheckpoint(out, m.config, m.weights, { version: 1 });
  const v1 = loadLlama2cCheckpoint(out);
  assertBitEqual(m, v1);
  assert.deepEqual(v1.config, m.config);
  assert.deepEqual(v1.source.details, { version: 1, sharedClassifier: true });
  // export.py: magic "ak42", version 1, 7 ints, shared flag, zeros to 256; then rms_att of every
  // layer, rms_ffn, rms_final, and the token embedding at 256 + 4·(2L+1)·dim.
  const b = readFileSync(out);
  assert.equal(b.toString('latin1', 0, 4), '24ka'); // uint32 0x616b3432 little-endian
  assert.equal(b.readInt32LE(4), 1);
  assert.equal(b.readUInt8(36), 1);
  assert.ok(b.subarray(37, 256).every((x) => x === 0));
  assert.equal(b.readFloatLE(256), m.weights.layers[0]!.attnNorm[0]);
  assert.equal(b.readFloatLE(256 + 4 * 11 * 64), m.weights.tokenEmbedding.data[0]);
  assert.equal(b.length, 256 + 4 * 260_032);
});

test('writer: v1 → v2 (Q8_0, group 64) stays within max|group|/127/2 of every weight', () => {
  const v1 = loadLlama2cCheckpoint(BIN);
  const out = join(tmp, 'v2.bin');
  writeLlama2cCheckpoint(out, v1.config, v1.weights, { version: 2 });
  const v2 = loadLlama2cCheckpoint(out);
  assert.deepEqual(v2.source.details, { version: 2, sharedClassifier: true, groupSize: 64 });
  const gs = 64;
  const ta = tensors(v1.weights);
  const tb = tensors(v2.weights);
  for (let t = 0; t < ta.length; t++) {
    const [name, x] = ta[t]!;
    const y = tb[t]![1];
    if (name.endsWith('Norm')) {
      assert.deepEqual(y, x, `${name} stays fp32`);
      continue;
    }
    // Symmetric int8 rounding: |w − q·s| ≤ s/2 with s = max|group|/127; the slack covers the
    // float32 roundings of s, w/s and q·s (a few ulps of max|group|).
    for (let g = 0; g < x.length; g += gs) {
      let max = 0;
      for (let i = g; i < g + gs; i++) max = Math.max(max, Math.abs(x[i]!));
      const bound = max / 127 / 2 + max * 2 ** -22;
      for (let i = g; i < g + gs; i++) {
        assert.ok(Math.abs(x[i]! - y[i]!) <= bound, `${name}[${i}]: ${x[i]} vs ${y[i]}`);
      }
    }
  }
  // runq.c layout: 256-byte header with group_size at byte 37; fp32 norms; per matrix n int8
  // values then n/64 f32 scales.
  const b = readFileSync(out);
  assert.equal(b.readInt32LE(37), 64);
  const norms = (2 * 5 + 1) * 64;
  const matrices = tensors(v1.weights)
    .filter(([n]) => !n.endsWith('Norm'))
    .reduce((s, [, w]) => s + w.length, 0);
  assert.equal(b.length, 256 + 4 * norms + matrices + (4 * matrices) / 64);
});

test('writer: an unshared classifier round-trips through v0 (negative vocab) and v1/v2 (flag byte)', () => {
  const m = loadLlama2cCheckpoint(BIN);
  const rng = createRng(11);
  const cls = Float32Array.from(m.weights.tokenEmbedding.data, () => rng.normal() * 0.1);
  const weights = { ...m.weights, unembedding: newMatrix(512, 64, cls) };
  const config = { ...m.config, tiedEmbeddings: false };
  for (const version of [0, 1, 2] as const) {
    const out = join(tmp, `untied-v${version}.bin`);
    writeLlama2cCheckpoint(out, config, weights, { version, groupSize: 32 });
    const head = readFileSync(out).subarray(0, 40);
    if (version === 0) assert.equal(head.readInt32LE(20), -512);
    else assert.equal(head.readUInt8(36), 0);
    const back = loadLlama2cCheckpoint(out);
    assert.equal(back.config.tiedEmbeddings, false);
    assert.notEqual(back.weights.unembedding, back.weights.tokenEmbedding);
    if (version < 2) assert.deepEqual(back.weights.unembedding.data, cls);
    else assert.equal(back.source.details.groupSize, 32);
  }
  expectError(
    'bad_argument',
    () =>
      writeLlama2cCheckpoint(join(tmp, 'x.bin'), config, weights, { version: 2, groupSize: 48 }),
    'group 48 ∤ 64',
  );
});

test('writer: models llama2.c cannot represent are refused, and a bad path is an io error', () => {
  const m = loadLlama2cCheckpoint(BIN);
  const out = join(tmp, 'refused.bin');
  // run.c hard-codes RoPE theta 10000 and RMSNorm eps 1e-5 (its rmsnorm and RoPE loops)
  for (const config of [
    { ...m.config, ropeTheta: 500000 },
    { ...m.config, normEps: 1e-6 },
    { ...m.config, tiedEmbeddings: false },
  ]) {
    expectError(
      'unsupported',
      () => writeLlama2cCheckpoint(out, config, m.weights, { version: 1 }),
      JSON.stringify(config),
    );
  }
  expectError(
    'io',
    () =>
      writeLlama2cCheckpoint(join(tmp, 'no-such-dir', 'x.bin'), m.config, m.weights, {
        version: 1,
      }),
    'missing folder',
  );
});

test('corrupt checkpoints: truncation, extra bytes, wrong magic and nonsense headers are LmdynErrors', () => {
  const full = readFileSync(BIN);
  const cut = join(tmp, 'cut.bin');
  for (const len of [0, 3, 27, 28, 29, 1000, full.length / 2, full.length - 4, full.length - 1]) {
    writeFileSync(cut, full.subarray(0, len));
    expectError('truncated', () => loadLlama2cCheckpoint(cut), `cut at ${len}`);
  }
  writeFileSync(cut, Buffer.concat([full, Buffer.alloc(4)]));
  expectError('bad_format', () => loadLlama2cCheckpoint(cut), 'four extra bytes');

  const m = loadLlama2cCheckpoint(BIN);
  const v1Path = join(tmp, 'magic.bin');
  writeLlama2cCheckpoint(v1Path, m.config, m.weights, { version: 1 });
  const v1 = readFileSync(v1Path);
  const bad = Buffer.from(v1);
  bad[0] ^= 0x01; // no longer "ak42": read as a legacy header with dim 0x616b3433
  writeFileSync(cut, bad);
  expectError('bad_format', () => loadLlama2cCheckpoint(cut), 'wrong magic');
  const v3 = Buffer.from(v1);
  v3.writeInt32LE(3, 4);
  writeFileSync(cut, v3);
  expectError('unsupported', () => loadLlama2cCheckpoint(cut), 'version 3');
  expectError(
    'truncated',
    () => {
      writeFileSync(cut, v1.subarray(0, 200));
      loadLlama2cCheckpoint(cut);
    },
    'cut inside the 256-byte header',
  );

  const header = (ints: number[]): Buffer => Buffer.from(Int32Array.from(ints).buffer);
  const nonsense: [string, number[]][] = [
    ['zero dim', [0, 172, 5, 8, 4, 512, 512]],
    ['negative layers', [64, 172, -5, 8, 4, 512, 512]],
    ['dim % heads', [64, 172, 5, 7, 7, 512, 512]],
    ['heads % kv_heads', [64, 172, 5, 8, 3, 512, 512]],
    ['odd head size', [72, 172, 5, 8, 4, 512, 512]],
  ];
  for (const [what, ints] of nonsense) {
    writeFileSync(cut, Buffer.concat([header(ints), full.subarray(28)]));
    expectError('bad_format', () => loadLlama2cCheckpoint(cut), what);
  }
  // Sizes far beyond the file (or beyond 2^53) are refused before any allocation.
  const huge = 2 ** 30;
  writeFileSync(
    cut,
    Buffer.concat([header([huge, huge, huge, 2, 2, huge, 512]), full.subarray(28)]),
  );
  const t0 = Date.now();
  expectError('truncated', () => loadLlama2cCheckpoint(cut), 'absurd sizes');
  assert.ok(Date.now() - t0 < 1000);
  expectError('not_found', () => loadLlama2cCheckpoint(join(tmp, 'missing.bin')), 'missing file');
});
