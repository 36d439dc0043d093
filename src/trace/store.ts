/**
 * The one reader and writer of run folders (every other module goes through these functions).
 *
 * A trace on disk, for Python notebooks as much as for lmdyn:
 *   trace.json         run manifest: model, tokenizer, decoding config, seed, samples (snake_case)
 *   trace.safetensors  one F32 tensor per hook [samples, positions, d]; tokens I32; per-step
 *                      logprob/entropy F32 [samples, steps]; logits as chosen
 *   steps.parquet      a row per (sample, step) with token, logprob, entropy, norms of states
 *   trace.manifest.json  the files' sizes and sha256 (io/commit.ts): the folder is written
 *                      beside its place and renamed in whole, so a folder without a matching
 *                      manifest is an unfinished (or older) recording, and readers refuse it.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LmdynError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { commitFolderSync, isCommitted, requireCommitted, type Verify } from '../io/commit.js';
import { writeParquet, type ParquetColumn } from '../io/parquet.js';
import {
  closeSafetensors,
  openSafetensors,
  readSafetensors,
  readTensorData,
  readTensorF32,
  writeSafetensors,
  type TensorToWrite,
} from '../io/safetensors.js';
import type { SweepIndex, Trace, TraceMeta, TraceSample } from './types.js';

export const TRACE_FILES = ['trace.json', 'trace.safetensors', 'steps.parquet'] as const;

/** The token text of an id, for steps.parquet (the tokenizer's own decode of that one id). */
export type TokenTextFn = (id: number) => string;

export function writeTrace(
  dir: string,
  trace: Trace,
  options: { force?: boolean; tokenText?: TokenTextFn } = {},
): void {
  const out = resolve(dir);
  checkOutDir(out, options.force ?? false);
  commitFolderSync(out, 'trace', (tmp) => writeTraceFiles(tmp, trace, options.tokenText), {
    force: options.force,
  });
}

function writeTraceFiles(out: string, trace: Trace, tokenText?: TokenTextFn): void {
  const S = trace.samples.length;
  const P = trace.positions;
  const N = trace.steps;
  const tensors: TensorToWrite[] = [];
  for (const [name, { width, data }] of trace.states) {
    tensors.push({ name, dtype: 'F32', shape: [S, P, width], data });
  }
  tensors.push({ name: 'tokens', dtype: 'I32', shape: [S, P], data: trace.tokens });
  const perStep: [string, Float32Array][] = [
    ['logprob', trace.logprob],
    ['entropy', trace.entropy],
    ['top1_prob', trace.top1Prob],
    ['sampled_logprob', trace.sampledLogprob],
    ['sampled_entropy', trace.sampledEntropy],
  ];
  for (const [name, data] of perStep) tensors.push({ name, dtype: 'F32', shape: [S, N], data });
  const lm = trace.meta.logits;
  if (lm.kind === 'topk' && trace.topkValues && trace.topkIds) {
    tensors.push({
      name: 'logits.topk_values',
      dtype: 'F32',
      shape: [S, N, lm.k],
      data: trace.topkValues,
    });
    tensors.push({
      name: 'logits.topk_ids',
      dtype: 'I32',
      shape: [S, N, lm.k],
      data: trace.topkIds,
    });
  } else if (lm.kind === 'full' && trace.fullLogits) {
    tensors.push({
      name: 'logits',
      dtype: 'F32',
      shape: [S, N, trace.meta.model.vocabSize],
      data: trace.fullLogits,
    });
  }
  writeSafetensors(join(out, 'trace.safetensors'), tensors, {
    format: 'lmdyn-trace',
    version: '1',
  });
  writeParquet(join(out, 'steps.parquet'), stepColumns(trace, tokenText));
  writeFileAtomic(join(out, 'trace.json'), JSON.stringify(toJson(trace), null, 1) + '\n');
}

/** Refuses a non-empty folder unless `force` (checked before any work, so nothing is touched). */
export function checkOutDir(dir: string, force: boolean): void {
  if (existsSync(dir) && readdirSync(dir).length > 0 && !force) {
    throw new LmdynError(
      'bad_argument',
      `${dir} is not empty; use --force to overwrite it or choose another --out`,
    );
  }
}

/** What a folder holds: a sweep (sweep.json), a trace (trace.json), or neither. */
export function runFolderKind(dir: string): 'sweep' | 'trace' | null {
  if (existsSync(join(dir, 'sweep.json'))) return 'sweep';
  if (existsSync(join(dir, 'trace.json'))) return 'trace';
  return null;
}

/**
 * Refuses a folder that holds no committed trace: missing (not a trace folder), unfinished or
 * from an older lmdyn (no manifest), or mixed with another run (the manifest does not match).
 */
export function requireTrace(dir: string, verify: Verify = 'full'): void {
  const root = resolve(dir);
  if (!existsSync(join(root, 'trace.json')) && !existsSync(join(root, 'trace.manifest.json'))) {
    throw new LmdynError('not_found', `${dir} is not a trace folder (no trace.json)`);
  }
  requireCommitted(root, 'trace', verify);
}

export function readTrace(dir: string): Trace {
  const root = resolve(dir);
  requireTrace(root);
  const json = readTraceJson(root);
  const { tensors } = readSafetensors(join(root, 'trace.safetensors'));
  const f32 = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (!t || !(t.data instanceof Float32Array))
      throw new LmdynError('bad_format', `trace.safetensors lacks F32 tensor '${name}'`);
    return t.data;
  };
  const i32 = (name: string): Int32Array => {
    const t = tensors.get(name);
    if (!t || !(t.data instanceof Int32Array))
      throw new LmdynError('bad_format', `trace.safetensors lacks I32 tensor '${name}'`);
    return t.data;
  };
  const samples = json.samples.map(fromSampleJson);
  const states = new Map<string, { width: number; data: Float32Array }>();
  for (const name of json.meta.hooks) {
    const t = tensors.get(name);
    if (!t) continue;
    const data = f32(name);
    requireFiniteStates(root, name, data, t.shape[2], json.positions, sampleLengths(samples));
    states.set(name, { width: t.shape[2], data });
  }
  const lm = json.meta.logits;
  return {
    meta: json.meta,
    samples,
    positions: json.positions,
    steps: json.steps,
    states,
    tokens: i32('tokens'),
    logprob: f32('logprob'),
    entropy: f32('entropy'),
    top1Prob: f32('top1_prob'),
    sampledLogprob: f32('sampled_logprob'),
    sampledEntropy: f32('sampled_entropy'),
    topkValues: lm.kind === 'topk' ? f32('logits.topk_values') : null,
    topkIds: lm.kind === 'topk' ? i32('logits.topk_ids') : null,
    fullLogits: lm.kind === 'full' ? f32('logits') : null,
  };
}

/** A trace folder's trace.json without its tensors: meta, samples and the positions/steps sizes. */
export interface TraceHeader {
  meta: TraceMeta;
  samples: TraceSample[];
  positions: number;
  steps: number;
}

/** Reads trace.json of a committed trace (the tensors stay on disk). */
export function readTraceHeader(dir: string, verify: Verify = 'full'): TraceHeader {
  const root = resolve(dir);
  requireTrace(root, verify);
  const json = readTraceJson(root);
  return {
    meta: json.meta,
    samples: json.samples.map(fromSampleJson),
    positions: json.positions,
    steps: json.steps,
  };
}

/**
 * One hook's states [samples, positions, width] as a plain array (not the kernels' arena),
 * refused when they disagree with trace.json's sizes or hold a non-finite value in a sample.
 */
export function readTraceStates(
  dir: string,
  header: TraceHeader,
  hook: string,
): { width: number; data: Float32Array } {
  const file = openSafetensors(join(dir, 'trace.safetensors'));
  try {
    const info = file.byName.get(hook);
    if (!info)
      throw new LmdynError('bad_argument', `${dir}: trace.safetensors has no tensor '${hook}'`);
    const [S, P, width] = info.shape;
    if (S !== header.samples.length || P !== header.positions) {
      throw new LmdynError(
        'bad_format',
        `${dir}: '${hook}' has shape [${info.shape.join(', ')}], trace.json says ${header.samples.length} samples × ${header.positions} positions`,
      );
    }
    const data = readTensorF32(file, hook, new Float32Array(S * P * width));
    requireFiniteStates(dir, hook, data, width, P, sampleLengths(header.samples));
    return { width, data };
  } finally {
    closeSafetensors(file);
  }
}

/** Per-step F32 tensors [samples, steps] (logprob, entropy, …) without the hidden states. */
export function readTraceSteps(dir: string, names: readonly string[]): Map<string, Float32Array> {
  const file = openSafetensors(join(dir, 'trace.safetensors'));
  try {
    const out = new Map<string, Float32Array>();
    for (const name of names) {
      const data = readTensorData(file, name);
      if (!(data instanceof Float32Array))
        throw new LmdynError('bad_format', `${dir}: trace.safetensors lacks F32 tensor '${name}'`);
      out.set(name, data);
    }
    return out;
  } finally {
    closeSafetensors(file);
  }
}

function sampleLengths(samples: readonly TraceSample[]): number[] {
  return samples.map((s) => s.promptIds.length + s.ids.length);
}

/** trace.json, checked to be an lmdyn trace manifest. */
function readTraceJson(root: string): TraceJson {
  const manifest = join(root, 'trace.json');
  let json: TraceJson;
  try {
    json = JSON.parse(readFileSync(manifest, 'utf8')) as TraceJson;
  } catch {
    throw new LmdynError('bad_format', `${manifest} is not valid JSON`);
  }
  if (json?.format !== 'lmdyn-trace' || !Array.isArray(json.samples)) {
    throw new LmdynError('bad_format', `${manifest} is not an lmdyn trace manifest`);
  }
  return json;
}

/**
 * Refuses states [samples, positions, width] holding NaN or ±∞ within a sample's length (past
 * it they are NaN by design): a lens would read them as numbers, as generation would not.
 */
function requireFiniteStates(
  dir: string,
  hook: string,
  data: Float32Array,
  width: number,
  positions: number,
  sampleLengths: readonly number[],
): void {
  sampleLengths.forEach((length, s) => {
    const end = (s * positions + Math.min(length, positions)) * width;
    for (let i = s * positions * width; i < end; i++) {
      const v = data[i];
      if (v - v !== 0) {
        const p = Math.floor(i / width) - s * positions;
        throw new LmdynError(
          'bad_format',
          `${dir}: ${hook} holds a non-finite state (${v}) at sample ${s}, position ${p}; the lenses refuse it as generation does`,
        );
      }
    }
  });
}

interface SampleJson {
  prompt: string;
  prompt_ids: number[];
  ids: number[];
  text: string;
  finish_reason: TraceSample['finishReason'];
  seed: number;
  length: number;
}

interface TraceJson {
  format: 'lmdyn-trace';
  meta: TraceMeta;
  positions: number;
  steps: number;
  samples: SampleJson[];
  tensors: Record<string, string>;
}

function toJson(trace: Trace): TraceJson {
  return {
    format: 'lmdyn-trace',
    meta: trace.meta,
    positions: trace.positions,
    steps: trace.steps,
    samples: trace.samples.map((s) => ({
      prompt: s.prompt,
      prompt_ids: s.promptIds,
      ids: s.ids,
      text: s.text,
      finish_reason: s.finishReason,
      seed: s.seed,
      length: s.promptIds.length + s.ids.length,
    })),
    tensors: {
      '<hook name>': 'F32 [samples, positions, width]; NaN past a sample’s length',
      tokens: 'I32 [samples, positions]; -1 past a sample’s length',
      'logprob, entropy, top1_prob, sampled_logprob, sampled_entropy':
        'F32 [samples, steps]; NaN past a sample’s steps',
      'logits.topk_values / logits.topk_ids (or logits)':
        'F32 / I32 [samples, steps, k] (or F32 [samples, steps, vocab])',
    },
  };
}

function fromSampleJson(s: SampleJson): TraceSample {
  return {
    prompt: s.prompt,
    promptIds: s.prompt_ids,
    ids: s.ids,
    text: s.text,
    finishReason: s.finish_reason,
    seed: s.seed,
  };
}

/** A row per (sample, generated step). */
function stepColumns(trace: Trace, tokenText?: TokenTextFn): ParquetColumn[] {
  const N = trace.steps;
  const P = trace.positions;
  const sample: number[] = [];
  const step: number[] = [];
  const position: number[] = [];
  const token: number[] = [];
  const text: string[] = [];
  const at: number[] = [];
  trace.samples.forEach((s, i) => {
    for (let k = 0; k < s.ids.length && k < N; k++) {
      sample.push(i);
      step.push(k);
      position.push(s.promptIds.length + k);
      token.push(s.ids[k]);
      text.push(tokenText ? tokenText(s.ids[k]) : '');
      at.push(i * N + k);
    }
  });
  const pick = (a: Float32Array) => at.map((j) => a[j]);
  const cols: ParquetColumn[] = [
    { name: 'sample', type: 'INT32', data: sample },
    { name: 'step', type: 'INT32', data: step },
    { name: 'position', type: 'INT32', data: position },
    { name: 'token_id', type: 'INT32', data: token },
    { name: 'token_text', type: 'STRING', data: text },
    { name: 'logprob', type: 'DOUBLE', data: pick(trace.logprob) },
    { name: 'entropy', type: 'DOUBLE', data: pick(trace.entropy) },
    { name: 'top1_prob', type: 'DOUBLE', data: pick(trace.top1Prob) },
    { name: 'sampled_logprob', type: 'DOUBLE', data: pick(trace.sampledLogprob) },
    { name: 'sampled_entropy', type: 'DOUBLE', data: pick(trace.sampledEntropy) },
  ];
  for (const [name, { width, data }] of trace.states) {
    const norms = at.map((_, r) => {
      const base = (sample[r] * P + position[r]) * width;
      let ss = 0;
      for (let i = 0; i < width; i++) ss += data[base + i] * data[base + i];
      return Math.sqrt(ss);
    });
    cols.push({ name: `norm.${name}`, type: 'DOUBLE', data: norms });
  }
  return cols;
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
