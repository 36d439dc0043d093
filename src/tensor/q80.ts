/**
 * Q8_0 matrices (llama2.c runq.c layout) and their matmul: int8 values and one f32 scale per
 * group of `groupSize` consecutive values of a row, value = q · scale. A quarter of fp32's bytes,
 * so a memory-bound matvec can run up to ~4× faster.
 *
 * The activations are quantized per group the same way and each group's dot product is exact in
 * integers (runq.c's scheme; see kernels.wat for why rather than dequantizing W on the fly):
 *   out[t, i] = Σ_g s_W[i, g] · s_x[t, g] · Σ_{j ∈ g} q_W[i, j] · q_x[t, j]
 * The WebAssembly kernel runs when every buffer is in the arena; the JS loops here are the
 * reference and the fallback and compute the same sums. The forward pass reaches this through
 * ops.ts matmul, which dispatches on the matrix's format.
 */
import type { F32Matrix, Matrix, Q80Matrix } from './matrix.js';
import { widenH16 } from './half.js';
import { allocF32, allocI8 } from './memory.js';
import { matmulQ80Wasm, quantizeQ80Wasm } from './wasm/kernels.js';

/**
 * A Q8_0 matrix over the given buffers (q: [rows, cols], scales: [rows, cols / groupSize]), with
 * `data` dequantizing on first access (into the arena, cached).
 */
export function newQ80Matrix(
  rows: number,
  cols: number,
  groupSize: number,
  q: Int8Array,
  scales: Float32Array,
): Q80Matrix {
  checkGroupSize(cols, groupSize);
  if (q.length !== rows * cols || scales.length !== (rows * cols) / groupSize) {
    throw new Error(
      `Q8_0 matrix ${rows}x${cols}/${groupSize} needs ${rows * cols} values and ${(rows * cols) / groupSize} scales, got ${q.length} and ${scales.length}`,
    );
  }
  let data: Float32Array | null = null;
  const m = { format: 'q8_0' as const, rows, cols, groupSize, q, scales };
  const matrix = Object.defineProperty(m, 'data', {
    enumerable: false,
    get(): Float32Array {
      if (!data) {
        data = allocF32(rows * cols);
        dequantizeQ80(q, scales, groupSize, 0, rows * cols, data, 0);
      }
      return data;
    },
  }) as Q80Matrix;
  dequantized.set(matrix, () => data);
  return matrix;
}

/** The dequantized copy of a Q8_0 matrix if `data` was ever read, without creating it. */
const dequantized = new WeakMap<Q80Matrix, () => Float32Array | null>();
export function dequantizedData(m: Q80Matrix): Float32Array | null {
  return dequantized.get(m)?.() ?? null;
}

/** out[outOffset + k] = q[start + k] · scale of its group, for k < count (groups of gs from 0). */
export function dequantizeQ80(
  q: Int8Array,
  scales: Float32Array,
  gs: number,
  start: number,
  count: number,
  out: Float32Array,
  outOffset: number,
): void {
  for (let k = 0; k < count; k++) {
    const i = start + k;
    out[outOffset + k] = q[i] * scales[(i / gs) | 0];
  }
}

/** out[offset .. offset + cols) = row r of m as f32 (an embedding lookup). */
export function matrixRow(m: Matrix, r: number, out: Float32Array, offset: number): void {
  const c = m.cols;
  if (m.format === 'f32') out.set(m.data.subarray(r * c, (r + 1) * c), offset);
  else if (m.format !== 'q8_0') widenH16(m.format, m.bits, r * c, c, out, offset);
  else dequantizeQ80(m.q, m.scales, m.groupSize, r * c, c, out, offset);
}

/** out[n, W.rows] = x[n, W.cols] · Wᵀ for a Q8_0 W (x quantized per group on the way). */
export function matmulQ80(out: Float32Array, x: Float32Array, w: Q80Matrix, n: number): void {
  if (!matmulQ80Wasm(out, x, w, n)) matmulQ80Js(out, x, w, n);
}

/**
 * The group size a Q8_0 copy of a matrix with `cols` columns gets: `preferred` (a multiple of
 * 16) halved until it divides cols, as export.py does for dim; null when not even 16 divides
 * cols (the matrix then stays f32).
 */
export function q80GroupSize(cols: number, preferred = 32): number | null {
  for (let gs = preferred; gs >= 16; gs /= 2) if (gs % 16 === 0 && cols % gs === 0) return gs;
  return null;
}

/** Quantizes an fp32 matrix to Q8_0 (buffers from the arena): per group s = max|w| / 127. */
export function quantizeMatrixQ80(w: F32Matrix | Matrix, groupSize: number): Q80Matrix {
  checkGroupSize(w.cols, groupSize);
  const count = w.rows * w.cols;
  const q = allocI8(count);
  const scales = allocF32(count / groupSize);
  if (!quantizeQ80Wasm(w.data, count, groupSize, q, scales)) {
    quantizeQ80Js(w.data, count, groupSize, q, scales);
  }
  return newQ80Matrix(w.rows, w.cols, groupSize, q, scales);
}

/**
 * q[k] = round(v[k] / s) with s = fround(max|v[group]| / 127) per group of `groupSize`, ties to
 * even (export.py's torch.round); a group of zeros gets s = 0 and q = 0. Same rule as the kernel.
 */
export function quantizeQ80Js(
  v: Float32Array,
  count: number,
  groupSize: number,
  q: Int8Array,
  scales: Float32Array,
): void {
  for (let g = 0; g * groupSize < count; g++) {
    const start = g * groupSize;
    let max = 0;
    for (let j = start; j < start + groupSize; j++) max = Math.max(max, Math.abs(v[j]));
    const s = Math.fround(max / 127);
    scales[g] = s;
    for (let j = start; j < start + groupSize; j++) {
      q[j] = s === 0 ? 0 : roundHalfEven(Math.fround(v[j] / s));
    }
  }
}

/** The reference JS loop for matmulQ80 (and its fallback): same contract and same sums. */
export function matmulQ80Js(out: Float32Array, x: Float32Array, w: Q80Matrix, n: number): void {
  const { rows, cols, groupSize: gs } = w;
  checkGroupSize(cols, gs);
  const groups = cols / gs;
  const xq = new Int8Array(n * cols);
  const xs = new Float32Array(n * groups);
  quantizeQ80Js(x, n * cols, gs, xq, xs);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < rows; i++) {
      let sum = 0;
      for (let g = 0; g < groups; g++) {
        const wo = i * cols + g * gs;
        const xo = t * cols + g * gs;
        let dot = 0; // exact: |dot| ≤ gs · 128² < 2⁵³
        for (let j = 0; j < gs; j++) dot += w.q[wo + j] * xq[xo + j];
        sum += dot * w.scales[i * groups + g] * xs[t * groups + g];
      }
      out[t * rows + i] = sum;
    }
  }
}

function checkGroupSize(cols: number, groupSize: number): void {
  if (!(groupSize > 0 && groupSize % 16 === 0 && cols % groupSize === 0)) {
    throw new Error(`Q8_0 group size ${groupSize} must be a multiple of 16 dividing cols ${cols}`);
  }
}

function roundHalfEven(v: number): number {
  const r = Math.round(v); // ties toward +∞
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
