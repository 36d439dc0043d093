/**
 * The HTTP thread's handle on the engine thread (engine-worker.ts): jobs go in, events come out
 * one by one. A job can be cancelled (the page went away or pressed Stop); a crashed engine is
 * started again for the next job.
 */
import { Worker } from 'node:worker_threads';
import type { SamplingConfig } from '../decode/sampling.js';

export type EngineJob =
  | {
      id: number;
      kind: 'generate';
      model: string;
      prompt: string;
      maxTokens: number;
      sampling: Partial<SamplingConfig>;
      seed: number;
      /** Tokens of the distribution sent per step. */
      topN: number;
      cancel: SharedArrayBuffer;
    }
  | {
      id: number;
      kind: 'lens';
      /** A key of LIVE_LENSES (live-lenses.ts) and its checked parameters. */
      lens: string;
      model: string;
      params: Record<string, unknown>;
      cancel: SharedArrayBuffer;
    };

/** What the page receives, one JSON object per line (generation) or as the answer (lenses). */
export type EngineEvent =
  | {
      type: 'start';
      model: string;
      promptIds: number[];
      promptPieces: string[];
      hook: string;
      dim: number;
      seqLen: number;
    }
  | {
      type: 'token';
      step: number;
      position: number;
      id: number;
      /** The token's own text, and what it adds to the decoded text (multi-byte safe). */
      piece: string;
      text: string;
      /** Probability of the token and entropy (nats) of the distribution it was drawn from. */
      p: number;
      entropy: number;
      /** [id, text, probability] of the most probable tokens of that distribution. */
      top: [number, string, number][];
    }
  /** States projected on the current PCA (k coordinates per position, row-major). */
  | { type: 'points'; positions: number[]; k: number; coords: number[] }
  /** A refitted PCA: every state so far in the new coordinates. */
  | { type: 'trajectory'; positions: number[]; k: number; coords: number[]; explained: number[] }
  | {
      type: 'done';
      finishReason: string;
      generated: number;
      tokensPerSecond: number;
      tail?: string;
    }
  | { type: 'result'; result: unknown }
  | { type: 'error'; message: string; status: number };

type Listener = (event: EngineEvent) => void;

/** Jobs that may wait for the engine besides the one it runs (ServeOptions.maxQueued). */
export const DEFAULT_MAX_QUEUED = 8;
/** Seconds a client told "busy" (503) is asked to wait before it tries again. */
export const RETRY_AFTER_S = 5;

/** The engine was full: the request is refused at once (503 with Retry-After). */
export class EngineBusy extends Error {
  constructor(readonly queued: number) {
    super(
      `the engine is busy (${queued} job${queued === 1 ? '' : 's'} waiting); try again in ${RETRY_AFTER_S} s`,
    );
    this.name = 'EngineBusy';
  }
}

interface Pending {
  job: EngineJob;
  listener: Listener;
}

export class Engine {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly listeners = new Map<number, Listener>();
  /** Jobs not yet handed to the engine thread, oldest first; it runs one at a time. */
  private readonly waiting: Pending[] = [];
  private running: Pending | null = null;
  private closed = false;

  constructor(private readonly maxQueued = DEFAULT_MAX_QUEUED) {}

  /**
   * Runs a job; `onEvent` sees every event, the promise settles after the last one ('done',
   * 'result' or 'error'). `cancel()` (or `signal` aborting: the client went away) drops a
   * waiting job at once, stops a running generation after its current token and a running lens
   * at its next check point. Throws EngineBusy when `maxQueued` jobs already wait.
   */
  start(
    job: DistributiveOmit<EngineJob, 'id' | 'cancel'>,
    onEvent: Listener,
    signal?: AbortSignal,
  ): { done: Promise<void>; cancel: () => void } {
    if (this.running && this.waiting.length >= this.maxQueued)
      throw new EngineBusy(this.waiting.length);
    const id = this.nextId++;
    const cancelFlag = new SharedArrayBuffer(4);
    let pending!: Pending;
    const done = new Promise<void>((resolve) => {
      pending = {
        job: { ...job, id, cancel: cancelFlag } as EngineJob,
        listener: (event) => {
          onEvent(event);
          if (event.type === 'done' || event.type === 'result' || event.type === 'error') {
            this.listeners.delete(id);
            if (this.running === pending) this.running = null;
            signal?.removeEventListener('abort', cancel);
            resolve();
            this.next();
          }
        },
      };
    });
    const cancel = () => {
      Atomics.store(new Int32Array(cancelFlag), 0, 1);
      const at = this.waiting.indexOf(pending);
      if (at < 0) return;
      this.waiting.splice(at, 1);
      pending.listener({ type: 'error', message: 'cancelled before it started', status: 499 });
    };
    this.waiting.push(pending);
    if (signal?.aborted) cancel();
    else signal?.addEventListener('abort', cancel, { once: true });
    this.next();
    return { done, cancel };
  }

  /** Jobs waiting and running now (for tests and the log). */
  load(): { waiting: number; running: string | null } {
    const r = this.running?.job;
    return {
      waiting: this.waiting.length,
      running: r ? (r.kind === 'lens' ? `lens ${r.lens}` : r.kind) : null,
    };
  }

  private next(): void {
    if (this.running || this.closed) return;
    const p = this.waiting.shift();
    if (!p) return;
    this.running = p;
    this.listeners.set(p.job.id, p.listener);
    this.ensureWorker().postMessage(p.job);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.waiting.splice(0))
      p.listener({ type: 'error', message: 'the server is closing', status: 503 });
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./engine-worker.js', import.meta.url));
    worker.on('message', (msg: { id: number; event: EngineEvent }) =>
      this.listeners.get(msg.id)?.(msg.event),
    );
    const fail = (message: string) => {
      if (this.worker === worker) this.worker = null;
      for (const listener of [...this.listeners.values()])
        listener({ type: 'error', message, status: 500 });
    };
    worker.on('error', (err) => fail(`the engine failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (code !== 0) fail(`the engine stopped (exit code ${code})`);
      else if (this.worker === worker) this.worker = null;
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
