import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateText, openModel } from '../../src/api.js';
import { runWithCache } from '../../src/hooked.js';
import { LmdynError } from '../../src/errors.js';
import { loadGguf, readGgufHeader } from '../../src/io/gguf.js';
import { BLOCK_FORMATS } from '../../src/io/gguf-quants.js';
import { convertToGguf, writeGgufModel } from '../../src/io/gguf-write.js';
import { loadModel } from '../../src/io/load.js';
import type { LayerWeights, ModelConfig, ModelWeights } from '../../src/model/types.js';
import { newMatrix } from '../../src/tensor/matrix.js';
import { createRng } from '../../src/tensor/rng.js';
import { loadLlama2cTokenizer } from '../../src/io/llama2c-tokenizer.js';
import { model, STORIES_GREEDY_64 } from '../helpers/paths.js';

const BIN = model('stories260K', 'stories260K.bin');
const GGUF = model('stories260K-gguf', 'stories260K.gguf');
const TOK = model('stories260K', 'tok512.bin');
const tmp = mkdtempSync(join(tmpdir(), 'lmdyn-gguf-write-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function isLmdyn(code?: string) {
  return (e: unknown): boolean =>
    e instanceof LmdynError && (code === undefined || e.code === code);
}

// --- stories260K: lmdyn → GGUF → lmdyn ----------------------------------------------------------

test('stories260K.bin → GGUF F32 → lmdyn: same config and tokenizer, every logit bit-identical', async () => {
  const out = join(tmp, 's-f32.gguf');
  const r = await convertToGguf(BIN, out, { type: 'F32' });
  assert.deepEqual(r.typeCounts, { F32: 47 }, 'tied classifier: no output.weight');
  const a = await openModel(BIN);
  const b = await openModel(out);
  assert.deepEqual(b.config, { ...a.config, sourceArchitecture: 'llama' });
  const ids = [1, ...STORIES_GREEDY_64.slice(0, 47)];
  const la = a.transformer.forward(
    a.transformer.newCache(1, ids.length),
    [{ seq: 0, tokens: ids }],
    {
      logits: 'all',
    },
  ).logits;
  const lb = b.transformer.forward(
    b.transformer.newCache(1, ids.length),
    [{ seq: 0, tokens: ids }],
    {
      logits: 'all',
    },
  ).logits;
  assert.equal(la.length, 48 * 512);
  assert.ok(bytesOf(la).equals(bytesOf(lb)), 'logits at all 48 positions are bit-identical');
  const story = 'Once upon a time, there was a little girl named Lily.';
  assert.deepEqual(b.tokenizer.encode(story), a.tokenizer.encode(story));
});

test('stories260K.gguf (llama.cpp’s) → GGUF F32 → lmdyn: bit-identical logits to the source file', async () => {
  const out = join(tmp, 'g-f32.gguf');
  const r = await convertToGguf(GGUF, out, { type: 'F32' });
  assert.deepEqual(r.typeCounts, { F32: 48 }, 'the untied output.weight is kept');
  const ids = [1, ...STORIES_GREEDY_64.slice(0, 31)];
  const logits = async (path: string) => {
    const m = await openModel(path);
    return m.transformer.forward(m.transformer.newCache(1, ids.length), [{ seq: 0, tokens: ids }], {
      logits: 'all',
    }).logits;
  };
  assert.ok(bytesOf(await logits(GGUF)).equals(bytesOf(await logits(out))));
});

test('the written metadata and vocabulary equal those of stories260K.gguf (llama.cpp’s converter)', async () => {
  const out = join(tmp, 's-meta.gguf');
  await convertToGguf(BIN, out, { type: 'F32' });
  const mine = readGgufHeader(out).metadata;
  const ref = readGgufHeader(GGUF).metadata;
  // the reference's separator and padding ids are 2³² − 1, llama.cpp's "none"; lmdyn omits them
  const keys = Object.keys(ref).filter(
    (k) => (k.startsWith('llama.') || k.startsWith('tokenizer.')) && ref[k] !== 4294967295,
  );
  assert.equal(keys.length, 15, keys.join(' '));
  for (const k of keys) {
    // the reference's context_length is llama.cpp's default 2048; llama2.c's own is 512
    if (k === 'llama.context_length') continue;
    assert.deepEqual(mine[k], ref[k], k);
  }
  assert.equal(mine['llama.context_length'], 512);
  assert.equal(mine['general.architecture'], 'llama');
});

test('stories260K as Q8_0 and Q4_K GGUF: llama-quantize’s fallback types, greedy text from BOS', async () => {
  const counts: Record<string, Record<string, number>> = {};
  for (const type of ['Q8_0', 'Q4_K', 'Q6_K'] as const) {
    const out = join(tmp, `s-${type}.gguf`);
    const r = await convertToGguf(BIN, out, { type });
    counts[type] = r.typeCounts;
    const m = await openModel(out);
    const g = generateText(m, { maxTokens: 64, sampling: { temperature: 0 } });
    const same = g.ids.findIndex((id, i) => id !== STORIES_GREEDY_64[i]);
    // measured: all 64 greedy ids equal MANIFEST.md §1 for every type here (docs/gguf.md)
    assert.equal(same, -1, `${type}: greedy ids differ from position ${same}`);
  }
  // rows of 64 are not whole 256-value K blocks: Q4_K → Q5_0, Q6_K → Q8_0; ffn_down's rows of
  // 172 are not whole 32-value blocks either: F16
  assert.deepEqual(counts, {
    Q8_0: { Q8_0: 31, F32: 11, F16: 5 },
    Q4_K: { Q5_0: 31, F32: 11, F16: 5 },
    Q6_K: { Q8_0: 31, F32: 11, F16: 5 },
  });
});

// --- K formats on a model whose rows are whole 256-value blocks --------------------------------

/** A random llama (dim 256, hidden 512, 2 layers, GQA 8/4 heads) with the 512-token vocabulary. */
function wideLlama(seed: number): { config: ModelConfig; weights: ModelWeights } {
  const rng = createRng(seed);
  const dim = 256;
  const hidden = 512;
  const mat = (rows: number, cols: number) =>
    newMatrix(
      rows,
      cols,
      Float32Array.from({ length: rows * cols }, () => rng.normal() * 0.05),
    );
  const norm = () => Float32Array.from({ length: dim }, () => 1 + rng.normal() * 0.1);
  const layers: LayerWeights[] = [0, 1].map(() => ({
    attnNorm: norm(),
    attnNormBias: null,
    wq: mat(dim, dim),
    wk: mat(dim / 2, dim),
    wv: mat(dim / 2, dim),
    wo: mat(dim, dim),
    bq: null,
    bk: null,
    bv: null,
    bo: null,
    mlpNorm: norm(),
    mlpNormBias: null,
    wGate: mat(hidden, dim),
    wUp: mat(hidden, dim),
    bUp: null,
    wDown: mat(dim, hidden),
    bDown: null,
  }));
  const config: ModelConfig = {
    architecture: 'llama',
    sourceArchitecture: 'llama',
    dim,
    hiddenDim: hidden,
    nLayers: 2,
    nHeads: 8,
    nKvHeads: 4,
    headDim: 32,
    vocabSize: 512,
    seqLen: 128,
    norm: 'rmsnorm',
    normEps: 1e-5,
    mlp: 'swiglu',
    positional: 'rope',
    ropeTheta: 10000,
    ropeDim: 32,
    tiedEmbeddings: false,
    bosId: 1,
    eosId: 2,
  };
  const weights: ModelWeights = {
    tokenEmbedding: mat(512, dim),
    positionEmbedding: null,
    layers,
    finalNorm: norm(),
    finalNormBias: null,
    unembedding: mat(512, dim),
    unembeddingBias: null,
  };
  return { config, weights };
}

test('Q4_K, Q5_K and Q6_K files of a 256-wide model: every matrix in the type, values within bound', () => {
  const src = wideLlama(3);
  const tokenizer = loadLlama2cTokenizer(TOK);
  // worst |error| / the matrix's max |value| (gguf-quants.test.ts bounds, for Gaussian data)
  const bound = { Q4_K: 0.078, Q5_K: 0.056, Q6_K: 0.02, Q8_0: (0.5 + 127 * 2 ** -11) / 127 };
  for (const type of ['Q4_K', 'Q5_K', 'Q6_K', 'Q8_0'] as const) {
    const out = join(tmp, `wide-${type}.gguf`);
    const r = writeGgufModel(out, { ...src, tokenizer }, { type });
    assert.deepEqual(r.typeCounts, { [type]: 16, F32: 5 }, type);
    const header = readGgufHeader(out);
    assert.equal(
      header.metadata['general.file_type'],
      { Q4_K: 14, Q5_K: 16, Q6_K: 18, Q8_0: 7 }[type],
    );
    const m = loadGguf(out);
    const pairs: [Float32Array, Float32Array][] = [
      [src.weights.tokenEmbedding.data, m.weights.tokenEmbedding.data],
      [src.weights.unembedding.data, m.weights.unembedding.data],
      ...src.weights.layers.flatMap((l, i) => {
        const g = m.weights.layers[i]!;
        return [
          [l.wq.data, g.wq.data],
          [l.wk.data, g.wk.data],
          [l.wv.data, g.wv.data],
          [l.wo.data, g.wo.data],
          [l.wGate!.data, g.wGate!.data],
          [l.wUp.data, g.wUp.data],
          [l.wDown.data, g.wDown.data],
        ] as [Float32Array, Float32Array][];
      }),
    ];
    for (const [x, y] of pairs) {
      let amax = 0;
      let worst = 0;
      for (let i = 0; i < x.length; i++) {
        amax = Math.max(amax, Math.abs(x[i]!));
        worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
      }
      assert.ok(worst > 0 && worst / amax <= bound[type], `${type}: ${worst / amax}`);
    }
    assert.ok(
      bytesOf(m.weights.finalNorm).equals(bytesOf(src.weights.finalNorm)),
      'norms stay F32',
    );
  }
});

test('--quantize q8_0 requantizes K-format matrices at load (per block of 32 of the dequantized values)', async () => {
  const src = wideLlama(4);
  const out = join(tmp, 'wide-q4k.gguf');
  writeGgufModel(out, { ...src, tokenizer: loadLlama2cTokenizer(TOK) }, { type: 'Q4_K' });
  const f32 = await loadModel(out);
  const q8 = await loadModel(out, { quantize: 'q8_0' });
  const a = f32.weights.layers[1]!.wDown;
  const b = q8.weights.layers[1]!.wDown;
  assert.equal(a.format, 'f32');
  assert.equal(b.format, 'q8_0');
  if (b.format !== 'q8_0') return;
  assert.equal(b.groupSize, 32);
  // each value within half a Q8_0 step of the block's scale: |x − q·s| ≤ s/2 (+ f32 rounding)
  for (let i = 0; i < a.data.length; i++) {
    const s = b.scales[Math.floor(i / 32)]!;
    assert.ok(Math.abs(a.data[i]! - b.data[i]!) <= s / 2 + 1e-7, `value ${i}`);
  }
  assert.deepEqual(q8.source.details.tensorTypes, { F32: 5, Q4_K: 16 });
});

// --- refusals and corrupt files -----------------------------------------------------------------

test('what GGUF export cannot write is refused in one line', async () => {
  const gpt2 = model('tiny-gpt2');
  await assert.rejects(
    convertToGguf(gpt2, join(tmp, 'g.gguf')),
    (e) => isLmdyn('unsupported')(e) && /GPT2LMHeadModel/.test((e as Error).message),
  );
  const hfDerived = model('stories260K-hf-derived');
  // the HF-derived copy loads with the llama2.c tokenizer and converts; its logits match the .bin's
  const out = join(tmp, 'hf.gguf');
  await convertToGguf(hfDerived, out, { tokenizer: TOK });
  const a = runWithCache(await openModel(BIN), [1, 403, 407], 'logits').logits.data;
  const b = runWithCache(await openModel(out), [1, 403, 407], 'logits').logits.data;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst < 1e-4, `HF folder → GGUF: max |Δ logit| ${worst}`);
});

test('truncated and corrupted K-quant files give LmdynErrors, never a crash or a hang', () => {
  const out = join(tmp, 'wide-fuzz.gguf');
  writeGgufModel(out, { ...wideLlama(5), tokenizer: loadLlama2cTokenizer(TOK) }, { type: 'Q4_K' });
  const full = readFileSync(out);
  const h = readGgufHeader(out);
  const p = join(tmp, 'cut.gguf');
  const cuts = new Set<number>([0, 3, 4, 100, h.dataOffset - 1, h.dataOffset + 1, full.length - 1]);
  for (let n = h.dataOffset; n < full.length; n += 40_009) cuts.add(n);
  for (const n of cuts) {
    writeFileSync(p, full.subarray(0, n));
    assert.throws(() => loadGguf(p), isLmdyn(n < 4 ? 'bad_format' : 'truncated'), `cut at ${n}`);
  }
  // a tensor type lmdyn does not read (Q2_K = 10) and a row that is not whole blocks
  const q = h.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
  const typeAt =
    full.indexOf(Buffer.from('blk.0.attn_q.weight')) + 'blk.0.attn_q.weight'.length + 4 + 16;
  assert.equal(full.readUInt32LE(typeAt), BLOCK_FORMATS.Q4_K.id);
  const q2k = Buffer.from(full);
  q2k.writeUInt32LE(10, typeAt);
  writeFileSync(p, q2k);
  assert.throws(
    () => loadGguf(p),
    (e) => isLmdyn('unsupported')(e) && /Q2_K/.test((e as Error).message),
  );
  const ragged = Buffer.from(full);
  ragged.writeBigUInt64LE(BigInt(q.dims[0]! - 32), typeAt - 16); // innermost dimension 224
  writeFileSync(p, ragged);
  assert.throws(
    () => loadGguf(p),
    (e) => isLmdyn('bad_format')(e) && /not a multiple of 256/.test((e as Error).message),
  );
  // random flips in the header (seeded): LmdynError or a model, never anything else
  const rng = createRng(23);
  let rejected = 0;
  for (let trial = 0; trial < 120; trial++) {
    const copy = Buffer.from(full);
    for (let f = 0; f < 3; f++)
      copy[Math.floor(rng.next() * h.dataOffset)] ^= 1 << Math.floor(rng.next() * 8);
    writeFileSync(p, copy);
    try {
      loadGguf(p);
    } catch (e) {
      assert.ok(e instanceof LmdynError, `trial ${trial}: ${String(e)}`);
      rejected++;
    }
  }
  assert.ok(rejected > 30, `${rejected} of 120 corruptions detected`);
});

test('lmdyn convert: real output, and one-line errors for a bad type or architecture', () => {
  const cli = resolve('bin', 'lmdyn.js');
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [cli, ...args], {
      encoding: 'utf8',
      env: { ...process.env, LMDYN_MODEL: '' },
    });
  const out = join(tmp, 'cli.gguf');
  const ok = run('convert', '--model', BIN, '--out', out, '--type', 'q4_k');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(
    ok.stdout,
    /^wrote .*cli\.gguf: 267,776 bytes, 47 tensors \(31 Q5_0, 11 F32, 5 F16\)/,
  );
  assert.match(
    ok.stdout,
    /31 matrices with rows of 64 values stored as Q5_0 \(not whole Q4_K blocks\)/,
  );
  const info = run('info', '--model', out, '--json');
  assert.equal(JSON.parse(info.stdout).tensor_types, '31 Q5_0, 11 F32, 5 F16', info.stderr);
  for (const [args, code, pattern] of [
    [['--type', 'q3_k'], 2, /unknown GGUF type 'q3_k'/],
    [['--model', model('tiny-gpt2')], 1, /GGUF export writes the llama architecture/],
  ] as [string[], number, RegExp][]) {
    const r = run('convert', '--model', BIN, '--out', out, ...args);
    assert.equal(r.status, code, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, pattern);
  }
});
