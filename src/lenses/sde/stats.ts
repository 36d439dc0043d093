/**
 * The statistics the SDE lens's validation and process checks need (papers.md §2.4–2.5):
 * Kolmogorov–Smirnov distances (two-sample and against N(0, 1)) with asymptotic p-values, the
 * maximum mean discrepancy, moments and the Jarque–Bera test, autocorrelation with the
 * Ljung–Box test, and the special functions behind them (log-gamma, regularised incomplete
 * gamma, erfc, normal CDF, the Kolmogorov distribution).
 */
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

/** P(χ²_dof > x). */
export function chiSquareSurvival(x: number, dof: number): number {
  if (!(x > 0)) return 1;
  return gammaQ(dof / 2, x / 2);
}

/** Φ(z), the standard normal CDF. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** Φ⁻¹(p) (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
    -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
    4.374664141464968, 2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

/** erfc(x) = Q(½, x²) for x ≥ 0 and 2 − erfc(−x) otherwise. */
export function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  return gammaQ(0.5, x * x);
}

/** ln Γ(x), x > 0 (Lanczos, g = 7, n = 9; about 15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  const z = x - 1;
  let a = c[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularised upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a): series below a + 1, Lentz continued fraction above. */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lead = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
    }
    return Math.max(0, 1 - sum * Math.exp(lead));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return Math.exp(lead) * h;
}
