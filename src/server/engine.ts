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

export class Engine {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly listeners = new Map<number, Listener>();

  /**
   * Runs a job; `onEvent` sees every event, the promise settles after the last one ('done',
   * 'result' or 'error'). `cancel()` asks a running generation to stop after its current token.
   */
  start(
    job: DistributiveOmit<EngineJob, 'id' | 'cancel'>,
    onEvent: Listener,
  ): { done: Promise<void>; cancel: () => void } {
    const id = this.nextId++;
    const cancel = new SharedArrayBuffer(4);
    const done = new Promise<void>((resolve) => {
      this.listeners.set(id, (event) => {
        onEvent(event);
        if (event.type === 'done' || event.type === 'result' || event.type === 'error') {
          this.listeners.delete(id);
          resolve();
        }
      });
    });
    this.ensureWorker().postMessage({ ...job, id, cancel } as EngineJob);
    return { done, cancel: () => Atomics.store(new Int32Array(cancel), 0, 1) };
  }

  async close(): Promise<void> {
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
