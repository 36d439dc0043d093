/**
 * Temperature and diversity (papers.md §3.3 "Temperature / diversity", §3.4 experiment 5,
 * [proposed]): over a grid of T, the entropy H(P_T) (non-decreasing in T), the effective
 * support exp(H), the escape probability 1 − P_T(B) from the deepest well B (the basin fixed at
 * the analysis temperature) and 1 − p_max, and distinct-n of sampled continuations.
 */
import { stopIds, type Model } from '../../model/model.js';
import { generateBatch } from '../../decode/generate.js';
import { boltzmann, entropyOf } from './field.js';

export const DEFAULT_TEMPERATURES: readonly number[] = [0.2, 0.4, 0.6, 0.8, 1, 1.2, 1.5, 2];

export interface TemperatureRow {
  T: number;
  entropy: number;
  effective_support: number;
  p_max: number;
  /** 1 − P_T(B), B the basin of the analysis temperature. */
  escape_basin: number;
  /** 1 − p_max(T): escape from the single deepest token. */
  escape_top1: number;
  /** |distinct word n-grams| / |word n-grams| over the samples pooled (null: no n-gram). */
  distinct_1: number | null;
  distinct_2: number | null;
  /** Generated tokens over the samples (fewer than samples × max tokens when EOS came). */
  generated_tokens: number;
}

export interface SamplingPlan {
  grid: readonly number[];
  samples: number;
  maxTokens: number;
  /** Sample s at grid index t uses seed + t·samples + s (the same seeds for every prompt). */
  seed: number;
}

/** The rows of one prompt: Φ its potential, `basinIds` the deepest well at the analysis T. */
export function temperatureRows(
  model: Model,
  promptIds: readonly number[],
  phi: Float64Array,
  basinIds: readonly number[],
  plan: SamplingPlan,
): TemperatureRow[] {
  const requests = plan.grid.flatMap((T, t) =>
    Array.from({ length: plan.samples }, (_, s) => ({
      promptIds,
      maxTokens: plan.maxTokens,
      sampling: { temperature: T },
      seed: plan.seed + t * plan.samples + s,
    })),
  );
  const outputs =
    plan.samples > 0 && plan.maxTokens > 0
      ? generateBatch(model.transformer, requests, { stopIds: stopIds(model) }).outputs
      : [];
  return plan.grid.map((T, t) => {
    const p = boltzmann(phi, T);
    const h = entropyOf(p);
    let pMax = 0;
    for (const x of p) pMax = Math.max(pMax, x);
    let inBasin = 0;
    for (const v of basinIds) inBasin += p[v];
    const mine = outputs.slice(t * plan.samples, (t + 1) * plan.samples);
    const words = mine.map((o) => wordsOf(model.tokenizer.decode(o.ids)));
    return {
      T,
      entropy: h,
      effective_support: Math.exp(h),
      p_max: pMax,
      escape_basin: Math.max(0, 1 - inBasin),
      escape_top1: 1 - pMax,
      distinct_1: distinctN(words, 1),
      distinct_2: distinctN(words, 2),
      generated_tokens: mine.reduce((a, o) => a + o.ids.length, 0),
    };
  });
}

/** Words as DMET's text evaluator takes them (papers.md §1.5): `\b\w+\b`, lowercased. */
export function wordsOf(text: string): string[] {
  return text.toLowerCase().match(/\b\w+\b/g) ?? [];
}

/** distinct-n = |unique n-grams| / |n-grams|, n-grams taken within each text, pooled. */
export function distinctN(texts: readonly (readonly string[])[], n: number): number | null {
  const seen = new Set<string>();
  let total = 0;
  for (const w of texts) {
    for (let i = 0; i + n <= w.length; i++) {
      seen.add(w.slice(i, i + n).join(' '));
      total++;
    }
  }
  return total > 0 ? seen.size / total : null;
}
