/**
 * Dense linear algebra for the lenses: singular value decomposition (full and top-K), the
 * symmetric eigenproblem, and PCA (papers.md §6 "Linear algebra").
 *
 * Conventions: matrices are row-major; singular and eigen vectors are returned as ROWS
 * (vector i occupies [i·len, (i+1)·len)), the layout matmul and the tangent code use.
 *
 * Full SVD is one-sided (Hestenes) Jacobi in float64: it orthogonalises pairs of columns by
 * plane rotations until all columns are mutually orthogonal, so the singular values are the
 * column norms. Chosen over Golub–Kahan bidiagonalisation because it is short, has no
 * shift/deflation logic to get wrong, computes even small singular values to high relative
 * accuracy, and touches only contiguous rows here (columns are stored transposed). A
 * column-pivoted QR first (Drmač & Veselić) keeps it at 6–8 sweeps even on rank-deficient
 * Jacobians; the cost is O(sweeps·n³): fine for the d ≤ 512 Jacobians it is used on.
 * Larger matrices go through `topSvd`, which never forms a full decomposition.
 */
import { newMatrix } from './matrix.js';
import { allocF32, freeF32 } from './memory.js';
import { matmul } from './ops.js';
import { createRng } from './rng.js';

/** A = Σ_i s_i u_i v_iᵀ (i < k), s descending. */
export interface Svd {
  m: number; // rows of A
  n: number; // cols of A
  k: number; // singular triplets kept
  s: Float64Array; // [k]
  u: Float64Array; // [k, m] row i = i-th left singular vector
  v: Float64Array; // [k, n] row i = i-th right singular vector
}

/**
 * Thin SVD of a [m, n] (k = min(m, n)) by one-sided Jacobi in float64, preconditioned by a
 * column-pivoted Householder QR (Drmač & Veselić 2008): A·P = Q·R, then Jacobi on the rows of R
 * (the columns of Rᵀ), which converges in a few sweeps even for graded or rank-deficient A.
 */
export function svd(a: ArrayLike<number>, m: number, n: number): Svd {
  if (a.length !== m * n) throw new Error(`svd: ${a.length} values for a ${m}×${n} matrix`);
  if (m < n) {
    const t = svd(transpose(a, m, n), n, m); // Aᵀ = V S Uᵀ
    return { m, n, k: t.k, s: t.s, u: t.v, v: t.u };
  }
  // A·P = Q·R; g = R [n, n] (rows of R), theta = I [n, n]. Jacobi rotates rows: Θ·R = Σ·W
  // with orthonormal rows W, so R = Θᵀ Σ W and A = (Q Θᵀ) Σ (W Pᵀ).
  const qr = pivotedQr(a, m, n);
  const g = qr.r;
  const tiny = negligibleNorm(g, n);
  const theta = new Float64Array(n * n);
  for (let j = 0; j < n; j++) theta[j * n + j] = 1;
  jacobiOrthogonaliseRows(g, n, n, theta, n);
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) norms[j] = Math.sqrt(dot(g, j * n, g, j * n, n));
  const order = argsortDescending(norms);
  const s = new Float64Array(n);
  const w = new Float64Array(n * n); // rows of W (in pivoted column order)
  const u = new Float64Array(n * m);
  let rank = 0;
  order.forEach((j, i) => {
    s[i] = norms[j];
    u.set(applyQ(qr, theta.subarray(j * n, (j + 1) * n)), i * m); // u_i = Q θ_j
    if (norms[j] > tiny) {
      for (let c = 0; c < n; c++) w[i * n + c] = g[j * n + c] / norms[j];
      rank++;
    }
  });
  completeOrthonormalRows(w, rank, n, n); // right vectors of zero singular values
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < n; c++) v[i * n + qr.perm[c]] = w[i * n + c];
  return { m, n, k: n, s, u, v };
}

/**
 * Singular values only, descending (k = min(m, n)), for when the vectors are not needed: a
 * Householder bidiagonalisation A = Q·B·Pᵀ, then the eigenvalues of the tridiagonal BᵀB by
 * implicit QL with Wilkinson shifts (Numerical Recipes' tqli). About (8/3)n³ flops against
 * Jacobi's ~40n³; squaring B costs relative accuracy only in values below ~√ε·s_1.
 */
export function singularValues(a: ArrayLike<number>, m: number, n: number): Float64Array {
  if (a.length !== m * n)
    throw new Error(`singularValues: ${a.length} values for a ${m}×${n} matrix`);
  if (m < n) return singularValues(transpose(a, m, n), n, m);
  const { d, e } = bidiagonalise(a, m, n);
  // T = BᵀB: T_ii = d_i² + e_{i−1}², T_{i,i+1} = d_i·e_i  (B upper bidiagonal: diagonal d, super e)
  const diag = new Float64Array(n);
  const off = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    diag[i] = d[i] * d[i] + (i > 0 ? e[i - 1] * e[i - 1] : 0);
    if (i < n - 1) off[i] = d[i] * e[i];
  }
  tridiagonalEigenvalues(diag, off);
  return Float64Array.from(diag, (x) => Math.sqrt(Math.max(x, 0))).sort((x, y) => y - x);
}

/** A linear map given by its products with blocks of vectors (stored as rows, fp32). */
export interface LinearOperator {
  rows: number;
  cols: number;
  /** out[b, rows] = A · x_b for b < count; x: [count, cols]. */
  apply(x: Float32Array, count: number, out: Float32Array): void;
  /** out[b, cols] = Aᵀ · y_b for b < count; y: [count, rows]. */
  applyT(y: Float32Array, count: number, out: Float32Array): void;
}

export interface TopSvdOptions {
  /** Extra directions beyond k (default max(10, k)). */
  oversample?: number;
  /** Subspace-iteration steps at most (default 30). */
  maxIterations?: number;
  /** Stop when the top k singular values move less than this, relatively (default 1e-6). */
  tolerance?: number;
}

/**
 * The top k singular triplets of `op` by randomized subspace iteration (Halko, Martinsson &
 * Tropp 2011, Alg. 4.4): a seeded Gaussian block of k + p directions, alternately multiplied
 * by A and Aᵀ and re-orthonormalised, until the top k Ritz values settle; then the small
 * projected matrix B = QᵀA gets a full SVD. Only block products with A and Aᵀ are used.
 * The products run in fp32 (the matmul kernel), orthonormalisation and the small SVD in float64.
 */
export function topSvd(
  op: LinearOperator,
  k: number,
  seed: number,
  options: TopSvdOptions = {},
): Svd {
  const { rows, cols } = op;
  const kk = Math.min(k, rows, cols);
  const l = Math.min(rows, cols, kk + (options.oversample ?? Math.max(10, kk)));
  const maxIter = options.maxIterations ?? 30;
  const tol = options.tolerance ?? 1e-6;
  const rng = createRng(seed);
  const z = allocF32(l * cols); // [l, cols] right block
  const y = allocF32(l * rows); // [l, rows] left block
  try {
    for (let i = 0; i < z.length; i++) z[i] = rng.normal();
    let q: Float64Array = new Float64Array(0);
    let b: Float64Array = new Float64Array(0);
    const previous = new Float64Array(kk).fill(NaN);
    for (let it = 0; it < maxIter; it++) {
      op.apply(z, l, y); // Y = A Z
      q = orthonormaliseRows(Float64Array.from(y), l, rows);
      y.set(q);
      op.applyT(y, l, z); // Bᵀ rows: row i = Aᵀ q_i, i.e. B = QᵀA as [l, cols]
      b = Float64Array.from(z);
      const ritz = symEig(gramRows(b, l, cols), l).values; // s_i² of B
      let moved = 0;
      for (let i = 0; i < kk; i++) {
        const si = Math.sqrt(Math.max(ritz[i], 0));
        moved = Math.max(moved, Math.abs(si - previous[i]) / Math.max(si, 1e-300));
        previous[i] = si;
      }
      if (moved < tol) break;
      z.set(orthonormaliseRows(Float64Array.from(z), l, cols));
    }
    const small = svd(b, l, cols); // B = Ũ S Vᵀ, Ũ: [l, l]
    const u = new Float64Array(kk * rows);
    for (let i = 0; i < kk; i++) {
      // u_i = Q Ũ_{:,i} = Σ_j Ũ[j, i] q_j   (Ũ rows are left vectors: Ũ_{:,i} = small.u row i)
      for (let j = 0; j < l; j++) {
        const c = small.u[i * l + j];
        for (let r = 0; r < rows; r++) u[i * rows + r] += c * q[j * rows + r];
      }
    }
    return {
      m: rows,
      n: cols,
      k: kk,
      s: small.s.slice(0, kk),
      u,
      v: small.v.slice(0, kk * cols),
    };
  } finally {
    freeF32(z);
    freeF32(y);
  }
}

/**
 * The operator of an explicit [rows, cols] fp32 matrix, with its products on the matmul kernel
 * (a transposed copy serves Aᵀ). Call `free` when done.
 */
export function matrixOperator(
  a: Float32Array,
  rows: number,
  cols: number,
): LinearOperator & { free(): void } {
  const w = allocF32(rows * cols);
  w.set(a);
  const wt = allocF32(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) wt[c * rows + r] = a[r * cols + c];
  const A = newMatrix(rows, cols, w);
  const At = newMatrix(cols, rows, wt);
  return {
    rows,
    cols,
    apply: (x, count, out) => matmul(out, x, A, count), // out[b] = x_b·Aᵀ = (A x_b)ᵀ
    applyT: (y, count, out) => matmul(out, y, At, count),
    free: () => {
      freeF32(w);
      freeF32(wt);
    },
  };
}

/** Eigenpairs of a symmetric [n, n] matrix, values descending, vectors as rows. */
export interface SymEig {
  n: number;
  values: Float64Array; // [n]
  vectors: Float64Array; // [n, n] row i = eigenvector of values[i]
}

/** Symmetric eigendecomposition by cyclic Jacobi rotations in float64 (only the upper triangle is read). */
export function symEig(a: ArrayLike<number>, n: number): SymEig {
  if (a.length !== n * n) throw new Error(`symEig: ${a.length} values for a ${n}×${n} matrix`);
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      s[i * n + j] = a[i * n + j];
      s[j * n + i] = a[i * n + j];
    }
  }
  const vt = new Float64Array(n * n); // row j = column j of V (A = V Λ Vᵀ)
  for (let i = 0; i < n; i++) vt[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let total = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const x = s[i * n + j] * s[i * n + j];
        total += x;
        if (i !== j) off += x;
      }
    }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = s[p * n + q];
        if (apq === 0) continue;
        const app = s[p * n + p];
        const aqq = s[q * n + q];
        // Rotation zeroing s[p, q]: θ = (a_qq − a_pp) / (2 a_pq), t = sign(θ) / (|θ| + √(θ² + 1)).
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        for (let k = 0; k < n; k++) {
          // rows p, q of S
          const sp = s[p * n + k];
          const sq = s[q * n + k];
          s[p * n + k] = c * sp - sn * sq;
          s[q * n + k] = sn * sp + c * sq;
        }
        for (let k = 0; k < n; k++) {
          // columns p, q of S
          const sp = s[k * n + p];
          const sq = s[k * n + q];
          s[k * n + p] = c * sp - sn * sq;
          s[k * n + q] = sn * sp + c * sq;
        }
        rotateRows(vt, p * n, q * n, n, c, sn);
      }
    }
  }
  const diag = new Float64Array(n);
  for (let i = 0; i < n; i++) diag[i] = s[i * n + i];
  const order = argsortDescending(diag);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((j, i) => {
    values[i] = diag[j];
    vectors.set(vt.subarray(j * n, (j + 1) * n), i * n);
  });
  return { n, values, vectors };
}

export interface Pca {
  n: number; // samples
  d: number; // features
  k: number; // components kept
  mean: Float64Array; // [d]
  components: Float64Array; // [k, d] unit rows, by decreasing variance
  explainedVariance: Float64Array; // [k] sample variance along each component (divisor n − 1)
  explainedVarianceRatio: Float64Array; // [k] share of the total variance
  scores: Float64Array; // [n, k] centred samples projected on the components
}

/** PCA of the rows of x [n, d] through the SVD of the centred data (as scikit-learn's PCA). */
export function pca(x: ArrayLike<number>, n: number, d: number, k: number): Pca {
  if (x.length !== n * d) throw new Error(`pca: ${x.length} values for ${n} samples of ${d}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  const xc = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) xc[i * d + j] = x[i * d + j] - mean[j];
  const f = svd(xc, n, d);
  const kk = Math.min(k, f.k);
  const denom = Math.max(n - 1, 1);
  let total = 0;
  for (let i = 0; i < f.k; i++) total += (f.s[i] * f.s[i]) / denom;
  const explainedVariance = new Float64Array(kk);
  const explainedVarianceRatio = new Float64Array(kk);
  const scores = new Float64Array(n * kk);
  for (let c = 0; c < kk; c++) {
    explainedVariance[c] = (f.s[c] * f.s[c]) / denom;
    explainedVarianceRatio[c] = total > 0 ? explainedVariance[c] / total : 0;
    for (let i = 0; i < n; i++) scores[i * kk + c] = f.u[c * n + i] * f.s[c];
  }
  return {
    n,
    d,
    k: kk,
    mean,
    components: f.v.slice(0, kk * d),
    explainedVariance,
    explainedVarianceRatio,
    scores,
  };
}

/**
 * Householder bidiagonalisation of a [m, n], m ≥ n (values only): the diagonal d [n] and the
 * superdiagonal e [n − 1] of B in A = Q·B·Pᵀ. Left reflectors zero columns below the diagonal,
 * right reflectors zero rows beyond the superdiagonal.
 */
function bidiagonalise(
  a: ArrayLike<number>,
  m: number,
  n: number,
): { d: Float64Array; e: Float64Array } {
  const x = Float64Array.from(a); // [m, n], reduced in place
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(n - 1, 0));
  const v = new Float64Array(Math.max(m, n));
  const w = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    // left: v ∝ column k below the diagonal − α·e_1, then A[k:, k:] −= 2·v·(vᵀ·A[k:, k:])
    let norm = 0;
    for (let i = k; i < m; i++) norm += x[i * n + k] ** 2;
    norm = Math.sqrt(norm);
    d[k] = householder(x, k * n + k, n, m - k, norm, v);
    if (norm > 0) {
      w.fill(0, k + 1, n);
      for (let i = k; i < m; i++) for (let j = k + 1; j < n; j++) w[j] += v[i - k] * x[i * n + j];
      for (let i = k; i < m; i++)
        for (let j = k + 1; j < n; j++) x[i * n + j] -= 2 * v[i - k] * w[j];
    }
    if (k >= n - 1) continue;
    // right: u ∝ row k right of the superdiagonal − β·e_1, then A[k:, k+1:] −= 2·(A·u)·uᵀ
    let rnorm = 0;
    for (let j = k + 1; j < n; j++) rnorm += x[k * n + j] ** 2;
    rnorm = Math.sqrt(rnorm);
    e[k] = householder(x, k * n + k + 1, 1, n - k - 1, rnorm, v);
    if (rnorm > 0) {
      for (let i = k + 1; i < m; i++) {
        let s = 0;
        for (let j = k + 1; j < n; j++) s += x[i * n + j] * v[j - k - 1];
        for (let j = k + 1; j < n; j++) x[i * n + j] -= 2 * s * v[j - k - 1];
      }
    }
  }
  return { d, e };
}

/**
 * The unit Householder vector v (into v[0..len)) that maps the strided vector x[o + i·stride]
 * (i < len, Euclidean norm `norm`) to α·e_1; returns α = −sign(x_0)·norm (x_0 when norm = 0).
 */
function householder(
  x: Float64Array,
  o: number,
  stride: number,
  len: number,
  norm: number,
  v: Float64Array,
): number {
  if (norm === 0) {
    v.fill(0, 0, len);
    return 0;
  }
  const alpha = x[o] > 0 ? -norm : norm;
  for (let i = 0; i < len; i++) v[i] = x[o + i * stride];
  v[0] -= alpha;
  let vn = 0;
  for (let i = 0; i < len; i++) vn += v[i] * v[i];
  vn = Math.sqrt(vn);
  for (let i = 0; i < len; i++) v[i] = vn > 0 ? v[i] / vn : 0;
  return alpha;
}

/**
 * Eigenvalues of the symmetric tridiagonal matrix with diagonal `d` [n] and off-diagonal
 * `e` [n] (e[i] = T[i, i+1], e[n−1] unused), in place into d (unsorted): implicit QL with
 * Wilkinson shifts, as Numerical Recipes' tqli without eigenvectors.
 */
function tridiagonalEigenvalues(d: Float64Array, e: Float64Array): void {
  const n = d.length;
  if (n > 0) e[n - 1] = 0;
  for (let l = 0; l < n; l++) {
    for (let iter = 0; iter < 60; iter++) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= 2.2e-16 * dd) break;
      }
      if (m === l) break;
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      for (; i >= l; i--) {
        const f = s * e[i];
        const b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1] -= p;
          e[m] = 0;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
      }
      if (r === 0 && i >= l) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
}

/** A·P = Q·R with Q = H_0 ⋯ H_{n−1} (Householder reflectors I − 2·v·vᵀ, v unit). */
interface PivotedQr {
  m: number;
  n: number;
  r: Float64Array; // [n, n] upper triangular
  perm: Int32Array; // column c of A·P is column perm[c] of A
  reflectors: Float64Array; // [n, m] row k = v_k (zero before index k)
}

/** Householder QR with column pivoting (largest remaining column first), m ≥ n. */
function pivotedQr(a: ArrayLike<number>, m: number, n: number): PivotedQr {
  const g = transpose(a, m, n); // [n, m] row j = column j of A (as it is reduced)
  const perm = Int32Array.from({ length: n }, (_, j) => j);
  const reflectors = new Float64Array(n * m);
  for (let k = 0; k < n; k++) {
    let best = k;
    let bestNorm = -1;
    for (let j = k; j < n; j++) {
      const nj = dot(g, j * m + k, g, j * m + k, m - k);
      if (nj > bestNorm) {
        bestNorm = nj;
        best = j;
      }
    }
    if (best !== k) {
      swapRows(g, k, best, m);
      [perm[k], perm[best]] = [perm[best], perm[k]];
    }
    // v ∝ x − α e_1 with α = −sign(x_0)‖x‖, x = column k below the diagonal
    const o = k * m;
    const norm = Math.sqrt(bestNorm);
    if (norm === 0) continue; // the rest is zero; H_k = I
    const alpha = g[o + k] > 0 ? -norm : norm;
    const v = reflectors.subarray(o, o + m);
    for (let i = k; i < m; i++) v[i] = g[o + i];
    v[k] -= alpha;
    const vn = Math.sqrt(dot(v, k, v, k, m - k));
    for (let i = k; i < m; i++) v[i] /= vn;
    g.fill(0, o + k, o + m);
    g[o + k] = alpha;
    for (let j = k + 1; j < n; j++) {
      const c = 2 * dot(v, k, g, j * m + k, m - k);
      for (let i = k; i < m; i++) g[j * m + i] -= c * v[i];
    }
  }
  const r = new Float64Array(n * n);
  for (let k = 0; k < n; k++) for (let j = k; j < n; j++) r[k * n + j] = g[j * m + k];
  return { m, n, r, perm, reflectors };
}

/** Q·x for x of length n (zero-padded to m): H_0(H_1(⋯ H_{n−1} x)). */
function applyQ(qr: PivotedQr, x: Float64Array): Float64Array {
  const { m, n, reflectors } = qr;
  const y = new Float64Array(m);
  y.set(x);
  for (let k = n - 1; k >= 0; k--) {
    const c = 2 * dot(reflectors, k * m + k, y, k, m - k);
    for (let i = k; i < m; i++) y[i] -= c * reflectors[k * m + i];
  }
  return y;
}

function swapRows(a: Float64Array, p: number, q: number, len: number): void {
  for (let i = 0; i < len; i++) {
    const t = a[p * len + i];
    a[p * len + i] = a[q * len + i];
    a[q * len + i] = t;
  }
}

/**
 * Cyclic one-sided Jacobi: rotates pairs of rows of g [rows, len] until they are mutually
 * orthogonal, applying each rotation to the rows of `acc` [rows, accLen] too.
 */
function jacobiOrthogonaliseRows(
  g: Float64Array,
  rows: number,
  len: number,
  acc: Float64Array,
  accLen: number,
): void {
  const norm2 = new Float64Array(rows);
  for (let j = 0; j < rows; j++) norm2[j] = dot(g, j * len, g, j * len, len);
  const eps = 1e-15;
  const floor2 = negligibleNorm(g, len) ** 2; // rows this small are numerically zero: left alone
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let j = 0; j < rows - 1; j++) {
      for (let k = j + 1; k < rows; k++) {
        const alpha = norm2[j];
        const beta = norm2[k];
        if (alpha <= floor2 || beta <= floor2) continue;
        const gamma = dot(g, j * len, g, k * len, len);
        if (Math.abs(gamma) <= eps * Math.sqrt(alpha * beta) || gamma === 0) continue;
        rotated = true;
        // ζ = (β − α) / 2γ, t = sign(ζ) / (|ζ| + √(1 + ζ²)): the rotation making rows j, k orthogonal.
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotateRows(g, j * len, k * len, len, c, s);
        rotateRows(acc, j * accLen, k * accLen, accLen, c, s);
        // Rutishauser's update of the squared norms; refreshed exactly every sweep below.
        norm2[j] = alpha - t * gamma;
        norm2[k] = beta + t * gamma;
      }
    }
    for (let j = 0; j < rows; j++) norm2[j] = dot(g, j * len, g, j * len, len);
    if (!rotated) break;
  }
}

/**
 * A row norm at the rounding level of the whole matrix a [rows, len]: len·ε·‖a‖_F. Jacobi leaves
 * such rows alone (rotating noise against noise only costs sweeps) and svd treats them as zero.
 */
function negligibleNorm(a: Float64Array, len: number): number {
  return len * 2.2e-16 * Math.sqrt(dot(a, 0, a, 0, a.length));
}

/** (row_p, row_q) ← (c·row_p − s·row_q, s·row_p + c·row_q). */
function rotateRows(
  a: Float64Array,
  p: number,
  q: number,
  len: number,
  c: number,
  s: number,
): void {
  for (let i = 0; i < len; i++) {
    const x = a[p + i];
    const y = a[q + i];
    a[p + i] = c * x - s * y;
    a[q + i] = s * x + c * y;
  }
}

/**
 * Modified Gram–Schmidt, twice ("twice is enough"), on the rows of a [rows, len]. A row that
 * vanishes (dependent) is replaced by a unit vector orthogonal to the others.
 */
function orthonormaliseRows(a: Float64Array, rows: number, len: number): Float64Array {
  const scale = new Float64Array(rows);
  for (let i = 0; i < rows; i++) scale[i] = Math.sqrt(dot(a, i * len, a, i * len, len));
  let good = 0;
  for (let i = 0; i < rows; i++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < good; j++) {
        const c = dot(a, j * len, a, i * len, len);
        for (let r = 0; r < len; r++) a[i * len + r] -= c * a[j * len + r];
      }
    }
    const nrm = Math.sqrt(dot(a, i * len, a, i * len, len));
    if (nrm > 1e-12 * scale[i] && nrm > 0) {
      for (let r = 0; r < len; r++) a[good * len + r] = a[i * len + r] / nrm;
      good++;
    }
  }
  completeOrthonormalRows(a, good, rows, len);
  return a;
}

/** Fills rows [have, rows) of a [rows, len] with unit vectors orthogonal to all earlier rows. */
function completeOrthonormalRows(a: Float64Array, have: number, rows: number, len: number): void {
  let next = have;
  for (let e = 0; e < len && next < rows; e++) {
    const o = next * len;
    a.fill(0, o, o + len);
    a[o + e] = 1;
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < next; j++) {
        const c = dot(a, j * len, a, o, len);
        for (let r = 0; r < len; r++) a[o + r] -= c * a[j * len + r];
      }
    }
    const nrm = Math.sqrt(dot(a, o, a, o, len));
    if (nrm < 1e-8) continue; // e_e lies in the span already
    for (let r = 0; r < len; r++) a[o + r] /= nrm;
    next++;
  }
}

/** G = A Aᵀ for a [rows, len]: [rows, rows]. */
function gramRows(a: Float64Array, rows: number, len: number): Float64Array {
  const g = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++) {
    for (let j = i; j < rows; j++) {
      const v = dot(a, i * len, a, j * len, len);
      g[i * rows + j] = v;
      g[j * rows + i] = v;
    }
  }
  return g;
}

function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, len: number): number {
  let s0 = 0;
  let s1 = 0;
  let i = 0;
  for (; i + 1 < len; i += 2) {
    s0 += a[ao + i] * b[bo + i];
    s1 += a[ao + i + 1] * b[bo + i + 1];
  }
  if (i < len) s0 += a[ao + i] * b[bo + i];
  return s0 + s1;
}

function transpose(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

function argsortDescending(v: Float64Array): number[] {
  return Array.from(v.keys()).sort((i, j) => v[j] - v[i] || i - j);
}
