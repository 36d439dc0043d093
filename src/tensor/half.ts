/**
 * 16-bit float weight matrices ('f16' = IEEE 754 binary16, 'bf16' = bfloat16, the top 16 bits of
 * an f32) and their matmul. The bits stay resident, half of fp32's bytes; the matmul widens each
 * weight exactly to f32 as it reads it and multiplies and sums in f32, so a 16-bit matrix gives
 * the products of its widened f32 matrix (to f32 summation order).
 *
 * The WebAssembly kernel (kernels.wat matmul_h16) runs when every buffer is in the arena; the JS
 * loops here are the reference and the fallback. The forward pass reaches this through ops.ts
 * matmul, which dispatches on the matrix's format.
 */
import type { F32Matrix, H16Matrix } from './matrix.js';
import { allocF32, allocU16 } from './memory.js';
import { matmulH16Wasm } from './wasm/kernels.js';

export type H16Format = H16Matrix['format'];

/**
 * A 16-bit matrix over `bits` [rows, cols], with `data` widening to f32 on first access (into the
 * arena, cached; for code that needs f32 weights, e.g. the Jacobians).
 */
export function newH16Matrix(
  format: H16Format,
  rows: number,
  cols: number,
  bits: Uint16Array,
): H16Matrix {
  if (bits.length !== rows * cols) {
    throw new Error(`${format} matrix ${rows}x${cols} needs ${rows * cols} values, got ${bits.length}`);
  }
  let data: Float32Array | null = null;
  const m = { format, rows, cols, bits };
  const matrix = Object.defineProperty(m, 'data', {
    enumerable: false,
    get(): Float32Array {
      if (!data) {
        data = allocF32(rows * cols);
        widenH16(format, bits, 0, rows * cols, data, 0);
      }
      return data;
    },
  }) as H16Matrix;
  widened.set(matrix, () => data);
  return matrix;
}

/** The widened copy of a 16-bit matrix if `data` was ever read, without creating it. */
const widened = new WeakMap<H16Matrix, () => Float32Array | null>();
export function widenedData(m: H16Matrix): Float32Array | null {
  return widened.get(m)?.() ?? null;
}

/** out[outOffset + k] = the f32 value of bits[start + k], for k < count. */
export function widenH16(
  format: H16Format,
  bits: Uint16Array,
  start: number,
  count: number,
  out: Float32Array,
  outOffset: number,
): void {
  if (format === 'f16') {
    const table = f16Table();
    for (let k = 0; k < count; k++) out[outOffset + k] = table[bits[start + k]];
    return;
  }
  // bf16: the f32 whose top half is the 16 bits
  const u32 = new Uint32Array(out.buffer, out.byteOffset + 4 * outOffset, count);
  for (let k = 0; k < count; k++) u32[k] = bits[start + k] << 16;
}

let f16ToF32: Float32Array | null = null;

/**
 * The f32 value of every binary16 bit pattern (2¹⁶ entries, 256 KiB): sign, 5 exponent bits
 * (bias 15), 10 mantissa bits; exponent 0 is ±0 and the subnormals m·2⁻²⁴, 31 is ±∞ (m = 0) and
 * NaN. A table lookup per value measured faster in V8 than the bit arithmetic (docs/memory.md).
 */
export function f16Table(): Float32Array {
  if (f16ToF32) return f16ToF32;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) table[h] = sign * mant * 2 ** -24;
    else if (exp === 31) table[h] = mant === 0 ? sign * Infinity : NaN;
    else table[h] = sign * (1024 + mant) * 2 ** (exp - 25);
  }
  f16ToF32 = table;
  return table;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** binary16 bits of v, rounded to nearest, ties to even; overflow → ±∞, NaN → a quiet NaN. */
export function f32ToF16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal half (or zero): value = (1.m) · 2^(exp−127) in units of 2⁻²⁴
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    const full = mant | 0x800000; // 24 significant bits
    const shift = 14 - e; // 13 + (1 − e)
    return sign | roundShift(full, shift);
  }
  // normal: keep 10 of the 23 mantissa bits; a carry out of the mantissa bumps the exponent
  return sign | ((e << 10) + roundShift(mant, 13));
}

/** bfloat16 bits of v: the top 16 bits of its f32, rounded to nearest, ties to even; NaN stays NaN. */
export function f32ToBf16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** round(v / 2^shift), ties to even, for 0 ≤ v < 2³¹. */
function roundShift(v: number, shift: number): number {
  const q = v >>> shift;
  const rem = v - q * 2 ** shift;
  const half = 2 ** (shift - 1);
  return rem > half || (rem === half && (q & 1) === 1) ? q + 1 : q;
}

/** out[n, W.rows] = x[n, W.cols] · Wᵀ for a 16-bit W. */
export function matmulH16(out: Float32Array, x: Float32Array, w: H16Matrix, n: number): void {
  if (!matmulH16Wasm(out, x, w, n)) matmulH16Js(out, x, w, n);
}

let rowScratch = new Float32Array(0);

/** The reference JS loop for matmulH16 (and its fallback): each W row widened, then dotted. */
export function matmulH16Js(out: Float32Array, x: Float32Array, w: H16Matrix, n: number): void {
  const { rows, cols, bits, format } = w;
  if (rowScratch.length < cols) rowScratch = new Float32Array(cols);
  const row = rowScratch;
  for (let i = 0; i < rows; i++) {
    widenH16(format, bits, i * cols, cols, row, 0);
    for (let t = 0; t < n; t++) {
      const xo = t * cols;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let j = 0;
      for (; j + 3 < cols; j += 4) {
        s0 += row[j] * x[xo + j];
        s1 += row[j + 1] * x[xo + j + 1];
        s2 += row[j + 2] * x[xo + j + 2];
        s3 += row[j + 3] * x[xo + j + 3];
      }
      for (; j < cols; j++) s0 += row[j] * x[xo + j];
      out[t * rows + i] = s0 + s1 + s2 + s3;
    }
  }
}

/** A 16-bit copy of an f32 matrix (bits in the arena), each value rounded to nearest even. */
export function castMatrixH16(w: F32Matrix, format: H16Format): H16Matrix {
  const count = w.rows * w.cols;
  const bits = allocU16(count);
  const round = format === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
  const d = w.data;
  for (let k = 0; k < count; k++) bits[k] = round(d[k]);
  return newH16Matrix(format, w.rows, w.cols, bits);
}
