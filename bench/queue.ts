/**
 * Sweep throughput through the BullMQ queue (issue 25), on a private redis-server (loopback,
 * free port, no persistence): the same sweep run locally (one worker thread), then with 1 and 2
 * `lmdyn worker` processes of one thread each; and the queue's cost per job, from a sweep of
 * one-token configurations run both ways. Skipped, with the reason, without redis-server.
 *
 * `npm run bench:queue` runs it alone; `npm run bench` runs it after the other tables
 * (`--no-queue` leaves it out).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runSweepOnQueue } from '../src/queue/sweep.js';
import { DEFAULT_HOOKS } from '../src/trace/record.js';
import { runSweep } from '../src/trace/sweep.js';
import type { SweepPlan } from '../src/trace/types.js';
import { model } from '../test/helpers/paths.js';
import { REDIS_MISSING, startRedis, stopChild } from '../test/helpers/redis.js';

export interface QueueBench {
  configs: number;
  tokensPerConfig: number;
  local: number; // seconds
  local2: number;
  oneWorker: number;
  twoWorkers: number;
  tinyJobs: number;
  tinyQueued: number;
  /** Sum over the tiny jobs of the time the worker spent in them (its own log). */
  tinyInJobs: number;
  load: number[];
}

export async function benchQueue(options: { quick?: boolean } = {}): Promise<QueueBench | string> {
  const redis = await startRedis();
  if (!redis) return REDIS_MISSING;
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-bench-queue-'));
  const workers: { child: ChildProcess; log: () => string }[] = [];
  try {
    const samples = options.quick ? 4 : 8;
    const maxTokens = 128;
    const plan = (grid: number[], samples: number, maxTokens: number): SweepPlan => ({
      model: model('stories260K', 'stories260K.bin'),
      tokenizer: null,
      prompt: 'Once upon a time',
      samples,
      maxTokens,
      seed: 1,
      hooks: DEFAULT_HOOKS,
      logits: { kind: 'topk', k: 20 },
      grid: { temperature: grid, topP: [0.9, 1], topK: [0], repetitionPenalty: [1] },
    });
    const main = plan([0.6, 0.8, 1.0, 1.2], samples, maxTokens);
    const configs = 8;
    const timed = async (f: () => Promise<unknown>): Promise<number> => {
      const t0 = performance.now();
      await f();
      return (performance.now() - t0) / 1000;
    };
    const local = await timed(() => runSweep(main, join(dir, 'local'), { workers: 1 }));
    const local2 = await timed(() => runSweep(main, join(dir, 'local2'), { workers: 2 }));
    workers.push(await startWorker(redis.url));
    // the first job of a worker thread opens the model: warm it on a sweep of its own
    await runSweepOnQueue(plan([0.5], 1, 1), join(dir, 'warm1'), redis.url);
    const oneWorker = await timed(() => runSweepOnQueue(main, join(dir, 'q1'), redis.url));
    workers.push(await startWorker(redis.url));
    await runSweepOnQueue(plan([0.55, 0.65, 0.75], 1, 1), join(dir, 'warm2'), redis.url);
    const twoWorkers = await timed(() => runSweepOnQueue(main, join(dir, 'q2'), redis.url));
    await stopChild(workers.pop()!.child);
    // per-job cost: one-token configurations on one worker, less the time inside the jobs
    const tinyGrid = Array.from({ length: options.quick ? 10 : 20 }, (_, i) => 0.5 + 0.05 * i);
    const tiny = plan(tinyGrid, 1, 1);
    const before = workers[0].log().length;
    const tinyQueued = await timed(() => runSweepOnQueue(tiny, join(dir, 'tq'), redis.url));
    const inJobs = [
      ...workers[0]
        .log()
        .slice(before)
        .matchAll(/^done {2}sweep \S+ in ([\d.]+)s$/gm),
    ];
    const tinyInJobs = inJobs.reduce((a, m) => a + Number(m[1]), 0);
    return {
      configs,
      tokensPerConfig: samples * maxTokens,
      local,
      local2,
      oneWorker,
      twoWorkers,
      tinyJobs: inJobs.length,
      tinyQueued,
      tinyInJobs,
      load: loadavg(),
    };
  } finally {
    await Promise.all(workers.map((w) => stopChild(w.child)));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printQueueBench(r: QueueBench | string): void {
  console.log(
    '\nsweep through the queue (BullMQ on a private redis-server; stories260K, top-k 20 logits)',
  );
  if (typeof r === 'string') {
    console.log(`skipped: ${r}`);
    return;
  }
  console.log(
    `${r.configs} configurations × ${r.tokensPerConfig} tokens at most; ${availableParallelism()} cores shared with whatever else runs`,
  );
  console.log(
    'a local sweep thread computes alone; a worker with --threads 1 lends the other cores to its matmuls (kernel helper threads), as the local coupling study does',
  );
  const rows: [string, number][] = [
    ['local sweep, 1 worker thread', r.local],
    ['local sweep, 2 worker threads', r.local2],
    ['queue, 1 lmdyn worker --threads 1', r.oneWorker],
    ['queue, 2 lmdyn workers --threads 1', r.twoWorkers],
  ];
  for (const [what, s] of rows) {
    console.log(
      `  ${what.padEnd(36)} ${s.toFixed(2).padStart(6)} s   ${(r.configs / s).toFixed(2).padStart(6)} configs/s   ×${(r.local / s).toFixed(2)} of local`,
    );
  }
  const perJob = (r.tinyQueued - r.tinyInJobs) / r.tinyJobs;
  console.log(
    `  queue overhead per job: ${(1000 * perJob).toFixed(1)} ms (${r.tinyJobs} one-token configurations on 1 worker: ${r.tinyQueued.toFixed(2)} s from enqueue to the last completion, ${r.tinyInJobs.toFixed(2)} s of it inside the jobs)`,
  );
  console.log(`  load average at the end: ${r.load.map((v) => v.toFixed(2)).join(', ')}`);
}

function startWorker(url: string): Promise<{ child: ChildProcess; log: () => string }> {
  const child = spawn(
    process.execPath,
    ['bin/lmdyn.js', 'worker', '--queue', url, '--threads', '1'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      if (/^worker: /m.test(err)) resolve({ child, log: () => err });
    });
    child.once('exit', (code) => reject(new Error(`lmdyn worker exited (${code}): ${err}`)));
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printQueueBench(await benchQueue({ quick: process.argv.includes('--quick') }));
}
