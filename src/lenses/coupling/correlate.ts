/**
 * Correlation of a per-model quantity with a per-model score (papers.md §5.9 item 2): Pearson r
 * with R² of the simple linear fit, Spearman ρ (average ranks for ties), and two-sided p-values
 * from Student's t with n − 2 degrees of freedom, as scipy.stats.pearsonr / spearmanr report.
 */
import { clampProbability, isConstant } from '../../stats/guards.js';

export interface Correlation {
  n: number;
  pearsonR: number | null;
  pearsonP: number | null;
  r2: number | null;
  spearmanRho: number | null;
  spearmanP: number | null;
}

export function correlate(x: readonly number[], y: readonly number[]): Correlation {
  if (x.length !== y.length) throw new Error('correlate: x and y differ in length');
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

/** Pearson's r; null when either variable is constant (to rounding: stats/guards.ts isConstant). */
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

/** Ranks 1..n, ties sharing their average rank. */
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

/** Two-sided p of a correlation r over n pairs: t = r√((n−2)/(1−r²)), p = I_{ν/(ν+t²)}(ν/2, ½). */
export function correlationPValue(r: number | null, n: number): number | null {
  if (r === null || n < 3) return null;
  const nu = n - 2;
  if (Math.abs(r) >= 1) return 0;
  const t2 = (r * r * nu) / (1 - r * r);
  return clampProbability(regularizedBeta(nu / (nu + t2), nu / 2, 0.5));
}

/** I_x(a, b) by the continued fraction of Numerical Recipes §6.4 (modified Lentz). */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(
    logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x),
  );
  if (x > (a + 1) / (a + b + 2)) return 1 - regularizedBeta(1 - x, b, a);
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let f = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    f *= d * c;
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return (front * f) / a;
}

/** ln Γ(z) for z > 0 (Lanczos, g = 7, n = 9). */
function logGamma(z: number): number {
  const g = 7;
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - logGamma(1 - z);
  const x = z - 1;
  let s = c[0];
  for (let i = 1; i < g + 2; i++) s += c[i] / (x + i);
  const t = x + g + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(s);
}
