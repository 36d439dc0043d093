/**
 * Clustering for the DMET lens (papers.md §1.4 item 3, §6 "Clustering"): k-means with greedy
 * k-means++ seeding and Lloyd iterations, and the silhouette score, both as scikit-learn defines
 * them (`KMeans(n_clusters, random_state)`, `silhouette_score(X, labels)`, Euclidean).
 *
 * Points are rows of a row-major [n, dim] array. Seeds go through `createRng`, so results are
 * reproducible here but do not reproduce scikit-learn's random stream (papers.md §1.4: compare
 * distributions, not values).
 */
import { LmdynError } from '../errors.js';
import { createRng, type Rng } from '../tensor/rng.js';

export interface KMeansOptions {
  k: number;
  /** Seed of the k-means++ draws (run r uses the stream of seed, continued). */
  seed: number;
  /** Independent k-means++ starts; the lowest inertia wins (scikit-learn ≥ 1.4 'auto' = 1). */
  nInit?: number;
  /** Lloyd iterations per start (scikit-learn default 300). */
  maxIter?: number;
  /** Stop when the squared centre shift ≤ tol · mean feature variance (scikit-learn 1e-4). */
  tol?: number;
}

export interface KMeansResult {
  k: number;
  /** [n] cluster of each point, 0..k−1. */
  labels: Int32Array;
  /** [k, dim] */
  centers: Float64Array;
  /** Σ squared distance of each point to its centre. */
  inertia: number;
  /** Lloyd iterations of the winning start. */
  iterations: number;
  seed: number;
  nInit: number;
}

/** k-means (Lloyd) from greedy k-means++ starts; k is clipped to the number of points. */
export function kmeans(
  points: ArrayLike<number>,
  n: number,
  dim: number,
  options: KMeansOptions,
): KMeansResult {
  if (points.length !== n * dim)
    throw new LmdynError('bad_argument', `kmeans: ${points.length} values for ${n}×${dim}`);
  if (n < 1) throw new LmdynError('bad_argument', 'kmeans: no points');
  const k = Math.max(1, Math.min(options.k, n));
  const nInit = options.nInit ?? 1;
  const maxIter = options.maxIter ?? 300;
  const x = Float64Array.from(points);
  const tol = (options.tol ?? 1e-4) * meanVariance(x, n, dim);
  const rng = createRng(options.seed);
  let best: Omit<KMeansResult, 'seed' | 'nInit'> | null = null;
  for (let run = 0; run < nInit; run++) {
    const centers = kmeansPlusPlus(x, n, dim, k, rng);
    const result = lloyd(x, n, dim, k, centers, maxIter, tol);
    if (!best || result.inertia < best.inertia) best = result;
  }
  return { ...best!, seed: options.seed, nInit };
}

/**
 * Mean silhouette over all points: s_i = (b_i − a_i) / max(a_i, b_i), a_i = mean distance to
 * the other members of i's cluster, b_i = smallest mean distance to another cluster; s_i = 0 in
 * a cluster of one. Null when the labels do not form 2 ≤ #clusters ≤ n − 1 (scikit-learn raises).
 */
export function silhouetteScore(
  points: ArrayLike<number>,
  n: number,
  dim: number,
  labels: ArrayLike<number>,
): number | null {
  const s = silhouetteSamples(points, n, dim, labels);
  if (s === null) return null;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i];
  return sum / n;
}

/** Per-point silhouette values s_i (see `silhouetteScore`); null when undefined. */
export function silhouetteSamples(
  points: ArrayLike<number>,
  n: number,
  dim: number,
  labels: ArrayLike<number>,
): Float64Array | null {
  if (labels.length !== n)
    throw new LmdynError('bad_argument', `silhouette: ${labels.length} labels for ${n} points`);
  const ids = [...new Set(Array.from(labels))].sort((a, b) => a - b);
  if (ids.length < 2 || ids.length > n - 1) return null;
  const slot = new Map(ids.map((id, j) => [id, j]));
  const c = ids.length;
  const size = new Float64Array(c);
  for (let i = 0; i < n; i++) size[slot.get(labels[i])!]++;
  const out = new Float64Array(n);
  const sums = new Float64Array(c);
  for (let i = 0; i < n; i++) {
    sums.fill(0);
    for (let j = 0; j < n; j++) {
      if (j !== i)
        sums[slot.get(labels[j])!] += Math.sqrt(squaredDistance(points, i, points, j, dim));
    }
    const own = slot.get(labels[i])!;
    if (size[own] <= 1) continue; // s_i = 0
    const a = sums[own] / (size[own] - 1);
    let b = Infinity;
    for (let q = 0; q < c; q++) if (q !== own) b = Math.min(b, sums[q] / size[q]);
    const m = Math.max(a, b);
    out[i] = m > 0 ? (b - a) / m : 0;
  }
  return out;
}

/**
 * Greedy k-means++ (scikit-learn's `_kmeans_plusplus`): the first centre uniformly; each next
 * one the best of 2 + ⌊ln k⌋ candidates drawn with probability ∝ D(x)², "best" meaning the
 * lowest resulting potential Σ min(D², d²(x, candidate)).
 */
function kmeansPlusPlus(
  x: Float64Array,
  n: number,
  dim: number,
  k: number,
  rng: Rng,
): Float64Array {
  const centers = new Float64Array(k * dim);
  const trials = 2 + Math.floor(Math.log(k));
  const first = Math.min(n - 1, Math.floor(rng.next() * n));
  centers.set(x.subarray(first * dim, (first + 1) * dim), 0);
  const closest = new Float64Array(n);
  for (let i = 0; i < n; i++) closest[i] = squaredDistance(x, i, x, first, dim);
  let potential = closest.reduce((a, b) => a + b, 0);
  const candidateDist = new Float64Array(n);
  const bestDist = new Float64Array(n);
  for (let c = 1; c < k; c++) {
    let bestId = -1;
    let bestPot = Infinity;
    for (let t = 0; t < trials; t++) {
      const id = drawProportional(closest, potential, rng);
      let pot = 0;
      for (let i = 0; i < n; i++) {
        candidateDist[i] = Math.min(closest[i], squaredDistance(x, i, x, id, dim));
        pot += candidateDist[i];
      }
      if (pot < bestPot) {
        bestPot = pot;
        bestId = id;
        bestDist.set(candidateDist);
      }
    }
    centers.set(x.subarray(bestId * dim, (bestId + 1) * dim), c * dim);
    closest.set(bestDist);
    potential = bestPot;
  }
  return centers;
}

/** An index drawn with probability weights[i] / total (the first index when total = 0). */
function drawProportional(weights: Float64Array, total: number, rng: Rng): number {
  const target = rng.next() * total;
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i];
    if (acc > target) return i;
  }
  for (let i = weights.length - 1; i >= 0; i--) if (weights[i] > 0) return i;
  return 0;
}

/**
 * Lloyd iterations: assign each point to its nearest centre (lowest index on ties), move each
 * centre to its points' mean; an emptied cluster takes the point farthest from its centre (as
 * scikit-learn relocates). Stops when no label changes or the centre shift is within tol.
 */
function lloyd(
  x: Float64Array,
  n: number,
  dim: number,
  k: number,
  centers: Float64Array,
  maxIter: number,
  tol: number,
): Omit<KMeansResult, 'seed' | 'nInit'> {
  const labels = new Int32Array(n).fill(-1);
  let iterations = 0;
  for (let it = 0; it < maxIter; it++) {
    iterations = it + 1;
    const changed = assign(x, n, dim, k, centers, labels);
    const next = new Float64Array(k * dim);
    const count = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      count[labels[i]]++;
      for (let j = 0; j < dim; j++) next[labels[i] * dim + j] += x[i * dim + j];
    }
    for (let c = 0; c < k; c++)
      if (count[c] === 0) relocate(x, n, dim, centers, labels, next, count, c);
    for (let c = 0; c < k; c++) for (let j = 0; j < dim; j++) next[c * dim + j] /= count[c];
    let shift = 0;
    for (let i = 0; i < k * dim; i++) shift += (next[i] - centers[i]) ** 2;
    centers.set(next);
    if (!changed || shift <= tol) break;
  }
  assign(x, n, dim, k, centers, labels);
  let inertia = 0;
  for (let i = 0; i < n; i++) inertia += squaredDistance(x, i, centers, labels[i], dim);
  return { k, labels, centers, inertia, iterations };
}

/** Nearest-centre labels in place; returns whether any label changed. */
function assign(
  x: Float64Array,
  n: number,
  dim: number,
  k: number,
  centers: Float64Array,
  labels: Int32Array,
): boolean {
  let changed = false;
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestD = Infinity;
    for (let c = 0; c < k; c++) {
      const d = squaredDistance(x, i, centers, c, dim);
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    }
    if (labels[i] !== best) changed = true;
    labels[i] = best;
  }
  return changed;
}

/** Moves empty cluster c (of sums `next`, sizes `count`) onto the point farthest from its centre. */
function relocate(
  x: Float64Array,
  n: number,
  dim: number,
  centers: Float64Array,
  labels: Int32Array,
  next: Float64Array,
  count: Float64Array,
  c: number,
): void {
  let far = 0;
  let farD = -1;
  for (let i = 0; i < n; i++) {
    const d = squaredDistance(x, i, centers, labels[i], dim);
    if (d > farD && count[labels[i]] > 1) {
      farD = d;
      far = i;
    }
  }
  const from = labels[far];
  for (let j = 0; j < dim; j++) {
    next[c * dim + j] = x[far * dim + j];
    next[from * dim + j] -= x[far * dim + j];
  }
  count[from]--;
  count[c] = 1;
  labels[far] = c;
}

function squaredDistance(
  a: ArrayLike<number>,
  i: number,
  b: ArrayLike<number>,
  j: number,
  dim: number,
): number {
  let s = 0;
  for (let t = 0; t < dim; t++) {
    const diff = a[i * dim + t] - b[j * dim + t];
    s += diff * diff;
  }
  return s;
}

/** Mean over features of the population variance (scikit-learn's tolerance scale). */
function meanVariance(x: Float64Array, n: number, dim: number): number {
  let total = 0;
  for (let j = 0; j < dim; j++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += x[i * dim + j];
    m /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[i * dim + j] - m) ** 2;
    total += v / n;
  }
  return total / dim;
}
