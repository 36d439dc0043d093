/**
 * Loops in generated token sequences (papers.md §4.3 item 4, [proposed]): a sequence *ends in a
 * loop* when its generated ids end in a repeated n-gram cycle. Pure functions on token ids; the
 * model-dependent measurements (escape under logit noise, score response) are in dynamics.ts.
 *
 * Definition used here: for a period P, the periodic suffix is the longest suffix with
 * ids[t] = ids[t + P] throughout; its length L counts the first cycle too. The sequence loops
 * with period P when L ≥ max(minRepeats·P, minSpan); the reported period is the smallest such P
 * (if a suffix is P-periodic and its block has a smaller period d, the suffix is d-periodic too,
 * so the smallest P is the cycle's minimal period). The loop starts (time to loop) at step N − L.
 * A sequence can end mid-cycle (ABCABCAB loops with period 3).
 */
import { median } from '../../stats/describe.js';

export interface LoopOptions {
  /** The cycle must occur at least this many times in a row at the end (default 3). */
  minRepeats: number;
  /** … and the periodic suffix must be at least this many tokens long (default 6). */
  minSpan: number;
  /** Longest period searched (default 128; stories260K's loops are sentence cycles of 20–60 tokens). */
  maxPeriod: number;
}

export const DEFAULT_LOOP_OPTIONS: Readonly<LoopOptions> = Object.freeze({
  minRepeats: 3,
  minSpan: 6,
  maxPeriod: 128,
});

export interface Loop {
  /** Minimal period of the cycle (tokens). */
  period: number;
  /** Index (0-based, in the generated ids) of the first token of the periodic suffix: the time to loop. */
  start: number;
  /** Length of the periodic suffix. */
  span: number;
  /** span / period (may be fractional: the sequence can end mid-cycle). */
  repeats: number;
  /** The cycle as it first appears at `start`: ids[start .. start + period). */
  cycle: number[];
}

/** The loop the sequence ends in, or null (see the header for the definition). */
export function detectLoop(
  ids: ArrayLike<number>,
  options: Partial<LoopOptions> = {},
): Loop | null {
  const o = { ...DEFAULT_LOOP_OPTIONS, ...options };
  const n = ids.length;
  const maxP = Math.min(o.maxPeriod, Math.floor(n / Math.max(1, o.minRepeats)));
  for (let p = 1; p <= maxP; p++) {
    let t = n - 1 - p;
    while (t >= 0 && ids[t] === ids[t + p]) t--;
    const span = n - 1 - t; // p + the number of matched positions
    if (span >= Math.max(o.minRepeats * p, o.minSpan)) {
      const start = n - span;
      return {
        period: p,
        start,
        span,
        repeats: span / p,
        cycle: Array.from({ length: p }, (_, j) => ids[start + j]),
      };
    }
  }
  return null;
}

/** The token the cycle predicts `ahead` steps after the end of `ids` (ahead = 0: the next token). */
export function cycleContinuation(loop: Loop, length: number, ahead: number): number {
  return loop.cycle[(length - loop.start + ahead) % loop.period];
}

export interface LoopSample {
  ids: readonly number[];
  finishReason: string;
}

export interface LoopSummary {
  samples: number;
  /**
   * Distinct generated sequences (same ids and finish reason). Greedy decoding repeats one
   * sequence for every seed; copies are not independent observations, so every count, rate and
   * interval below is over distinct sequences.
   */
  distinct_sequences: number;
  /** Distinct sequences that ended with a stop token: they end, so they do not end in a loop. */
  ended_by_stop: number;
  /** Distinct sequences that end in a loop. */
  loops: number;
  /** Samples (copies included) that end in a loop, for reference only. */
  loops_in_samples: number;
  /** loops / distinct_sequences. */
  loop_rate: number;
  /** Wilson score interval (95 %) of the loop rate, n = distinct sequences. */
  loop_rate_ci95: [number, number];
  /** period → number of distinct looping sequences. */
  periods: Record<string, number>;
  mean_period: number | null;
  time_to_loop: { mean: number; median: number; min: number; max: number } | null;
}

/**
 * Loop statistics of a set of sequences: loop rate (fraction of distinct sequences ending in a
 * cycle), periods, time to loop. A sequence that ended with a stop token is counted as not
 * looping. `loops[i]` is sample i's loop (copies included); `first[i]` whether sample i is the
 * first occurrence of its sequence.
 */
export function loopSummary(
  samples: readonly LoopSample[],
  options: Partial<LoopOptions> = {},
): {
  summary: LoopSummary;
  loops: (Loop | null)[];
  first: boolean[];
} {
  const loops = samples.map((s) => (s.finishReason === 'eos' ? null : detectLoop(s.ids, options)));
  const seen = new Set<string>();
  const first = samples.map((s) => {
    const key = `${s.finishReason}:${Array.from(s.ids).join(',')}`;
    const fresh = !seen.has(key);
    seen.add(key);
    return fresh;
  });
  const distinct = samples.map((_, i) => i).filter((i) => first[i]);
  const found = distinct.flatMap((i) => (loops[i] ? [loops[i]!] : []));
  const periods: Record<string, number> = {};
  for (const l of found) periods[String(l.period)] = (periods[String(l.period)] ?? 0) + 1;
  const starts = found.map((l) => l.start).sort((a, b) => a - b);
  const n = distinct.length;
  return {
    loops,
    first,
    summary: {
      samples: samples.length,
      distinct_sequences: n,
      ended_by_stop: distinct.filter((i) => samples[i].finishReason === 'eos').length,
      loops: found.length,
      loops_in_samples: loops.filter((l) => l !== null).length,
      loop_rate: n > 0 ? found.length / n : NaN,
      loop_rate_ci95: wilsonInterval(found.length, n),
      periods,
      mean_period: found.length ? found.reduce((a, l) => a + l.period, 0) / found.length : null,
      time_to_loop: found.length
        ? {
            mean: starts.reduce((a, b) => a + b, 0) / starts.length,
            median: median(starts),
            min: starts[0],
            max: starts[starts.length - 1],
          }
        : null,
    },
  };
}

/** Wilson score interval for k successes in n trials at z = 1.959964 (95 %). */
export function wilsonInterval(k: number, n: number, z = 1.959963984540054): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/**
 * Asymmetry ‖A − Aᵀ‖_F / ‖A + Aᵀ‖_F of a square matrix (row-major, m×m), papers.md §4.3 item 4:
 * 0 for a symmetric A (a potential game), growing without bound as A nears an antisymmetric one
 * (null when A + Aᵀ = 0); an m×m matrix of iid entries gives about √((m − 1)/(m + 1)).
 */
export function asymmetry(a: ArrayLike<number>, m: number): number | null {
  let minus = 0;
  let plus = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      minus += (a[i * m + j] - a[j * m + i]) ** 2;
      plus += (a[i * m + j] + a[j * m + i]) ** 2;
    }
  }
  return plus > 0 ? Math.sqrt(minus / plus) : null;
}
