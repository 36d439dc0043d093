/**
 * Descriptive statistics (one copy of each): mean (of all or of the finite values), mean with
 * sample standard deviation, median, linear-interpolated quantile (numpy's default), Pearson's r,
 * average ranks, cosine similarity, the simple least-squares line and Shannon entropy. Checked
 * against numpy / scipy.stats in test/stats/special.test.ts.
 */
import { isConstant } from './guards.js';

/** Arithmetic mean; NaN for no values. */
export function mean(v: ArrayLike<number>): number {
  if (v.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s / v.length;
}

/** Mean and sample standard deviation (divisor n − 1; 0 for a single value). */
export function meanSd(x: ArrayLike<number>): { mean: number; sd: number } {
  const m = mean(x);
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += (x[i] - m) ** 2;
  return { mean: m, sd: x.length > 1 ? Math.sqrt(ss / (x.length - 1)) : 0 };
}

/** Mean of the finite values; null when there are none. */
export function meanFinite(v: ArrayLike<number>): number | null {
  let s = 0;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) continue;
    s += v[i];
    n++;
  }
  return n > 0 ? s / n : null;
}

/** Median (mean of the two middle values for an even count); NaN for no values. */
export function median(v: ArrayLike<number>): number {
  return quantileSorted(Float64Array.from(v).sort(), 0.5);
}

/** Quantile q ∈ [0, 1] of values already sorted ascending, interpolating linearly (numpy's default). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Pearson's r, clamped into [−1, 1]; null when either variable is constant (to rounding: guards.ts isConstant). */
export function pearson(x: readonly number[], y: readonly number[]): number | null {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  if (sxx === 0 || syy === 0 || isConstant(x) || isConstant(y)) return null;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Ranks 1..n, ties sharing their average rank (scipy.stats.rankdata's 'average'). */
export function ranks(v: readonly number[]): number[] {
  const order = v.map((_, i) => i).sort((a, b) => v[a] - v[b]);
  const out = new Array<number>(v.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && v[order[j + 1]] === v[order[i]]) j++;
    for (let k = i; k <= j; k++) out[order[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

/** a·b / (‖a‖‖b‖); NaN when either vector is zero. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : NaN;
}

export interface LinearFit {
  slope: number;
  intercept: number;
  r2: number;
}

/** Ordinary least squares y = intercept + slope·x; r2 = 1 − SS_res/SS_tot (1 when y is constant and fitted exactly). */
export function linearFit(x: readonly number[], y: readonly number[]): LinearFit {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (x[i] - mx) ** 2;
    sxy += (x[i] - mx) * (y[i] - my);
    syy += (y[i] - my) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  const intercept = my - slope * mx;
  let ssRes = 0;
  for (let i = 0; i < n; i++) ssRes += (y[i] - intercept - slope * x[i]) ** 2;
  return { slope, intercept, r2: syy > 0 ? 1 - ssRes / syy : 1 };
}

/** Shannon entropy H(p) = −Σ p_i ln p_i in nats (papers.md §0.1); zero entries contribute 0. */
export function entropy(p: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) h -= p[i] * Math.log(p[i]);
  return h;
}
