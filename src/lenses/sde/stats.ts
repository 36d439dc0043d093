/**
 * The statistics the SDE lens's validation and process checks need (papers.md §2.4–2.5):
 * Kolmogorov–Smirnov distances (two-sample and against N(0, 1)) with asymptotic p-values, the
 * maximum mean discrepancy, moments and the Jarque–Bera test, autocorrelation with the
 * Ljung–Box test, and the Kolmogorov distribution behind the KS p-values; the other special
 * functions (χ² tail, normal CDF) are the shared ones in stats/special.ts.
 */
import { chiSquareSurvival, normalCdf } from '../../stats/special.js';
import type { Rng } from '../../tensor/rng.js';

export interface KsResult {
  /** sup |F₁ − F₂|. */
  d: number;
  /** Asymptotic p-value (Kolmogorov distribution with Stephens' small-sample correction). */
  p: number;
  n: number;
  m: number;
}

/** Two-sample Kolmogorov–Smirnov distance between the empirical CDFs of a and b. */
export function ksTwoSample(a: ArrayLike<number>, b: ArrayLike<number>): KsResult {
  const x = Float64Array.from(a).sort();
  const y = Float64Array.from(b).sort();
  const n = x.length;
  const m = y.length;
  if (n === 0 || m === 0) return { d: NaN, p: NaN, n, m };
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    const v = Math.min(x[i], y[j]);
    while (i < n && x[i] <= v) i++;
    while (j < m && y[j] <= v) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  const ne = Math.sqrt((n * m) / (n + m));
  return { d, p: kolmogorovSurvival((ne + 0.12 + 0.11 / ne) * d), n, m };
}

/** One-sample KS distance of a from N(0, 1). */
export function ksNormal(a: ArrayLike<number>): KsResult {
  const x = Float64Array.from(a).sort();
  const n = x.length;
  if (n === 0) return { d: NaN, p: NaN, n, m: 0 };
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = normalCdf(x[i]);
    d = Math.max(d, (i + 1) / n - f, f - i / n);
  }
  const sn = Math.sqrt(n);
  return { d, p: kolmogorovSurvival((sn + 0.12 + 0.11 / sn) * d), n, m: 0 };
}

/** Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²} (and its dual series for small λ). */
export function kolmogorovSurvival(lambda: number): number {
  if (!(lambda > 0)) return 1;
  if (lambda < 1.18) {
    // P(λ) = √(2π)/λ Σ_{j≥1} exp(−(2j − 1)²π²/(8λ²))
    const y = Math.exp(-(Math.PI * Math.PI) / (8 * lambda * lambda));
    let s = 0;
    for (let j = 1; j < 50; j++) {
      const term = y ** ((2 * j - 1) ** 2);
      s += term;
      if (term < 1e-17 * s) break;
    }
    return Math.min(1, Math.max(0, 1 - (Math.sqrt(2 * Math.PI) / lambda) * s));
  }
  let s = 0;
  for (let j = 1; j < 100; j++) {
    const term = Math.exp(-2 * j * j * lambda * lambda);
    s += (j % 2 === 1 ? 1 : -1) * term;
    if (term < 1e-17) break;
  }
  return Math.min(1, Math.max(0, 2 * s));
}

export interface MmdResult {
  /** Unbiased MMD² with a Gaussian kernel exp(−‖x − y‖² / (2h²)). */
  mmd2: number;
  /** Bandwidth h: median pairwise distance of the pooled sample. */
  bandwidth: number;
  /** Permutation p-value (share of label permutations with MMD² ≥ the observed). */
  p: number;
  permutations: number;
  n: number;
  m: number;
}

/** MMD between samples a [n, k] and b [m, k] (rows are points). */
export function mmd(
  a: Float64Array,
  n: number,
  b: Float64Array,
  m: number,
  k: number,
  rng: Rng,
  permutations = 200,
): MmdResult {
  const N = n + m;
  if (n < 2 || m < 2) return { mmd2: NaN, bandwidth: NaN, p: NaN, permutations: 0, n, m };
  const pooled = new Float64Array(N * k);
  pooled.set(a.subarray(0, n * k));
  pooled.set(b.subarray(0, m * k), n * k);
  const d2 = new Float64Array(N * N);
  const dists: number[] = [];
  for (let i = 0; i < N; i++) {
    for (let j = i + 1; j < N; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += (pooled[i * k + c] - pooled[j * k + c]) ** 2;
      d2[i * N + j] = s;
      d2[j * N + i] = s;
      dists.push(Math.sqrt(s));
    }
  }
  dists.sort((x, y) => x - y);
  const h = dists[Math.floor(dists.length / 2)] || 1;
  const kern = new Float64Array(N * N);
  for (let i = 0; i < N * N; i++) kern[i] = Math.exp(-d2[i] / (2 * h * h));
  const stat = (label: Uint8Array): number => {
    let xx = 0;
    let yy = 0;
    let xy = 0;
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < N; j++) {
        if (i === j) continue;
        const v = kern[i * N + j];
        if (label[i] === 0 && label[j] === 0) xx += v;
        else if (label[i] === 1 && label[j] === 1) yy += v;
        else xy += v;
      }
    }
    return xx / (n * (n - 1)) + yy / (m * (m - 1)) - xy / (n * m);
  };
  const label = new Uint8Array(N);
  for (let i = n; i < N; i++) label[i] = 1;
  const observed = stat(label);
  let ge = 0;
  const perm = Uint8Array.from(label);
  for (let r = 0; r < permutations; r++) {
    for (let i = N - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    if (stat(perm) >= observed) ge++;
  }
  return { mmd2: observed, bandwidth: h, p: (ge + 1) / (permutations + 1), permutations, n, m };
}

export interface Moments {
  n: number;
  mean: number;
  /** Population variance (divisor n). */
  variance: number;
  skewness: number;
  /** Excess kurtosis (0 for a normal law). */
  kurtosis: number;
  /** Jarque–Bera statistic n/6·(S² + K²/4) and its χ²₂ p-value e^{−JB/2}. */
  jarqueBera: number;
  jarqueBeraP: number;
}

export function moments(v: ArrayLike<number>): Moments {
  const n = v.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += v[i] / n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const e = v[i] - mean;
    m2 += (e * e) / n;
    m3 += (e * e * e) / n;
    m4 += (e * e * e * e) / n;
  }
  const skewness = m3 / m2 ** 1.5;
  const kurtosis = m4 / (m2 * m2) - 3;
  const jb = (n / 6) * (skewness * skewness + (kurtosis * kurtosis) / 4);
  return {
    n,
    mean,
    variance: m2,
    skewness,
    kurtosis,
    jarqueBera: jb,
    jarqueBeraP: Math.exp(-jb / 2),
  };
}

export interface Autocorrelation {
  /** r_ℓ for ℓ = 1 … lags, pooled over series (each series centred on the pooled mean). */
  r: number[];
  n: number;
  /** Ljung–Box Q = n(n + 2) Σ r_ℓ²/(n − ℓ) and its χ²_lags p-value. */
  ljungBox: number;
  ljungBoxP: number;
  /** ±1.96/√n: the white-noise 95% band. */
  band: number;
}

/** Autocorrelation of several series (lags never cross from one series into the next). */
export function autocorrelation(
  series: readonly ArrayLike<number>[],
  lags: number,
): Autocorrelation {
  let n = 0;
  let mean = 0;
  for (const s of series) {
    for (let i = 0; i < s.length; i++) mean += s[i];
    n += s.length;
  }
  mean /= Math.max(1, n);
  let c0 = 0;
  for (const s of series) for (let i = 0; i < s.length; i++) c0 += (s[i] - mean) ** 2;
  const r: number[] = [];
  for (let l = 1; l <= lags; l++) {
    let c = 0;
    for (const s of series)
      for (let i = 0; i + l < s.length; i++) c += (s[i] - mean) * (s[i + l] - mean);
    r.push(c0 > 0 ? c / c0 : NaN);
  }
  let q = 0;
  r.forEach((v, i) => (q += (v * v) / (n - i - 1)));
  q *= n * (n + 2);
  return {
    r,
    n,
    ljungBox: q,
    ljungBoxP: chiSquareSurvival(q, lags),
    band: 1.96 / Math.sqrt(Math.max(1, n)),
  };
}
