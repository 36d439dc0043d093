/**
 * The few primitives training composes. Every buffer is a `Vec`: Float32Array for training
 * (allocated in the wasm arena so the SIMD matmul kernel applies) or Float64Array for the
 * gradient checks, which run the very same code in double precision.
 *
 * One product shape serves forward and backward: out = x·Wᵀ (the kernel's "NT" form, dot
 * products along contiguous rows). The other two shapes a backward pass needs are reduced to
 * it with explicit transposes, which cost O(rows·cols) against the product's O(n·rows·cols):
 *   dX = dY·W    = dY·(Wᵀ)ᵀ      → mmNT(dX, dY, Wᵀ)
 *   dW = dYᵀ·X   = dYᵀ·(Xᵀ)ᵀ     → mmNT(dW, dYᵀ, Xᵀ)
 */
import { allocF32, freeF32 } from '../tensor/memory.js';
import { matmulWasm } from '../tensor/wasm/kernels.js';

export type Vec = Float32Array | Float64Array;
export type Precision = 'f32' | 'f64';

/** A zeroed buffer of `n` values: arena f32 (kernel-addressable) or plain f64. */
export function allocVec(precision: Precision, n: number): Vec {
  return precision === 'f32' ? allocF32(n) : new Float64Array(n);
}

/** Returns an allocVec buffer (f32 arena blocks go back to the arena; f64 is left to the GC). */
export function freeVec(v: Vec): void {
  if (v instanceof Float32Array) freeF32(v);
}

/**
 * out[n, rows] = x[n, cols] · w[rows, cols]ᵀ. The SIMD kernel when all three are arena f32
 * buffers (split across kernel threads when they run), else a JS loop (the f64 path).
 */
export function mmNT(out: Vec, x: Vec, w: Vec, n: number, rows: number, cols: number): void {
  if (
    out instanceof Float32Array &&
    x instanceof Float32Array &&
    w instanceof Float32Array &&
    matmulWasm(out, x, w, rows, cols, n)
  ) {
    return;
  }
  for (let r = 0; r < n; r++) {
    const xo = r * cols;
    const oo = r * rows;
    for (let i = 0; i < rows; i++) {
      const wo = i * cols;
      let s0 = 0;
      let s1 = 0;
      let j = 0;
      for (; j + 1 < cols; j += 2) {
        s0 += w[wo + j] * x[xo + j];
        s1 += w[wo + j + 1] * x[xo + j + 1];
      }
      if (j < cols) s0 += w[wo + j] * x[xo + j];
      out[oo + i] = s0 + s1;
    }
  }
}

/**
 * out[cols, rows] = a[rows, cols]ᵀ. Column by column of `a`: the writes are sequential and the
 * strided reads are cheaper than strided writes (measured ~2–3× faster than square tiles when
 * rows is a power of two, whose stride makes tiles collide in cache sets).
 */
export function transpose(out: Vec, a: Vec, rows: number, cols: number): void {
  for (let c = 0; c < cols; c++) {
    const o = c * rows;
    for (let r = 0; r < rows; r++) out[o + r] = a[r * cols + c];
  }
}

/** a[0..len) += b[0..len). */
export function addTo(a: Vec, b: Vec, len: number): void {
  for (let i = 0; i < len; i++) a[i] += b[i];
}
