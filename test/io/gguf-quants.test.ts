import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BLOCK_FORMATS,
  blockFormatNamed,
  dequantize,
  f32ToBf16,
  f32ToHalf,
  halfTable,
  quantize,
  type GgmlTypeName,
} from '../../src/io/gguf-quants.js';
import { LmdynError } from '../../src/errors.js';
import { createRng } from '../../src/tensor/rng.js';
import { ROOT } from '../helpers/paths.js';

const dq = (name: GgmlTypeName, raw: Uint8Array, n: number): Float32Array => {
  const out = new Float32Array(n);
  dequantize(BLOCK_FORMATS[name], raw, n, out);
  return out;
};

// binary16 bits of a few exact values (IEEE 754: sign | exponent + 15 | 10-bit mantissa)
const H = {
  '1': 0x3c00,
  '0.5': 0x3800,
  '0.25': 0x3400,
  '-1': 0xbc00,
  '2': 0x4000,
  '0.125': 0x3000,
};

// --- block sizes (ggml-common.h static_asserts) -------------------------------------------------

test('block sizes are those of ggml-common.h (18, 20, 22, 24, 34, 144, 176, 210 bytes)', () => {
  const bytes = Object.fromEntries(
    Object.values(BLOCK_FORMATS).map((f) => [f.name, [f.id, f.blockSize, f.blockBytes]]),
  );
  assert.deepEqual(bytes, {
    F32: [0, 1, 4],
    F16: [1, 1, 2],
    Q4_0: [2, 32, 18],
    Q4_1: [3, 32, 20],
    Q5_0: [6, 32, 22],
    Q5_1: [7, 32, 24],
    Q8_0: [8, 32, 34],
    Q4_K: [12, 256, 144],
    Q5_K: [13, 256, 176],
    Q6_K: [14, 256, 210],
    BF16: [30, 1, 2],
  });
  assert.equal(blockFormatNamed('q4_k'), BLOCK_FORMATS.Q4_K);
  assert.throws(
    () => blockFormatNamed('q3_k'),
    (e) => e instanceof LmdynError && /q6_k/.test(e.message),
  );
});

// --- hand-built blocks, checked against the formula of each format -----------------------------

test('Q4_0 and Q4_1 blocks built by hand dequantize to d·(q − 8) and d·q + m', () => {
  // value j < 16 is the low nibble of qs[j], value j + 16 its high nibble
  const q = Array.from({ length: 32 }, (_, j) => (j * 7) % 16);
  const nibbles = (at: number, b: Uint8Array) => {
    for (let j = 0; j < 16; j++) b[at + j] = q[j]! | (q[j + 16]! << 4);
  };
  const b40 = new Uint8Array(18);
  b40[0] = H['0.5'] & 0xff;
  b40[1] = H['0.5'] >> 8;
  nibbles(2, b40);
  assert.deepEqual(
    dq('Q4_0', b40, 32),
    Float32Array.from(q, (v) => 0.5 * (v - 8)),
  );
  const b41 = new Uint8Array(20);
  b41.set([H['0.25'] & 0xff, H['0.25'] >> 8, H['-1'] & 0xff, H['-1'] >> 8]);
  nibbles(4, b41);
  assert.deepEqual(
    dq('Q4_1', b41, 32),
    Float32Array.from(q, (v) => 0.25 * v - 1),
  );
});

test('Q5_0 and Q5_1 blocks built by hand: the fifth bit of value j is bit j of qh', () => {
  const q = Array.from({ length: 32 }, (_, j) => (j * 11 + 3) % 32);
  const fill = (b: Uint8Array, qhAt: number, qsAt: number) => {
    let qh = 0;
    q.forEach((v, j) => {
      if (v & 16) qh += 2 ** j;
    });
    new DataView(b.buffer).setUint32(qhAt, qh, true);
    for (let j = 0; j < 16; j++) b[qsAt + j] = (q[j]! & 15) | ((q[j + 16]! & 15) << 4);
  };
  const b50 = new Uint8Array(22);
  b50.set([H['2'] & 0xff, H['2'] >> 8]);
  fill(b50, 2, 6);
  assert.deepEqual(
    dq('Q5_0', b50, 32),
    Float32Array.from(q, (v) => 2 * (v - 16)),
  );
  const b51 = new Uint8Array(24);
  b51.set([H['0.125'] & 0xff, H['0.125'] >> 8, H['1'] & 0xff, H['1'] >> 8]);
  fill(b51, 4, 8);
  assert.deepEqual(
    dq('Q5_1', b51, 32),
    Float32Array.from(q, (v) => 0.125 * v + 1),
  );
});

/** Q4_K/Q5_K scales[12]: 6-bit scale s_j and min m_j of the 8 sub-blocks (ggml-common.h). */
function packScalesK4(sc: number[], m: number[]): number[] {
  const b = new Array<number>(12).fill(0);
  for (let j = 0; j < 4; j++) {
    b[j] = (sc[j]! & 63) | ((sc[j + 4]! >> 4) << 6); // bytes 0-3: s_0..3, top bits of s_4..7
    b[j + 4] = (m[j]! & 63) | ((m[j + 4]! >> 4) << 6); // bytes 4-7: m_0..3, top bits of m_4..7
    b[j + 8] = (sc[j + 4]! & 15) | ((m[j + 4]! & 15) << 4); // bytes 8-11: low nibbles of s/m_4..7
  }
  return b;
}

test('Q4_K and Q5_K super-blocks built by hand dequantize to d·s_j·q − dmin·m_j', () => {
  const sc = [1, 2, 3, 63, 17, 40, 5, 33];
  const mn = [0, 7, 63, 1, 31, 2, 48, 20];
  const q5 = Array.from({ length: 256 }, (_, v) => (v * 13 + 5) % 32);
  const expected = (q: number[]) =>
    Float32Array.from(q, (v, i) => 1 * sc[i >> 5]! * v - 0.5 * mn[i >> 5]!);
  // value v: sub-block v/32; its 4 low bits in byte 32·⌊v/64⌋ + v%32 of qs, high nibble when
  // v%64 ≥ 32; Q5_K's fifth bit is bit 2·⌊v/64⌋ + (v%64 ≥ 32) of qh[v%32]
  const q4 = q5.map((v) => v & 15);
  const b4 = new Uint8Array(144);
  b4.set([H['1'] & 0xff, H['1'] >> 8, H['0.5'] & 0xff, H['0.5'] >> 8, ...packScalesK4(sc, mn)]);
  q4.forEach((v, i) => {
    b4[16 + 32 * (i >> 6) + (i % 32)]! |= i % 64 >= 32 ? v << 4 : v;
  });
  assert.deepEqual(dq('Q4_K', b4, 256), expected(q4));
  const b5 = new Uint8Array(176);
  b5.set([H['1'] & 0xff, H['1'] >> 8, H['0.5'] & 0xff, H['0.5'] >> 8, ...packScalesK4(sc, mn)]);
  q5.forEach((v, i) => {
    const high = i % 64 >= 32 ? 1 : 0;
    if (v & 16) b5[16 + (i % 32)]! |= 1 << (2 * (i >> 6) + high);
    b5[48 + 32 * (i >> 6) + (i % 32)]! |= high ? (v & 15) << 4 : v & 15;
  });
  assert.deepEqual(dq('Q5_K', b5, 256), expected(q5));
});

test('a Q6_K super-block built by hand dequantizes to d·s_j·(q − 32) with signed int8 scales', () => {
  const sc = Array.from({ length: 16 }, (_, j) => (j % 2 ? -1 : 1) * (j * 8 + 1)); // −121..113
  const q = Array.from({ length: 256 }, (_, v) => (v * 29 + 7) % 64);
  const b = new Uint8Array(210);
  // value v = 128n + 32g + l: low 4 bits in ql[64n + 32·(g odd) + l] (high nibble when g ≥ 2),
  // top 2 bits at bit 2g of qh[32n + l]; its scale is scales[v / 16]; d is the last 2 bytes
  q.forEach((v, i) => {
    const n = i >> 7;
    const g = (i % 128) >> 5;
    const l = i % 32;
    b[64 * n + (g & 1 ? 32 : 0) + l]! |= g >= 2 ? (v & 15) << 4 : v & 15;
    b[128 + 32 * n + l]! |= (v >> 4) << (2 * g);
  });
  sc.forEach((s, j) => (b[192 + j] = s & 0xff));
  b.set([H['0.25'] & 0xff, H['0.25'] >> 8], 208);
  assert.deepEqual(
    dq('Q6_K', b, 256),
    Float32Array.from(q, (v, i) => 0.25 * sc[i >> 4]! * (v - 32)),
  );
});

test('BF16 is the top half of the f32; F16/BF16 rounding is to nearest, ties to even', () => {
  const raw = Uint8Array.from([0x80, 0x3f, 0x00, 0xc0, 0x80, 0x7f, 0x49, 0x40]);
  assert.deepEqual(dq('BF16', raw, 4), Float32Array.from([1, -2, Infinity, 3.140625]));
  // f16: 1 + 2^-11 is a tie between 1 and 1 + 2^-10 → 1 (even); 1 + 3·2^-11 → 1 + 2^-9
  assert.equal(f32ToHalf(1 + 2 ** -11), 0x3c00);
  assert.equal(f32ToHalf(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(f32ToHalf(65504), 0x7bff);
  assert.equal(f32ToHalf(65519), 0x7bff);
  assert.equal(f32ToHalf(65520), 0x7c00); // the tie above the largest finite goes to infinity
  assert.equal(f32ToHalf(2 ** -24), 0x0001);
  assert.equal(f32ToHalf(2 ** -25), 0x0000); // tie to even (0)
  assert.equal(f32ToHalf(3 * 2 ** -25), 0x0002);
  assert.equal(f32ToHalf(-0.5), 0xb800);
  assert.ok(Number.isNaN(halfTable()[f32ToHalf(NaN)]!));
  // every finite f16 value converts back to its own bits
  const table = halfTable();
  for (let h = 0; h < 0x7c00; h++) assert.equal(f32ToHalf(table[h]!), h);
  // bf16: 1 + 2^-8 is a tie → 1; 1 + 3·2^-8 → 1 + 2^-6
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80);
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
});

// --- quantize → dequantize round trips ----------------------------------------------------------

/**
 * Seeded data shaped like weights: Gaussian rows with a few outliers, one all-zero block, one
 * constant block and one block of positive values only.
 */
function weightLike(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.normal() * 0.02;
  for (let k = 0; k < n / 97; k++) x[Math.floor(rng.next() * n)] = (rng.next() - 0.5) * 0.6;
  x.fill(0, 256, 512);
  x.fill(0.013, 512, 768);
  for (let i = 768; i < 1024; i++) x[i] = Math.abs(x[i]!);
  return x;
}

/**
 * Worst error of each value relative to the largest magnitude of its 256-value super-block.
 * The 32-value formats are bounded by their step plus the f16 rounding of their scale (2⁻¹¹
 * relative): Q8_0 one half-step d/2 with d = amax/127 (so 0.5/127 + 127·2⁻¹¹/127); Q4_0 and Q5_0
 * one whole step at the clamped end (d = amax/8, amax/16); Q4_1 and Q5_1 half a step of
 * range/15, range/31 with range ≤ 2·amax, plus the rounding of d and m. The K formats have no
 * closed bound (their scales are fitted, then quantized to 6 or 8 bits): theirs are the values
 * measured on this data (docs/gguf.md) with a 25% margin.
 */
const MAX_ERROR: Record<GgmlTypeName, number> = {
  F32: 0,
  F16: 2 ** -11,
  BF16: 2 ** -8,
  Q8_0: (0.5 + 127 * 2 ** -11) / 127,
  Q4_0: (1 + 8 * 2 ** -11) / 8,
  Q5_0: (1 + 16 * 2 ** -11) / 16,
  Q4_1: (2 * (0.5 + 15 * 2 ** -11)) / 15 + 2 ** -11,
  Q5_1: (2 * (0.5 + 31 * 2 ** -11)) / 31 + 2 ** -11,
  Q4_K: 0.078,
  Q5_K: 0.056,
  Q6_K: 0.02,
};

/** Root-mean-square error over RMS of the data, as measured (docs/gguf.md) with a 25% margin. */
const RMS_ERROR: Partial<Record<GgmlTypeName, number>> = {
  Q4_0: 0.172,
  Q4_1: 0.122,
  Q5_0: 0.087,
  Q5_1: 0.058,
  Q8_0: 0.011,
  Q4_K: 0.113,
  Q5_K: 0.056,
  Q6_K: 0.032,
};

test('quantize → dequantize stays within each type’s error bound (seeded weight-like data)', () => {
  const n = 256 * 64;
  const x = weightLike(n, 7);
  const measured: Record<string, [number, number]> = {};
  for (const f of Object.values(BLOCK_FORMATS)) {
    const raw = quantize(f, x);
    assert.equal(raw.length, (n / f.blockSize) * f.blockBytes, `${f.name} size`);
    const y = dq(f.name, raw, n);
    let worst = 0;
    let se = 0;
    let sx = 0;
    for (let b = 0; b < n; b += 256) {
      let amax = 0;
      for (let i = b; i < b + 256; i++) amax = Math.max(amax, Math.abs(x[i]!));
      for (let i = b; i < b + 256; i++) {
        const e = Math.abs(y[i]! - x[i]!);
        se += e * e;
        sx += x[i]! * x[i]!;
        if (amax > 0) worst = Math.max(worst, e / amax);
        else assert.equal(e, 0, `${f.name}: an all-zero block comes back zero`);
      }
    }
    const rms = Math.sqrt(se / sx);
    measured[f.name] = [worst, rms];
    if (process.env.LMDYN_PRINT_QUANT_ERRORS) console.log(f.name, worst, rms);
    assert.ok(worst <= MAX_ERROR[f.name], `${f.name}: max error ${worst} of the block's max`);
    const bound = RMS_ERROR[f.name];
    if (bound !== undefined) assert.ok(rms <= bound, `${f.name}: rms error ${rms}`);
  }
  // more bits, less error: the K formats rank as their bit counts
  assert.ok(measured.Q4_K![1] > measured.Q5_K![1] && measured.Q5_K![1] > measured.Q6_K![1]);
  assert.ok(measured.Q6_K![1] > measured.Q8_0![1]);
  assert.deepEqual(measured.F32, [0, 0]);
});

test('values on a format’s grid come back exactly', () => {
  // Q8_0: k·d with d = 1/64 and max |k| = 127 (so d = amax/127 is exactly 1/64)
  const k = Array.from({ length: 32 }, (_, j) => (j === 0 ? 127 : ((j * 37) % 255) - 127));
  const x8 = Float32Array.from(k, (v) => v / 64);
  assert.deepEqual(dq('Q8_0', quantize(BLOCK_FORMATS.Q8_0, x8), 32), x8);
  // Q4_0: the max −8·d maps to q = 0 and the grid d·(q − 8) is exact
  const x4 = Float32Array.from({ length: 32 }, (_, j) => (j === 0 ? -2 : 0.25 * ((j % 16) - 8)));
  assert.deepEqual(dq('Q4_0', quantize(BLOCK_FORMATS.Q4_0, x4), 32), x4);
  // F16 and BF16 hold their own values
  const h = Float32Array.from([1, -2, 0.333251953125, 65504, 2 ** -24]);
  assert.deepEqual(dq('F16', quantize(BLOCK_FORMATS.F16, h), 5), h);
  const b = Float32Array.from([1, -2, 3.140625, 2 ** 100]);
  assert.deepEqual(dq('BF16', quantize(BLOCK_FORMATS.BF16, b), 4), b);
  // K formats: an all-zero super-block is all zeros
  for (const f of [BLOCK_FORMATS.Q4_K, BLOCK_FORMATS.Q5_K, BLOCK_FORMATS.Q6_K]) {
    const y = dq(f.name, quantize(f, new Float32Array(256)), 256);
    assert.ok(
      y.every((v) => v === 0),
      f.name,
    ); // Q6_K gives −0 = d·s·(0 − 32), as ggml does
  }
});

// --- against ggml itself ------------------------------------------------------------------------

/**
 * test/fixtures/ggml-quants: 1024 seeded values quantized by ggml's quantize_row_*_ref and
 * dequantized by its dequantize_row_* (libggml-base.so of the llama.cpp binary in node-llama-cpp
 * 3.21.1, called through ctypes by scripts/ggml-quant-fixtures.py; manifest.json has the hashes).
 */
test('ggml’s own blocks dequantize bit-identically, and lmdyn’s quantizers write ggml’s bytes', () => {
  const dir = join(ROOT, 'test', 'fixtures', 'ggml-quants');
  const f32 = (b: Buffer) =>
    new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const x = f32(readFileSync(join(dir, 'input.f32')));
  assert.equal(x.length, 1024);
  const identical: Record<string, string> = {};
  for (const f of Object.values(BLOCK_FORMATS)) {
    if (f.name === 'F32') continue;
    const ref = new Uint8Array(readFileSync(join(dir, `${f.name}.blocks`)));
    const refValues = f32(readFileSync(join(dir, `${f.name}.values.f32`)));
    const mine = dq(f.name, ref, x.length);
    assert.ok(
      Buffer.from(mine.buffer).equals(Buffer.from(refValues.buffer)),
      `${f.name}: dequantization`,
    );
    const q = quantize(f, x);
    const blocks = x.length / f.blockSize;
    let same = 0;
    for (let b = 0; b < blocks; b++) {
      const at = b * f.blockBytes;
      if (
        Buffer.from(q.subarray(at, at + f.blockBytes)).equals(
          Buffer.from(ref.subarray(at, at + f.blockBytes)),
        )
      )
        same++;
    }
    identical[f.name] = `${same}/${blocks}`;
    // where a block differs, lmdyn's is as good a fit as ggml's
    const err = (y: Float32Array) => y.reduce((s, v, i) => s + (v - x[i]!) ** 2, 0);
    assert.ok(err(dq(f.name, q, x.length)) <= err(refValues) * 1.01, `${f.name}: squared error`);
  }
  // measured: every block byte-identical except one of Q5_K's four super-blocks (the
  // all-positive one, whose fitted mins differ in their last bits)
  assert.deepEqual(identical, {
    F16: '1024/1024',
    BF16: '1024/1024',
    Q4_0: '32/32',
    Q4_1: '32/32',
    Q5_0: '32/32',
    Q5_1: '32/32',
    Q8_0: '32/32',
    Q4_K: '4/4',
    Q5_K: '3/4',
    Q6_K: '4/4',
  });
});
