/**
 * The generation loop: prefill each prompt, then repeatedly take the last logits, pass them
 * through the caller's logits processor if any (Hugging Face's LogitsProcessor), shape them into
 * the next-token distribution (decode/sampling.ts, Hugging Face's order), sample with the
 * sequence's own seeded RNG, and feed the token back. Sequences of a batch advance together so
 * each step reads the weights once for all of them.
 */
import { LmdynError } from '../errors.js';
import type { Hook } from '../model/hooks.js';
import type { KVCache, Transformer } from '../model/forward.js';
import { createRng, type Rng } from '../tensor/rng.js';
import {
  nextTokenDistribution,
  sampleToken,
  validateSampling,
  type SamplingConfig,
} from './sampling.js';

export interface GenerationRequest {
  promptIds: readonly number[];
  maxTokens: number;
  sampling?: Partial<SamplingConfig>;
  seed?: number;
}

export interface GenerationStep {
  /** Index of the sequence in the batch. */
  seq: number;
  /** 0 for the first generated token. */
  step: number;
  /** Position of the new token in the sequence (prompt length + step). */
  position: number;
  token: number;
  /** The model's raw next-token scores for this step: [vocab]. Reused after the callback. */
  logits: Float32Array;
  /** The distribution the token was drawn from (after penalties, temperature, top-k/p, min-p). */
  probs: Float64Array;
  /** Its scores: the logits after penalties and temperature, −∞ where a warper removed the token. */
  scores: Float32Array;
  /** The kept ids, any order, where the sampler had them (NextTokenDistribution.kept). */
  kept?: Int32Array | null;
  /** Its entropy and top-1 probability where the sampler had them (NextTokenDistribution.stats). */
  stats?: { entropy: number; top1: number } | null;
}

export type FinishReason = 'eos' | 'length' | 'stopped';

/** What a logits processor is told besides the logits and the history. */
export interface LogitsProcessorContext {
  /** Index of the sequence in the batch. */
  seq: number;
  /** 0 for the first generated token. */
  step: number;
  /**
   * The sequence's own seeded RNG, the one the sampler draws from next: a processor that adds
   * noise draws here, so a seed fixes noise and samples together.
   */
  rng: Rng;
}

/**
 * Hugging Face's LogitsProcessor shape (`scores = processor(input_ids, scores)`): called on each
 * step's logits before the penalties, temperature and warpers, with the sequence's history
 * (prompt + generated ids). It changes `logits` in place (a copy: GenerationStep.logits stays the
 * model's own); −∞ removes a token.
 */
export type LogitsProcessor = (
  logits: Float32Array,
  history: readonly number[],
  context: LogitsProcessorContext,
) => void;

export interface GenerationOutput {
  promptIds: number[];
  ids: number[];
  finishReason: FinishReason;
  sampling: SamplingConfig;
  seed: number;
}

export interface GenerateOptions {
  hooks?: readonly Hook[];
  /** Token ids that end a sequence (not included in `ids`). */
  stopIds?: readonly number[];
  /** Called for every generated token; return 'stop' to end that sequence. */
  onStep?: (step: GenerationStep) => void | 'stop';
  /** Called on every step's logits before sampling (see LogitsProcessor). */
  logitsProcessor?: LogitsProcessor;
  /**
   * Every request has the same prompt: prefill it once and copy its keys and values to the
   * other sequences (a lens's trials from one context). Not with hooks, which must see every
   * sequence's prompt.
   */
  sharedPrompt?: boolean;
  /**
   * Also run each sequence's last generated token through the model (its logits are not
   * needed, but hooks then see every position). Used by the trace recorder.
   */
  forwardLast?: boolean;
}

export interface BatchTiming {
  prefillMs: number;
  decodeMs: number;
  generatedTokens: number;
  /** Generated tokens per second over the decode phase (llama2.c's "achieved tok/s"). */
  tokensPerSecond: number;
}

export const DEFAULT_SEED = 42;

/** Generates for every request at once; returns outputs in request order and the timing. */
export function generateBatch(
  tf: Transformer,
  requests: readonly GenerationRequest[],
  options: GenerateOptions = {},
): { outputs: GenerationOutput[]; timing: BatchTiming } {
  const seqLen = tf.config.seqLen;
  const states = requests.map((r, i) => {
    if (r.promptIds.length === 0) {
      throw new LmdynError('bad_argument', `request ${i} has an empty prompt (add BOS)`);
    }
    if (!(Number.isInteger(r.maxTokens) && r.maxTokens >= 0)) {
      throw new LmdynError(
        'bad_argument',
        `max tokens must be a whole number ≥ 0, got ${r.maxTokens}`,
      );
    }
    if (r.promptIds.length > seqLen) {
      throw new LmdynError(
        'context_overflow',
        `the prompt has ${r.promptIds.length} tokens; the model's context holds ${seqLen}`,
      );
    }
    const seed = r.seed ?? DEFAULT_SEED;
    // Never run past the context: the last generated token needs no forward pass unless
    // forwardLast asks for it.
    const room = seqLen - r.promptIds.length + (options.forwardLast ? 0 : 1);
    const budget = Math.min(r.maxTokens, room);
    return {
      sampling: validateSampling(r.sampling ?? {}),
      seed,
      rng: createRng(seed) as Rng,
      history: [...r.promptIds],
      ids: [] as number[],
      budget,
      done: budget <= 0,
      finish: 'length' as FinishReason,
    };
  });
  const shared = options.sharedPrompt === true && requests.length > 1;
  if (options.sharedPrompt) checkSharedPrompt(requests, options);
  const stop = new Set(options.stopIds ?? []);
  const extra = options.forwardLast ? 0 : 1;
  const capacity = Math.min(
    seqLen,
    Math.max(1, ...requests.map((r) => r.promptIds.length + Math.max(0, r.maxTokens - extra))),
  );
  const cache = tf.newCache(requests.length, capacity);
  const t0 = performance.now();
  let out = tf.forward(
    cache,
    (shared ? states.slice(0, 1) : states).map((s, seq) => ({ seq, tokens: s.history })),
    { hooks: options.hooks },
  );
  if (shared) copySequence(cache, 0, requests.length, tf.config.nLayers);
  const t1 = performance.now();
  let active = states.map((_, i) => i);
  let rowOf = (row: number) => (shared ? 0 : row); // the prefill has one row when shared
  let generated = 0;
  let decodedRows = 0; // tokens forwarded after the prefill
  const tail: { seq: number; tokens: number[] }[] = []; // last tokens, for forwardLast
  const vocab = tf.config.vocabSize;
  while (true) {
    const next: { seq: number; tokens: number[] }[] = [];
    active.forEach((seq, row) => {
      const s = states[seq];
      if (s.done) return;
      const r = rowOf(row);
      const logits = out.logits.subarray(r * vocab, (r + 1) * vocab);
      let shaped = logits;
      if (options.logitsProcessor) {
        shaped = logits.slice();
        options.logitsProcessor(shaped, s.history, { seq, step: s.ids.length, rng: s.rng });
      }
      const { probs, scores, kept, stats } = nextTokenDistribution(shaped, s.history, s.sampling);
      // greedy draws nothing, so a processor's draws are the sequence's whole stream
      const token = sampleToken(probs, s.sampling.temperature === 0 ? null : s.rng);
      if (stop.has(token)) {
        s.done = true;
        s.finish = 'eos';
        return;
      }
      const step = s.ids.length;
      s.ids.push(token);
      s.history.push(token);
      generated++;
      const verdict = options.onStep?.({
        seq,
        step,
        position: s.history.length - 1,
        token,
        logits,
        probs,
        scores,
        kept,
        stats,
      });
      if (verdict === 'stop') {
        s.done = true;
        s.finish = 'stopped';
        tail.push({ seq, tokens: [token] });
      } else if (s.ids.length >= s.budget) {
        s.done = true;
        tail.push({ seq, tokens: [token] });
      } else {
        next.push({ seq, tokens: [token] });
      }
    });
    if (next.length === 0) break;
    out = tf.forward(cache, next, { hooks: options.hooks });
    decodedRows += next.length;
    active = next.map((n) => n.seq);
    rowOf = (row) => row;
  }
  if (options.forwardLast && tail.length > 0) {
    tf.forward(cache, tail, { hooks: options.hooks, logits: 'none' });
  }
  const t2 = performance.now();
  const decodeMs = t2 - t1;
  return {
    outputs: states.map((s, i) => ({
      promptIds: [...requests[i].promptIds],
      ids: s.ids,
      finishReason: s.finish,
      sampling: s.sampling,
      seed: s.seed,
    })),
    timing: {
      prefillMs: t1 - t0,
      decodeMs,
      generatedTokens: generated,
      tokensPerSecond:
        decodedRows > 0 ? (decodedRows / decodeMs) * 1000 : (generated / (t2 - t0)) * 1000,
    },
  };
}

function checkSharedPrompt(requests: readonly GenerationRequest[], options: GenerateOptions): void {
  if (options.hooks?.length) {
    throw new LmdynError('bad_argument', 'sharedPrompt cannot be combined with hooks');
  }
  const first = requests[0]?.promptIds ?? [];
  requests.forEach((r, i) => {
    if (r.promptIds.length !== first.length || r.promptIds.some((id, t) => id !== first[t])) {
      throw new LmdynError(
        'bad_argument',
        `sharedPrompt: request ${i}'s prompt differs from request 0's`,
      );
    }
  });
}

/** Copies sequence `from`'s keys, values, length and recorded tokens to sequences from + 1 … count − 1. */
function copySequence(cache: KVCache, from: number, count: number, layers: number): void {
  for (let b = from + 1; b < count; b++) {
    for (let l = 0; l < layers; l++) {
      cache.k[b][l].set(cache.k[from][l]);
      cache.v[b][l].set(cache.v[from][l]);
    }
    cache.lengths[b] = cache.lengths[from];
    cache.tokens[b] = [...cache.tokens[from]];
  }
}
