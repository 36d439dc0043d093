/**
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
import { commitFolderSync, requireCommitted, type Verify } from '../io/commit.js';
import { writeParquet, type ParquetColumn } from '../io/parquet.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import type { Trace, TraceMeta, TraceSample } from './types.js';

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
  const manifest = join(root, 'trace.json');
  let json: TraceJson;
  try {
    json = JSON.parse(readFileSync(manifest, 'utf8')) as TraceJson;
  } catch {
    throw new LmdynError('bad_format', `${manifest} is not valid JSON`);
  }
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
  const states = new Map<string, { width: number; data: Float32Array }>();
  for (const name of json.meta.hooks) {
    const t = tensors.get(name);
    if (!t) continue;
    const data = f32(name);
    requireFiniteStates(root, name, data, t.shape[2], json.positions, lengths(json.samples));
    states.set(name, { width: t.shape[2], data });
  }
  const lm = json.meta.logits;
  return {
    meta: json.meta,
    samples: json.samples.map(fromSampleJson),
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

/** Each sample's length in positions (prompt and generated tokens). */
export function lengths(samples: readonly { prompt_ids: number[]; ids: number[] }[]): number[] {
  return samples.map((s) => s.prompt_ids.length + s.ids.length);
}

/**
 * Refuses states [samples, positions, width] holding NaN or ±∞ within a sample's length (past
 * it they are NaN by design): a lens would read them as numbers, as generation would not.
 */
export function requireFiniteStates(
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
