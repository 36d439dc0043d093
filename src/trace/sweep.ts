/**
 * Decoding sweeps: one trace folder per point of a (temperature × top-p × top-k × repetition
 * penalty) grid, recorded by worker threads (one per core), resumable after an interruption.
 *
 * A configuration is finished when its trace.json exists (it is written last, atomically), so a
 * re-run records only what is missing. Sample i of every configuration uses seed + i, whichever
 * worker records it, so an interrupted-then-resumed sweep writes the same files as one that ran
 * through.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Model } from '../api.js';
import type { SamplingConfig } from '../decode/sampling.js';
import { LmdynError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { VERSION } from '../version.js';
import { writeTrace } from './io.js';
import { recordTrace } from './record.js';
import type { LogitsMode } from './types.js';

export interface SweepGrid {
  temperature: number[];
  topP: number[];
  topK: number[];
  repetitionPenalty: number[];
}

export interface SweepPlan {
  model: string;
  tokenizer: string | null;
  prompt: string;
  samples: number;
  maxTokens: number;
  seed: number;
  hooks: string[];
  logits: LogitsMode;
  grid: SweepGrid;
}

export interface SweepConfig {
  index: number;
  dir: string; // relative to the sweep folder
  sampling: Pick<SamplingConfig, 'temperature' | 'topP' | 'topK' | 'repetitionPenalty'>;
}

export interface SweepIndex {
  lmdyn: string;
  plan: SweepPlan;
  configs: SweepConfig[];
}

export interface SweepProgress {
  done: number;
  total: number;
  skipped: number;
  config?: SweepConfig;
}

/** The grid's points in a fixed order: temperature outermost, repetition penalty innermost. */
export function expandGrid(grid: SweepGrid): SweepConfig[] {
  const out: SweepConfig[] = [];
  for (const temperature of grid.temperature)
    for (const topP of grid.topP)
      for (const topK of grid.topK)
        for (const repetitionPenalty of grid.repetitionPenalty) {
          const index = out.length;
          const dir = `${String(index).padStart(3, '0')}_t${temperature}_p${topP}_k${topK}_r${repetitionPenalty}`;
          out.push({ index, dir, sampling: { temperature, topP, topK, repetitionPenalty } });
        }
  return out;
}

/**
 * Runs (or resumes) a sweep into `outDir`. A folder holding a different sweep, or anything
 * else, is refused unless `force`.
 */
export async function runSweep(
  plan: SweepPlan,
  outDir: string,
  options: { force?: boolean; workers?: number; onProgress?: (p: SweepProgress) => void } = {},
): Promise<SweepIndex> {
  const dir = resolve(outDir);
  const { index, todo } = prepareSweep(plan, dir, options.force ?? false);
  const configs = index.configs;
  const skipped = configs.length - todo.length;
  let done = skipped;
  options.onProgress?.({ done, total: configs.length, skipped });
  if (todo.length > 0) {
    const nWorkers = Math.max(1, Math.min(options.workers ?? cpus().length, todo.length));
    const queue = [...todo];
    await Promise.all(
      Array.from({ length: nWorkers }, () =>
        runWorker(plan, dir, queue, (config) => {
          done++;
          options.onProgress?.({ done, total: configs.length, skipped, config });
        }),
      ),
    );
  }
  return index;
}

/**
 * Writes (or checks, on a resume) the sweep's index in `dir` and returns the configurations
 * still to record. Local and queued sweeps (src/queue/) both start here.
 */
export function prepareSweep(
  plan: SweepPlan,
  dir: string,
  force: boolean,
): { index: SweepIndex; todo: SweepConfig[] } {
  const configs = expandGrid(plan.grid);
  const index: SweepIndex = { lmdyn: VERSION, plan, configs };
  prepareFolder(dir, index, force);
  return { index, todo: configs.filter((c) => !isComplete(join(dir, c.dir))) };
}

/**
 * Records one configuration of the sweep into `dir`/`config.dir` (trace.json last, every file
 * by temporary file + rename), overwriting what an interrupted attempt left there. The worker
 * threads of a local sweep and the queue workers (src/queue/) both call this.
 */
export function recordSweepConfig(
  model: Model,
  plan: SweepPlan,
  dir: string,
  config: SweepConfig,
): void {
  const trace = recordTrace(model, {
    spec: plan.model,
    prompt: plan.prompt,
    samples: plan.samples,
    maxTokens: plan.maxTokens,
    sampling: config.sampling,
    seed: plan.seed,
    hooks: plan.hooks,
    logits: plan.logits,
  });
  const out = join(dir, config.dir);
  mkdirSync(out, { recursive: true });
  writeTrace(out, trace, { force: true, tokenText: (id) => model.tokenizer.decode([id]) });
}

/** A finished configuration folder has its trace.json (written last). */
export function isComplete(configDir: string): boolean {
  return existsSync(join(configDir, 'trace.json'));
}

export function readSweepIndex(dir: string): SweepIndex {
  const path = join(resolve(dir), 'sweep.json');
  if (!existsSync(path))
    throw new LmdynError('not_found', `${dir} is not a sweep folder (no sweep.json)`);
  return JSON.parse(readFileSync(path, 'utf8')) as SweepIndex;
}

function prepareFolder(dir: string, index: SweepIndex, force: boolean): void {
  const indexPath = join(dir, 'sweep.json');
  const text = JSON.stringify(index, null, 1) + '\n';
  if (force) {
    // Start over: drop this plan's configuration folders (nothing else in the folder).
    for (const c of index.configs) rmSync(join(dir, c.dir), { recursive: true, force: true });
  } else if (existsSync(dir) && readdirSync(dir).length > 0) {
    if (!existsSync(indexPath)) {
      throw new LmdynError(
        'bad_argument',
        `${dir} is not empty and holds no sweep; use --force or another --out`,
      );
    }
    if (readFileSync(indexPath, 'utf8') !== text) {
      throw new LmdynError(
        'bad_argument',
        `${dir} holds a different sweep; use --force to overwrite it or another --out`,
      );
    }
    return; // the same sweep: resume
  }
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(indexPath, text);
}

/** One worker thread: loads the model once, then records configurations from the queue. */
function runWorker(
  plan: SweepPlan,
  dir: string,
  queue: SweepConfig[],
  onDone: (c: SweepConfig) => void,
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(new URL('./sweep-worker.js', import.meta.url), {
      workerData: { plan, dir },
    });
    const next = () => {
      const config = queue.shift();
      worker.postMessage(config ?? null);
    };
    worker.on(
      'message',
      (
        msg:
          | { kind: 'ready' }
          | { kind: 'done'; config: SweepConfig }
          | { kind: 'error'; message: string; code: string },
      ) => {
        if (msg.kind === 'error') {
          reject(new LmdynError(msg.code as LmdynError['code'], msg.message));
          void worker.terminate();
          return;
        }
        if (msg.kind === 'done') onDone(msg.config);
        next();
      },
    );
    worker.on('error', reject);
    worker.on('exit', () => resolvePromise());
  });
}
