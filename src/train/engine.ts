/**
 * Computes a step's gradient and the validation loss, on the calling thread alone or with
 * worker threads (data parallel: each thread owns a TrainGraph; the batch's micro-batches are
 * dealt round-robin).
 *
 * The result never depends on the number of threads: the gradient of micro-batch i is always
 * computed from zero into its own slot, and the slots are summed in the order i = 0, 1, …
 * (losses likewise), so one thread and four give the same bits, and a resumed run is exact
 * whatever --threads it resumes with.
 */
import { Worker } from 'node:worker_threads';
import { paramLayout, paramViews, TrainGraph, type ParamViews, type TrainShape } from './model.js';
import { allocVec } from './tensor.js';

export interface GradientEngine {
  readonly threads: number;
  /**
   * Mean-loss gradient of the batch tokens/targets [B·T] into `grads` (overwritten), at the
   * parameters `params`; returns Σ −log p over the batch.
   */
  gradient(
    params: Float32Array,
    grads: Float32Array,
    tokens: Int32Array,
    targets: Int32Array,
    B: number,
  ): Promise<number>;
  /** Σ −log p over `seqs` sequences of tokens/targets [seqs·T]. */
  loss(
    params: Float32Array,
    tokens: Int32Array,
    targets: Int32Array,
    seqs: number,
  ): Promise<number>;
  close(): Promise<void>;
}

/** Where micro-batch work goes: offsets into the shared batch and the slot for its gradient. */
export interface Job {
  index: number; // micro-batch index = gradient slot
  seq0: number; // first sequence of the batch
  seqs: number;
}

export interface WorkerSetup {
  shape: TrainShape;
  T: number;
  microBatch: number;
  maxBatch: number;
  params: SharedArrayBuffer; // f32 [total]
  tokens: SharedArrayBuffer; // i32 [maxBatch·T]
  targets: SharedArrayBuffer; // i32 [maxBatch·T]
  slots: SharedArrayBuffer; // f32 [slots, total]
}

/** Micro-batches of a batch of B sequences: ⌈B / microBatch⌉ jobs in order. */
export function jobsFor(B: number, microBatch: number): Job[] {
  const jobs: Job[] = [];
  for (let s = 0; s < B; s += microBatch)
    jobs.push({ index: jobs.length, seq0: s, seqs: Math.min(microBatch, B - s) });
  return jobs;
}

/**
 * Runs a thread's share of jobs on its own graph: gradient of each job into its slot (when
 * `slots` is given) and the loss of each job into losses[index].
 */
export function runJobs(
  graph: TrainGraph,
  pv: ParamViews,
  scratch: Float32Array,
  tokens: Int32Array,
  targets: Int32Array,
  jobs: readonly Job[],
  scale: number,
  slots: Float32Array | null,
  losses: Float64Array,
): void {
  const T = graph.T;
  const gv = paramViews(scratch, graph.shape);
  graph.prepare(pv);
  for (const j of jobs) {
    const tok = tokens.subarray(j.seq0 * T, (j.seq0 + j.seqs) * T);
    const tgt = targets.subarray(j.seq0 * T, (j.seq0 + j.seqs) * T);
    if (slots) {
      scratch.fill(0);
      losses[j.index] = graph.lossAndGrad(pv, gv, tok, tgt, j.seqs, scale);
      slots.set(scratch, j.index * scratch.length);
    } else {
      losses[j.index] = graph.loss(pv, tok, tgt, j.seqs);
    }
  }
}

/** An engine on `threads` threads (1 = the calling thread only). */
export async function createEngine(
  shape: TrainShape,
  T: number,
  microBatch: number,
  maxBatch: number,
  threads: number,
): Promise<GradientEngine> {
  const total = paramLayout(shape).total;
  const graph = new TrainGraph(shape, 'f32', microBatch, T);
  const mine = allocVec('f32', total) as Float32Array; // parameters in this thread's arena
  const scratch = allocVec('f32', total) as Float32Array;
  const pv = paramViews(mine, shape);
  const maxJobs = Math.max(jobsFor(maxBatch, microBatch).length, 1);
  const nWorkers = Math.max(0, Math.min(threads - 1, maxJobs - 1));
  const setup: WorkerSetup = {
    shape,
    T,
    microBatch,
    maxBatch,
    params: new SharedArrayBuffer(4 * total),
    tokens: new SharedArrayBuffer(4 * maxBatch * T),
    targets: new SharedArrayBuffer(4 * maxBatch * T),
    slots: new SharedArrayBuffer(4 * total * maxJobs),
  };
  const shared = {
    params: new Float32Array(setup.params),
    tokens: new Int32Array(setup.tokens),
    targets: new Int32Array(setup.targets),
    slots: new Float32Array(setup.slots),
  };
  const workers = await Promise.all(Array.from({ length: nWorkers }, () => startWorker(setup)));
  const P = nWorkers + 1;

  const run = async (
    params: Float32Array,
    tokens: Int32Array,
    targets: Int32Array,
    seqs: number,
    scale: number,
    grad: boolean,
  ): Promise<Float64Array> => {
    const jobs = jobsFor(seqs, microBatch);
    const losses = new Float64Array(jobs.length);
    mine.set(params);
    const share = (p: number) => jobs.filter((_, i) => i % P === p);
    let pending: Promise<Float64Array>[] = [];
    if (nWorkers > 0) {
      shared.params.set(params);
      shared.tokens.set(tokens.subarray(0, seqs * T));
      shared.targets.set(targets.subarray(0, seqs * T));
      pending = workers.map((w, k) => w.run({ jobs: share(k + 1), scale, grad }));
    }
    runJobs(
      graph,
      pv,
      scratch,
      tokens,
      targets,
      share(0),
      scale,
      grad ? shared.slots : null,
      losses,
    );
    const done = await Promise.all(pending);
    done.forEach((l, k) => share(k + 1).forEach((j) => (losses[j.index] = l[j.index])));
    return losses;
  };

  return {
    threads: P,
    async gradient(params, grads, tokens, targets, B) {
      const losses = await run(params, tokens, targets, B, 1 / (B * T), true);
      grads.set(shared.slots.subarray(0, total));
      for (let j = 1; j < losses.length; j++) {
        const s = shared.slots.subarray(j * total, (j + 1) * total);
        for (let i = 0; i < total; i++) grads[i] += s[i];
      }
      return sumInOrder(losses);
    },
    async loss(params, tokens, targets, seqs) {
      return sumInOrder(await run(params, tokens, targets, seqs, 1, false));
    },
    async close() {
      graph.free();
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}

function sumInOrder(a: Float64Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s;
}

interface WorkerHandle {
  run(msg: { jobs: Job[]; scale: number; grad: boolean }): Promise<Float64Array>;
  close(): Promise<void>;
}

async function startWorker(setup: WorkerSetup): Promise<WorkerHandle> {
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: setup });
  let waiting: { resolve: (l: Float64Array) => void; reject: (e: Error) => void } | null = null;
  let failed: Error | null = null;
  worker.on('message', (m: { losses: Float64Array }) => {
    const w = waiting;
    waiting = null;
    w?.resolve(m.losses);
  });
  const fail = (e: Error) => {
    failed = e;
    const w = waiting;
    waiting = null;
    w?.reject(e);
  };
  worker.on('error', fail);
  worker.on('exit', (code) => {
    // Internal invariant, not user input: the training worker thread crashed.
    if (code !== 0) fail(new Error(`training worker exited with code ${code}`));
  });
  await new Promise<void>((resolve, reject) => {
    worker.once('online', () => resolve());
    worker.once('error', reject);
  });
  return {
    run(msg) {
      if (failed) return Promise.reject(failed);
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        worker.postMessage(msg);
      });
    },
    async close() {
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
}
