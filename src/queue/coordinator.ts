/**
 * The coordinator's side of a queued run: enqueue one BullMQ job per unit still missing from
 * the output folder, follow the queue's events (completed, failed) for progress and an ETA, and
 * return when every job has finished. Job ids are derived from the run (output folder + plan),
 * so re-running the same command finds the jobs still queued or running and enqueues only what
 * is neither done on disk nor in the queue.
 */
import { createHash } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { LmdynError } from '../errors.js';
import { QUEUE_NAME, QUEUE_PREFIX, redisOptions, type QueueConnection } from './connection.js';
import { isUnitDone, unitLabel, type QueueUnit } from './units.js';

export interface QueueProgress {
  done: number;
  total: number;
  /** Units found finished in the folder before this run began. */
  skipped: number;
  /** The unit that just finished. */
  label?: string;
}

export interface QueueRunOptions {
  /** Tries per job before it counts as failed (default 3); a stalled worker's job is not a try. */
  attempts?: number;
  onProgress?: (p: QueueProgress) => void;
  log?: (line: string) => void;
  /** How often the coordinator checks the queue for events it may have missed (default 2000 ms). */
  pollMs?: number;
}

export interface QueuedUnit {
  /** Position of the unit in its run (stable across re-runs). */
  index: number;
  unit: QueueUnit;
}

/** The run's key: the same output folder and plan give the same job ids. */
export function runKey(dir: string, plan: string): string {
  return createHash('sha256').update(dir).update('\n').update(plan).digest('hex').slice(0, 16);
}

/**
 * Enqueues `todo` (the units not yet in the folder) and waits for all of them. Throws a one-line
 * LmdynError naming the failed units (each failed `attempts` times) after the others have finished.
 */
export async function runUnitsOnQueue(
  conn: QueueConnection,
  key: string,
  todo: readonly QueuedUnit[],
  total: number,
  options: QueueRunOptions = {},
): Promise<void> {
  const attempts = options.attempts ?? 3;
  const log = options.log ?? (() => {});
  const skipped = total - todo.length;
  let done = skipped;
  options.onProgress?.({ done, total, skipped });
  if (todo.length === 0) return;
  const connection = redisOptions(conn);
  const queue = new Queue<QueueUnit>(QUEUE_NAME, { connection, prefix: QUEUE_PREFIX });
  const events = new QueueEvents(QUEUE_NAME, { connection, prefix: QUEUE_PREFIX });
  const pending = new Map<string, QueuedUnit>(todo.map((u) => [`${key}-${u.index}`, u]));
  const failures: { label: string; reason: string }[] = [];
  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => (finish = r));
  const settle = (jobId: string, failure: string | null): void => {
    const u = pending.get(jobId);
    if (!u) return;
    pending.delete(jobId);
    if (failure === null) {
      done++;
      options.onProgress?.({ done, total, skipped, label: unitLabel(u.unit) });
    } else {
      failures.push({ label: unitLabel(u.unit), reason: failure });
      log(`failed: ${unitLabel(u.unit)}: ${failure}`);
    }
    if (pending.size === 0) finish();
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    events.on('completed', ({ jobId }) => settle(jobId, null));
    events.on('failed', ({ jobId, failedReason }) => settle(jobId, failedReason));
    const toAdd = await jobsToAdd(queue, pending);
    await queue.addBulk(
      toAdd.map(([jobId, u]) => ({
        name: u.unit.kind,
        data: u.unit,
        opts: {
          jobId,
          attempts,
          backoff: { type: 'fixed', delay: 1000 },
          removeOnComplete: true,
          removeOnFail: { age: 7 * 24 * 3600 },
        },
      })),
    );
    const workers = await queue.getWorkersCount();
    log(
      `queue: ${toAdd.length} job${toAdd.length === 1 ? '' : 's'} enqueued` +
        (toAdd.length < pending.size ? `, ${pending.size - toAdd.length} already queued` : '') +
        ` on ${conn.display}; ${workers === 0 ? 'no worker connected yet (start one: lmdyn worker --queue URL)' : `${workers} worker${workers === 1 ? '' : 's'} connected`}`,
    );
    // Events can be missed (a coordinator that started while a job was finishing): check the
    // jobs themselves now and then.
    const poll = async (): Promise<void> => {
      for (const [jobId, u] of [...pending]) {
        const job = await queue.getJob(jobId);
        const state = job ? await job.getState() : 'unknown';
        if (state === 'failed') settle(jobId, job?.failedReason ?? 'failed');
        else if (state === 'completed' || (state === 'unknown' && isUnitDone(u.unit)))
          settle(jobId, null);
        else if (state === 'unknown') settle(jobId, 'the job left the queue without its result');
      }
    };
    const tick = (): void => {
      timer = setTimeout(() => {
        poll().then(tick, (err: Error) => {
          log(`queue: ${err.message}`);
          tick();
        });
      }, options.pollMs ?? 2000);
    };
    tick();
    await finished;
  } finally {
    clearTimeout(timer);
    await events.close();
    await queue.close();
  }
  if (failures.length > 0) {
    const first = failures[0];
    throw new LmdynError(
      'io',
      `${failures.length} of ${todo.length} jobs failed (up to ${attempts} attempts each; re-run the same command to retry them); ${first.label}: ${first.reason}`,
    );
  }
}

/** The pending jobs not already waiting or running in the queue; finished leftovers are removed. */
async function jobsToAdd(
  queue: Queue<QueueUnit>,
  pending: ReadonlyMap<string, QueuedUnit>,
): Promise<[string, QueuedUnit][]> {
  const out: [string, QueuedUnit][] = [];
  for (const [jobId, u] of pending) {
    const job = await queue.getJob(jobId);
    if (job) {
      const state = await job.getState();
      if (state !== 'completed' && state !== 'failed' && state !== 'unknown') continue;
      await job.remove();
    }
    out.push([jobId, u]);
  }
  return out;
}
