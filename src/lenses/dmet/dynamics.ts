/**
 * DMET trajectory metrics for one generated sequence (papers.md §1.3–1.4): the token-time
 * trajectory of last-layer states is z-scored per feature, projected to 2-D by PCA (fitted on
 * that sequence, or pooled, or skipped to stay in the full space), and measured for state
 * continuity C, jump steps, clustering quality Q (k-means++, silhouette), topological
 * persistence P (largest H1 lifetime of the Rips filtration) and, optionally, predictability.
 */
import { LmdynError } from '../../errors.js';
import { kmeans, silhouetteScore } from '../../stats/cluster.js';
import { multiLeastSquares } from '../../stats/regression.js';
import { largestLifetime, ripsPersistence, type PersistencePair } from '../../stats/rips.js';
import { pca, symEig } from '../../tensor/linalg.js';

export type Space = 'per-sequence' | 'pooled' | 'full';
export type PcaSigns = 'sklearn>=1.5' | 'sklearn<1.5';

export interface DynamicsOptions {
  /** per-sequence: z-score + PCA(2) on this sequence (the authors' code); pooled: one fitted on
   * every analysed sequence; full: z-score only, metrics in R^d. */
  space: Space;
  /** Continuity as the released code computes it (differences along the PCA axis; §1.4 item 1). */
  bugCompatible: boolean;
  /**
   * Signs of the per-sequence principal components, as scikit-learn's svd_flip fixes them:
   * 'sklearn>=1.5' makes each component's largest-|·| loading positive (u_based_decision=False),
   * 'sklearn<1.5' each score column's largest-|·| entry (u_based_decision=True). Distances, k-means
   * and Rips do not depend on it; the bug-compatible continuity |PC2 − PC1| does.
   */
  pcaSigns: PcaSigns;
  /** k of k-means (code: 3). */
  clusters: number;
  /** k-means++ seed (code: random_state = 42) and number of starts (scikit-learn ≥ 1.4: 1). */
  kmeansSeed: number;
  kmeansInit: number;
  /** Highest homology dimension of the Rips filtration (code: maxdim = 1) and its threshold. */
  ripsMaxDim: number;
  ripsThreshold?: number;
  /** Fit the proposed AR(1) predictor (papers.md §1.4 item 5, [proposed]). */
  predictability: boolean;
}

/** A z-score + PCA fitted once on many sequences (space 'pooled'). */
export interface PooledProjection {
  mean: Float64Array; // [d]
  scale: Float64Array; // [d] population std (1 where it is 0)
  components: Float64Array; // [2, d] unit rows
  explainedVarianceRatio: number[];
  rows: number;
}

export interface SequenceDynamics {
  /** Points n of the trajectory and the dimension of the space the metrics used. */
  n: number;
  dim: number;
  /** [n, 2] the 2-D curve (per-sequence or pooled PCA; in 'full' space a per-sequence PCA for display). */
  curve: Float64Array;
  /** Share of the z-scored variance on PC1, PC2 (the projection the metrics used, or the display one). */
  explainedVarianceRatio: number[];
  continuity: Continuity;
  /** Steps t (0-based, between points t and t+1) with d_t > C_mean + 2·C_std. */
  jumpSteps: number[];
  /** [proposed] mean_t cos(h_{t+1}, h_t) of the raw states; C_mean / mean_t ‖z_t − z̄‖. */
  cosineContinuity: number | null;
  normalisedContinuity: number | null;
  /** Silhouette of k-means labels (null when undefined) and the labels. */
  silhouette: number | null;
  labels: Int32Array;
  /** Largest finite H1 lifetime (0 when H1 is empty) and the diagram. */
  persistence: number;
  pairs: PersistencePair[];
  /** [proposed] next-step MSE of a linear AR(1) fit z_{t+1} ≈ A z_t + b, and 1/(MSE + 1e-6). */
  predictability: { mse: number; value: number } | null;
}

export interface Continuity {
  mean: number;
  std: number;
  max: number;
  /** d_t = ‖z_{t+1} − z_t‖ (intended version); the code's per-t |PC2 − PC1| in bug mode. */
  distances: number[];
}

/** Fewest points a trajectory needs for k-means with k clusters and a silhouette. */
export function minimumPoints(clusters: number): number {
  return Math.max(4, clusters + 1);
}

/** All metrics of one trajectory h [n, d] (raw last-layer states, float). */
export function sequenceDynamics(
  h: Float64Array,
  n: number,
  d: number,
  options: DynamicsOptions,
  pooled?: PooledProjection,
): SequenceDynamics {
  let space: Float64Array;
  let dim: number;
  let curve: Float64Array;
  let ratio: number[];
  if (options.space === 'pooled') {
    // Internal invariant, not user input: analyze.ts fits the pooled projection before asking for space 'pooled'.
    if (!pooled) throw new Error('sequenceDynamics: space pooled needs the pooled projection');
    curve = applyProjection(h, n, d, pooled);
    space = curve;
    dim = 2;
    ratio = pooled.explainedVarianceRatio;
  } else {
    const zs = standardize(h, n, d);
    const p = pca(zs, n, d, 2);
    svdFlip(p.scores, p.components, n, p.k, d, options.pcaSigns);
    curve = padColumns(p.scores, n, p.k, 2);
    ratio = [...p.explainedVarianceRatio];
    if (options.space === 'full') {
      space = zs;
      dim = d;
    } else {
      space = curve;
      dim = 2;
    }
  }
  const continuity = stateContinuity(space, n, dim, options.bugCompatible);
  const km = kmeans(space, n, dim, {
    k: options.clusters,
    seed: options.kmeansSeed,
    nInit: options.kmeansInit,
  });
  const rips = ripsPersistence(space, n, dim, {
    maxDim: options.ripsMaxDim,
    threshold: options.ripsThreshold,
  });
  const spread = meanDistanceToCentroid(space, n, dim);
  return {
    n,
    dim,
    curve,
    explainedVarianceRatio: ratio,
    continuity,
    jumpSteps: jumpSteps(continuity),
    cosineContinuity: cosineContinuity(h, n, d),
    normalisedContinuity:
      spread > 0 && Number.isFinite(continuity.mean) ? continuity.mean / spread : null,
    silhouette: silhouetteScore(space, n, dim, km.labels),
    labels: km.labels,
    persistence: largestLifetime(rips.pairs, 1),
    pairs: rips.pairs,
    predictability: options.predictability ? predictability(space, n, dim) : null,
  };
}

/**
 * scikit-learn's svd_flip on a PCA (sklearn/utils/extmath.py): per component c, the sign that
 * makes the largest-magnitude entry (the first on ties, as numpy's argmax) of the component row
 * (V-based, PCA from scikit-learn 1.5) or of the score column (U-based, before 1.5) positive is
 * applied to both. scores: [n, k], components: [k, d], in place.
 */
export function svdFlip(
  scores: Float64Array,
  components: Float64Array,
  n: number,
  k: number,
  d: number,
  rule: PcaSigns,
): void {
  for (let c = 0; c < k; c++) {
    let best = -1;
    let value = 0;
    if (rule === 'sklearn>=1.5') {
      for (let j = 0; j < d; j++)
        if (Math.abs(components[c * d + j]) > best) {
          best = Math.abs(components[c * d + j]);
          value = components[c * d + j];
        }
    } else {
      for (let i = 0; i < n; i++)
        if (Math.abs(scores[i * k + c]) > best) {
          best = Math.abs(scores[i * k + c]);
          value = scores[i * k + c];
        }
    }
    if (value >= 0) continue;
    for (let i = 0; i < n; i++) scores[i * k + c] = -scores[i * k + c];
    for (let j = 0; j < d; j++) components[c * d + j] = -components[c * d + j];
  }
}

/**
 * z-score each feature over the rows of x [n, d], as scikit-learn's StandardScaler: population
 * standard deviation, and a feature with zero variance is centred but not scaled.
 */
export function standardize(x: ArrayLike<number>, n: number, d: number): Float64Array {
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) scale[j] += (x[i * d + j] - mean[j]) ** 2;
  for (let j = 0; j < d; j++) scale[j] = Math.sqrt(scale[j] / n) || 1;
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) out[i * d + j] = (x[i * d + j] - mean[j]) / scale[j];
  return out;
}

/**
 * State continuity C (papers.md §1.4 item 1). Intended: d_t = ‖z_{t+1} − z_t‖₂, t = 1..n−1,
 * C_mean = mean d_t, C_std = std d_t (unbiased, torch.std's default), C_max = max d_t.
 * Bug-compatible (the released `analyze_continuity`): torch.diff along dim 1 of the [n, 2] curve
 * gives PC2(t) − PC1(t); the norm over that one column and the mean over t leave a scalar m, so
 * C_mean = C_max = m = mean_t |PC2(t) − PC1(t)| and C_std = NaN (std of a 0-d tensor).
 */
export function stateContinuity(
  z: ArrayLike<number>,
  n: number,
  dim: number,
  bugCompatible = false,
): Continuity {
  if (bugCompatible) {
    if (dim < 2)
      throw new LmdynError(
        'bad_argument',
        'stateContinuity: bug-compatible mode needs two components',
      );
    const per: number[] = [];
    for (let t = 0; t < n; t++) per.push(Math.abs(z[t * dim + 1] - z[t * dim]));
    const m = per.reduce((a, b) => a + b, 0) / Math.max(per.length, 1);
    return { mean: m, std: NaN, max: m, distances: per };
  }
  const distances: number[] = [];
  for (let t = 0; t + 1 < n; t++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += (z[(t + 1) * dim + j] - z[t * dim + j]) ** 2;
    distances.push(Math.sqrt(s));
  }
  const m = distances.length;
  if (m === 0) return { mean: NaN, std: NaN, max: NaN, distances };
  const mean = distances.reduce((a, b) => a + b, 0) / m;
  const v = m > 1 ? distances.reduce((a, b) => a + (b - mean) ** 2, 0) / (m - 1) : NaN;
  return { mean, std: Math.sqrt(v), max: Math.max(...distances), distances };
}

/**
 * Jump steps (papers.md §1.4 item 2): t with d_t > C_mean + 2·C_std, d_t the time differences.
 * In bug-compatible mode C_std is NaN, so — as in the released code — there are none.
 */
export function jumpSteps(c: Continuity): number[] {
  const threshold = c.mean + 2 * c.std;
  if (!Number.isFinite(threshold)) return [];
  return c.distances.flatMap((v, t) => (v > threshold ? [t] : []));
}

/** [proposed] C_cos = mean_t cos(h_{t+1}, h_t) over the raw d-dimensional states. */
export function cosineContinuity(h: ArrayLike<number>, n: number, d: number): number | null {
  if (n < 2) return null;
  let sum = 0;
  for (let t = 0; t + 1 < n; t++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let j = 0; j < d; j++) {
      const a = h[t * d + j];
      const b = h[(t + 1) * d + j];
      ab += a * b;
      aa += a * a;
      bb += b * b;
    }
    sum += aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
  }
  return sum / (n - 1);
}

/**
 * [proposed] predictability: the LSTM of the released code cannot run on a single sequence
 * (§1.4 item 5), so the "small sequence model" here is a linear AR(1) fit z_{t+1} ≈ A z_t + b by
 * least squares over the n − 1 pairs; mse = mean squared residual over pairs and coordinates
 * (MSELoss), value = 1/(mse + 1e-6) as the code's feature. Null when there are too few pairs.
 */
export function predictability(
  z: ArrayLike<number>,
  n: number,
  dim: number,
): { mse: number; value: number } | null {
  const pairs = n - 1;
  const p = dim + 1;
  if (pairs <= p) return null;
  const x = new Float64Array(pairs * p);
  const y = new Float64Array(pairs * dim);
  for (let t = 0; t < pairs; t++) {
    x[t * p] = 1;
    for (let j = 0; j < dim; j++) {
      x[t * p + 1 + j] = z[t * dim + j];
      y[t * dim + j] = z[(t + 1) * dim + j];
    }
  }
  const fit = multiLeastSquares(x, pairs, p, y, dim);
  if (!fit) return null;
  const mse = fit.rss.reduce((a, b) => a + b, 0) / (pairs * dim);
  return { mse, value: 1 / (mse + 1e-6) };
}

/**
 * Accumulates rows of many trajectories for one pooled z-score + PCA(2) ([proposed] "pooled PCA"):
 * the correlation-scaled covariance of all rows, then its two leading eigenvectors.
 */
export class PooledFit {
  private readonly sum: Float64Array;
  private readonly cross: Float64Array;
  private shift: Float64Array | null = null;
  private rows = 0;

  constructor(private readonly d: number) {
    this.sum = new Float64Array(d);
    this.cross = new Float64Array(d * d);
  }

  add(h: ArrayLike<number>, n: number): void {
    const d = this.d;
    if (!this.shift && n > 0) this.shift = Float64Array.from({ length: d }, (_, j) => h[j]);
    const s = this.shift!;
    const row = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) row[j] = h[i * d + j] - s[j];
      for (let j = 0; j < d; j++) {
        this.sum[j] += row[j];
        for (let k = j; k < d; k++) this.cross[j * d + k] += row[j] * row[k];
      }
    }
    this.rows += n;
  }

  finish(): PooledProjection {
    const d = this.d;
    const n = this.rows;
    if (n < 2 || !this.shift)
      throw new LmdynError(
        'bad_argument',
        `the pooled PCA needs at least two states from sequences long enough to analyse, got ${n}; record longer generations (--max-tokens) or use --space per-sequence`,
      );
    const mu = Float64Array.from(this.sum, (v) => v / n); // mean of shifted rows
    const cov = new Float64Array(d * d); // population covariance
    for (let j = 0; j < d; j++)
      for (let k = j; k < d; k++) {
        const c = this.cross[j * d + k] / n - mu[j] * mu[k];
        cov[j * d + k] = c;
        cov[k * d + j] = c;
      }
    const scale = Float64Array.from(
      { length: d },
      (_, j) => Math.sqrt(Math.max(cov[j * d + j], 0)) || 1,
    );
    const corr = new Float64Array(d * d);
    for (let j = 0; j < d; j++)
      for (let k = 0; k < d; k++) corr[j * d + k] = cov[j * d + k] / (scale[j] * scale[k]);
    const eig = symEig(corr, d);
    const total = eig.values.reduce((a, b) => a + Math.max(b, 0), 0);
    return {
      mean: Float64Array.from(mu, (v, j) => v + this.shift![j]),
      scale,
      components: eig.vectors.slice(0, 2 * d),
      explainedVarianceRatio: [0, 1].map((i) =>
        total > 0 ? Math.max(eig.values[i], 0) / total : 0,
      ),
      rows: n,
    };
  }
}

/** Rows of h [n, d] z-scored and projected on the pooled components: [n, 2]. */
export function applyProjection(
  h: ArrayLike<number>,
  n: number,
  d: number,
  p: PooledProjection,
): Float64Array {
  const out = new Float64Array(n * 2);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < 2; c++) {
      let s = 0;
      for (let j = 0; j < d; j++)
        s += ((h[i * d + j] - p.mean[j]) / p.scale[j]) * p.components[c * d + j];
      out[i * 2 + c] = s;
    }
  return out;
}

function meanDistanceToCentroid(z: ArrayLike<number>, n: number, dim: number): number {
  const c = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) c[j] += z[i * dim + j] / n;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += (z[i * dim + j] - c[j]) ** 2;
    sum += Math.sqrt(s);
  }
  return sum / n;
}

/** [n, k] → [n, width] with zero columns added (a rank-1 trajectory has one component). */
function padColumns(x: Float64Array, n: number, k: number, width: number): Float64Array {
  if (k === width) return x;
  const out = new Float64Array(n * width);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < Math.min(k, width); j++) out[i * width + j] = x[i * k + j];
  return out;
}
