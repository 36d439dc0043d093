/**
 * 16-bit float weights (src/tensor/half.ts and the matmul_h16 WebAssembly kernel).
 *
 * Independent references: bit patterns decoded by hand from the IEEE 754 binary16 / bfloat16
 * layouts; ggml's own F16 / BF16 bytes and their f32 values (test/fixtures/ggml-quants, written by
 * libggml's ggml_fp32_to_fp16_row / ggml_fp32_to_bf16_row_ref and dequantized by ggml); a float64
 * formula for every one of the 65,536 patterns; a float64 matmul of the decoded values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { allocF32, allocU16 } from '../../src/tensor/memory.js';
import { matmul } from '../../src/tensor/ops.js';
import {
  f32ToBf16Bits,
  f32ToF16Bits,
  matmulH16Js,
  newH16Matrix,
  widenH16,
  type H16Format,
} from '../../src/tensor/half.js';
import { matmulH16Wasm, wasmKernels } from '../../src/tensor/wasm/kernels.js';
import { createRng } from '../../src/tensor/rng.js';
import { fixture } from '../helpers/paths.js';

/** float64 value of a binary16 pattern, from the format's definition. */
function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return e === 0 ? sign * m * Math.pow(2, -24) : sign * (1 + m / 1024) * Math.pow(2, e - 15);
}

/** float64 value of a bfloat16 pattern (8 exponent bits, bias 127, 7 mantissa bits). */
function bf16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 255;
  const m = h & 127;
  if (e === 255) return m === 0 ? sign * Infinity : NaN;
  return e === 0 ? sign * m * Math.pow(2, -133) : sign * (1 + m / 128) * Math.pow(2, e - 127);
}

const HAND: [H16Format, number, number][] = [
  ['f16', 0x0000, 0],
  ['f16', 0x8000, -0],
  ['f16', 0x0001, 5.960464477539063e-8], // smallest subnormal 2⁻²⁴
  ['f16', 0x03ff, 0.00006097555160522461], // largest subnormal 1023·2⁻²⁴
  ['f16', 0x0400, 0.00006103515625], // smallest normal 2⁻¹⁴
  ['f16', 0x3c00, 1],
  ['f16', 0xc000, -2],
  ['f16', 0x3555, 0.333251953125],
  ['f16', 0x7bff, 65504], // max
  ['f16', 0xfbff, -65504],
  ['f16', 0x7c00, Infinity],
  ['f16', 0xfc00, -Infinity],
  ['f16', 0x7e00, NaN],
  ['f16', 0xfc01, NaN],
  ['bf16', 0x0000, 0],
  ['bf16', 0x8000, -0],
  ['bf16', 0x0001, 9.183549615799121e-41], // 2⁻¹³³, an f32 subnormal
  ['bf16', 0x0080, 1.1754943508222875e-38], // smallest normal 2⁻¹²⁶
  ['bf16', 0x3f80, 1],
  ['bf16', 0xc000, -2],
  ['bf16', 0x3eab, 0.333984375],
  ['bf16', 0x7f7f, 3.3895313892515355e38], // max
  ['bf16', 0x7f80, Infinity],
  ['bf16', 0xff80, -Infinity],
  ['bf16', 0x7fc0, NaN],
];

test('f16 / bf16 widening matches hand-decoded bit patterns (±0, subnormals, max, ±inf, NaN)', () => {
  for (const [format, bits, want] of HAND) {
    const out = new Float32Array(1);
    widenH16(format, Uint16Array.of(bits), 0, 1, out, 0);
    const label = `${format} 0x${bits.toString(16)}`;
    if (Number.isNaN(want)) assert.ok(Number.isNaN(out[0]), label);
    else assert.ok(Object.is(out[0], want), `${label}: ${out[0]} ≠ ${want}`);
  }
});

test('f32 → f16 / bf16 rounding matches hand-computed patterns (ties to even, overflow, underflow)', () => {
  const cases: [H16Format, number, number][] = [
    ['f16', 1, 0x3c00],
    ['f16', -0, 0x8000],
    ['f16', 65504, 0x7bff],
    ['f16', 65520, 0x7c00], // halfway to 2¹⁶: ties to even rounds up to inf
    ['f16', 65519.99, 0x7bff],
    ['f16', 1e6, 0x7c00],
    ['f16', 2 ** -24, 0x0001],
    ['f16', 2 ** -25, 0x0000], // a tie between 0 and the smallest subnormal: even is 0
    ['f16', 1.5 * 2 ** -25, 0x0001],
    ['f16', 3 * 2 ** -25, 0x0002], // 1.5 ulp subnormal: tie → even 2
    ['f16', 1 + 2 ** -11, 0x3c00], // tie between 1 and 1 + 2⁻¹⁰: even
    ['f16', 1 + 3 * 2 ** -11, 0x3c02],
    ['f16', 2 ** -14 - 2 ** -25, 0x0400], // rounds up into the normals
    ['bf16', 1, 0x3f80],
    ['bf16', 1 + 2 ** -8, 0x3f80], // tie → even
    ['bf16', 1 + 3 * 2 ** -8, 0x3f82],
    ['bf16', 3.4028234663852886e38, 0x7f80], // f32 max rounds to inf
  ];
  for (const [format, v, want] of cases) {
    const got = format === 'f16' ? f32ToF16Bits(v) : f32ToBf16Bits(v);
    assert.equal(got, want, `${format}(${v}) = 0x${got.toString(16)}, want 0x${want.toString(16)}`);
  }
  assert.equal(f32ToF16Bits(NaN) & 0x7c00, 0x7c00);
  assert.notEqual(f32ToF16Bits(NaN) & 0x3ff, 0);
  assert.ok(Number.isNaN(bf16Value(f32ToBf16Bits(NaN))));
});

test('ggml’s own F16 / BF16 bytes: the same bits from f32 and the same f32 values back (bit-identical)', () => {
  const input = floats(fixture('ggml-quants', 'input.f32'));
  for (const [format, name] of [
    ['f16', 'F16'],
    ['bf16', 'BF16'],
  ] as const) {
    const raw = readFileSync(fixture('ggml-quants', `${name}.blocks`));
    const bits = new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    const values = floats(fixture('ggml-quants', `${name}.values.f32`));
    assert.equal(bits.length, input.length);
    const round = format === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
    for (let i = 0; i < input.length; i++) assert.equal(round(input[i]), bits[i], `${name} ${i}`);
    const out = new Float32Array(bits.length);
    widenH16(format, bits, 0, bits.length, out, 0);
    assert.deepEqual(new Uint32Array(out.buffer), new Uint32Array(values.buffer), name);
  }
});

test('the SIMD kernel widens all 65,536 f16 and bf16 patterns exactly (float64 formula)', (t) => {
  if (!wasmKernels()) return t.skip('no wasm kernels here');
  // Row h holds pattern h in all 8 columns, x = 1/8 each: out[h] = value(h), exactly (the sums
  // of equal powers-of-two multiples are exact), except ±0 whose sign the +0 accumulator drops.
  const cols = 8;
  for (const format of ['f16', 'bf16'] as const) {
    const bits = allocU16(65536 * cols);
    for (let h = 0; h < 65536; h++) bits.fill(h, h * cols, (h + 1) * cols);
    const x = allocF32(cols).fill(1 / 8);
    const out = allocF32(65536);
    assert.ok(matmulH16Wasm(out, x, newH16Matrix(format, 65536, cols, bits), 1));
    const value = format === 'f16' ? f16Value : bf16Value;
    for (let h = 0; h < 65536; h++) {
      const want = value(h);
      if (Number.isNaN(want)) assert.ok(Number.isNaN(out[h]), `${format} 0x${h.toString(16)}`);
      else assert.equal(out[h], want === 0 ? 0 : want, `${format} 0x${h.toString(16)}`);
    }
  }
});

test('16-bit matmul (SIMD and JS) is within f32 rounding of a float64 matmul of the decoded weights', () => {
  const rng = createRng(20);
  for (const format of ['f16', 'bf16'] as const) {
    for (const [rows, cols, n] of [
      [37, 70, 1],
      [64, 96, 3],
      [9, 7, 2],
    ]) {
      const bits = allocU16(rows * cols);
      const round = format === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
      // weights down to f16's subnormals: scales 1e-6 … 1
      for (let k = 0; k < bits.length; k++) {
        bits[k] = round(rng.normal() * 10 ** -Math.floor(rng.next() * 7));
      }
      const x = allocF32(n * cols);
      for (let k = 0; k < x.length; k++) x[k] = rng.normal();
      const value = format === 'f16' ? f16Value : bf16Value;
      const w = newH16Matrix(format, rows, cols, bits);
      const simd = allocF32(n * rows);
      const js = new Float32Array(n * rows);
      matmul(simd, x, w, n);
      matmulH16Js(js, x, w, n);
      for (let t = 0; t < n; t++) {
        for (let i = 0; i < rows; i++) {
          let exact = 0;
          let mag = 0;
          for (let j = 0; j < cols; j++) {
            const p = value(bits[i * cols + j]) * x[t * cols + j];
            exact += p;
            mag += Math.abs(p);
          }
          const bound = cols * 2 ** -23 * mag + 1e-30;
          const label = `${format} ${rows}x${cols} n=${n} [${t}, ${i}]`;
          assert.ok(Math.abs(simd[t * rows + i] - exact) <= bound, `simd ${label}`);
          assert.ok(Math.abs(js[t * rows + i] - exact) <= bound, `js ${label}`);
        }
      }
      // data (for the Jacobians) is the decoded matrix, exactly
      const d = w.data;
      for (let k = 0; k < d.length; k++) assert.equal(d[k], value(bits[k]));
    }
  }
});

function floats(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}
