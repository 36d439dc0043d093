/**
 * `lmdyn worker`: takes units from the BullMQ queue and runs them on a pool of threads, one unit
 * per thread at a time (BullMQ's concurrency = the pool's size). The main thread only talks to
 * Redis, so it renews each job's lock while the threads compute; a worker that dies (kill -9)
 * stops renewing, and after the stall interval another worker's stalled check puts its job back
 * in the queue.
 */
import { availableParallelism } from 'node:os';
import { Worker as Thread } from 'node:worker_threads';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { ErrorCode } from '../errors.js';
import { QUEUE_NAME, QUEUE_PREFIX, redisOptions, type QueueConnection } from './connection.js';
import type { FromThread, ToThread } from './unit-thread.js';
import { unitLabel, type QueueUnit } from './units.js';
import { formatBytes } from '../trace/record.js';

export interface QueueWorkerOptions {
  /** Units run at once, each on a thread of its own (default: one per core). */
  threads?: number;
  /**
   * Milliseconds a job stays with a worker that stopped answering before another worker takes
   * it over (BullMQ's lock duration and stalled-check interval; default 30000).
   */
  stallMs?: number;
  /**
   * A unit estimated to need more memory than this (bytes, per thread) is refused with that
   * reason (a failed job, not retried); default none. Sweep configurations are estimated as
   * `lmdyn trace` estimates a recording (estimateTraceBytes).
   */
  maxMemory?: number;
  log?: (line: string) => void;
}

export interface RunningWorker {
  /** Stops taking jobs, lets the running ones finish, and ends the threads. */
  close(): Promise<void>;
}

/** Errors that a retry cannot mend: the unit's input is wrong, not the machine. */
const FINAL_ERRORS: ReadonlySet<ErrorCode> = new Set([
  'bad_argument',
  'bad_format',
  'truncated',
  'unsupported',
  'context_overflow',
]);

/** Test hook: wait this long before each unit (lets a test kill a worker in the middle of a job). */
const JOB_DELAY_MS = Number(process.env.LMDYN_QUEUE_JOB_DELAY_MS ?? 0) || 0;

export async function startQueueWorker(
  conn: QueueConnection,
  options: QueueWorkerOptions = {},
): Promise<RunningWorker> {
  const threads = options.threads ?? availableParallelism();
  const stallMs = options.stallMs ?? 30_000;
  const log = options.log ?? (() => {});
  const pool = new ThreadPool(threads, log, options.maxMemory);
  await pool.ready();
  const worker = new Worker(
    QUEUE_NAME,
    async (job: Job<QueueUnit>) => {
      const label = unitLabel(job.data);
      const t0 = Date.now();
      log(`start ${job.name} ${label} (attempt ${job.attemptsMade + 1})`);
      if (JOB_DELAY_MS > 0) await new Promise((r) => setTimeout(r, JOB_DELAY_MS));
      await pool.run(job.data);
      log(`done  ${job.name} ${label} in ${((Date.now() - t0) / 1000).toFixed(3)}s`);
    },
    {
      connection: redisOptions(conn),
      prefix: QUEUE_PREFIX,
      concurrency: threads,
      lockDuration: stallMs,
      stalledInterval: stallMs,
      maxStalledCount: 2,
    },
  );
  worker.on('failed', (job, err) => {
    if (job) log(`failed ${job.name} ${unitLabel(job.data)}: ${err.message}`);
  });
  worker.on('error', (err) => log(`queue: ${err.message}`));
  await worker.waitUntilReady();
  log(
    `worker: ${threads} thread${threads === 1 ? '' : 's'} on ${conn.display}, stall interval ${stallMs / 1000}s, ${options.maxMemory === undefined ? 'no memory limit' : `--max-memory ${formatBytes(options.maxMemory)} per thread`}`,
  );
  return {
    close: async () => {
      await worker.close();
      await pool.close();
    },
  };
}

/** Threads that each run one unit at a time; a thread that dies is replaced. */
class ThreadPool {
  private live = new Set<Thread>();
  private idle: Thread[] = [];
  /** The job each busy thread runs. */
  private busy = new Map<Thread, number>();
  private waiting: ((t: Thread) => void)[] = [];
  private jobs = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private started: Promise<void>[] = [];
  private closing = false;

  constructor(
    private size: number,
    private log: (line: string) => void,
    private maxBytes: number | undefined,
  ) {
    for (let i = 0; i < size; i++) this.started.push(this.spawn());
  }

  ready(): Promise<void> {
    return Promise.all(this.started).then(() => undefined);
  }

  async run(unit: QueueUnit): Promise<void> {
    const thread = await this.take();
    const id = this.nextId++;
    try {
      await new Promise<void>((resolve, reject) => {
        this.jobs.set(id, { resolve, reject });
        this.busy.set(thread, id);
        thread.postMessage({ id, unit } satisfies ToThread);
      });
    } finally {
      this.jobs.delete(id);
      if (this.live.has(thread)) this.give(thread);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.live].map((t) => t.terminate()));
  }

  private spawn(): Promise<void> {
    return new Promise((resolveReady, rejectReady) => {
      const thread = new Thread(new URL('./unit-thread.js', import.meta.url), {
        workerData: { kernelThreads: this.size === 1, maxBytes: this.maxBytes },
      });
      this.live.add(thread);
      thread.on('message', (msg: FromThread) => {
        if (msg.kind === 'ready') {
          this.give(thread);
          resolveReady();
        } else if (msg.kind === 'log') {
          this.log(`  ${msg.line}`);
        } else if (msg.kind === 'done') {
          this.jobs.get(msg.id)?.resolve();
        } else {
          const final = msg.code !== null && FINAL_ERRORS.has(msg.code as ErrorCode);
          this.jobs
            .get(msg.id)
            // Internal invariant, not user input: a job's failure for BullMQ, not a CLI exit: a final LmdynError code makes it unrecoverable, anything else is retried.
            ?.reject(final ? new UnrecoverableError(msg.message) : new Error(msg.message));
        }
      });
      const lost = (why: string) => {
        if (!this.live.delete(thread)) return;
        const id = this.busy.get(thread);
        this.busy.delete(thread);
        // Internal invariant, not user input: a crashed worker thread fails its job, which BullMQ retries.
        if (id !== undefined) this.jobs.get(id)?.reject(new Error(`worker thread ${why}`));
        this.idle = this.idle.filter((t) => t !== thread);
        if (this.closing) return;
        // Internal invariant, not user input: a worker thread that dies before it is ready is a crash, not bad input.
        rejectReady(new Error(`worker thread ${why}`));
        this.log(`worker thread ${why}; starting another`);
        void this.spawn();
      };
      thread.on('error', (err) => lost(`failed: ${err.message}`));
      thread.on('exit', (code) => lost(`exited with code ${code}`));
    });
  }

  private take(): Promise<Thread> {
    const t = this.idle.pop();
    if (t) return Promise.resolve(t);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private give(thread: Thread): void {
    this.busy.delete(thread);
    const next = this.waiting.shift();
    if (next) next(thread);
    else this.idle.push(thread);
  }
}
