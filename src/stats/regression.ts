/**
 * Linear regression for pooled analyses (papers.md §1.6 and §1.9 step 5): ordinary least squares,
 * OLS with one fixed effect per group (the within estimator), and the linear mixed model with a
 * random intercept per group — statsmodels' `MixedLM.from_formula("y ~ x1 + …", groups=g).fit()`
 * (REML, Wald z-tests), fitted here by profiling the likelihood over λ = τ²/σ².
 *
 * Random-intercept algebra: in group g (size n_g) Cov(y_g) = σ²(I + λ·11ᵀ), whose inverse square
 * root subtracts θ_g·mean_g from each entry, θ_g = 1 − 1/√(1 + n_g λ). After that transform the
 * GLS fit is OLS, and |I + λ11ᵀ| = 1 + n_g λ, so each λ costs one small OLS.
 *
 * Standard errors of the mixed model are statsmodels' (`MixedLMResults.bse_fe`): the inverse of
 * the observed information of the profiled REML likelihood in (β, λ), β–λ cross terms included
 * (`MixedLM.hessian`), not the GLS covariance σ²(XᵀV⁻¹X)⁻¹, which ignores the uncertainty in λ
 * and is smaller; the GLS values are kept beside them as `seGls`.
 */
import { LmdynError } from '../errors.js';
import { clampProbability } from './guards.js';
import { erfc, regularizedBeta } from './special.js';

export { erfc }; // the one copy lives in tensor/special.ts (the GELU kernel uses it too)
export { clampProbability, isConstant } from './guards.js';

export interface CoefficientTest {
  name: string;
  estimate: number;
  se: number;
  /** Mixed model only: the GLS standard error √(σ²[(XᵀV⁻¹X)⁻¹]_jj) at the REML λ, for comparison. */
  seGls?: number;
  /** t (OLS, fixed effects) or z (mixed model). */
  statistic: number;
  /** Two-sided p-value: Student t with `df` (OLS, fixed effects) or standard normal (mixed). */
  p: number;
}

export interface OlsFit {
  n: number;
  df: number;
  coefficients: CoefficientTest[];
  /** Residual variance RSS / df. */
  sigma2: number;
  rss: number;
  r2: number;
}

export interface FixedEffectsFit extends OlsFit {
  groups: number;
}

export interface MixedFit {
  n: number;
  groups: number;
  method: 'reml';
  /**
   * How `se` was computed: 'statsmodels observed information' (the inverse Hessian of the profiled
   * REML likelihood in (β, λ), as statsmodels MixedLM), or 'gls' when that Hessian is not negative
   * definite at the optimum (then statsmodels warns and its values are not usable either).
   */
  covariance: 'statsmodels observed information' | 'gls';
  coefficients: CoefficientTest[];
  /** Residual variance σ² and random-intercept variance τ² (REML). */
  sigma2: number;
  groupVariance: number;
  /** REML log-likelihood at the optimum (profiled over σ²). */
  logLikReml: number;
  /** Maximum (ML) log-likelihood and its AIC with p + 2 parameters (β, σ², τ²). */
  logLikMl: number;
  aicMl: number;
}

/** Columns as arrays of equal length; the design is [n, p] row-major when assembled. */
export type Columns = readonly (readonly number[])[];

/**
 * OLS of y on the given columns (include an intercept column yourself). Null when XᵀX is
 * singular or there are no residual degrees of freedom.
 */
export function ols(
  y: readonly number[],
  columns: Columns,
  names: readonly string[],
): OlsFit | null {
  const n = y.length;
  const p = columns.length;
  const x = design(columns, n);
  const fit = leastSquares(x, Float64Array.from(y), n, p);
  const df = n - p;
  if (!fit || df < 1) return null;
  return finishOls(fit, x, Float64Array.from(y), n, df, names);
}

/**
 * OLS with one fixed intercept per group (y_i = α_g + x_iᵀβ + ε): both sides are centred within
 * groups and regressed without intercept; df = n − G − p, as the dummy-variable regression.
 */
export function fixedEffectsRegression(
  y: readonly number[],
  columns: Columns,
  groups: readonly (string | number)[],
  names: readonly string[],
): FixedEffectsFit | null {
  const n = y.length;
  const p = columns.length;
  const g = groupIndex(groups);
  const yc = demean(Float64Array.from(y), g.of, g.count, 1);
  const x = demean(design(columns, n), g.of, g.count, p);
  const fit = leastSquares(x, yc, n, p);
  const df = n - g.count - p;
  if (!fit || df < 1) return null;
  return { ...finishOls(fit, x, yc, n, df, names), groups: g.count };
}

/**
 * Linear mixed model y = Xβ + u_g + ε, u_g ~ N(0, τ²), ε ~ N(0, σ²), with an intercept added
 * first (named "Intercept"), fitted by REML as statsmodels MixedLM does; Wald z-tests.
 * Null when the design is singular or n ≤ p.
 */
export function randomInterceptModel(
  y: readonly number[],
  columns: Columns,
  groups: readonly (string | number)[],
  names: readonly string[],
): MixedFit | null {
  const n = y.length;
  const cols = [new Array<number>(n).fill(1), ...columns];
  const p = cols.length;
  if (n <= p) return null;
  const g = groupIndex(groups);
  const x = design(cols, n);
  const yv = Float64Array.from(y);
  const reml = (lambda: number) => profile(lambda, x, yv, n, p, g, 'reml');
  const ml = (lambda: number) => profile(lambda, x, yv, n, p, g, 'ml');
  const lambdaReml = maximise((l) => reml(l)?.logLik ?? -Infinity);
  const at = reml(lambdaReml);
  if (!at) return null;
  const lambdaMl = maximise((l) => ml(l)?.logLik ?? -Infinity);
  const atMl = ml(lambdaMl);
  const sigma2 = at.rss / (n - p);
  const observed = observedCovariance(lambdaReml, at.fit.beta, at.rss, x, yv, n, p, g);
  const coefficients = ['Intercept', ...names].map((name, j) => {
    const seGls = Math.sqrt(sigma2 * at.fit.inverse[j * p + j]);
    const se = observed ? Math.sqrt(observed[j * p + j]) : seGls;
    const z = at.fit.beta[j] / se;
    return { name, estimate: at.fit.beta[j], se, seGls, statistic: z, p: normalTwoSided(z) };
  });
  const logLikMl = atMl ? atMl.logLik : NaN;
  return {
    n,
    groups: g.count,
    method: 'reml',
    covariance: observed ? 'statsmodels observed information' : 'gls',
    coefficients,
    sigma2,
    groupVariance: lambdaReml * sigma2,
    logLikReml: at.logLik,
    logLikMl,
    aicMl: -2 * logLikMl + 2 * (p + 2),
  };
}

/**
 * Least squares with several outputs: B = argmin ‖Y − XB‖_F for X [n, p] and Y [n, m]
 * (row-major); B is [p, m] and rss[j] = Σ_i (Y − XB)²_ij. Null when XᵀX is singular.
 */
export function multiLeastSquares(
  x: Float64Array,
  n: number,
  p: number,
  y: Float64Array,
  m: number,
): { beta: Float64Array; rss: Float64Array } | null {
  const col = new Float64Array(n);
  const beta = new Float64Array(p * m);
  const rss = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    for (let i = 0; i < n; i++) col[i] = y[i * m + j];
    const fit = leastSquares(x, col, n, p);
    if (!fit) return null;
    for (let k = 0; k < p; k++) beta[k * m + j] = fit.beta[k];
    rss[j] = residualSum(fit, x, col, n, p);
  }
  return { beta, rss };
}

/** Two-sided p of a Student t statistic with ν degrees of freedom: I_{ν/(ν+t²)}(ν/2, ½), in [0, 1]. */
export function studentTwoSided(t: number, nu: number): number {
  if (!Number.isFinite(t)) return 0;
  return clampProbability(regularizedBeta(nu / (nu + t * t), nu / 2, 0.5));
}

/** Two-sided p of a standard normal statistic: erfc(|z|/√2), in [0, 1] (the fit's error can pass 1). */
export function normalTwoSided(z: number): number {
  return clampProbability(erfc(Math.abs(z) / Math.SQRT2));
}

// ---- helpers ---------------------------------------------------------------------------------

interface LeastSquares {
  beta: Float64Array; // [p]
  inverse: Float64Array; // [p, p] (XᵀX)⁻¹
  logDet: number; // log |XᵀX|
}

interface Groups {
  of: Int32Array; // [n] group slot of each row
  count: number;
  sizes: Float64Array; // [count]
}

function design(columns: Columns, n: number): Float64Array {
  const p = columns.length;
  const x = new Float64Array(n * p);
  columns.forEach((col, j) => {
    if (col.length !== n)
      throw new LmdynError(
        'bad_argument',
        `regression: column ${j} has ${col.length} values, y has ${n}`,
      );
    for (let i = 0; i < n; i++) x[i * p + j] = col[i];
  });
  return x;
}

function groupIndex(groups: readonly (string | number)[]): Groups {
  const slots = new Map<string | number, number>();
  const of = new Int32Array(groups.length);
  groups.forEach((g, i) => {
    if (!slots.has(g)) slots.set(g, slots.size);
    of[i] = slots.get(g)!;
  });
  const sizes = new Float64Array(slots.size);
  for (let i = 0; i < of.length; i++) sizes[of[i]]++;
  return { of, count: slots.size, sizes };
}

/** Subtracts each group's column means from a [n, p] array (a copy). */
function demean(x: Float64Array, of: Int32Array, count: number, p: number): Float64Array {
  const n = of.length;
  const sums = new Float64Array(count * p);
  const sizes = new Float64Array(count);
  for (let i = 0; i < n; i++) {
    sizes[of[i]]++;
    for (let j = 0; j < p; j++) sums[of[i] * p + j] += x[i * p + j];
  }
  const out = new Float64Array(n * p);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < p; j++) out[i * p + j] = x[i * p + j] - sums[of[i] * p + j] / sizes[of[i]];
  return out;
}

/** β = (XᵀX)⁻¹Xᵀy by Cholesky; null when XᵀX is (numerically) singular. */
function leastSquares(x: Float64Array, y: Float64Array, n: number, p: number): LeastSquares | null {
  const a = new Float64Array(p * p);
  const b = new Float64Array(p);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) {
      b[j] += x[i * p + j] * y[i];
      for (let k = j; k < p; k++) a[j * p + k] += x[i * p + j] * x[i * p + k];
    }
  }
  for (let j = 0; j < p; j++) for (let k = 0; k < j; k++) a[j * p + k] = a[k * p + j];
  const inv = symmetricInverse(a, p);
  if (!inv) return null;
  const beta = new Float64Array(p);
  for (let j = 0; j < p; j++) for (let k = 0; k < p; k++) beta[j] += inv.inverse[j * p + k] * b[k];
  return { beta, inverse: inv.inverse, logDet: inv.logDet };
}

/** Inverse and log-determinant of a symmetric positive definite [p, p] matrix (Cholesky). */
function symmetricInverse(
  a: Float64Array,
  p: number,
): { inverse: Float64Array; logDet: number } | null {
  const l = new Float64Array(p * p);
  let maxDiag = 0;
  for (let j = 0; j < p; j++) maxDiag = Math.max(maxDiag, Math.abs(a[j * p + j]));
  let logDet = 0;
  for (let j = 0; j < p; j++) {
    for (let k = 0; k <= j; k++) {
      let s = a[j * p + k];
      for (let m = 0; m < k; m++) s -= l[j * p + m] * l[k * p + m];
      if (j === k) {
        if (!(s > 1e-12 * maxDiag)) return null;
        l[j * p + j] = Math.sqrt(s);
        logDet += 2 * Math.log(l[j * p + j]);
      } else {
        l[j * p + k] = s / l[k * p + k];
      }
    }
  }
  // L⁻¹ (lower triangular), then A⁻¹ = L⁻ᵀ L⁻¹.
  const li = new Float64Array(p * p);
  for (let j = 0; j < p; j++) {
    li[j * p + j] = 1 / l[j * p + j];
    for (let i = j + 1; i < p; i++) {
      let s = 0;
      for (let m = j; m < i; m++) s -= l[i * p + m] * li[m * p + j];
      li[i * p + j] = s / l[i * p + i];
    }
  }
  const inverse = new Float64Array(p * p);
  for (let i = 0; i < p; i++)
    for (let j = 0; j < p; j++) {
      let s = 0;
      for (let m = Math.max(i, j); m < p; m++) s += li[m * p + i] * li[m * p + j];
      inverse[i * p + j] = s;
    }
  return { inverse, logDet };
}

function finishOls(
  fit: LeastSquares,
  x: Float64Array,
  y: Float64Array,
  n: number,
  df: number,
  names: readonly string[],
): OlsFit {
  const p = fit.beta.length;
  const rss = residualSum(fit, x, y, n, p);
  const mean = y.reduce((a, b) => a + b, 0) / n;
  let tss = 0;
  for (let i = 0; i < n; i++) tss += (y[i] - mean) ** 2;
  const sigma2 = rss / df;
  const coefficients = names.map((name, j) => {
    const se = Math.sqrt(sigma2 * fit.inverse[j * p + j]);
    const t = fit.beta[j] / se;
    return { name, estimate: fit.beta[j], se, statistic: t, p: studentTwoSided(t, df) };
  });
  return { n, df, coefficients, sigma2, rss, r2: tss > 0 ? 1 - rss / tss : NaN };
}

/** Σ (y − Xβ)² over the [n, p] design the fit was made on. */
function residualSum(
  fit: LeastSquares,
  xs: Float64Array,
  y: Float64Array,
  n: number,
  p: number,
): number {
  let rss = 0;
  for (let i = 0; i < n; i++) {
    let r = y[i];
    for (let j = 0; j < p; j++) r -= xs[i * p + j] * fit.beta[j];
    rss += r * r;
  }
  return rss;
}

/** The profiled (RE)ML log-likelihood at λ, with the GLS fit. */
function profile(
  lambda: number,
  x: Float64Array,
  y: Float64Array,
  n: number,
  p: number,
  g: Groups,
  method: 'reml' | 'ml',
): { logLik: number; fit: LeastSquares; rss: number } | null {
  const theta = new Float64Array(g.count);
  let logDetV = 0;
  for (let q = 0; q < g.count; q++) {
    theta[q] = 1 - 1 / Math.sqrt(1 + g.sizes[q] * lambda);
    logDetV += Math.log(1 + g.sizes[q] * lambda);
  }
  const xm = groupMeans(x, g, p);
  const ym = groupMeans(y, g, 1);
  const xs = new Float64Array(n * p);
  const ys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const q = g.of[i];
    ys[i] = y[i] - theta[q] * ym[q];
    for (let j = 0; j < p; j++) xs[i * p + j] = x[i * p + j] - theta[q] * xm[q * p + j];
  }
  const fit = leastSquares(xs, ys, n, p);
  if (!fit) return null;
  const rss = residualSum(fit, xs, ys, n, p);
  const logLik =
    method === 'reml'
      ? -0.5 * ((n - p) * (Math.log((2 * Math.PI * rss) / (n - p)) + 1) + logDetV + fit.logDet)
      : -0.5 * (n * (Math.log((2 * Math.PI * rss) / n) + 1) + logDetV);
  return { logLik, fit, rss };
}

/**
 * statsmodels' covariance of β̂ (MixedLM.fit: inv(−hessian)): the Hessian of the profiled REML
 * log-likelihood ℓ(β, λ) = −½(n−p)·log Q − ½ log|V| − ½ log|XᵀV⁻¹X|, Q = rᵀV⁻¹r, V = I + λZZᵀ
 * (Z = group indicators, λ = τ²/σ²), at (β̂, λ̂); the [p, p] block of its inverse. Per group q,
 * with w_q = 1/(1 + n_q λ): 1ᵀV_q⁻¹1 = n_q w_q, s_q = 1ᵀV_q⁻¹r_q = w_q Σr, a_q = X_qᵀV_q⁻¹1 = w_q Σx.
 *   H_ββ = −(n−p)·M/Q                          M = XᵀV⁻¹X
 *   H_βλ = −(n−p)·Σ_q a_q s_q / Q
 *   H_λλ = −½(n−p)(D/Q − B²/Q²) + ½Σ_q (n_q w_q)² + ½[tr((M⁻¹A)²) − tr(M⁻¹F)]
 *          B = Σ_q s_q², D = 2Σ_q n_q w_q s_q², A = Σ_q a_q a_qᵀ, F = 2Σ_q n_q w_q a_q a_qᵀ.
 * Cov(β̂) = (−H_ββ − h hᵀ/(−H_λλ))⁻¹ with h = H_βλ (block inverse). Null when −H is not
 * positive definite.
 */
function observedCovariance(
  lambda: number,
  beta: Float64Array,
  rvir: number,
  x: Float64Array,
  y: Float64Array,
  n: number,
  p: number,
  g: Groups,
): Float64Array | null {
  const fac = n - p;
  const sumX = new Float64Array(g.count * p);
  const sumR = new Float64Array(g.count);
  const m = new Float64Array(p * p);
  for (let i = 0; i < n; i++) {
    const q = g.of[i];
    let r = y[i];
    for (let j = 0; j < p; j++) {
      r -= x[i * p + j] * beta[j];
      sumX[q * p + j] += x[i * p + j];
      for (let k = 0; k < p; k++) m[j * p + k] += x[i * p + j] * x[i * p + k];
    }
    sumR[q] += r;
  }
  const h = new Float64Array(p); // H_βλ
  const a = new Float64Array(p * p); // A = Σ a aᵀ
  const f = new Float64Array(p * p); // F = 2Σ n w a aᵀ
  let bSum = 0;
  let dSum = 0;
  let logDetTerm = 0;
  for (let q = 0; q < g.count; q++) {
    const w = 1 / (1 + g.sizes[q] * lambda);
    const nw = g.sizes[q] * w;
    const s = w * sumR[q];
    bSum += s * s;
    dSum += 2 * nw * s * s;
    logDetTerm += 0.5 * nw * nw;
    for (let j = 0; j < p; j++) {
      const aj = w * sumX[q * p + j];
      h[j] -= (fac * aj * s) / rvir;
      for (let k = 0; k < p; k++) {
        const ak = w * sumX[q * p + k];
        m[j * p + k] -= lambda * w * sumX[q * p + j] * sumX[q * p + k];
        a[j * p + k] += aj * ak;
        f[j * p + k] += 2 * nw * aj * ak;
      }
    }
  }
  const mInv = symmetricInverse(m, p);
  if (!mInv) return null;
  const ma = matmul(mInv.inverse, a, p);
  const mf = matmul(mInv.inverse, f, p);
  let trMaMa = 0;
  let trMf = 0;
  for (let j = 0; j < p; j++) {
    trMf += mf[j * p + j];
    for (let k = 0; k < p; k++) trMaMa += ma[j * p + k] * ma[k * p + j];
  }
  const hll =
    -0.5 * fac * (dSum / rvir - (bSum * bSum) / (rvir * rvir)) + logDetTerm + 0.5 * (trMaMa - trMf);
  const c = -hll;
  if (!(c > 0)) return null;
  const schur = new Float64Array(p * p);
  for (let j = 0; j < p; j++)
    for (let k = 0; k < p; k++) schur[j * p + k] = (fac * m[j * p + k]) / rvir - (h[j] * h[k]) / c;
  return symmetricInverse(schur, p)?.inverse ?? null;
}

function matmul(a: Float64Array, b: Float64Array, p: number): Float64Array {
  const out = new Float64Array(p * p);
  for (let i = 0; i < p; i++)
    for (let k = 0; k < p; k++)
      for (let j = 0; j < p; j++) out[i * p + j] += a[i * p + k] * b[k * p + j];
  return out;
}

function groupMeans(x: Float64Array, g: Groups, p: number): Float64Array {
  const m = new Float64Array(g.count * p);
  for (let i = 0; i < g.of.length; i++)
    for (let j = 0; j < p; j++) m[g.of[i] * p + j] += x[i * p + j];
  for (let q = 0; q < g.count; q++) for (let j = 0; j < p; j++) m[q * p + j] /= g.sizes[q];
  return m;
}

/** argmax over λ ≥ 0: λ = 0 and a grid of log10 λ ∈ [−8, 8] step ¼, refined by golden section. */
function maximise(f: (lambda: number) => number): number {
  let bestU = -Infinity; // −∞ stands for λ = 0
  let bestV = f(0);
  for (let u = -8; u <= 8 + 1e-9; u += 0.25) {
    const v = f(10 ** u);
    if (v > bestV) {
      bestV = v;
      bestU = u;
    }
  }
  if (bestU === -Infinity) return 0;
  let lo = bestU - 0.25;
  let hi = bestU + 0.25;
  const r = (Math.sqrt(5) - 1) / 2;
  let a = hi - r * (hi - lo);
  let b = lo + r * (hi - lo);
  let fa = f(10 ** a);
  let fb = f(10 ** b);
  for (let it = 0; it < 80 && hi - lo > 1e-10; it++) {
    if (fa > fb) {
      hi = b;
      b = a;
      fb = fa;
      a = hi - r * (hi - lo);
      fa = f(10 ** a);
    } else {
      lo = a;
      a = b;
      fa = fb;
      b = lo + r * (hi - lo);
      fb = f(10 ** b);
    }
  }
  const u = (lo + hi) / 2;
  return f(10 ** u) >= bestV ? 10 ** u : 10 ** bestU;
}
