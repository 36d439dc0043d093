/**
 * Semantic density and voids (papers.md §3.3 "Semantic density / voids", [proposed]): the kNN
 * density of a query state among reference query states, ρ_k(q) ∝ 1/r_k(q)^{d_eff}, with d_eff
 * the number of principal components holding 95% of the reference variance, and a void score
 * combining standardized low density with standardized high entropy.
 */
import { newMatrix } from '../../tensor/matrix.js';
import { pca } from '../../tensor/linalg.js';
import { allocF32, freeF32 } from '../../tensor/memory.js';
import { matmul } from '../../tensor/ops.js';

/** Reference query states and their own leave-one-out statistics. */
export interface Reference {
  n: number;
  d: number;
  states: Float64Array; // [n, d]
  /** ids of each reference prompt joined by ',' (a query equal to one excludes it). */
  keys: string[];
  entropies: Float64Array; // [n] H(P(·|q_i, T))
  k: number;
  dEff: number;
  varianceThreshold: number;
  /** Share of the variance on each principal component, descending. */
  varianceRatio: number[];
  /** log r_k of each reference state among the others (leave-one-out). [n] */
  logRk: Float64Array;
}

/** Variance share d_eff must reach (§3.3: "d_eff from PCA (95% variance)"). */
export const VARIANCE_THRESHOLD = 0.95;
/** Smallest distance used in log r (a query identical to a reference state). */
const MIN_DISTANCE = 1e-12;

export function buildReference(
  states: readonly Float64Array[],
  keys: readonly string[],
  entropies: readonly number[],
  k: number,
): Reference {
  const n = states.length;
  const d = states[0].length;
  if (!(k >= 1 && k < n))
    throw new Error(`kNN needs 1 ≤ k < n reference states (k = ${k}, n = ${n})`);
  const x = new Float64Array(n * d);
  states.forEach((s, i) => x.set(s, i * d));
  const p = pca(x, n, d, Math.min(n, d));
  const varianceRatio = Array.from(p.explainedVarianceRatio);
  let dEff = 0;
  for (let acc = 0; dEff < varianceRatio.length && acc < VARIANCE_THRESHOLD; dEff++) {
    acc += varianceRatio[dEff];
  }
  const logRk = looKnnRadii(x, n, d, k).map((r) => Math.log(Math.max(r, MIN_DISTANCE)));
  return {
    n,
    d,
    states: x,
    keys: [...keys],
    entropies: Float64Array.from(entropies),
    k,
    dEff: Math.max(dEff, 1),
    varianceThreshold: VARIANCE_THRESHOLD,
    varianceRatio,
    logRk,
  };
}

/** The k smallest Euclidean distances from q to the rows of x [n, d] not excluded, ascending. */
export function knnDistances(
  x: Float64Array,
  n: number,
  d: number,
  q: ArrayLike<number>,
  k: number,
  exclude: (j: number) => boolean = () => false,
): number[] {
  const best = new Float64Array(k).fill(Infinity); // squared distances, ascending
  for (let j = 0; j < n; j++) {
    if (exclude(j)) continue;
    const o = j * d;
    let s = 0;
    for (let i = 0; i < d && s < best[k - 1]; i++) s += (x[o + i] - q[i]) ** 2;
    if (s >= best[k - 1]) continue;
    let at = k - 1;
    while (at > 0 && best[at - 1] > s) {
      best[at] = best[at - 1];
      at--;
    }
    best[at] = s;
  }
  return Array.from(
    best.filter((v) => v < Infinity),
    Math.sqrt,
  );
}

/** Rows per block of the Gram products in `looKnnRadii`. */
const GRAM_BLOCK = 256;

/**
 * r_k of every row of x [n, d] among the other rows (leave-one-out), exactly as
 * `knnDistances` would give it, in O(n²d) on the matmul kernel: the rows are centred, squared
 * distances ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j come from float32 Gram blocks, every j within the float32
 * error bound of the k-th smallest becomes a candidate, and the candidates' distances are
 * recomputed in float64.
 */
export function looKnnRadii(x: Float64Array, n: number, d: number, k: number): Float64Array {
  const mean = new Float64Array(d);
  for (let j = 0; j < n; j++) for (let i = 0; i < d; i++) mean[i] += x[j * d + i] / n;
  const xc = new Float64Array(n * d);
  const norm2 = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < d; i++) {
      const v = x[j * d + i] - mean[i];
      xc[j * d + i] = v;
      norm2[j] += v * v;
    }
  }
  const maxNorm = Math.sqrt(Math.max(...norm2));
  const xs = allocF32(n * d);
  const gram = allocF32(GRAM_BLOCK * n);
  const radii = new Float64Array(n);
  try {
    xs.set(xc);
    const all = newMatrix(n, d, xs);
    const approx = new Float64Array(n);
    for (let start = 0; start < n; start += GRAM_BLOCK) {
      const rows = Math.min(GRAM_BLOCK, n - start);
      matmul(gram, xs.subarray(start * d, (start + rows) * d), all, rows); // gram[r, j] = x_{start+r}·x_j
      for (let r = 0; r < rows; r++) {
        const i = start + r;
        for (let j = 0; j < n; j++) approx[j] = norm2[i] + norm2[j] - 2 * gram[r * n + j];
        approx[i] = Infinity;
        // |error of approx| ≤ 2·(d + 2)·2^-24·‖x_i‖‖x_j‖ (the float32 copy and the float32 dot)
        const tol = 4 * (d + 2) * 2 ** -24 * Math.sqrt(norm2[i]) * maxNorm;
        const kth = kthSmallest(approx, k);
        const candidates: number[] = [];
        for (let j = 0; j < n; j++) if (approx[j] <= kth + 2 * tol) candidates.push(j);
        const exact = candidates.map((j) => {
          let s2 = 0;
          for (let c = 0; c < d; c++) s2 += (xc[i * d + c] - xc[j * d + c]) ** 2;
          return s2;
        });
        exact.sort((a, b) => a - b);
        radii[i] = Math.sqrt(exact[k - 1]);
      }
    }
  } finally {
    freeF32(xs);
    freeF32(gram);
  }
  return radii;
}

/** The k-th smallest value of a (k ≤ a.length), by a size-k insertion buffer. */
function kthSmallest(a: Float64Array, k: number): number {
  const best = new Float64Array(k).fill(Infinity);
  for (let j = 0; j < a.length; j++) {
    const v = a[j];
    if (v >= best[k - 1]) continue;
    let at = k - 1;
    while (at > 0 && best[at - 1] > v) {
      best[at] = best[at - 1];
      at--;
    }
    best[at] = v;
  }
  return best[k - 1];
}

export interface Density {
  k: number;
  /** Distance to the k-th nearest reference state. */
  r_k: number;
  mean_knn_distance: number;
  /** log ρ_k = −d_eff · log r_k (up to the additive constant of the volume of a d_eff-ball and n). */
  log_density: number;
  /** (log r_k − mean) / sd over the reference states' leave-one-out log r_k: high = sparse. */
  z_low_density: number;
  /** Share of reference states (leave-one-out) denser than the query: 1 = emptiest. */
  sparsity_percentile: number;
  /** Reference states left out because their prompt equals the query's. */
  excluded: number;
}

/** Density of q among the reference (a reference prompt with the same ids is left out). */
export function densityOf(ref: Reference, q: ArrayLike<number>, key: string): Density {
  let excluded = 0;
  const same = (j: number) => {
    const hit = ref.keys[j] === key;
    if (hit) excluded++;
    return hit;
  };
  const dist = knnDistances(ref.states, ref.n, ref.d, q, ref.k, same);
  const rk = Math.max(dist[dist.length - 1], MIN_DISTANCE);
  const logRk = Math.log(rk);
  const { mean, sd } = meanSd(ref.logRk);
  let denser = 0;
  for (const v of ref.logRk) if (v < logRk) denser++;
  return {
    k: ref.k,
    r_k: rk,
    mean_knn_distance: dist.reduce((a, b) => a + b, 0) / dist.length,
    log_density: -ref.dEff * logRk,
    z_low_density: sd > 0 ? (logRk - mean) / sd : 0,
    sparsity_percentile: denser / ref.n,
    excluded,
  };
}

/**
 * Void score = ½ (z_low_density + z_entropy), each standardized against the reference states
 * (entropy at the analysis temperature): positive = sparser and more uncertain than typical.
 */
export function voidScore(
  ref: Reference,
  density: Density,
  entropy: number,
): { void_score: number; z_entropy: number } {
  const { mean, sd } = meanSd(ref.entropies);
  const zH = sd > 0 ? (entropy - mean) / sd : 0;
  return { void_score: 0.5 * (density.z_low_density + zH), z_entropy: zH };
}

export function meanSd(x: ArrayLike<number>): { mean: number; sd: number } {
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += x[i] / x.length;
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += (x[i] - mean) ** 2;
  return { mean, sd: x.length > 1 ? Math.sqrt(ss / (x.length - 1)) : 0 };
}
