/**
 * Q8_0 matrices (llama2.c runq.c layout) and their matmul: int8 values and one f32 scale per
 * group of `groupSize` consecutive values of a row, value = q · scale. A quarter of fp32's bytes,
 * so a memory-bound matvec can run up to ~4× faster.
 *
 * The activations are quantized per group the same way and each group's dot product is exact in
 * integers (runq.c's scheme; see kernels.wat for why rather than dequantizing W on the fly):
 *   out[t, i] = Σ_g s_W[i, g] · s_x[t, g] · Σ_{j ∈ g} q_W[i, j] · q_x[t, j]
 * The WebAssembly kernel runs when every buffer is in the arena; the JS loops here are the
 * reference and the fallback and compute the same sums.
 */
import type { Matrix } from '../model/types.js';
import { allocF32, allocI8 } from './memory.js';
import { matmulQ80Wasm } from './wasm/kernels.js';

export interface Q80Matrix {
  format: 'q8_0';
  rows: number;
  cols: number;
  /** A multiple of 16 dividing cols (runq.c: 64 halved until it divides dim; GGUF: 32). */
  groupSize: number;
  q: Int8Array; // [rows, cols]
  scales: Float32Array; // [rows, cols / groupSize]
}

/** out[n, W.rows] = x[n, W.cols] · Wᵀ for a Q8_0 W (x quantized per group on the way). */
export function matmulQ80(out: Float32Array, x: Float32Array, w: Q80Matrix, n: number): void {
  if (!matmulQ80Wasm(out, x, w, n)) matmulQ80Js(out, x, w, n);
}

/** Quantizes an fp32 matrix to Q8_0 (buffers from the arena): per group s = max|w| / 127. */
export function quantizeMatrixQ80(w: Matrix, groupSize: number): Q80Matrix {
  checkGroupSize(w.cols, groupSize);
  const q = allocI8(w.rows * w.cols);
  const scales = allocF32((w.rows * w.cols) / groupSize);
  quantizeQ80Js(w.data, w.rows * w.cols, groupSize, q, scales);
  return { format: 'q8_0', rows: w.rows, cols: w.cols, groupSize, q, scales };
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
