/**
 * The matrix types the kernels work on and the one constructor of an f32 matrix. The model's
 * weights (model/types.ts) are made of these.
 */

/**
 * A weight matrix [rows, cols]. `format` says how the forward pass's matmul reads it:
 * - 'f32': `data` holds the values.
 * - 'q8_0': int8 `q` [rows, cols] and one f32 scale per group of `groupSize` consecutive values of
 *   a row, `scales` [rows, cols / groupSize]; value = q · scale (llama2.c runq.c / GGUF Q8_0). A
 *   quarter of fp32's bytes, so memory-bound decoding runs up to ~4× faster. `data` is still the
 *   values as f32, dequantized on first access and cached (for code that needs fp32 weights, e.g.
 *   the Jacobians); the forward pass never touches it, and writing into it changes nothing.
 * - 'f16' / 'bf16': 16-bit floats `bits` [rows, cols] (IEEE binary16, or bfloat16 = the top half
 *   of an f32), read by the matmul row by row and widened exactly to f32; products and sums are
 *   f32. Half of fp32's bytes. `data` is lazy as for 'q8_0' (the widened values, exact).
 */
export type Matrix = F32Matrix | Q80Matrix | H16Matrix;

export type MatrixFormat = Matrix['format'];

export interface F32Matrix {
  format: 'f32';
  rows: number;
  cols: number;
  data: Float32Array; // [rows, cols]
}

export interface Q80Matrix {
  format: 'q8_0';
  rows: number;
  cols: number;
  /** A multiple of 16 dividing cols (runq.c: 64 halved until it divides dim; GGUF: 32). */
  groupSize: number;
  q: Int8Array; // [rows, cols]
  scales: Float32Array; // [rows, cols / groupSize]
  /** The dequantized values [rows, cols], computed on first access (see Matrix). */
  readonly data: Float32Array;
}

export interface H16Matrix {
  format: 'f16' | 'bf16';
  rows: number;
  cols: number;
  bits: Uint16Array; // [rows, cols]
  /** The values widened to f32 [rows, cols], computed on first access (see Matrix). */
  readonly data: Float32Array;
}

export function newMatrix(rows: number, cols: number, data: Float32Array): F32Matrix {
  if (data.length !== rows * cols) {
    throw new Error(`matrix data has ${data.length} values, expected ${rows}x${cols}`);
  }
  return { format: 'f32', rows, cols, data };
}
