/**
 * The WebAssembly SIMD kernels (kernels.wat), instantiated on the arena's shared memory.
 * They exist for speed: the JS loops in ops.ts stay the reference and the fallback.
 *
 * Kernels take byte offsets into the arena, so they apply only to arrays allocF32 placed there;
 * callers check with `inArena` (ops.ts does) and otherwise run the JS loop.
 */
import { allocF32, allocI8, freeF32, freeI8, inArena, wasmMemory } from '../memory.js';
import type { H16Matrix, Q80Matrix } from '../matrix.js';
import { kernelsWasmBase64 } from './generated/kernels.js';

export interface KernelExports {
  /**
   * out[n, ·] = x[n, cols]·Wᵀ for W rows [r0, r1), out rows ldo floats apart; all pointers
   * are byte offsets.
   */
  matmul_f32(
    out: number,
    x: number,
    w: number,
    n: number,
    ldo: number,
    cols: number,
    r0: number,
    r1: number,
  ): void;
  /** xq, xs = Q8_0 of x[count] in groups of gs. */
  quantize_q80(x: number, count: number, gs: number, xq: number, xs: number): void;
  /** out[n, ·] = x·Wᵀ for Q8_0 x (xq, xs) and W (wq, ws), W rows [r0, r1), out rows ldo apart. */
  matmul_q80(
    out: number,
    xq: number,
    xs: number,
    wq: number,
    ws: number,
    n: number,
    ldo: number,
    cols: number,
    gs: number,
    r0: number,
    r1: number,
  ): void;
  /**
   * out[n, ·] = x·Wᵀ for a 16-bit W (f16 = 1: IEEE binary16, 0: bfloat16) widened exactly to f32,
   * W rows [r0, r1), out rows ldo apart.
   */
  matmul_h16(
    out: number,
    x: number,
    w: number,
    n: number,
    ldo: number,
    cols: number,
    r0: number,
    r1: number,
    f16: number,
  ): void;
  /** out[t] = scale·(q·k[t]) for t < n, q: [hd], k[t] at k + 4·ld·t (one attention head). */
  attn_scores(
    out: number,
    q: number,
    k: number,
    ld: number,
    hd: number,
    n: number,
    scale: number,
  ): void;
  /** z[i] = Σ_{t<n} a[t]·v[t][i] for i < hd, v[t] at v + 4·ld·t. */
  attn_mix(z: number, a: number, v: number, ld: number, hd: number, n: number): void;
  /** dst[t, 0..len) = src[t, 0..len) for t < n; rows ldDst and ldSrc floats apart. */
  copy_rows(dst: number, ldDst: number, src: number, ldSrc: number, n: number, len: number): void;
  /**
   * dst[i] = exp(x_i), x_i = src[i] − shift, for i < n (src f32, dst f64; 0 below −708);
   * returns Σ dst and stores Σ dst[i]·x_i as an f64 at wsum.
   */
  exp_f64(dst: number, src: number, n: number, shift: number, wsum: number): number;
  /**
   * For z = src[0..n) (f32): stores m = max z, S = Σ exp(z_i − m), W = Σ exp(z_i − m)·(z_i − m)
   * as three f64 at out (exponentials in f32, sums in f64).
   */
  softmax_stats_f32(src: number, n: number, out: number): void;
  /** Writes every i < n with src[i] > t (f32) to out (i32 each, increasing); returns the count. */
  filter_gt_f32(src: number, n: number, t: number, out: number): number;
}

export interface WasmKernels {
  /** The compiled module, for worker threads that instantiate it on the same memory. */
  module: WebAssembly.Module;
  exports: KernelExports;
}

/**
 * Splits one matmul across kernel threads (threads.ts); arguments as the kernels', whole rows.
 * Each returns false when the product is too small to be worth splitting.
 */
export interface MatmulPool {
  f32(out: number, x: number, w: number, n: number, rows: number, cols: number): boolean;
  q80(
    out: number,
    xq: number,
    xs: number,
    wq: number,
    ws: number,
    n: number,
    rows: number,
    cols: number,
    gs: number,
  ): boolean;
  h16(out: number, x: number, w: number, n: number, rows: number, cols: number, f16: number): boolean;
}

let cached: WasmKernels | null | undefined;
let pool: MatmulPool | null = null;

/** Routes large matmuls through `p` (threads.ts), or back to the calling thread (null). */
export function setMatmulPool(p: MatmulPool | null): void {
  pool = p;
}

/**
 * The kernels, or null where they cannot run: no shared arena, no wasm SIMD, or
 * LMDYN_KERNELS=js in the environment (forces the JS loops, for tests and comparisons).
 */
export function wasmKernels(): WasmKernels | null {
  if (cached === undefined) cached = instantiate();
  return cached;
}

/**
 * out[n, rows] = x[n, cols]·Wᵀ with the SIMD kernel, W = w as [rows, cols]. Returns false (and
 * computes nothing) when the kernels are unavailable, a buffer is outside the arena, or a
 * buffer is shorter than its shape: the caller then runs the JS loop.
 */
export function matmulWasm(
  out: Float32Array,
  x: Float32Array,
  w: Float32Array,
  rows: number,
  cols: number,
  n: number,
): boolean {
  const k = wasmKernels();
  if (!k || !inArena(out) || !inArena(x) || !inArena(w)) return false;
  // The kernel writes raw memory: a short buffer would spill into its neighbours.
  if (out.length < n * rows || x.length < n * cols || w.length < rows * cols) return false;
  const o = out.byteOffset;
  const xo = x.byteOffset;
  const wo = w.byteOffset;
  if (!pool?.f32(o, xo, wo, n, rows, cols)) k.exports.matmul_f32(o, xo, wo, n, rows, cols, 0, rows);
  return true;
}

/**
 * out[n, rows] = x[n, cols]·Wᵀ for an f16 / bf16 W with the SIMD kernel (each weight widened
 * exactly to f32 as it is read). Returns false, computing nothing, under matmulWasm's conditions.
 */
export function matmulH16Wasm(out: Float32Array, x: Float32Array, w: H16Matrix, n: number): boolean {
  const k = wasmKernels();
  const { rows, cols, bits } = w;
  if (!k || !inArena(out) || !inArena(x) || !inArena(bits)) return false;
  if (out.length < n * rows || x.length < n * cols || bits.length < rows * cols) return false;
  const f16 = w.format === 'f16' ? 1 : 0;
  const [o, xo, wo] = [out.byteOffset, x.byteOffset, bits.byteOffset];
  if (!pool?.h16(o, xo, wo, n, rows, cols, f16)) {
    k.exports.matmul_h16(o, xo, wo, n, rows, cols, 0, rows, f16);
  }
  return true;
}

/** q, s = Q8_0 of v[count] in groups of gs with the SIMD kernel; false where it cannot run. */
export function quantizeQ80Wasm(
  v: Float32Array,
  count: number,
  gs: number,
  q: Int8Array,
  s: Float32Array,
): boolean {
  const k = wasmKernels();
  if (!k || !inArena(v) || !inArena(q) || !inArena(s)) return false;
  if (gs % 16 !== 0 || count % gs !== 0) return false;
  if (v.length < count || q.length < count || s.length < count / gs) return false;
  k.exports.quantize_q80(v.byteOffset, count, gs, q.byteOffset, s.byteOffset);
  return true;
}

/** Quantized activations for matmulQ80Wasm, grown on demand: [n, cols] and [n, cols/gs]. */
let xq: Int8Array | null = null;
let xs: Float32Array | null = null;

/**
 * out[n, rows] = x[n, cols]·Wᵀ for a Q8_0 W with the SIMD kernels (x quantized per group into
 * arena scratch first). Returns false, computing nothing, under the same conditions as
 * matmulWasm; the caller then runs the JS loop.
 */
export function matmulQ80Wasm(
  out: Float32Array,
  x: Float32Array,
  w: Q80Matrix,
  n: number,
): boolean {
  const k = wasmKernels();
  const { rows, cols, groupSize: gs } = w;
  if (!k || !inArena(out) || !inArena(x) || !inArena(w.q) || !inArena(w.scales)) return false;
  if (gs % 16 !== 0 || cols % gs !== 0) return false;
  if (out.length < n * rows || x.length < n * cols) return false;
  if (w.q.length < rows * cols || w.scales.length < (rows * cols) / gs) return false;
  if (!xq || xq.length < n * cols || !xs || xs.length < (n * cols) / gs) {
    if (xq) freeI8(xq);
    if (xs) freeF32(xs);
    xq = allocI8(n * cols);
    xs = allocF32((n * cols) / gs);
    if (!inArena(xq) || !inArena(xs)) return false; // arena full
  }
  const [q, s] = [xq.byteOffset, xs.byteOffset];
  k.exports.quantize_q80(x.byteOffset, n * cols, gs, q, s);
  const [o, wq, ws] = [out.byteOffset, w.q.byteOffset, w.scales.byteOffset];
  if (!pool?.q80(o, q, s, wq, ws, n, rows, cols, gs)) {
    k.exports.matmul_q80(o, q, s, wq, ws, n, rows, cols, gs, 0, rows);
  }
  return true;
}

/** Arena buffers a row kernel reuses between calls: a copy of its input and its output. */
interface Scratch {
  input: Float32Array | null;
  output: Float32Array | null;
}

/**
 * The scratch grown to at least n input floats and outFloats(n) output floats, and the arena
 * offset of z (z itself when it lives in the arena, else its copy); null when the arena is full.
 */
function rowScratch(
  s: Scratch,
  z: Float32Array,
  outFloats: (n: number) => number,
): { from: number; output: Float32Array } | null {
  const n = z.length;
  if (!s.input || !s.output || s.input.length < n) {
    if (s.input) freeF32(s.input);
    if (s.output) freeF32(s.output);
    s.input = allocF32(n);
    s.output = allocF32(outFloats(n));
  }
  if (!inArena(s.input) || !inArena(s.output)) return null; // arena full
  if (inArena(z)) return { from: z.byteOffset, output: s.output };
  s.input.set(z);
  return { from: s.input.byteOffset, output: s.output };
}

/** expShiftWasm's and softmaxStatsWasm's: the f32 input, the f64 output (as 2n floats) + 1 f64. */
const expScratch: Scratch = { input: null, output: null };
const expOutFloats = (n: number): number => 2 * n + 2;

/**
 * Statistics of softmax(z) for one logits row with the f32 SIMD kernel: the max m, S = Σ e_i and
 * W = Σ e_i·(z_i − m), e_i = exp(z_i − m) in f32 (within 2 ulp; 0 below −87.3, −∞ included),
 * summed in f64. Then log Z = m + log S and the entropy is log S − W/S, to ~1e-7 relative: for
 * values stored as f32 (the trace recorder's), where expShiftWasm's f64 exponentials cost 4×.
 * Null where the kernels cannot run.
 */
export function softmaxStatsWasm(
  z: Float32Array,
): { max: number; sum: number; weighted: number } | null {
  const k = wasmKernels();
  if (!k || z.length === 0) return null;
  const r = rowScratch(expScratch, z, expOutFloats);
  if (!r) return null;
  k.exports.softmax_stats_f32(r.from, z.length, r.output.byteOffset);
  const out = new Float64Array(r.output.buffer, r.output.byteOffset, 3);
  return { max: out[0], sum: out[1], weighted: out[2] };
}

/** filterGtWasm's: the f32 input and the i32 indices. */
const filterScratch: Scratch = { input: null, output: null };

/**
 * The indices i (increasing) with z[i] > t, by the SIMD kernel; the array is arena scratch that
 * the next call overwrites. Null, computing nothing, where the kernels cannot run.
 */
export function filterGtWasm(z: Float32Array, t: number): Int32Array | null {
  const k = wasmKernels();
  if (!k || z.length === 0) return null;
  const r = rowScratch(filterScratch, z, (n) => n);
  if (!r) return null;
  const count = k.exports.filter_gt_f32(r.from, z.length, t, r.output.byteOffset);
  return new Int32Array(r.output.buffer, r.output.byteOffset, count);
}

/**
 * e_i = exp(x_i), x_i = src[i] − shift, for every i with the SIMD kernel (within 2 ulp of
 * Math.exp; 0 where x_i < −708, −∞ included), Σ e and Σ e_i·x_i (the terms with e_i = 0 left
 * out). `shift` must be ≥ max(src), as a softmax's is.
 * The values are copied into `dst` when given; `values` is arena scratch that the next call
 * overwrites. Null, computing nothing, where the kernels cannot run: the caller loops in JS.
 */
export function expShiftWasm(
  src: Float32Array,
  shift: number,
  dst?: Float64Array,
): { sum: number; weighted: number; values: Float64Array } | null {
  const k = wasmKernels();
  const n = src.length;
  if (!k || (dst && dst.length < n)) return null;
  const r = rowScratch(expScratch, src, expOutFloats);
  if (!r) return null;
  const at = r.output.byteOffset;
  const sum = k.exports.exp_f64(at, r.from, n, shift, at + 8 * n);
  const out = new Float64Array(r.output.buffer, at, n + 1);
  const values = out.subarray(0, n);
  if (dst) dst.set(values);
  return { sum, weighted: out[n], values };
}

function instantiate(): WasmKernels | null {
  if (forcedJs()) return null;
  const memory = wasmMemory();
  if (!memory) return null;
  try {
    const module = new WebAssembly.Module(decodeBase64(kernelsWasmBase64));
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    return { module, exports: instance.exports as unknown as KernelExports };
  } catch {
    return null; // no wasm SIMD in this engine, or synchronous compilation refused
  }
}

function forcedJs(): boolean {
  return typeof process !== 'undefined' && process.env?.LMDYN_KERNELS === 'js';
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}
