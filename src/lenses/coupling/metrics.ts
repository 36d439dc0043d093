/**
 * The coupling lens's metrics on Jacobians and depth trajectories (papers.md §5.3–5.8). Pure
 * functions of plain arrays; analyze.ts decides what they are applied to.
 */
import { newMatrix } from '../../tensor/matrix.js';
import { allocF32, freeF32, inArena } from '../../tensor/memory.js';
import { matmul } from '../../tensor/ops.js';
import type { Svd } from '../../tensor/linalg.js';

/** m_K and its variants for one K (§5.3). */
export interface Coupling {
  k: number;
  /** ‖ |U_{2,K}ᵀ J_1 V_{2,K}| − S_{1,K} ‖_F / ‖s_{1,K}‖_2  [exact: code metrics.py] */
  mK: number;
  /** The same numerator over Σ_{k≤K} s_{1,k} (trace-normalised) [exact: code]. */
  traceNormalised: number;
  /** Left–right ("vju"): ‖ |V_{2,K}ᵀ J_1 U_{2,K}| − S_{1,K} ‖_F / ‖s_{1,K}‖_2 [exact: code]. */
  vju: number;
}

/**
 * §5.3 coupling of J_1 to J_2: how well J_2's top singular vectors diagonalise J_1 with J_1's own
 * top singular values s1 (descending). j1: [d, d] row-major (output × input), basis2: the SVD of
 * J_2 with at least max(ks) triplets. One value per K in ks (each K ≤ basis2.k and ≤ s1.length).
 * All three are 0 when J_1 = 0. j1 is used in place when it lives in the kernels' memory.
 */
export function couplingMetric(
  j1: Float32Array,
  d: number,
  s1: ArrayLike<number>,
  basis2: Svd,
  ks: readonly number[],
): Coupling[] {
  const kMax = Math.max(...ks);
  if (kMax > basis2.k || kMax > s1.length)
    throw new Error(`couplingMetric: K = ${kMax} exceeds the singular triplets kept`);
  // P = U₂ᵀ J₁ V₂ and Q = V₂ᵀ J₁ U₂ (both [kMax, kMax]) from J₁ applied to the basis vectors.
  const p = projectedMatrix(j1, d, basis2.u, basis2.v, kMax);
  const q = projectedMatrix(j1, d, basis2.v, basis2.u, kMax);
  return ks.map((k) => {
    let ss = 0;
    let sum = 0;
    for (let a = 0; a < k; a++) {
      ss += s1[a] * s1[a];
      sum += s1[a];
    }
    const num = offDiagonalDistance(p, kMax, k, s1);
    return {
      k,
      mK: safeDiv(num, Math.sqrt(ss)),
      traceNormalised: safeDiv(num, sum),
      vju: safeDiv(offDiagonalDistance(q, kMax, k, s1), Math.sqrt(ss)),
    };
  });
}

/**
 * §5.6 line-shape score of one depth trajectory x^0..x^L (traj: [L+1, d]):
 * x̃^0 = x^0, x̃^l = x̃^{l−1} + (x^l − x^{l−1})/‖x^l − x^{l−1}‖, LSS = L / ‖x̃^L − x̃^0‖ (≥ 1; 1 for
 * a straight ray). A step of length zero has no direction and adds nothing to x̃.
 */
export function lineShapeScore(traj: ArrayLike<number>, states: number, d: number): number {
  const L = states - 1;
  const end = new Float64Array(d); // x̃^L − x̃^0
  for (let l = 1; l <= L; l++) {
    const len = Math.sqrt(stepNorm2(traj, l, d));
    if (len === 0) continue;
    for (let i = 0; i < d; i++) end[i] += (traj[l * d + i] - traj[(l - 1) * d + i]) / len;
  }
  return L / Math.sqrt(dot64(end, end));
}

/** δ_l = ‖x^l − x^{l−1}‖ for l = 1..L (§5.7). */
export function stepSizes(traj: ArrayLike<number>, states: number, d: number): number[] {
  return Array.from({ length: states - 1 }, (_, i) => Math.sqrt(stepNorm2(traj, i + 1, d)));
}

/** ‖x^l‖ for l = 0..L. */
export function stateNorms(traj: ArrayLike<number>, states: number, d: number): number[] {
  return Array.from({ length: states }, (_, l) => {
    let s = 0;
    for (let i = 0; i < d; i++) s += traj[l * d + i] * traj[l * d + i];
    return Math.sqrt(s);
  });
}

export interface ExponentialGrowth {
  /** Steps l (1-based, δ_l) the fit used. */
  fitSteps: number[];
  /** log δ_l = a + b·l over fitSteps; rate = e^b per layer; r2 of that fit. Null when < 2 steps. */
  a: number | null;
  b: number | null;
  rate: number | null;
  r2: number | null;
  /** std(ρ)/mean(ρ), ρ_l = δ_{l+1}/δ_l over all l (0 for exactly geometric spacing). */
  expodistance: number | null;
  /** std(δ)/mean(δ) (0 for exactly equal spacing; Li & Papyan's RA1). */
  equidistance: number | null;
}

/**
 * §5.7 [proposed] layer-wise exponential growth of the step sizes δ_1..δ_L: the fit of
 * log δ_l = a + b·l over the middle steps (the first and last block left out, when at least
 * two steps remain; else every step), expodistance and equidistance (population std).
 */
export function exponentialGrowth(delta: readonly number[]): ExponentialGrowth {
  const L = delta.length;
  const all = Array.from({ length: L }, (_, i) => i + 1);
  const middle = all.slice(1, L - 1);
  const fitSteps = (middle.length >= 2 ? middle : all).filter((l) => delta[l - 1] > 0);
  const fit =
    fitSteps.length >= 2
      ? linearFit(
          fitSteps,
          fitSteps.map((l) => Math.log(delta[l - 1])),
        )
      : null;
  const ratios: number[] = [];
  for (let l = 1; l < L; l++) if (delta[l - 1] > 0) ratios.push(delta[l] / delta[l - 1]);
  return {
    fitSteps,
    a: fit ? fit.intercept : null,
    b: fit ? fit.slope : null,
    rate: fit ? Math.exp(fit.slope) : null,
    r2: fit ? fit.r2 : null,
    expodistance: ratios.length >= 1 ? coefficientOfVariation(ratios) : null,
    equidistance: L >= 1 ? coefficientOfVariation(delta) : null,
  };
}

/**
 * §5.8 [exact: code align.py] linearisation fidelity: cos(Π_l (I + J^l)·x^0, x^L), the product
 * taken over blocks in order (J^1 first) and applied to the first state. jacobians: [L] × [d, d].
 */
export function linearisationFidelity(
  jacobians: readonly Float32Array[],
  x0: ArrayLike<number>,
  xL: ArrayLike<number>,
  d: number,
): number {
  return cosine(linearisedState(jacobians, x0, d), xL);
}

/** Π_l (I + J^l)·v (J^1 applied first). */
export function linearisedState(
  jacobians: readonly Float32Array[],
  v: ArrayLike<number>,
  d: number,
): Float64Array {
  let x = Float64Array.from(v);
  for (const j of jacobians) {
    const next = Float64Array.from(x);
    for (let o = 0; o < d; o++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += j[o * d + i] * x[i];
      next[o] += s;
    }
    x = next;
  }
  return x;
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

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

export function mean(v: readonly number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
}

/** Population standard deviation over mean. */
function coefficientOfVariation(v: readonly number[]): number {
  const m = mean(v);
  const sd = Math.sqrt(v.reduce((a, x) => a + (x - m) ** 2, 0) / v.length);
  return sd / m;
}

/** out[a, b] = x_a · (J y_b) for a, b < k (x, y: [≥k, d] vectors as rows); two fp32 matmuls. */
function projectedMatrix(
  j: Float32Array,
  d: number,
  x: Float64Array,
  y: Float64Array,
  k: number,
): Float64Array {
  const jm = inArena(j) ? j : allocF32(d * d);
  const xRows = allocF32(k * d);
  const yRows = allocF32(k * d);
  const jy = allocF32(k * d);
  const pt = allocF32(k * k);
  try {
    if (jm !== j) jm.set(j);
    xRows.set(x.subarray(0, k * d));
    yRows.set(y.subarray(0, k * d));
    matmul(jy, yRows, newMatrix(d, d, jm), k); // row b = (J y_b)ᵀ
    matmul(pt, jy, newMatrix(k, d, xRows), k); // pt[b, a] = (J y_b)·x_a
    const out = new Float64Array(k * k);
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) out[a * k + b] = pt[b * k + a];
    return out;
  } finally {
    for (const buf of [xRows, yRows, jy, pt]) freeF32(buf);
    if (jm !== j) freeF32(jm);
  }
}

/** ‖ |P_K| − diag(s_K) ‖_F for the leading K×K block of p [kMax, kMax]. */
function offDiagonalDistance(
  p: Float64Array,
  kMax: number,
  k: number,
  s: ArrayLike<number>,
): number {
  let ss = 0;
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      const e = Math.abs(p[a * kMax + b]) - (a === b ? s[a] : 0);
      ss += e * e;
    }
  }
  return Math.sqrt(ss);
}

function stepNorm2(traj: ArrayLike<number>, l: number, d: number): number {
  let s = 0;
  for (let i = 0; i < d; i++) {
    const e = traj[l * d + i] - traj[(l - 1) * d + i];
    s += e * e;
  }
  return s;
}

function dot64(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function safeDiv(a: number, b: number): number {
  return b > 0 ? a / b : 0;
}
