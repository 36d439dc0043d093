/**
 * Kernel worker threads (Node): helpers that share the arena and take chunks of a large
 * matmul's output rows alongside the calling thread, so both cores pull weights from memory at
 * once. A call costs no message: the caller writes the job into a control block in the arena's
 * reserved page and bumps a sequence number; every participant, caller included, claims chunks
 * of rows with a compare-and-swap on one counter until none are left, and the caller waits only
 * for chunks a helper has claimed and not yet finished.
 *
 * Claiming rather than a fixed split matters on a 2-core machine: V8's own background threads
 * (compilation, GC) can deschedule a helper for milliseconds, and with a fixed half the caller
 * would wait that long; here it simply does more chunks itself.
 *
 * Opt-in: `await startKernelThreads()` once (the CLI and benches do); without it everything runs
 * on the calling thread. Helpers are unref'd, so they never keep the process alive.
 */
import type { Worker } from 'node:worker_threads';
import { RESERVED_BYTES, wasmMemory } from '../memory.js';
import { setMatmulPool, wasmKernels, type MatmulPool } from './kernels.js';

// The control block, as Int32 indices. NEXT packs the job's tag (sequence number mod 2¹⁵) in
// its high 16 bits and the next unclaimed chunk in its low 16, so a helper that wakes after its
// job is over can never claim a chunk of the following job with stale arguments.
const SEQ = 0; // jobs posted
const NEXT = 1; // tag << 16 | next chunk
const FINISHED = 2; // chunks of the current job completed
const FAILED = 3; // 1 once a helper's kernel threw
const READY = 4; // helpers that have instantiated the kernels
const ARGS = 5; // out, x, w, n, rows, cols, chunk rows
const CONTROL_OFFSET = 64; // bytes; 0 is left alone, it looks like a null pointer
const CONTROL_INTS = 16;

/**
 * A helper's whole program (run with eval so it needs no file of its own, under tsx, from dist
 * or bundled). After each job it spins for up to `spinMs`, then sleeps in Atomics.wait.
 */
const HELPER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { memory, module, offset, spinMs } = workerData;
const matmul = new WebAssembly.Instance(module, { env: { memory } }).exports.matmul_f32;
const c = new Int32Array(memory.buffer, offset, ${CONTROL_INTS});
${claimChunks.toString()}
let seen = Atomics.load(c, ${SEQ});
Atomics.add(c, ${READY}, 1);
for (;;) {
  const t0 = performance.now();
  let spins = 0;
  while (Atomics.load(c, ${SEQ}) === seen) {
    if ((++spins & 1023) === 0 && performance.now() - t0 > spinMs) Atomics.wait(c, ${SEQ}, seen);
  }
  seen = Atomics.load(c, ${SEQ});
  try {
    claimChunks(c, seen, matmul);
  } catch {
    Atomics.store(c, ${FAILED}, 1);
    Atomics.notify(c, ${FINISHED});
  }
}
`;

type MatmulF32 = (
  out: number,
  x: number,
  w: number,
  n: number,
  rows: number,
  cols: number,
  r0: number,
  r1: number,
) => void;

/**
 * Claims and computes chunks of job `seq` until none are left or the job is no longer current.
 * Shared verbatim by the caller and the helpers (its source is inlined into HELPER_SOURCE), so
 * it uses only literal indices (NEXT = 1, FINISHED = 2, ARGS = 5..11).
 */
function claimChunks(c: Int32Array, seq: number, matmul: MatmulF32): void {
  const tag = (seq & 0x7fff) << 16;
  const out = c[5];
  const x = c[6];
  const w = c[7];
  const n = c[8];
  const rows = c[9];
  const cols = c[10];
  const chunk = c[11];
  const chunks = Math.ceil(rows / chunk);
  for (;;) {
    const v = Atomics.load(c, 1);
    if ((v & ~0xffff) !== tag || (v & 0xffff) >= chunks) return;
    if (Atomics.compareExchange(c, 1, v, v + 1) !== v) continue;
    const r0 = (v & 0xffff) * chunk;
    matmul(out, x, w, n, rows, cols, r0, Math.min(rows, r0 + chunk));
    Atomics.add(c, 2, 1);
    Atomics.notify(c, 2);
  }
}

export interface KernelThreadOptions {
  /** Helper threads besides the caller; default: available cores − 1 (at most 7). */
  helpers?: number;
  /** How long an idle helper spins before sleeping, ms. */
  spinMs?: number;
  /** Smallest matmul (n·rows·cols multiply-adds) worth splitting; measured by bench/run.ts. */
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
  const c = new Int32Array(memory.buffer, CONTROL_OFFSET, CONTROL_INTS);
  if (CONTROL_OFFSET + c.byteLength > RESERVED_BYTES) throw new Error('control block too large');
  c.fill(0);
  const workerData = {
    memory,
    module: kernels.module,
    offset: CONTROL_OFFSET,
    spinMs: options.spinMs ?? DEFAULT_SPIN_MS,
  };
  const workers: Worker[] = [];
  for (let h = 0; h < helpers; h++) {
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
  setMatmulPool(
    chunkedPool(c, helpers + 1, options.minWork ?? DEFAULT_MIN_WORK, kernels.exports.matmul_f32),
  );
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
 * participant so a late helper costs little), claims chunks itself, then waits for the rest.
 */
function chunkedPool(c: Int32Array, parts: number, minWork: number, matmul: MatmulF32): MatmulPool {
  let seq = Atomics.load(c, SEQ);
  return (out, x, w, n, rows, cols) => {
    if (n * rows * cols < minWork || rows < 8) return false;
    const chunk = Math.max(4, Math.ceil(rows / (4 * parts) / 4) * 4);
    const chunks = Math.ceil(rows / chunk);
    seq = (seq + 1) | 0;
    c[ARGS] = out;
    c[ARGS + 1] = x;
    c[ARGS + 2] = w;
    c[ARGS + 3] = n;
    c[ARGS + 4] = rows;
    c[ARGS + 5] = cols;
    c[ARGS + 6] = chunk;
    Atomics.store(c, FINISHED, 0);
    Atomics.store(c, NEXT, (seq & 0x7fff) << 16);
    Atomics.store(c, SEQ, seq);
    Atomics.notify(c, SEQ);
    claimChunks(c, seq, matmul);
    // Every chunk is claimed; wait for those still running on a helper.
    let spins = 0;
    for (let done = Atomics.load(c, FINISHED); done < chunks; done = Atomics.load(c, FINISHED)) {
      if (Atomics.load(c, FAILED) !== 0) break;
      if (++spins > 1 << 14) Atomics.wait(c, FINISHED, done, 1);
    }
    if (Atomics.load(c, FAILED) !== 0) throw new Error('kernel helper thread: matmul failed');
    return true;
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
