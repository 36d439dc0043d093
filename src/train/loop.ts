/**
 * The training loop (llama2.c train.py's, minus the GPU): per step a seeded batch of windows,
 * micro-batches forward and backward into one gradient, clipping, AdamW at the scheduled
 * learning rate; validation loss every `evalEvery` steps; a checkpoint every
 * `checkpointEvery` steps and at the end; `train.parquet` with one row per step.
 *
 * Everything random is a function of (seed, step) — the initial weights of `seed`, the batch of
 * step t from batchRng(seed, t) — and the optimizer state is saved exactly, so a run resumed
 * from a checkpoint computes the same numbers as one that never stopped.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LmdynError } from '../errors.js';
import { readParquet, writeParquet } from '../io/parquet.js';
import { writeFileAtomic } from '../io/atomic.js';
import { cleanStale, sealFolder, unsealUnit } from '../io/commit.js';
import { writePlot, type PlotSpec } from '../report/plot.js';
import { copyTokenizer, loadState, saveState, writeHfFolder, writeModelBin } from './checkpoint.js';
import { batchRng, sampleBatch, validationWindows, type TokenSplits } from './data.js';
import { generateBatch } from '../decode/generate.js';
import { loadTokenizer } from '../io/load.js';
import { Transformer } from '../model/forward.js';
import {
  initParams,
  modelConfigOf,
  paramLayout,
  TrainGraph,
  weightsView,
  type TrainShape,
} from './model.js';
import {
  adamwStep,
  clipGradNorm,
  learningRate,
  type AdamState,
  type OptimConfig,
} from './optim.js';
import { createEngine } from './engine.js';
import { allocVec } from './tensor.js';

export interface TrainOptions {
  shape: TrainShape;
  optim: OptimConfig; // optim.steps = total steps
  batch: number; // sequences per step
  seq: number; // tokens per sequence (T)
  seed: number;
  out: string;
  tokenizerPath: string;
  data: TokenSplits;
  /** Written into run.json (where the data came from, the command line, ...). */
  info?: Record<string, unknown>;
  evalEvery: number; // 0 = only at the end
  valTokens: number; // validation tokens per evaluation (at most)
  checkpointEvery: number; // 0 = only at the end
  keepCheckpoints: boolean;
  resume: boolean;
  /** Sequences per micro-batch (default: as many as fit `memoryBytes`, and all threads busy). */
  microBatch?: number;
  /** Threads computing micro-batches (1 = this one only); the result does not depend on it. */
  threads?: number;
  memoryBytes?: number;
  /** Greedy tokens sampled from BOS at the end (0 = none), kept in run.json. */
  sampleTokens?: number;
  onStep?: (p: StepReport) => void;
  /** Stop early (tests): after this many steps of this call, as if killed after a checkpoint. */
  stopAfter?: number;
}

export interface StepReport {
  step: number; // updates done
  steps: number;
  trainLoss: number;
  valLoss: number | null;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number; // over this call's steps so far
  etaSeconds: number;
  checkpoint: boolean;
}

export interface TrainRow {
  step: number;
  train_loss: number; // NaN for the step-0 row (before any update)
  val_loss: number; // NaN where not evaluated
  lr: number;
  grad_norm: number;
  tokens: number; // training tokens seen after this step
  seconds: number; // wall time spent training up to this step (across resumes)
}

export interface TrainResult {
  steps: number;
  finalTrainLoss: number; // mean over the last min(10, steps) steps
  finalValLoss: number;
  tokensPerSecond: number;
  rows: TrainRow[];
  params: Float32Array;
  greedySample: string | null;
}

export const DEFAULT_MEMORY_BYTES = 512 * 2 ** 20;

export async function train(o: TrainOptions): Promise<TrainResult> {
  const { shape, batch: B, seq: T, seed, out } = o;
  const layout = paramLayout(shape);
  const microBatch =
    o.microBatch ?? chooseMicroBatch(shape, B, T, o.memoryBytes ?? DEFAULT_MEMORY_BYTES);
  if (o.data.train.length < T + 1) {
    throw new LmdynError(
      'bad_argument',
      `the training split has ${o.data.train.length} tokens; --seq ${T} needs at least ${T + 1}`,
    );
  }
  mkdirSync(out, { recursive: true });
  cleanStale(out);
  unsealUnit(out, 'train'); // unfinished until the run ends and seals it again
  const statePath = join(out, 'state');
  const params = allocVec('f32', layout.total) as Float32Array;
  const adam: AdamState = {
    m: allocVec('f32', layout.total),
    v: allocVec('f32', layout.total),
    t: 0,
  };
  let rows: TrainRow[] = [];
  let start = 0;
  if (o.resume) {
    const s = loadState<{
      shape: TrainShape;
      seed: number;
      batch: number;
      seq: number;
      optim: OptimConfig;
    }>(out);
    const was = {
      shape: s.meta.shape,
      seed: s.meta.seed,
      batch: s.meta.batch,
      seq: s.meta.seq,
      optim: s.meta.optim,
    };
    const now = { shape, seed, batch: B, seq: T, optim: o.optim };
    const differs = (Object.keys(now) as (keyof typeof now)[]).filter(
      (k) => JSON.stringify(was[k]) !== JSON.stringify(now[k]),
    );
    if (differs.length > 0) {
      throw new LmdynError(
        'bad_argument',
        `--resume: ${out} was trained with another ${differs.join(', ')} (${differs.map((k) => `${k} ${JSON.stringify(was[k])}`).join('; ')}); a resumed run continues the same schedule`,
      );
    }
    params.set(s.params);
    adam.m.set(s.m);
    adam.v.set(s.v);
    adam.t = s.adamT;
    start = s.step;
    rows = (await readRows(join(out, 'train.parquet'))).filter((r) => r.step <= start);
  } else {
    if (existsSync(statePath) || (existsSync(out) && readdirSync(out).includes('train.parquet'))) {
      throw new LmdynError(
        'bad_argument',
        `${out} already holds a training run; pass --resume to continue it or choose another --out`,
      );
    }
    params.set(initParams(shape, seed, 'f32'));
  }
  copyTokenizer(o.tokenizerPath, out);

  const valStartsAll = validationWindows(o.data.val, T, o.valTokens);
  const engine = await createEngine(
    shape,
    T,
    microBatch,
    Math.max(B, valStartsAll.length),
    o.threads ?? 1,
  );
  const grads = allocVec('f32', layout.total) as Float32Array;
  const tokens = new Int32Array(Math.max(B, valStartsAll.length) * T);
  const targets = new Int32Array(tokens.length);
  const valStarts = valStartsAll;
  const steps = o.optim.steps;
  const secondsBefore = rows.length > 0 ? rows[rows.length - 1].seconds : 0;
  const t0 = performance.now();

  const evaluate = async (): Promise<number> => {
    if (valStarts.length === 0) return NaN;
    valStarts.forEach((s, b) => {
      tokens.set(o.data.val.subarray(s, s + T), b * T);
      targets.set(o.data.val.subarray(s + 1, s + T + 1), b * T);
    });
    return (await engine.loss(params, tokens, targets, valStarts.length)) / (valStarts.length * T);
  };

  const checkpoint = (step: number): void => {
    saveState(out, {
      step,
      adamT: adam.t,
      params,
      m: adam.m as Float32Array,
      v: adam.v as Float32Array,
      meta: { shape, seed, batch: B, seq: T, optim: o.optim },
    });
    writeModelBin(join(out, 'model.bin'), shape, params);
    writeHfFolder(join(out, 'hf'), shape, params, o.tokenizerPath);
    if (o.keepCheckpoints) {
      const dir = join(out, 'checkpoints');
      mkdirSync(dir, { recursive: true });
      copyTokenizer(o.tokenizerPath, dir);
      writeModelBin(join(dir, `step-${String(step).padStart(8, '0')}.bin`), shape, params);
    }
    writeRows(join(out, 'train.parquet'), rows, { seed: String(seed) });
  };

  if (start === 0 && rows.length === 0) {
    rows.push({
      step: 0,
      train_loss: NaN,
      val_loss: o.evalEvery > 0 ? await evaluate() : NaN,
      lr: 0,
      grad_norm: NaN,
      tokens: 0,
      seconds: 0,
    });
    if (o.keepCheckpoints) checkpoint(0);
  }

  let done = 0;
  for (let step = start; step < steps; step++) {
    sampleBatch(o.data.train, B, T, batchRng(seed, step), tokens, targets);
    const lossSum = await engine.gradient(params, grads, tokens, targets, B);
    const gradNorm = clipGradNorm(grads, o.optim.gradClip);
    const lr = learningRate(step, o.optim);
    adamwStep(params, grads, adam, layout.tensors, lr, o.optim);
    const n = step + 1;
    const last = n === steps;
    const evalNow = last || (o.evalEvery > 0 && n % o.evalEvery === 0);
    const valLoss = evalNow ? await evaluate() : NaN;
    done++;
    const elapsed = (performance.now() - t0) / 1000;
    rows.push({
      step: n,
      train_loss: lossSum / (B * T),
      val_loss: valLoss,
      lr,
      grad_norm: gradNorm,
      tokens: n * B * T,
      seconds: secondsBefore + elapsed,
    });
    const stopping = o.stopAfter !== undefined && done >= o.stopAfter;
    const ckpt = last || stopping || (o.checkpointEvery > 0 && n % o.checkpointEvery === 0);
    if (ckpt) checkpoint(n);
    o.onStep?.({
      step: n,
      steps,
      trainLoss: lossSum / (B * T),
      valLoss: evalNow ? valLoss : null,
      lr,
      gradNorm,
      tokensPerSecond: (done * B * T) / elapsed,
      etaSeconds: (elapsed / done) * (steps - n),
      checkpoint: ckpt,
    });
    if (stopping) break;
  }
  await engine.close();
  const trainRows = rows.filter((r) => Number.isFinite(r.train_loss));
  const tail = trainRows.slice(-10);
  const valRows = rows.filter((r) => Number.isFinite(r.val_loss));
  const elapsed = (performance.now() - t0) / 1000;
  const result: TrainResult = {
    steps: rows[rows.length - 1].step,
    finalTrainLoss: tail.reduce((s, r) => s + r.train_loss, 0) / Math.max(1, tail.length),
    finalValLoss: valRows.length > 0 ? valRows[valRows.length - 1].val_loss : NaN,
    tokensPerSecond: done > 0 ? (done * B * T) / elapsed : NaN,
    rows,
    params,
    greedySample: o.sampleTokens
      ? greedySample(shape, params, o.tokenizerPath, o.sampleTokens)
      : null,
  };
  await writePlot(join(out, 'loss'), lossCurveSpec(rows, B * T));
  writeFileAtomic(
    join(out, 'run.json'),
    JSON.stringify(
      {
        shape,
        parameters: layout.total,
        optim: o.optim,
        batch: B,
        seq: T,
        micro_batch: microBatch,
        threads: o.threads ?? 1,
        seed,
        steps_done: result.steps,
        tokens_seen: result.steps * B * T,
        data: {
          train_tokens: o.data.train.length,
          val_tokens: o.data.val.length,
          documents: o.data.documents,
          ids_from: o.data.from,
        },
        final: {
          train_loss: {
            value: result.finalTrainLoss,
            tag: 'exact',
            definition: 'mean cross-entropy (nats/token) over the last 10 steps’ batches',
          },
          val_loss: {
            value: result.finalValLoss,
            tag: 'exact',
            definition: `mean cross-entropy (nats/token) over ${valStarts.length * T} held-out tokens`,
          },
          val_perplexity: {
            value: Math.exp(result.finalValLoss),
            tag: 'exact',
            definition: 'exp(val_loss)',
          },
        },
        tokens_per_second: result.tokensPerSecond,
        greedy_sample: result.greedySample,
        ...o.info,
      },
      null,
      2,
    ) + '\n',
  );
  // the results as one committed unit (io/commit.ts); the resumable state is not part of it
  sealFolder(out, 'train', (rel) => /^state(\.tmp|\.old)?\//.test(rel));
  return result;
}

/** Train loss per step (thin line) and validation loss (points) against the step; rows carry tokens seen too. */
export function lossCurveSpec(rows: readonly TrainRow[], tokensPerStep: number): PlotSpec {
  const values = rows.flatMap((r) => [
    ...(Number.isFinite(r.train_loss)
      ? [
          {
            step: r.step,
            tokens: r.step * tokensPerStep,
            loss: r.train_loss,
            split: 'train (batch)',
          },
        ]
      : []),
    ...(Number.isFinite(r.val_loss)
      ? [{ step: r.step, tokens: r.step * tokensPerStep, loss: r.val_loss, split: 'validation' }]
      : []),
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'cross-entropy loss (nats/token)',
    width: 480,
    height: 280,
    data: { values },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
      color: { field: 'split', type: 'nominal', title: null },
    },
    layer: [
      {
        transform: [{ filter: "datum.split !== 'validation'" }],
        mark: { type: 'line', strokeWidth: 1, opacity: 0.6 },
      },
      {
        transform: [{ filter: "datum.split === 'validation'" }],
        mark: { type: 'line', strokeWidth: 2, point: { size: 30 } },
      },
    ],
  };
}

/** `tokens` greedy tokens from BOS with the trained weights (the inference forward pass). */
export function greedySample(
  shape: TrainShape,
  params: Float32Array,
  tokenizerPath: string,
  tokens: number,
): string {
  const tokenizer = loadTokenizer(tokenizerPath);
  const config = modelConfigOf(shape);
  const tf = new Transformer({
    config,
    weights: weightsView(params, shape),
    tokenizer,
    source: { format: 'llama2c', path: '', hubId: null, sha256: null, details: {} },
  });
  const bos = tokenizer.bosId ?? 1;
  const stop = [tokenizer.eosId ?? 2, bos];
  const { outputs } = generateBatch(
    tf,
    [
      {
        promptIds: [bos],
        maxTokens: Math.min(tokens, shape.seqLen - 1),
        sampling: { temperature: 0 },
      },
    ],
    {
      stopIds: stop,
    },
  );
  return tokenizer.decode([bos, ...outputs[0].ids]);
}

/** The most sequences per micro-batch (≤ batch) whose activations fit `bytes`; at least 1. */
export function chooseMicroBatch(
  shape: TrainShape,
  batch: number,
  T: number,
  bytes: number,
): number {
  let m = 1;
  while (m < batch && TrainGraph.bytesFor(shape, m + 1, T) <= bytes) m++;
  return m;
}

const COLUMNS: (keyof TrainRow)[] = [
  'step',
  'train_loss',
  'val_loss',
  'lr',
  'grad_norm',
  'tokens',
  'seconds',
];

function writeRows(
  path: string,
  rows: readonly TrainRow[],
  metadata: Record<string, string>,
): void {
  writeParquet(
    path,
    COLUMNS.map((name) =>
      name === 'step'
        ? { name, type: 'INT32' as const, data: rows.map((r) => r.step) }
        : { name, type: 'DOUBLE' as const, data: rows.map((r) => r[name]) },
    ),
    metadata,
  );
}

export async function readRows(path: string): Promise<TrainRow[]> {
  if (!existsSync(path)) return [];
  const raw = await readParquet(path);
  return raw.map((r) => {
    const row = {} as TrainRow;
    for (const c of COLUMNS) {
      const v = r[c];
      row[c] = v === null || v === undefined ? NaN : Number(v);
    }
    return row;
  });
}
