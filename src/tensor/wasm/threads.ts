/**
 * Kernel worker threads (Node): helpers that share the arena and take chunks of a large
 * matmul's output rows alongside the calling thread, so both cores pull weights from memory at
 * once. A call costs no message: the caller writes the job into a control block in the arena's
 * reserved page and bumps a sequence number; every participant claims chunks of rows by
 * compare-and-swap on the chunk's state word (the caller from the first chunk up, helpers from
 * the last down) and computes them.
 *
 * The caller never waits long for a helper. A helper computes into its own scratch and commits
 * (copies into `out`) only if its chunk is still its own; a caller that has finished its chunks
 * and sees a helper's chunk still running after 1.5× its own time per chunk — the helper was
 * descheduled, which on a shared 2-core machine V8's background threads or other processes do
 * for milliseconds — takes the chunk back and computes it itself. So a call is never much slower
 * than on one thread, and twice as fast when the second core is free.
 *
 * Opt-in: `await startKernelThreads()` once (the CLI and benches do); without it everything runs
 * on the calling thread. Helpers are unref'd, so they never keep the process alive.
 */
import type { Worker } from 'node:worker_threads';
import { allocF32, RESERVED_BYTES, wasmMemory } from '../memory.js';
import { setMatmulPool, wasmKernels, type MatmulPool, type WasmKernels } from './kernels.js';

// The control block, Int32 indices. Chunk states are (job tag << 3) | state, so a word left from
// an earlier job can never be mistaken for one of the current job.
const SEQ = 0; // jobs posted
const READY = 1; // helpers that have instantiated the kernels
// The job: op, out, n, ldo (= rows), cols, chunk rows, chunks, then the op's operands:
// F32: x, w; Q80: xq, xs, wq, ws, gs; H16: x, w, f16.
const ARGS = 2;
const OPERANDS = ARGS + 7;
const STATES = 16; // first chunk state word
const F32 = 0;
const Q80 = 1;
const H16 = 2;
const CONTROL_OFFSET = 64; // bytes; 0 is left alone, it looks like a null pointer
const MAX_CHUNKS = 4096;
const CONTROL_INTS = STATES + MAX_CHUNKS;
// Chunk states.
const FREE = 0;
const CALLER = 1; // claimed by the calling thread, which writes `out` directly
const COMPUTING = 2; // claimed by a helper, computing into its scratch
const COMMITTING = 3; // a helper is copying its scratch into `out`
const DONE = 4;
const STOLEN = 5; // taken back from a late helper by the caller
/** Floats of scratch per helper: bounds chunk rows × n. */
const SCRATCH_FLOATS = 1 << 16;

/**
 * A helper's whole program (run with eval so it needs no file of its own, under tsx, from dist
 * or bundled). After each job it spins for up to `spinMs`, then sleeps in Atomics.wait.
 */
const HELPER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { memory, module, offset, scratch, spinMs } = workerData;
const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
const c = new Int32Array(memory.buffer, offset, ${CONTROL_INTS});
let seen = Atomics.load(c, ${SEQ});
Atomics.add(c, ${READY}, 1);
for (;;) {
  const t0 = performance.now();
  let spins = 0;
  while (Atomics.load(c, ${SEQ}) === seen) {
    if ((++spins & 1023) === 0 && performance.now() - t0 > spinMs) Atomics.wait(c, ${SEQ}, seen);
  }
  seen = Atomics.load(c, ${SEQ});
  const tag = (seen & 0xfffffff) << 3;
  const [op, out, n, ldo, cols, chunk, chunks] = c.subarray(${ARGS}, ${OPERANDS});
  const [a, b, d, e, gs] = c.subarray(${OPERANDS}, ${OPERANDS + 5});
  for (let i = chunks - 1; i >= 0; i--) {
    const s = ${STATES} + i;
    if (Atomics.compareExchange(c, s, tag | ${FREE}, tag | ${COMPUTING}) !== (tag | ${FREE})) continue;
    const r0 = i * chunk;
    const len = Math.min(ldo - r0, chunk);
    const dst = scratch - 4 * r0;
    try {
      if (op === ${F32}) k.matmul_f32(dst, a, b, n, len, cols, r0, r0 + len);
      else if (op === ${H16}) k.matmul_h16(dst, a, b, n, len, cols, r0, r0 + len, d);
      else k.matmul_q80(dst, a, b, d, e, n, len, cols, gs, r0, r0 + len);
    } catch {
      continue; // left COMPUTING: the caller takes the chunk back
    }
    if (Atomics.compareExchange(c, s, tag | ${COMPUTING}, tag | ${COMMITTING}) !== (tag | ${COMPUTING})) continue;
    k.copy_rows(out + 4 * r0, ldo, scratch, len, n, len);
    Atomics.store(c, s, tag | ${DONE});
  }
}
`;

export interface KernelThreadOptions {
  /** Helper threads besides the caller; default: available cores − 1 (at most 7). */
  helpers?: number;
  /** How long an idle helper spins before sleeping, ms. */
  spinMs?: number;
  /** Smallest matmul (n·rows·cols multiply-adds) worth splitting. */
  minWork?: number;
}

/**
 * How long an idle helper spins before sleeping. 0 by default: measured on the shared 2-core
 * machine, a helper that sleeps at once and joins each matmul after its wake-up (~20–50 µs) never
 * slowed generation, while a spinning one halved it whenever other processes wanted the cores.
 * On a dedicated machine a short spin (0.05–0.2 ms) can help small matrices.
 */
export const DEFAULT_SPIN_MS = 0;

/** Default work threshold (n·rows·cols); measured with bench/run.ts on a 2-core machine. */
export const DEFAULT_MIN_WORK = 1 << 16;

/**
 * Starts the helpers and routes large matmuls through them. Returns the number of helpers
 * running (0 where threads are unavailable: no arena, no kernels, not Node).
 */
export async function startKernelThreads(options: KernelThreadOptions = {}): Promise<number> {
  const memory = wasmMemory();
  const kernels = wasmKernels();
  if (!memory || !kernels || typeof process === 'undefined' || !process.versions?.node) return 0;
  const { Worker: WorkerCtor } = await import('node:worker_threads');
  const { availableParallelism } = await import('node:os');
  stopKernelThreads();
  const helpers = Math.max(0, Math.min(options.helpers ?? availableParallelism() - 1, 7));
  if (helpers === 0) return 0;
  if (CONTROL_OFFSET + 4 * CONTROL_INTS > RESERVED_BYTES)
    throw new Error('control block too large');
  const c = new Int32Array(memory.buffer, CONTROL_OFFSET, CONTROL_INTS);
  c.fill(0);
  const workers: Worker[] = [];
  for (let h = 0; h < helpers; h++) {
    // Never freed: a helper stopped mid-chunk may still write it.
    const scratch = allocF32(SCRATCH_FLOATS);
    const workerData = {
      memory,
      module: kernels.module,
      offset: CONTROL_OFFSET,
      scratch: scratch.byteOffset,
      spinMs: options.spinMs ?? DEFAULT_SPIN_MS,
    };
    const worker = new WorkerCtor(HELPER_SOURCE, { eval: true, workerData });
    worker.unref();
    workers.push(worker);
  }
  try {
    await waitReady(c, workers);
  } catch (err) {
    for (const w of workers) void w.terminate();
    throw err;
  }
  setMatmulPool(chunkedPool(c, helpers + 1, options.minWork ?? DEFAULT_MIN_WORK, kernels.exports));
  stopCurrent = () => {
    setMatmulPool(null);
    for (const w of workers) void w.terminate();
  };
  return helpers;
}

let stopCurrent: (() => void) | null = null;

/** Stops the helpers; matmul runs on the calling thread again. */
export function stopKernelThreads(): void {
  stopCurrent?.();
  stopCurrent = null;
}

/**
 * Posts a matmul as chunks of rows (a multiple of 4, the kernel's tile; about 4 per
 * participant, fewer rows when n is large so a chunk fits a helper's scratch), claims chunks
 * from the first up, then waits for or takes back the helpers' chunks.
 */
function chunkedPool(
  c: Int32Array,
  parts: number,
  minWork: number,
  k: WasmKernels['exports'],
): MatmulPool {
  let seq = Atomics.load(c, SEQ);
  /** Runs a job whose operands are already in c[OPERANDS..]; `compute` does rows [r0, r1) here. */
  const split = (
    op: number,
    out: number,
    n: number,
    rows: number,
    cols: number,
    compute: (r0: number, r1: number) => void,
  ): boolean => {
    if (n * rows * cols < minWork || rows < 8) return false;
    const fit = Math.floor(SCRATCH_FLOATS / n / 4) * 4;
    const chunk = Math.min(fit, Math.max(4, Math.ceil(rows / (4 * parts) / 4) * 4));
    const chunks = Math.ceil(rows / chunk);
    if (chunk < 4 || chunks > MAX_CHUNKS) return false;
    seq = (seq + 1) & 0xfffffff;
    const tag = seq << 3;
    c.set([op, out, n, rows, cols, chunk, chunks], ARGS);
    for (let i = 0; i < chunks; i++) Atomics.store(c, STATES + i, tag | FREE);
    Atomics.store(c, SEQ, seq);
    Atomics.notify(c, SEQ);

    const t0 = performance.now();
    let own = 0;
    for (let i = 0; i < chunks; i++) {
      if (Atomics.compareExchange(c, STATES + i, tag | FREE, tag | CALLER) !== (tag | FREE))
        continue;
      compute(i * chunk, Math.min(rows, (i + 1) * chunk));
      own++;
    }
    // A running helper needs at most one chunk's time; past 1.5× ours it has been descheduled.
    const grace = own > 0 ? (1.5 * (performance.now() - t0)) / own : 0.05;
    for (let i = 0; i < chunks; i++) {
      const s = STATES + i;
      const since = performance.now();
      let state = Atomics.load(c, s);
      // Reading the clock costs more than reading the state: look at it every 64 spins.
      for (let spins = 1; state === (tag | COMPUTING); spins++) {
        if ((spins & 63) === 0 && performance.now() - since > grace) break;
        state = Atomics.load(c, s);
      }
      if (
        state === (tag | COMPUTING) &&
        Atomics.compareExchange(c, s, tag | COMPUTING, tag | STOLEN) === (tag | COMPUTING)
      ) {
        compute(i * chunk, Math.min(rows, (i + 1) * chunk));
        continue;
      }
      // COMMITTING: the helper is copying a finished chunk, microseconds.
      while (Atomics.load(c, s) === (tag | COMMITTING));
    }
    return true;
  };
  return {
    f32: (out, x, w, n, rows, cols) => {
      c[OPERANDS] = x;
      c[OPERANDS + 1] = w;
      return split(F32, out, n, rows, cols, (r0, r1) =>
        k.matmul_f32(out, x, w, n, rows, cols, r0, r1),
      );
    },
    q80: (out, xq, xs, wq, ws, n, rows, cols, gs) => {
      c.set([xq, xs, wq, ws, gs], OPERANDS);
      return split(Q80, out, n, rows, cols, (r0, r1) =>
        k.matmul_q80(out, xq, xs, wq, ws, n, rows, cols, gs, r0, r1),
      );
    },
    h16: (out, x, w, n, rows, cols, f16) => {
      c.set([x, w, f16], OPERANDS);
      return split(H16, out, n, rows, cols, (r0, r1) =>
        k.matmul_h16(out, x, w, n, rows, cols, r0, r1, f16),
      );
    },
  };
}

/** Resolves once every helper has instantiated the kernels; rejects if one fails to start. */
function waitReady(c: Int32Array, workers: Worker[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (err: unknown) => {
      clearInterval(timer);
      reject(
        err instanceof Error ? err : new Error(`kernel helper thread exited (${String(err)})`),
      );
    };
    const timer = setInterval(() => {
      if (Atomics.load(c, READY) < workers.length) return;
      clearInterval(timer);
      for (const w of workers) {
        w.off('error', fail);
        w.off('exit', fail);
      }
      resolve();
    }, 1);
    for (const w of workers) {
      w.once('error', fail);
      w.once('exit', fail);
    }
  });
}
