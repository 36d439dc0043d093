/**
 * Correlation of two variables (papers.md §5.9 item 2 and the DMET and gravity trend tests):
 * Pearson r with R² of the simple linear fit, Spearman ρ (average ranks for ties), and two-sided
 * p-values from Student's t with n − 2 degrees of freedom, as scipy.stats.pearsonr / spearmanr
 * report.
 */
import { pearson, ranks } from './describe.js';
import { clampProbability } from './guards.js';
import { regularizedBeta } from './special.js';

export interface Correlation {
  n: number;
  pearsonR: number | null;
  pearsonP: number | null;
  r2: number | null;
  spearmanRho: number | null;
  spearmanP: number | null;
}

/** Pearson and Spearman over the pairs where both values are finite (null below three pairs). */
export function correlate(x: readonly number[], y: readonly number[]): Correlation {
  if (x.length !== y.length) throw new Error('correlate: x and y differ in length'); // caller invariant
  const keep = x.map((_, i) => i).filter((i) => Number.isFinite(x[i]) && Number.isFinite(y[i]));
  const xs = keep.map((i) => x[i]);
  const ys = keep.map((i) => y[i]);
  const n = xs.length;
  const r = n >= 3 ? pearson(xs, ys) : null;
  const rho = n >= 3 ? pearson(ranks(xs), ranks(ys)) : null;
  return {
    n,
    pearsonR: r,
    pearsonP: r === null ? null : correlationPValue(r, n),
    r2: r === null ? null : r * r,
    spearmanRho: rho,
    spearmanP: rho === null ? null : correlationPValue(rho, n),
  };
}

/** Two-sided p of a correlation r over n pairs: t = r√((n−2)/(1−r²)), p = I_{ν/(ν+t²)}(ν/2, ½). */
export function correlationPValue(r: number | null, n: number): number | null {
  if (r === null || n < 3) return null;
  const nu = n - 2;
  if (Math.abs(r) >= 1) return 0;
  const t2 = (r * r * nu) / (1 - r * r);
  return clampProbability(regularizedBeta(nu / (nu + t2), nu / 2, 0.5));
}
