/**
 * Decoding sweeps: one trace folder per point of a (temperature × top-p × top-k × repetition
 * penalty) grid, recorded by worker threads (one per core), resumable after an interruption.
 *
 * Each configuration folder is committed on its own (io/commit.ts: written beside its place and
 * renamed in with its trace.manifest.json), so a re-run records only what is missing. When all
 * are there, sweep.manifest.json seals the sweep (sweep.json and every configuration's manifest);
 * readers refuse a sweep without it. Sample i of every configuration uses seed + i, whichever
 * worker records it, so an interrupted-then-resumed sweep writes the same files as one that ran
 * through.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Model } from '../model/model.js';
import type { SamplingConfig } from '../decode/sampling.js';
import { LmdynError } from '../errors.js';
import { ioError, writeFileAtomic } from '../io/atomic.js';
import {
  cleanStale,
  isCommitted,
  requireCommitted,
  sealUnit,
  unsealUnit,
  type Verify,
} from '../io/commit.js';
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
  options: {
    force?: boolean;
    workers?: number;
    onProgress?: (p: SweepProgress) => void;
    /** Refuse a configuration whose recording is estimated to need more memory (per worker). */
    maxBytes?: number;
  } = {},
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
        runWorker(plan, dir, queue, options.maxBytes, (config) => {
          done++;
          options.onProgress?.({ done, total: configs.length, skipped, config });
        }),
      ),
    );
  }
  sealSweep(dir, index);
  return index;
}

/**
 * Seals a sweep whose configurations are all recorded: sweep.manifest.json lists sweep.json and
 * every configuration's manifest (io/commit.ts). Local and queued sweeps both end here.
 */
export function sealSweep(dir: string, index: SweepIndex): void {
  const missing = index.configs.filter((c) => !isComplete(join(dir, c.dir)));
  if (missing.length > 0) {
    throw new LmdynError(
      'io',
      `${dir}: ${missing.length} configuration(s) were not recorded (e.g. ${missing[0].dir}); re-run the same sweep to finish them`,
    );
  }
  sealUnit(dir, 'sweep', [
    'sweep.json',
    ...index.configs.map((c) => `${c.dir}/trace.manifest.json`),
  ]);
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
  for (const [what, path] of [
    ['model', plan.model],
    ['tokenizer', plan.tokenizer],
  ] as const) {
    // checked before the folder is touched, so a corrected re-run is not "a different sweep"
    if (path && !path.startsWith('hf:') && !existsSync(path))
      throw new LmdynError('not_found', `${what} ${path} does not exist`);
  }
  prepareFolder(dir, index, force);
  return { index, todo: configs.filter((c) => !isComplete(join(dir, c.dir))) };
}

/**
 * Records one configuration of the sweep into `dir`/`config.dir`, committed on its own
 * (io/commit.ts: written beside its place, renamed in with its manifest), replacing whatever an
 * interrupted attempt or an older lmdyn left there. The worker threads of a local sweep and the
 * queue workers (src/queue/) both call this.
 */
export function recordSweepConfig(
  model: Model,
  plan: SweepPlan,
  dir: string,
  config: SweepConfig,
  maxBytes?: number,
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
    maxBytes,
  });
  writeTrace(join(dir, config.dir), trace, {
    force: true,
    tokenText: (id) => model.tokenizer.decode([id]),
  });
}

/** A configuration folder is one plain name inside the sweep folder (no '..', no separators). */
export function isConfigDirName(dir: unknown): dir is string {
  return typeof dir === 'string' && /^[^/\\\0]+$/.test(dir) && dir !== '.' && dir !== '..';
}

/** A finished configuration folder is a committed trace (its manifest matches its files). */
export function isComplete(configDir: string, verify: Verify = 'size'): boolean {
  return isCommitted(configDir, 'trace', verify);
}

/**
 * The sweep's index. With `finished` (the default) the sweep must be sealed: every
 * configuration recorded and committed; an unfinished sweep is refused with how to finish it.
 */
export function readSweepIndex(dir: string, options: { finished?: boolean } = {}): SweepIndex {
  const root = resolve(dir);
  const path = join(root, 'sweep.json');
  if (!existsSync(path))
    throw new LmdynError('not_found', `${dir} is not a sweep folder (no sweep.json)`);
  let index: SweepIndex;
  try {
    index = JSON.parse(readFileSync(path, 'utf8')) as SweepIndex;
  } catch {
    throw new LmdynError('bad_format', `${path} is not valid JSON`);
  }
  if (!index || !Array.isArray(index.configs) || !index.plan)
    throw new LmdynError('bad_format', `${path} is not a sweep index`);
  const outside = index.configs.find((c) => !isConfigDirName(c.dir));
  if (outside)
    throw new LmdynError(
      'bad_format',
      `${path}: configuration folder '${String(outside.dir)}' is not a plain name inside the sweep`,
    );
  if (options.finished ?? true) {
    const missing = index.configs.filter((c) => !isComplete(join(root, c.dir)));
    if (missing.length > 0) {
      throw new LmdynError(
        'bad_argument',
        `${root}: ${missing.length} of ${index.configs.length} configurations are unfinished (e.g. ${missing[0].dir}); re-run the same lmdyn sweep to finish them`,
      );
    }
    requireCommitted(root, 'sweep', 'full');
  }
  return index;
}

/**
 * A fresh folder gets sweep.json; the same sweep resumes; --force replaces the folder as a
 * whole (the old one is moved aside, then removed). A folder whose sweep.json differs but that
 * holds no recorded configuration yet (a run that failed at once) is taken over.
 */
function prepareFolder(dir: string, index: SweepIndex, force: boolean): void {
  const indexPath = join(dir, 'sweep.json');
  const text = JSON.stringify(index, null, 1) + '\n';
  cleanStale(dirname(dir), basename(dir));
  if (existsSync(dir)) cleanStale(dir);
  if (force && existsSync(dir)) {
    const aside = join(
      dirname(dir),
      `.${basename(dir)}.old-${process.pid}-${randomBytes(4).toString('hex')}`,
    );
    try {
      renameSync(dir, aside);
    } catch (err) {
      throw ioError(err, dir);
    }
    rmSync(aside, { recursive: true, force: true });
  } else if (existsSync(dir) && readdirSync(dir).length > 0) {
    if (!existsSync(indexPath)) {
      throw new LmdynError(
        'bad_argument',
        `${dir} is not empty and holds no sweep; use --force or another --out`,
      );
    }
    const same = readFileSync(indexPath, 'utf8') === text;
    if (!same && !holdsNothingRecorded(dir)) {
      throw new LmdynError(
        'bad_argument',
        `${dir} holds a different sweep; use --force to overwrite it or another --out`,
      );
    }
    if (same) return; // the same sweep: resume
    unsealUnit(dir, 'sweep');
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw ioError(err, dir);
  }
  writeFileAtomic(indexPath, text);
}

/** Only sweep.json (and temporaries) in the folder: nothing recorded yet. */
function holdsNothingRecorded(dir: string): boolean {
  return readdirSync(dir).every((n) => n === 'sweep.json' || n.startsWith('.'));
}

/** One worker thread: loads the model once, then records configurations from the queue. */
function runWorker(
  plan: SweepPlan,
  dir: string,
  queue: SweepConfig[],
  maxBytes: number | undefined,
  onDone: (c: SweepConfig) => void,
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(new URL('./sweep-worker.js', import.meta.url), {
      workerData: { plan, dir, maxBytes },
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
