/**
 * matmul throughput of each kernel variant on the model shapes: GFLOP/s = 2·n·rows·cols / time,
 * and the weight bandwidth it implies, GB/s = 4·rows·cols / time (W is read once per call; x and
 * out are small). "hot" repeats one W (cache-resident when it fits in L2/L3); "cold" cycles
 * through copies of W totalling ≥ 128 MiB, as a forward pass does through a model larger than
 * the last-level cache.
 */
import { newMatrix, type Matrix } from '../src/model/types.js';
import { allocF32, freeF32 } from '../src/tensor/memory.js';
import { createRng } from '../src/tensor/rng.js';

export type MatmulKernel = (out: Float32Array, x: Float32Array, w: Matrix, n: number) => void;

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

export function benchMatmul(
  kernel: string,
  run: MatmulKernel,
  c: MatmulCase,
  minSeconds: number,
): MatmulResult {
  const rng = createRng(c.rows * 7919 + c.cols);
  const copies = Math.max(1, Math.ceil(COLD_BYTES / (c.rows * c.cols * 4)));
  const first = allocF32(c.rows * c.cols);
  for (let i = 0; i < first.length; i++) first[i] = rng.normal() * 0.02;
  const ws: Matrix[] = [newMatrix(c.rows, c.cols, first)];
  for (let k = 1; k < copies; k++) {
    const data = allocF32(c.rows * c.cols);
    data.set(first);
    ws.push(newMatrix(c.rows, c.cols, data));
  }
  const x = allocF32(c.n * c.cols);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const out = allocF32(c.n * c.rows);
  const flops = 2 * c.n * c.rows * c.cols;
  const bytes = 4 * c.rows * c.cols;

  const hot = secondsPerCall(() => run(out, x, ws[0], c.n), minSeconds);
  let k = 0;
  const cold = secondsPerCall(() => {
    run(out, x, ws[k], c.n);
    k = (k + 1) % copies;
  }, minSeconds);

  for (const w of ws) freeF32(w.data);
  freeF32(x);
  freeF32(out);
  return {
    ...c,
    kernel,
    hotGflops: flops / hot / 1e9,
    hotGBs: bytes / hot / 1e9,
    coldGflops: flops / cold / 1e9,
    coldGBs: bytes / cold / 1e9,
  };
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
