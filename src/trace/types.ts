/**
 * A Trace: what happened, token by token and layer by layer, in one decoding configuration.
 * In memory it is plain typed arrays; on disk it is trace.json + trace.safetensors +
 * steps.parquet (see trace/store.ts), readable from Python without lmdyn.
 */
import type { SamplingConfig } from '../decode/sampling.js';
import type { FinishReason } from '../decode/generate.js';

export type LogitsMode = { kind: 'none' } | { kind: 'topk'; k: number } | { kind: 'full' };

export interface TraceSample {
  prompt: string;
  promptIds: number[];
  /** Generated (or teacher-forced) ids, without the prompt. */
  ids: number[];
  /** Decoded prompt plus continuation. */
  text: string;
  finishReason: FinishReason | 'teacher_forced';
  seed: number;
}

export interface TraceMeta {
  lmdyn: string;
  model: {
    spec: string;
    path: string;
    hubId: string | null;
    format: string;
    architecture: string;
    sourceArchitecture: string;
    sha256: string | null;
    dim: number;
    layers: number;
    vocabSize: number;
  };
  tokenizer: { kind: string; vocabSize: number; bosId: number | null; eosId: number | null };
  mode: 'sample' | 'teacher_forced';
  decoding: SamplingConfig;
  maxTokens: number;
  seed: number;
  hooks: string[];
  logits: LogitsMode;
  /** ln_final.hook_normalized is post-final-norm; blocks.{L-1}.hook_resid_post is pre-norm. */
  notes: string[];
}

export interface Trace {
  meta: TraceMeta;
  samples: TraceSample[];
  /** Longest prompt + continuation over the samples. */
  positions: number;
  /** Longest continuation over the samples. */
  steps: number;
  /** Per hook: [samples, positions, width], NaN past a sample's end. */
  states: Map<string, { width: number; data: Float32Array }>;
  /** [samples, positions], −1 past a sample's end. */
  tokens: Int32Array;
  /** Per generated step, under the model's own distribution (temperature 1, no penalties): [samples, steps], NaN padded. */
  logprob: Float32Array;
  entropy: Float32Array;
  /** Probability of the most likely token under the model's own distribution. */
  top1Prob: Float32Array;
  /** Under the distribution actually sampled from (after penalties, temperature, top-k/p). */
  sampledLogprob: Float32Array;
  sampledEntropy: Float32Array;
  /** Top-k logits per step: [samples, steps, k] values and ids; or all logits [samples, steps, vocab]. */
  topkValues: Float32Array | null;
  topkIds: Int32Array | null;
  fullLogits: Float32Array | null;
}

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
