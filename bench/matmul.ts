/**
 * matmul throughput of each kernel variant on the model shapes: GFLOP/s = 2·n·rows·cols / time,
 * and the weight bandwidth it implies, GB/s = (bytes of W) / time (W is read once per call; x and
 * out are small). "hot" repeats one W (cache-resident when it fits in L2/L3); "cold" cycles
 * through copies of W totalling ≥ 128 MiB, as a forward pass does through a model larger than
 * the last-level cache.
 */
import { newMatrix, type F32Matrix } from '../src/tensor/matrix.js';
import { allocF32, freeF32, freeI8 } from '../src/tensor/memory.js';
import { quantizeMatrixQ80 } from '../src/tensor/q80.js';
import type { Q80Matrix } from '../src/tensor/matrix.js';
import { createRng } from '../src/tensor/rng.js';

/** A kernel under test: turns an fp32 W into its own format, then multiplies. */
export interface MatmulKernel {
  name: string;
  prepare(w: F32Matrix): PreparedMatrix;
}

export interface PreparedMatrix {
  bytes: number; // what one call reads of W
  run(out: Float32Array, x: Float32Array, n: number): void;
  free(): void;
}

/** An fp32 kernel with matmul's signature. */
export function f32Kernel(
  name: string,
  matmul: (out: Float32Array, x: Float32Array, w: F32Matrix, n: number) => void,
): MatmulKernel {
  return {
    name,
    prepare: (w) => ({
      bytes: 4 * w.rows * w.cols,
      run: (out, x, n) => matmul(out, x, w, n),
      free: () => freeF32(w.data),
    }),
  };
}

/** Q8_0 with the given group size (quantized once; x is quantized inside every call). */
export function q80Kernel(
  name: string,
  groupSize: number,
  matmul: (out: Float32Array, x: Float32Array, w: Q80Matrix, n: number) => void,
): MatmulKernel {
  return {
    name,
    prepare: (w) => {
      const q: Q80Matrix = quantizeMatrixQ80(w, groupSize);
      freeF32(w.data);
      return {
        bytes: q.q.byteLength + q.scales.byteLength,
        run: (out, x, n) => matmul(out, x, q, n),
        free: () => {
          freeI8(q.q);
          freeF32(q.scales);
        },
      };
    },
  };
}

export interface MatmulCase {
  rows: number;
  cols: number;
  n: number;
}

export interface MatmulResult extends MatmulCase {
  kernel: string;
  hotGflops: number;
  hotGBs: number;
  coldGflops: number;
  coldGBs: number;
}

const COLD_BYTES = 128 * 1024 * 1024;

export function benchMatmul(kernel: MatmulKernel, c: MatmulCase, minSeconds: number): MatmulResult {
  const rng = createRng(c.rows * 7919 + c.cols);
  const values = new Float32Array(c.rows * c.cols);
  for (let i = 0; i < values.length; i++) values[i] = rng.normal() * 0.02;
  const first = kernel.prepare(newMatrix(c.rows, c.cols, copyToArena(values)));
  const ws: PreparedMatrix[] = [first];
  const copies = Math.max(1, Math.ceil(COLD_BYTES / first.bytes));
  for (let k = 1; k < copies; k++) {
    ws.push(kernel.prepare(newMatrix(c.rows, c.cols, copyToArena(values))));
  }
  const x = allocF32(c.n * c.cols);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const out = allocF32(c.n * c.rows);
  const flops = 2 * c.n * c.rows * c.cols;

  const hot = secondsPerCall(() => first.run(out, x, c.n), minSeconds);
  let k = 0;
  const cold = secondsPerCall(() => {
    ws[k].run(out, x, c.n);
    k = (k + 1) % copies;
  }, minSeconds);

  for (const w of ws) w.free();
  freeF32(x);
  freeF32(out);
  return {
    ...c,
    kernel: kernel.name,
    hotGflops: flops / hot / 1e9,
    hotGBs: first.bytes / hot / 1e9,
    coldGflops: flops / cold / 1e9,
    coldGBs: first.bytes / cold / 1e9,
  };
}

function copyToArena(values: Float32Array): Float32Array {
  const a = allocF32(values.length);
  a.set(values);
  return a;
}

/** Mean seconds per call over at least `minSeconds` (and 3 calls), after one warm-up call. */
export function secondsPerCall(call: () => void, minSeconds: number): number {
  call();
  let calls = 0;
  const t0 = performance.now();
  let t = t0;
  while (calls < 3 || t - t0 < minSeconds * 1000) {
    call();
    calls++;
    t = performance.now();
  }
  return (t - t0) / 1000 / calls;
}
