/**
 * Path dependence measured with the model (papers.md §4.3 item 4, [proposed]):
 * - escapeTrials: from a sequence that ends in a loop, continue generating with Gaussian noise
 *   N(0, σ²) added to every logit, through the sampler's own code path (decode/sampling.ts), and
 *   count how often the continuation leaves the cycle within a horizon ("brittle attractors").
 * - scoreResponse: the empirical response A_ij = ∂s_i/∂c_j of the scores (logits after the
 *   penalties) to the count of token j in the history, by a finite difference of one occurrence:
 *   token j is inserted right after the first token (BOS) of the context, and the change of
 *   s_i at the next-token position is read off; its asymmetry ‖A − Aᵀ‖_F/‖A + Aᵀ‖_F tells a
 *   potential game (symmetric A, a Lyapunov function exists) from a non-conservative field.
 */
import { stopIds, type Model } from '../../model/model.js';
import {
  applyPenalties,
  nextTokenDistribution,
  sampleToken,
  type SamplingConfig,
} from '../../decode/sampling.js';
import { createRng } from '../../tensor/rng.js';
import { asymmetry, cycleContinuation, type Loop } from './loops.js';

export interface EscapeOptions {
  /** Noise levels; σ = 0 (the sampler's own escape rate) is a baseline worth including. */
  sigmas: readonly number[];
  /** Continuations per σ. */
  trials: number;
  /** Steps to stay in the cycle (at least one period); shortened when the context has no room. */
  horizon: number;
  seed: number;
}

export interface EscapeResult {
  horizon: number;
  by_sigma: {
    sigma: number;
    trials: number;
    escaped: number;
    /** Mean number of generated tokens up to and including the first one off the cycle. */
    mean_steps_to_escape: number | null;
  }[];
}

/**
 * Escape of one loop under logit noise. `context` = prompt + generated ids (ending in `loop`,
 * whose `start` indexes the generated part of length `generated`). Returns null when the
 * context leaves no room for even one more token.
 */
export function escapeTrials(
  model: Model,
  context: readonly number[],
  generated: number,
  loop: Loop,
  sampling: SamplingConfig,
  options: EscapeOptions,
): EscapeResult | null {
  const tf = model.transformer;
  const V = tf.config.vocabSize;
  // The last sampled token needs no forward pass, so `horizon` tokens need horizon − 1 more rows.
  const horizon = Math.min(
    Math.max(options.horizon, loop.period),
    tf.config.seqLen - context.length + 1,
  );
  if (horizon < 1 || context.length > tf.config.seqLen) return null;
  const B = options.sigmas.length * options.trials;
  const cache = tf.newCache(B, Math.min(tf.config.seqLen, context.length + horizon - 1));
  const first = tf.forward(cache, [{ seq: 0, tokens: context }]);
  const logits0 = first.logits.slice(0, V);
  // Every trial continues the same prefix: copy sequence 0's keys and values.
  for (let b = 1; b < B; b++) {
    for (let l = 0; l < tf.config.nLayers; l++) {
      cache.k[b][l].set(cache.k[0][l]);
      cache.v[b][l].set(cache.v[0][l]);
    }
    cache.lengths[b] = cache.lengths[0];
    cache.tokens[b] = [...cache.tokens[0]];
  }
  const stop = new Set(stopIds(model));
  const trials = Array.from({ length: B }, (_, b) => {
    const s = Math.floor(b / options.trials);
    return {
      sigma: options.sigmas[s],
      rng: createRng(mixSeed(options.seed, s, b % options.trials)),
      history: [...context],
      logits: logits0 as Float32Array,
      escapedAt: null as number | null,
    };
  });
  for (let h = 0; h < horizon; h++) {
    const expected = cycleContinuation(loop, generated, h);
    const next: { seq: number; tokens: number[] }[] = [];
    trials.forEach((tr, b) => {
      if (tr.escapedAt !== null) return;
      const z = new Float32Array(tr.logits);
      if (tr.sigma > 0) for (let i = 0; i < V; i++) z[i] += tr.sigma * tr.rng.normal();
      const { probs } = nextTokenDistribution(z, tr.history, sampling);
      const token = sampleToken(probs, sampling.temperature === 0 ? null : tr.rng);
      if (stop.has(token) || token !== expected) {
        tr.escapedAt = h + 1;
        return;
      }
      tr.history.push(token);
      if (h < horizon - 1) next.push({ seq: b, tokens: [token] });
    });
    if (next.length === 0) break;
    const out = tf.forward(cache, next);
    next.forEach((n, r) => {
      trials[n.seq].logits = out.logits.slice(r * V, (r + 1) * V);
    });
  }
  return {
    horizon,
    by_sigma: options.sigmas.map((sigma) => {
      const mine = trials.filter((t) => t.sigma === sigma);
      const steps = mine.flatMap((t) => (t.escapedAt === null ? [] : [t.escapedAt]));
      return {
        sigma,
        trials: mine.length,
        escaped: steps.length,
        mean_steps_to_escape: steps.length ? steps.reduce((a, b) => a + b, 0) / steps.length : null,
      };
    }),
  };
}

export interface ScoreResponse {
  /** The tokens K (rows and columns of A). */
  tokens: number[];
  /** A_ij = s_i(context with one more j) − s_i(context), scores after the penalties; m×m row-major. */
  a: number[];
  /** The same from the raw logits (the model's own response, no penalties). */
  a_model: number[];
  asymmetry: number | null;
  asymmetry_model: number | null;
}

/**
 * A on the `m` most frequent tokens of `generated` (count, then first occurrence); null when
 * fewer than two distinct tokens or no room in the context for one more token.
 */
export function scoreResponse(
  model: Model,
  context: readonly number[],
  generated: readonly number[],
  penalties: Pick<SamplingConfig, 'repetitionPenalty' | 'frequencyPenalty' | 'presencePenalty'>,
  m: number,
): ScoreResponse | null {
  const tf = model.transformer;
  const V = tf.config.vocabSize;
  const tokens = mostFrequent(generated, m);
  if (tokens.length < 2 || context.length + 1 > tf.config.seqLen || context.length < 1) return null;
  const contexts = [[...context], ...tokens.map((j) => [context[0], j, ...context.slice(1)])];
  const cache = tf.newCache(contexts.length, context.length + 1);
  const out = tf.forward(
    cache,
    contexts.map((tokens, seq) => ({ seq, tokens })),
  );
  const raw = contexts.map((_, r) => out.logits.slice(r * V, (r + 1) * V));
  const scores = raw.map((z, r) => {
    const s = new Float32Array(z);
    applyPenalties(s, contexts[r], penalties);
    return s;
  });
  const k = tokens.length;
  const a = new Array<number>(k * k);
  const aModel = new Array<number>(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      a[i * k + j] = scores[j + 1][tokens[i]] - scores[0][tokens[i]];
      aModel[i * k + j] = raw[j + 1][tokens[i]] - raw[0][tokens[i]];
    }
  }
  return {
    tokens,
    a,
    a_model: aModel,
    asymmetry: asymmetry(a, k),
    asymmetry_model: asymmetry(aModel, k),
  };
}

/** The m most frequent ids (ties: earlier first occurrence first). */
export function mostFrequent(ids: readonly number[], m: number): number[] {
  const count = new Map<number, number>();
  const first = new Map<number, number>();
  ids.forEach((id, t) => {
    count.set(id, (count.get(id) ?? 0) + 1);
    if (!first.has(id)) first.set(id, t);
  });
  return [...count.keys()]
    .sort((x, y) => count.get(y)! - count.get(x)! || first.get(x)! - first.get(y)!)
    .slice(0, m);
}

/** A 32-bit seed from a base seed and indices (splitmix-style mixing), for per-trial streams. */
export function mixSeed(seed: number, ...parts: number[]): number {
  let h = seed >>> 0;
  for (const p of parts) {
    h = (h + 0x9e3779b9 + (p >>> 0)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}
