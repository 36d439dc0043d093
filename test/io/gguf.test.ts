import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdynError } from '../../src/errors.js';
import { loadGguf, readGgufHeader, readGgufTensor } from '../../src/io/gguf.js';
import { loadLlama2cCheckpoint } from '../../src/io/llama2c.js';
import { createRng } from '../../src/tensor/rng.js';
import { loadLlama2cTokenizer } from '../../src/io/llama2c-tokenizer.js';
import { model } from '../helpers/paths.js';

const GGUF = model('stories260K-gguf', 'stories260K.gguf');
const BIN = model('stories260K', 'stories260K.bin');
/** MANIFEST.md §1: the text stories260K generates greedily from BOS. */
const STORY =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily';
const tmp = mkdtempSync(join(tmpdir(), 'lmdyn-gguf-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

// --- a GGUF writer for tests, straight from docs/gguf.md -------------------------------------

const T = {
  U8: 0,
  I8: 1,
  U16: 2,
  I16: 3,
  U32: 4,
  I32: 5,
  F32: 6,
  BOOL: 7,
  STR: 8,
  ARR: 9,
  U64: 10,
  I64: 11,
  F64: 12,
};
const F32 = 0;
const F16 = 1;
const Q2_K = 10; // a ggml type lmdyn does not read
const Q8_0 = 8;

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: number | bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};
const str = (s: string): Buffer => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
const kv = (key: string, type: number, value: Buffer): Buffer =>
  Buffer.concat([str(key), u32(type), value]);
const arr = (type: number, items: Buffer[]): Buffer =>
  Buffer.concat([u32(type), u64(items.length), ...items]);
const u16s = (xs: number[]): Buffer => Buffer.from(Uint16Array.from(xs).buffer);
const f32s = (xs: number[]): Buffer => Buffer.from(Float32Array.from(xs).buffer);

interface RawTensor {
  name: string;
  dims: number[]; // innermost first
  type: number;
  data: Buffer;
}

function ggufFile(kvs: Buffer[], tensors: RawTensor[], alignment = 32): Buffer {
  const align = (n: number): number => Math.ceil(n / alignment) * alignment;
  const offsets: number[] = [];
  let end = 0;
  for (const t of tensors) {
    offsets.push(align(end));
    end = align(end) + t.data.length;
  }
  const infos = tensors.map((t, i) =>
    Buffer.concat([
      str(t.name),
      u32(t.dims.length),
      ...t.dims.map(u64),
      u32(t.type),
      u64(offsets[i]!),
    ]),
  );
  const head = Buffer.concat([
    Buffer.from('GGUF'),
    u32(3),
    u64(tensors.length),
    u64(kvs.length),
    ...kvs,
    ...infos,
  ]);
  const data = Buffer.alloc(end);
  tensors.forEach((t, i) => t.data.copy(data, offsets[i]));
  return Buffer.concat([head, Buffer.alloc(align(head.length) - head.length), data]);
}

/** Q8_0 blocks (docs: f16 scale d, then 32 int8): one scale per 32 values. */
function q8Blocks(scaleBits: number[], q: number[]): Buffer {
  const out: Buffer[] = [];
  scaleBits.forEach((d, b) =>
    out.push(u16s([d]), Buffer.from(Int8Array.from(q.slice(32 * b, 32 * b + 32)).buffer)),
  );
  return Buffer.concat(out);
}

/** binary16 bits of k/64 for an integer |k| ≤ 2048 (exact: at most 11 significant bits). */
function halfOf(v: number): number {
  if (v === 0) return 0;
  const e = Math.floor(Math.log2(Math.abs(v)));
  const mantissa = (Math.abs(v) / 2 ** e - 1) * 1024;
  return (v < 0 ? 0x8000 : 0) | ((e + 15) << 10) | mantissa;
}

function save(name: string, bytes: Buffer): string {
  const p = join(tmp, name);
  writeFileSync(p, bytes);
  return p;
}

function isLmdyn(code?: string) {
  return (e: unknown): boolean =>
    e instanceof LmdynError && (code === undefined || e.code === code);
}

// --- stories260K.gguf --------------------------------------------------------------------------

test('stories260K.gguf header and metadata match MANIFEST.md §3', () => {
  assert.equal(readFileSync(GGUF).subarray(0, 8).toString('hex'), '4747554603000000');
  const h = readGgufHeader(GGUF);
  assert.equal(h.version, 3);
  assert.equal(h.tensors.length, 48);
  assert.equal(Object.keys(h.metadata).length, 19);
  assert.equal(h.alignment, 32);
  assert.equal(h.dataOffset, 14_176);
  assert.ok(h.tensors.every((t) => t.typeName === 'F32'));
  const emb = h.tensors.find((t) => t.name === 'token_embd.weight')!;
  assert.deepEqual(emb.dims, [64, 512]); // innermost first: 512 rows of 64
  const m = h.metadata;
  assert.equal(m['general.architecture'], 'llama');
  assert.deepEqual(
    [
      'embedding_length',
      'feed_forward_length',
      'block_count',
      'attention.head_count',
      'attention.head_count_kv',
      'rope.dimension_count',
      'context_length',
    ].map((k) => m[`llama.${k}`]),
    [64, 172, 5, 8, 4, 8, 2048],
  );
  assert.equal(m['llama.attention.layer_norm_rms_epsilon'], 1e-5);
  assert.equal(m['tokenizer.ggml.model'], 'llama');
  assert.equal((m['tokenizer.ggml.tokens'] as string[]).length, 512);
  assert.deepEqual(
    ['bos', 'eos', 'unknown'].map((k) => m[`tokenizer.ggml.${k}_token_id`]),
    [1, 2, 0],
  );

  const loaded = loadGguf(GGUF);
  const c = loaded.config;
  assert.deepEqual(
    [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.headDim, c.vocabSize, c.seqLen],
    [64, 172, 5, 8, 4, 8, 512, 2048],
  );
  assert.deepEqual([c.normEps, c.ropeTheta, c.ropeDim, c.bosId, c.eosId], [1e-5, 10000, 8, 1, 2]);
  assert.equal(c.tiedEmbeddings, false, 'output.weight is stored explicitly');
  const d = loaded.source.details;
  assert.deepEqual(d.tensorTypes, { F32: 48 });
  const meta = d.metadata as Record<string, unknown>;
  assert.equal(typeof meta['tokenizer.ggml.tokens'], 'string', 'big arrays are summarised');
  assert.equal(meta['llama.block_count'], 5);
});

test('stories260K.gguf tensors are bit-identical to stories260K.bin (MANIFEST.md §1, §3)', () => {
  const g = loadGguf(GGUF).weights;
  const b = loadLlama2cCheckpoint(BIN).weights;
  const same = (x: Float32Array, y: Float32Array, what: string): void =>
    assert.ok(
      Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(
        Buffer.from(y.buffer, y.byteOffset, y.byteLength),
      ),
      what,
    );
  same(g.tokenEmbedding.data, b.tokenEmbedding.data, 'token_embd');
  same(g.unembedding.data, b.tokenEmbedding.data, 'output equals token_embd');
  same(g.finalNorm, b.finalNorm, 'output_norm');
  let compared = 3;
  g.layers.forEach((l, i) => {
    const r = b.layers[i]!;
    same(l.attnNorm, r.attnNorm, `blk.${i}.attn_norm`);
    same(l.wq.data, r.wq.data, `blk.${i}.attn_q`);
    same(l.wk.data, r.wk.data, `blk.${i}.attn_k`);
    same(l.wv.data, r.wv.data, `blk.${i}.attn_v`);
    same(l.wo.data, r.wo.data, `blk.${i}.attn_output`);
    same(l.mlpNorm, r.mlpNorm, `blk.${i}.ffn_norm`);
    same(l.wGate!.data, r.wGate!.data, `blk.${i}.ffn_gate`);
    same(l.wUp.data, r.wUp.data, `blk.${i}.ffn_up`);
    same(l.wDown.data, r.wDown.data, `blk.${i}.ffn_down`);
    compared += 9;
  });
  assert.equal(compared, 48);
});

test('stories260K.gguf embedded tokenizer matches tok512.bin (MANIFEST.md §3)', () => {
  const g = loadGguf(GGUF).tokenizer!;
  const t = loadLlama2cTokenizer(model('stories260K', 'tok512.bin'));
  assert.equal(g.kind, 'gguf');
  assert.equal(g.vocabSize, 512);
  assert.deepEqual(g.encode(STORY), t.encode(STORY));
  assert.equal(g.decode(g.encode(STORY)), STORY);
  // 510 pieces equal once '▁' is a space; the other two are <s>/</s> vs "\n<s>\n"/"\n</s>\n".
  const differ = Array.from({ length: 512 }, (_, i) => i).filter(
    (i) => g.tokenText(i) !== t.tokenText(i),
  );
  assert.deepEqual(differ, [1, 2]);
  assert.deepEqual([g.tokenText(1), g.tokenText(2)], ['<s>', '</s>']);
});

// --- synthetic files ---------------------------------------------------------------------------

test('synthetic GGUF: every metadata value type, F16 and Q8_0 tensors, alignment 64', () => {
  // binary16 bit patterns and their values by the IEEE 754 definition
  const halves: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x3555, 0.333251953125], // (1 + 341/1024) · 2^-2
    [0x0001, 2 ** -24], // smallest subnormal
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x0400, 2 ** -14], // smallest normal
    [0x7bff, 65504], // largest finite
    [0x8000, -0],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  // Q8_0: two rows of one block each; value = d · q
  const q = Array.from({ length: 64 }, (_, j) => (j < 32 ? j - 16 : 127 - 8 * (j - 32)));
  const d = [0x3800, 0x2e66]; // 0.5 and (1 + 614/1024) · 2^-4 = 0.0999755859375
  const dValue = [0.5, 0.0999755859375];
  const file = ggufFile(
    [
      kv('general.architecture', T.STR, str('synthetic')),
      kv('general.alignment', T.U32, u32(64)),
      kv('v.u8', T.U8, Buffer.from([200])),
      kv('v.i8', T.I8, Buffer.from([0xfe])),
      kv('v.u16', T.U16, u16s([65535])),
      kv('v.i16', T.I16, Buffer.from(Int16Array.from([-300]).buffer)),
      kv('v.i32', T.I32, Buffer.from(Int32Array.from([-70000]).buffer)),
      kv('v.f32', T.F32, f32s([0.1])),
      kv('v.bool', T.BOOL, Buffer.from([1])),
      kv('v.u64', T.U64, u64(2n ** 60n + 1n)),
      kv('v.i64', T.I64, Buffer.from(BigInt64Array.from([-5n]).buffer)),
      kv('v.f64', T.F64, Buffer.from(Float64Array.from([Math.PI]).buffer)),
      kv('v.strings', T.ARR, arr(T.STR, [str('a'), str('▁b'), str('')])),
      kv(
        'v.nested',
        T.ARR,
        arr(T.ARR, [arr(T.U8, [Buffer.from([1]), Buffer.from([2])]), arr(T.U8, [])]),
      ),
      kv('v.floats', T.ARR, arr(T.F32, [f32s([1.5]), f32s([-2])])),
    ],
    [
      { name: 'half', dims: [halves.length], type: F16, data: u16s(halves.map(([bits]) => bits)) },
      { name: 'q8', dims: [32, 2], type: Q8_0, data: q8Blocks(d, q) },
    ],
    64,
  );
  const path = save('synthetic.gguf', file);
  const h = readGgufHeader(path);
  const m = h.metadata;
  assert.equal(h.alignment, 64);
  assert.equal(h.dataOffset % 64, 0);
  assert.deepEqual(
    ['u8', 'i8', 'u16', 'i16', 'i32', 'f32', 'bool', 'u64', 'i64', 'f64'].map((k) => m[`v.${k}`]),
    [200, -2, 65535, -300, -70000, 0.1, true, 2n ** 60n + 1n, -5, Math.PI],
  );
  assert.deepEqual(m['v.strings'], ['a', '▁b', '']);
  assert.deepEqual(m['v.nested'], [Uint8Array.from([1, 2]), new Uint8Array(0)]);
  assert.deepEqual(m['v.floats'], Float32Array.from([1.5, -2]));
  assert.deepEqual(
    h.tensors.map((t) => [t.name, t.typeName, t.offset % 64]),
    [
      ['half', 'F16', 0],
      ['q8', 'Q8_0', 0],
    ],
  );
  assert.deepEqual(readGgufTensor(path, h, 'half'), Float32Array.from(halves.map(([, v]) => v)));
  const expected = Float32Array.from(q, (x, j) => dValue[j >> 5]! * x);
  assert.deepEqual(readGgufTensor(path, h, 'q8'), expected);
  assert.throws(() => loadGguf(path), isLmdyn('unsupported'), 'architecture synthetic');
});

/** A one-layer llama (dim 32, 2 heads, 1 KV head) with F16 and Q8_0 matrices and tied output. */
function tinyLlama(
  overrides: { embType?: number; extra?: RawTensor[]; arch?: string; drop?: string } = {},
): {
  file: Buffer;
  values: Map<string, number[]>;
} {
  const dim = 32;
  const values = new Map<string, number[]>();
  const tensors: RawTensor[] = [];
  let k = 0;
  const f16 = (name: string, rows: number, cols: number): void => {
    const v = Array.from({ length: rows * cols }, () => ((k++ * 37) % 129) / 64 - 1); // k/64 grid
    values.set(name, v);
    tensors.push({ name, dims: [cols, rows], type: F16, data: u16s(v.map(halfOf)) });
  };
  const q8 = (name: string, rows: number, cols: number): void => {
    const q = Array.from({ length: rows * cols }, () => ((k++ * 53) % 255) - 127);
    const blocks = (rows * cols) / 32;
    values.set(
      name,
      q.map((x) => x * 0.25),
    );
    tensors.push({
      name,
      dims: [cols, rows],
      type: Q8_0,
      data: q8Blocks(Array(blocks).fill(0x3400), q),
    }); // d = 0.25
  };
  const f32 = (name: string, n: number): void => {
    const v = Array.from({ length: n }, (_, i) => 1 + i / 32);
    values.set(name, v);
    tensors.push({ name, dims: [n], type: F32, data: f32s(v) });
  };
  if (overrides.embType === Q2_K) {
    tensors.push({
      name: 'token_embd.weight',
      dims: [dim, 8],
      type: Q2_K,
      data: Buffer.alloc(8 * 18),
    });
  } else {
    q8('token_embd.weight', 8, dim);
  }
  f32('blk.0.attn_norm.weight', dim);
  f16('blk.0.attn_q.weight', 32, dim);
  q8('blk.0.attn_k.weight', 16, dim);
  f16('blk.0.attn_v.weight', 16, dim);
  q8('blk.0.attn_output.weight', dim, 32);
  f32('blk.0.ffn_norm.weight', dim);
  f16('blk.0.ffn_gate.weight', 32, dim);
  q8('blk.0.ffn_up.weight', 32, dim);
  f16('blk.0.ffn_down.weight', dim, 32);
  f32('output_norm.weight', dim);
  tensors.push(...(overrides.extra ?? []));
  const kept = tensors.filter((t) => t.name !== overrides.drop);
  const file = ggufFile(
    [
      kv('general.architecture', T.STR, str(overrides.arch ?? 'llama')),
      kv('llama.embedding_length', T.U32, u32(dim)),
      kv('llama.feed_forward_length', T.U32, u32(32)),
      kv('llama.block_count', T.U32, u32(1)),
      kv('llama.attention.head_count', T.U32, u32(2)),
      kv('llama.attention.head_count_kv', T.U32, u32(1)),
      kv('llama.attention.layer_norm_rms_epsilon', T.F32, f32s([1e-6])),
      kv('llama.rope.freq_base', T.F32, f32s([500000])),
      kv('llama.context_length', T.U64, u64(64)),
    ],
    kept,
  );
  return { file, values };
}

test('synthetic llama GGUF: F16/Q8_0 weights, GQA and tied output load through loadGguf', () => {
  const { file, values } = tinyLlama();
  const m = loadGguf(save('tiny.gguf', file));
  const c = m.config;
  assert.deepEqual(
    [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.headDim, c.vocabSize, c.seqLen],
    [32, 32, 1, 2, 1, 16, 8, 64],
  );
  assert.deepEqual([c.normEps, c.ropeTheta, c.ropeDim, c.tiedEmbeddings], [1e-6, 500000, 16, true]);
  assert.equal(m.tokenizer, null);
  assert.equal(m.weights.unembedding, m.weights.tokenEmbedding, 'absent output.weight ⇒ tied');
  assert.deepEqual(m.source.details.tensorTypes, { Q8_0: 4, F32: 3, F16: 4 });
  const l = m.weights.layers[0]!;
  const expect = (name: string, got: Float32Array): void =>
    assert.deepEqual(got, Float32Array.from(values.get(name)!), name);
  expect('token_embd.weight', m.weights.tokenEmbedding.data);
  expect('blk.0.attn_q.weight', l.wq.data);
  expect('blk.0.attn_k.weight', l.wk.data);
  expect('blk.0.attn_v.weight', l.wv.data);
  expect('blk.0.attn_output.weight', l.wo.data);
  expect('blk.0.ffn_gate.weight', l.wGate!.data);
  expect('blk.0.ffn_up.weight', l.wUp.data);
  expect('blk.0.ffn_down.weight', l.wDown.data);
  expect('output_norm.weight', m.weights.finalNorm);
  assert.deepEqual([l.wk.rows, l.wk.cols, l.wo.rows, l.wo.cols], [16, 32, 32, 32]);
});

test('unsupported GGUF content names what is unsupported', () => {
  const message = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof LmdynError && e.code === 'unsupported', String(e));
      return e.message;
    }
    throw new Error('expected an error');
  };
  const q2 = save('q2k.gguf', tinyLlama({ embType: Q2_K }).file);
  assert.match(
    message(() => loadGguf(q2)),
    /token_embd\.weight.*Q2_K/,
  );
  const gpt2 = save('gpt2.gguf', tinyLlama({ arch: 'gpt2' }).file);
  assert.match(
    message(() => loadGguf(gpt2)),
    /gpt2/,
  );
  const extra = { name: 'rope_freqs.weight', dims: [8], type: F32, data: f32s(Array(8).fill(1)) };
  const rope = save('rope.gguf', tinyLlama({ extra: [extra] }).file);
  assert.match(
    message(() => loadGguf(rope)),
    /rope_freqs\.weight/,
  );
  const v1 = Buffer.from(tinyLlama().file);
  v1.writeUInt32LE(1, 4);
  assert.match(
    message(() => loadGguf(save('v1.gguf', v1))),
    /version 1/,
  );
});

// --- corrupt files -----------------------------------------------------------------------------

test('crafted corruptions: huge lengths and counts, deep nesting, overlapping tensors', () => {
  const header = (kvs: Buffer[], tensorCount = 0): Buffer =>
    Buffer.concat([Buffer.from('GGUF'), u32(3), u64(tensorCount), u64(kvs.length), ...kvs]);
  const cases: [string, Buffer, string][] = [
    [
      'string longer than the file',
      Buffer.concat([header([]).subarray(0, 16), u64(1), u64(2n ** 62n)]),
      'truncated',
    ],
    [
      'array count 2^40',
      header([kv('a', T.ARR, Buffer.concat([u32(T.U32), u64(2n ** 40n)]))]),
      'truncated',
    ],
    ['tensor_count 2^50', header([], 2 ** 50), 'truncated'],
    ['unknown value type', header([kv('a', 99, u32(0))]), 'bad_format'],
    ['bool byte 2', header([kv('a', T.BOOL, Buffer.from([2]))]), 'bad_format'],
    [
      'duplicate key',
      header([kv('a', T.U8, Buffer.from([1])), kv('a', T.U8, Buffer.from([1]))]),
      'bad_format',
    ],
    ['alignment 48', header([kv('general.alignment', T.U32, u32(48))]), 'bad_format'],
  ];
  let nested = Buffer.concat([u32(T.U8), u64(0)]);
  for (let i = 0; i < 100; i++) nested = Buffer.concat([u32(T.ARR), u64(1), nested]);
  cases.push(['arrays nested 100 deep', header([kv('a', T.ARR, nested)]), 'bad_format']);
  const overlap = ggufFile(
    [kv('general.architecture', T.STR, str('llama'))],
    [
      { name: 'a', dims: [64], type: F32, data: Buffer.alloc(256) },
      { name: 'b', dims: [64], type: F32, data: Buffer.alloc(256) },
    ],
  );
  const h = readGgufHeader(save('overlap-ok.gguf', overlap));
  const infoAt = h.tensors[1]!.offset - h.dataOffset; // make tensor b point at tensor a's data
  const patched = Buffer.from(overlap);
  patched.writeBigUInt64LE(0n, patched.lastIndexOf(u64(infoAt), h.dataOffset)); // b's offset field
  cases.push(['overlapping tensor data', patched, 'bad_format']);
  cases.push(['missing tensor', tinyLlama({ drop: 'blk.0.attn_k.weight' }).file, 'bad_format']);
  for (const [what, bytes, code] of cases) {
    assert.throws(() => loadGguf(save('crafted.gguf', bytes)), isLmdyn(code), what);
  }
});

test('every truncation of stories260K.gguf (coarse sweep) is a LmdynError', () => {
  const full = readFileSync(GGUF);
  const lengths = new Set<number>();
  for (let n = 0; n < 64; n++) lengths.add(n);
  for (let n = 64; n < 14_176 + 64; n += 97) lengths.add(n);
  for (let n = 14_176; n < full.length; n += 23_456) lengths.add(n);
  lengths.add(full.length - 1);
  const p = join(tmp, 'cut.gguf');
  for (const n of lengths) {
    writeFileSync(p, full.subarray(0, n));
    const t0 = Date.now();
    assert.throws(() => loadGguf(p), isLmdyn(n < 4 ? 'bad_format' : 'truncated'), `cut at ${n}`);
    assert.ok(Date.now() - t0 < 2000, `cut at ${n} took too long`);
  }
});

test('random byte flips (seeded) never throw anything but LmdynError and never hang', () => {
  const rng = createRng(20240601);
  const tiny = tinyLlama().file;
  const targets: [string, Buffer, number][] = [
    ['stories260K.gguf', readFileSync(GGUF), 14_176], // flip inside metadata and tensor infos
    ['tiny.gguf', tiny, tiny.length], // flip anywhere
  ];
  const p = join(tmp, 'flip.gguf');
  let failures = 0;
  for (const [name, bytes, span] of targets) {
    for (let trial = 0; trial < 150; trial++) {
      const copy = Buffer.from(bytes);
      const flips = 1 + Math.floor(rng.next() * 4);
      for (let f = 0; f < flips; f++) {
        copy[Math.floor(rng.next() * span)] ^= 1 << Math.floor(rng.next() * 8);
      }
      writeFileSync(p, copy);
      const t0 = Date.now();
      try {
        loadGguf(p);
      } catch (e) {
        assert.ok(e instanceof LmdynError, `${name} trial ${trial}: ${String(e)}`);
        failures++;
      }
      assert.ok(Date.now() - t0 < 2000, `${name} trial ${trial} took too long`);
    }
  }
  assert.ok(failures > 50, `most corruptions are detected (${failures} of 300)`);
});
