/**
 * Vietoris–Rips persistent homology over Z/2 (papers.md §1.4 item 4: DMET's topological
 * persistence P = the largest finite H1 lifetime of the Rips filtration of a trajectory).
 *
 * Why our own implementation: nothing on npm computes Rips persistence (anchors.md §1.14), a
 * native addon or a spawned `ripser` would not run in the browser dashboard, and a naive
 * boundary-matrix reduction is far too slow for the ~1000-point clouds the lenses produce.
 * This file implements the algorithm of Ripser 1.2 (U. Bauer, "Ripser: efficient computation
 * of Vietoris–Rips persistence barcodes", J. Appl. Comput. Topol. 2021) in plain TypeScript
 * on typed arrays, so the same code runs in Node and in a page, in float64 throughout
 * (Ripser computes in float32), and is checked interval by interval against Debian's
 * `/usr/bin/ripser` in test/stats/rips.test.ts.
 *
 * The algorithm, and the conventions it shares with ripser (so diagrams match it exactly):
 * - Filtration order: simplices by diameter ascending, ties by combinatorial index
 *   descending. A k-simplex with vertices v_k > … > v_0 has index Σ_i C(v_i, i+1)
 *   (combinatorial number system); cofacets and facets are enumerated from the index without
 *   ever being stored ("implicit coboundary enumeration").
 * - Default threshold: the enclosing radius min_i max_j d(i, j). At that radius some vertex is
 *   joined to every other, so the complex is a cone and every class of dimension ≥ 1 has died:
 *   larger thresholds give the same diagram. A larger requested threshold is therefore capped
 *   at the enclosing radius; a smaller one truncates the filtration (its survivors are
 *   reported as essential, death null).
 * - H0 by union-find over the edges in filtration order (Kruskal); the edges that close a
 *   cycle are the columns of the dimension-1 reduction.
 * - Dimension ≥ 1 by reducing the *coboundary* matrix (persistent cohomology, same barcode
 *   as homology) column by column in reverse filtration order, with
 *   · clearing: a simplex that is the pivot of a column of dimension k−1 is never a column;
 *   · apparent pairs: a simplex σ and its cofacet τ of the same diameter, τ the earliest
 *     cofacet of σ and σ the latest facet of τ, are a zero-persistence pair; such columns are
 *     skipped, and when a pivot τ has an apparent facet σ the coboundary of σ is added;
 *   · emergent pairs: when the earliest cofacet of a column has the column's own diameter and
 *     is not yet anyone's pivot, the column needs no reduction at all;
 *   · the reduction matrix V is stored (as lists of simplices) and coboundaries of its
 *     columns are re-enumerated when added, instead of storing the reduced coboundaries.
 * - Only pairs with death > birth are reported (as ripser with --ratio 1).
 */
import { LmdynError } from '../errors.js';

export interface PersistencePair {
  dim: number;
  birth: number;
  /** null = essential (never dies below the threshold). */
  death: number | null;
}

export interface PersistenceResult {
  /** Sorted by dim, then birth, then death (essential last). */
  pairs: PersistencePair[];
  /** The diameter up to which the filtration was built. */
  threshold: number;
  maxDim: number;
  n: number;
}

export interface RipsOptions {
  /** Highest homology dimension (default 1). */
  maxDim?: number;
  /** Largest simplex diameter (default and upper cap: the enclosing radius, as ripser). */
  threshold?: number;
}

/** Vietoris–Rips persistence of n points in R^dim (row-major, n*dim), Euclidean distance. */
export function ripsPersistence(
  points: ArrayLike<number>,
  n: number,
  dim: number,
  options: RipsOptions = {},
): PersistenceResult {
  if (!Number.isInteger(n) || n < 0) throw new LmdynError('bad_argument', `rips: point count must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(dim) || dim < 1) throw new LmdynError('bad_argument', `rips: dimension must be a positive integer, got ${dim}`);
  if (points.length < n * dim) throw new LmdynError('bad_argument', `rips: ${n} points in R^${dim} need ${n * dim} numbers, got ${points.length}`);
  return ripsPersistenceFromDistances(euclideanDistances(points, n, dim), n, options);
}

/**
 * Vietoris–Rips persistence of a distance matrix (n*n, row-major). Only the lower triangle
 * (i > j) is read, as ripser's lower-distance format; the diagonal is taken as 0.
 */
export function ripsPersistenceFromDistances(
  dist: Float64Array,
  n: number,
  options: RipsOptions = {},
): PersistenceResult {
  if (!Number.isInteger(n) || n < 0) throw new LmdynError('bad_argument', `rips: point count must be a non-negative integer, got ${n}`);
  if (dist.length < n * n) throw new LmdynError('bad_argument', `rips: a ${n}×${n} distance matrix needs ${n * n} entries, got ${dist.length}`);
  const maxDim = options.maxDim ?? 1;
  if (!Number.isInteger(maxDim) || maxDim < 0) throw new LmdynError('bad_argument', `rips: maxDim must be a non-negative integer, got ${maxDim}`);
  const requested = options.threshold ?? Infinity;
  if (Number.isNaN(requested) || requested < 0) throw new LmdynError('bad_argument', `rips: threshold must be a non-negative number, got ${requested}`);
  if (n > 2 && binomial(n, Math.min(maxDim, n - 2) + 2) > Number.MAX_SAFE_INTEGER) {
    throw new LmdynError('bad_argument', `rips: maxDim ${maxDim} with ${n} points overflows the simplex numbering`);
  }
  const d = symmetricDistances(dist, n);
  const radius = enclosingRadius(d, n);
  const threshold = Math.min(requested, radius);
  const pairs = n === 0 ? [] : new RipsReduction(d, n, Math.min(maxDim, Math.max(n - 2, 0)), threshold).run();
  pairs.sort(comparePairs);
  return { pairs, threshold, maxDim, n };
}

/** Betti number β_dim(t) = #{pairs of dimension dim with birth ≤ t < death} at each grid value. */
export function bettiCurve(pairs: PersistencePair[], dim: number, grid: number[]): number[] {
  return grid.map((t) => {
    let count = 0;
    for (const p of pairs) {
      if (p.dim === dim && p.birth <= t && (p.death === null || t < p.death)) count++;
    }
    return count;
  });
}

/** The largest finite lifetime death − birth in dimension dim; 0 if there is none (DMET's P for dim 1). */
export function largestLifetime(pairs: PersistencePair[], dim: number): number {
  let best = 0;
  for (const p of pairs) {
    if (p.dim === dim && p.death !== null && p.death - p.birth > best) best = p.death - p.birth;
  }
  return best;
}

/** min_i max_j d(i, j): the radius of the smallest ball centred at a data point holding all points. */
export function enclosingRadius(dist: Float64Array, n: number): number {
  let radius = Infinity;
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let j = 0, row = i * n; j < n; j++) if (dist[row + j] > r) r = dist[row + j];
    if (r < radius) radius = r;
  }
  return n === 0 ? 0 : radius;
}

/** Euclidean distance matrix [n, n] of row-major points [n, dim], in float64. */
export function euclideanDistances(points: ArrayLike<number>, n: number, dim: number): Float64Array {
  const x = Float64Array.from({ length: n * dim }, (_, k) => points[k]);
  for (let k = 0; k < x.length; k++) {
    if (!Number.isFinite(x[k])) throw new LmdynError('bad_argument', `rips: point ${Math.floor(k / dim)} has a non-finite coordinate (${x[k]})`);
  }
  const d = new Float64Array(n * n);
  for (let i = 1; i < n; i++) {
    const a = i * dim;
    for (let j = 0; j < i; j++) {
      const b = j * dim;
      let s = 0;
      for (let c = 0; c < dim; c++) {
        const t = x[a + c] - x[b + c];
        s += t * t;
      }
      const r = Math.sqrt(s);
      d[i * n + j] = r;
      d[j * n + i] = r;
    }
  }
  return d;
}

function symmetricDistances(dist: Float64Array, n: number): Float64Array {
  const d = new Float64Array(n * n);
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const v = dist[i * n + j];
      if (!(v >= 0) || v === Infinity) throw new LmdynError('bad_argument', `rips: distance (${i}, ${j}) must be finite and non-negative, got ${v}`);
      d[i * n + j] = v + 0; // + 0 turns −0 into +0 (the edge sort reads the bits)
      d[j * n + i] = v + 0;
    }
  }
  return d;
}

function binomial(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
}

function comparePairs(a: PersistencePair, b: PersistencePair): number {
  if (a.dim !== b.dim) return a.dim - b.dim;
  if (a.birth !== b.birth) return a.birth - b.birth;
  if (a.death === b.death) return 0;
  if (a.death === null) return 1;
  if (b.death === null) return -1;
  return a.death - b.death;
}

// ---- the reduction ---------------------------------------------------------------------------

/** A column heap ordered by filtration: smallest diameter on top, ties by largest index. */
class ColumnHeap {
  diam = new Float64Array(64);
  index = new Float64Array(64);
  size = 0;
  /** The entry returned by the last popPivot/getPivot. */
  pivotDiam = 0;

  clear(): void {
    this.size = 0;
  }

  push(d: number, i: number): void {
    if (this.size === this.diam.length) this.grow();
    const hd = this.diam;
    const hi = this.index;
    let k = this.size++;
    while (k > 0) {
      const p = (k - 1) >> 1;
      const pd = hd[p];
      if (pd < d || (pd === d && hi[p] > i)) break;
      hd[k] = pd;
      hi[k] = hi[p];
      k = p;
    }
    hd[k] = d;
    hi[k] = i;
  }

  /** Removes the top entry. */
  pop(): void {
    const hd = this.diam;
    const hi = this.index;
    const n = --this.size;
    if (n === 0) return;
    const d = hd[n];
    const i = hi[n];
    let k = 0;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && (hd[r] < hd[c] || (hd[r] === hd[c] && hi[r] > hi[c]))) c = r;
      const cd = hd[c];
      if (d < cd || (d === cd && i > hi[c])) break;
      hd[k] = cd;
      hi[k] = hi[c];
      k = c;
    }
    hd[k] = d;
    hi[k] = i;
  }

  /** Pops the top entry after cancelling equal pairs (Z/2 sums); returns its index or −1. */
  popPivot(): number {
    if (this.size === 0) return -1;
    let d = this.diam[0];
    let i = this.index[0];
    this.pop();
    while (this.size > 0 && this.index[0] === i) {
      this.pop();
      if (this.size === 0) return -1;
      d = this.diam[0];
      i = this.index[0];
      this.pop();
    }
    this.pivotDiam = d;
    return i;
  }

  /** The pivot without removing it. */
  getPivot(): number {
    const i = this.popPivot();
    if (i !== -1) this.push(this.pivotDiam, i);
    return i;
  }

  private grow(): void {
    const d = new Float64Array(this.diam.length * 2);
    d.set(this.diam);
    this.diam = d;
    const i = new Float64Array(this.index.length * 2);
    i.set(this.index);
    this.index = i;
  }
}

/** Growable list of (diameter, index) entries. */
class EntryList {
  diam: Float64Array;
  index: Float64Array;
  length = 0;
  constructor(capacity = 64) {
    this.diam = new Float64Array(Math.max(capacity, 16));
    this.index = new Float64Array(Math.max(capacity, 16));
  }
  push(d: number, i: number): void {
    if (this.length === this.diam.length) {
      const nd = new Float64Array(this.length * 2);
      nd.set(this.diam);
      this.diam = nd;
      const ni = new Float64Array(this.length * 2);
      ni.set(this.index);
      this.index = ni;
    }
    this.diam[this.length] = d;
    this.index[this.length++] = i;
  }
}

class RipsReduction {
  private readonly binom: Float64Array; // C(j, k) at [k * (n + 1) + j], k ≤ maxDim + 2
  private readonly stride: number;
  private readonly verts: Int32Array; // scratch: vertices of a simplex, descending
  private readonly facetVerts: Int32Array;
  private readonly cofacets: EntryList = new EntryList();
  private readonly pairs: PersistencePair[] = [];

  constructor(
    private readonly dist: Float64Array, // [n, n], symmetric
    private readonly n: number,
    private readonly maxDim: number,
    private readonly threshold: number,
  ) {
    this.stride = n + 1;
    const kmax = maxDim + 2;
    this.binom = new Float64Array((kmax + 1) * this.stride);
    for (let j = 0; j <= n; j++) {
      this.binom[j] = 1;
      for (let k = 1; k <= kmax; k++) {
        // C(j, k) = C(j-1, k-1) + C(j-1, k)
        this.binom[k * this.stride + j] = j === 0 ? 0 : this.binom[(k - 1) * this.stride + j - 1] + this.binom[k * this.stride + j - 1];
      }
    }
    this.verts = new Int32Array(maxDim + 3);
    this.facetVerts = new Int32Array(maxDim + 3);
  }

  run(): PersistencePair[] {
    let columns = this.dimZero();
    let simplices: EntryList | null = null;
    for (let dim = 1; dim <= this.maxDim; dim++) {
      const pivots = new Map<number, number>();
      this.reduce(columns, pivots, dim);
      if (dim < this.maxDim) {
        if (simplices === null) simplices = this.edges();
        const next = this.assembleColumns(simplices, pivots, dim + 1, dim + 1 < this.maxDim);
        columns = next.columns;
        simplices = next.simplices;
      }
    }
    return this.pairs;
  }

  private b(j: number, k: number): number {
    return this.binom[k * this.stride + j];
  }

  // ---- dimension 0 ----

  /** All edges of diameter ≤ threshold, in filtration order (diameter ascending, index descending). */
  private edges(): EntryList {
    const { n, dist, threshold } = this;
    // Collect in index-descending order, then a stable sort by diameter keeps index descending within ties.
    let count = 0;
    for (let i = n - 1; i >= 1; i--) for (let j = i - 1; j >= 0; j--) if (dist[i * n + j] <= threshold) count++;
    const keys = new Float64Array(count);
    const ids = new Float64Array(count);
    let m = 0;
    for (let i = n - 1; i >= 1; i--) {
      const base = (i * (i - 1)) / 2;
      for (let j = i - 1; j >= 0; j--) {
        const v = dist[i * n + j];
        if (v <= threshold) {
          keys[m] = v;
          ids[m++] = base + j;
        }
      }
    }
    return stableSortByKey(keys, ids);
  }

  /** H0 pairs by union-find; returns the dimension-1 columns (diameter descending, index ascending). */
  private dimZero(): EntryList {
    const { n } = this;
    const edges = this.edges();
    const parent = new Int32Array(n);
    const rank = new Uint8Array(n);
    for (let i = 0; i < n; i++) parent[i] = i;
    const find = (x: number): number => {
      let y = x;
      while (parent[y] !== y) y = parent[y];
      while (parent[x] !== y) {
        const z = parent[x];
        parent[x] = y;
        x = z;
      }
      return y;
    };
    const cycles = new EntryList(this.maxDim >= 1 ? edges.length : 0);
    for (let e = 0; e < edges.length; e++) {
      const d = edges.diam[e];
      const idx = edges.index[e];
      const a = this.maxVertex(idx, 2, n - 1);
      const c = idx - this.b(a, 2);
      const u = find(a);
      const v = find(c);
      if (u !== v) {
        if (d !== 0) this.pairs.push({ dim: 0, birth: 0, death: d });
        if (rank[u] > rank[v]) parent[v] = u;
        else {
          parent[u] = v;
          if (rank[u] === rank[v]) rank[v]++;
        }
      } else if (this.maxDim >= 1 && this.zeroApparentCofacet(idx, d, 1) === -1) {
        cycles.push(d, idx);
      }
    }
    for (let i = 0; i < n; i++) if (find(i) === i) this.pairs.push({ dim: 0, birth: 0, death: null });
    cycles.diam.subarray(0, cycles.length).reverse();
    cycles.index.subarray(0, cycles.length).reverse();
    return cycles;
  }

  // ---- dimension ≥ 1: cohomology reduction ----

  private reduce(columns: EntryList, pivots: Map<number, number>, dim: number): void {
    const working = new ColumnHeap(); // coboundary being reduced
    const reduction = new ColumnHeap(); // the simplices added so far (a column of V)
    // V as compressed columns: entries of column c at [start[c], start[c+1]).
    const start = new Int32Array(columns.length + 1);
    const vEntries = new EntryList();
    for (let c = 0; c < columns.length; c++) {
      const birth = columns.diam[c];
      const sigma = columns.index[c];
      working.clear();
      reduction.clear();
      let pivot = this.initCoboundary(birth, sigma, dim, working, pivots);
      let pivotDiam = this.lastPivotDiam;
      for (;;) {
        if (pivot === -1) {
          this.pairs.push({ dim, birth, death: null });
          break;
        }
        const other = pivots.get(pivot);
        if (other !== undefined) {
          // add column `other` of V: its simplex and the simplices stored with it
          this.addCoboundary(columns.diam[other], columns.index[other], dim, reduction, working);
          for (let k = start[other]; k < start[other + 1]; k++) this.addCoboundary(vEntries.diam[k], vEntries.index[k], dim, reduction, working);
          pivot = working.getPivot();
          pivotDiam = working.pivotDiam;
          continue;
        }
        const facet = this.zeroApparentFacet(pivot, pivotDiam, dim + 1);
        if (facet !== -1) {
          this.addCoboundary(pivotDiam, facet, dim, reduction, working);
          pivot = working.getPivot();
          pivotDiam = working.pivotDiam;
          continue;
        }
        if (pivotDiam > birth) this.pairs.push({ dim, birth, death: pivotDiam });
        pivots.set(pivot, c);
        for (let e = reduction.popPivot(); e !== -1; e = reduction.popPivot()) vEntries.push(reduction.pivotDiam, e);
        break;
      }
      start[c + 1] = vEntries.length;
    }
  }

  private lastPivotDiam = 0;

  /**
   * Pushes the coboundary of a column (cofacets within the threshold) onto `working` and returns
   * its pivot (diameter in lastPivotDiam), or stops at an emergent pair: the earliest cofacet has
   * the column's diameter, is no one's pivot and has no apparent facet — then `working` stays empty.
   */
  private initCoboundary(d: number, sigma: number, dim: number, working: ColumnHeap, pivots: Map<number, number>): number {
    const { n, dist, threshold, verts } = this;
    const list = this.cofacets;
    list.length = 0;
    this.vertices(sigma, dim, verts);
    let checkEmergent = true;
    let below = sigma;
    let above = 0;
    let k = dim + 1;
    for (let j = n - 1; j >= k; j--) {
      // skip the simplex's own vertices (they come in descending order)
      while (this.b(j, k) <= below) {
        below -= this.b(j, k);
        above += this.b(j, k + 1);
        j--;
        k--;
      }
      let cd = d;
      const row = j * n;
      for (let v = 0; v <= dim; v++) {
        const x = dist[row + verts[v]];
        if (x > cd) cd = x;
      }
      if (cd > threshold) continue;
      const ci = above + this.b(j, k + 1) + below;
      list.push(cd, ci);
      if (checkEmergent && cd === d) {
        if (!pivots.has(ci) && this.zeroApparentFacet(ci, cd, dim + 1) === -1) {
          this.lastPivotDiam = cd;
          return ci;
        }
        checkEmergent = false;
      }
    }
    for (let e = 0; e < list.length; e++) working.push(list.diam[e], list.index[e]);
    const p = working.getPivot();
    this.lastPivotDiam = working.pivotDiam;
    return p;
  }

  /** Adds a simplex to the V column and its coboundary (within the threshold) to `working`. */
  private addCoboundary(d: number, sigma: number, dim: number, reduction: ColumnHeap, working: ColumnHeap): void {
    const { n, dist, threshold, verts } = this;
    reduction.push(d, sigma);
    this.vertices(sigma, dim, verts);
    let below = sigma;
    let above = 0;
    let k = dim + 1;
    for (let j = n - 1; j >= k; j--) {
      while (this.b(j, k) <= below) {
        below -= this.b(j, k);
        above += this.b(j, k + 1);
        j--;
        k--;
      }
      let cd = d;
      const row = j * n;
      for (let v = 0; v <= dim; v++) {
        const x = dist[row + verts[v]];
        if (x > cd) cd = x;
      }
      if (cd <= threshold) working.push(cd, above + this.b(j, k + 1) + below);
    }
  }

  /** Simplices of dimension `dim` (cofacets of `simplices`), and the columns among them. */
  private assembleColumns(
    simplices: EntryList,
    pivots: Map<number, number>,
    dim: number,
    keepSimplices: boolean,
  ): { columns: EntryList; simplices: EntryList } {
    const { n, dist, threshold, verts } = this;
    const next = new EntryList();
    const keys: number[] = [];
    const ids: number[] = [];
    const fdim = dim - 1;
    for (let s = 0; s < simplices.length; s++) {
      const d = simplices.diam[s];
      const sigma = simplices.index[s];
      this.vertices(sigma, fdim, verts);
      // cofacets with a new vertex above all of σ's: each simplex is generated once
      for (let j = n - 1; j > verts[0]; j--) {
        let cd = d;
        const row = j * n;
        for (let v = 0; v <= fdim; v++) {
          const x = dist[row + verts[v]];
          if (x > cd) cd = x;
        }
        if (cd > threshold) continue;
        const ci = this.b(j, dim + 1) + sigma;
        if (keepSimplices) next.push(cd, ci);
        if (!pivots.has(ci) && this.zeroApparentCofacet(ci, cd, dim) === -1 && this.zeroApparentFacet(ci, cd, dim) === -1) {
          keys.push(cd);
          ids.push(ci);
        }
      }
    }
    // columns in reverse filtration order: diameter descending, index ascending
    const order = Array.from(keys.keys()).sort((a, b) => keys[b] - keys[a] || ids[a] - ids[b]);
    const columns = new EntryList(order.length);
    for (const o of order) columns.push(keys[o], ids[o]);
    return { columns, simplices: next };
  }

  // ---- apparent pairs ----

  /** The earliest cofacet of σ if it has σ's diameter (the zero-persistence pivot), else −1. */
  private zeroPivotCofacet(sigma: number, d: number, dim: number): number {
    const { n, dist, facetVerts: verts } = this;
    this.vertices(sigma, dim, verts);
    let below = sigma;
    let above = 0;
    let k = dim + 1;
    for (let j = n - 1; j >= k; j--) {
      while (this.b(j, k) <= below) {
        below -= this.b(j, k);
        above += this.b(j, k + 1);
        j--;
        k--;
      }
      const row = j * n;
      let v = 0;
      while (v <= dim && dist[row + verts[v]] <= d) v++;
      if (v > dim) return above + this.b(j, k + 1) + below;
    }
    return -1;
  }

  /** The latest facet of τ if it has τ's diameter, else −1. Facets by increasing index. */
  private zeroPivotFacet(tau: number, d: number, dim: number): number {
    const { n, dist, facetVerts: verts } = this;
    this.vertices(tau, dim, verts);
    // removing vertex m (verts descending): the facet keeps the other dim vertices
    for (let m = 0; m <= dim; m++) {
      let fd = 0;
      for (let a = 0; a <= dim; a++) {
        if (a === m) continue;
        const row = verts[a] * n;
        for (let c = a + 1; c <= dim; c++) {
          if (c === m) continue;
          const x = dist[row + verts[c]];
          if (x > fd) fd = x;
        }
      }
      if (fd === d) {
        let idx = 0;
        for (let a = 0; a <= dim; a++) {
          if (a < m) idx += this.b(verts[a], dim - a);
          else if (a > m) idx += this.b(verts[a], dim - a + 1);
        }
        return idx;
      }
    }
    return -1;
  }

  private zeroApparentFacet(tau: number, d: number, dim: number): number {
    const f = this.zeroPivotFacet(tau, d, dim);
    return f !== -1 && this.zeroPivotCofacet(f, d, dim - 1) === tau ? f : -1;
  }

  private zeroApparentCofacet(sigma: number, d: number, dim: number): number {
    const c = this.zeroPivotCofacet(sigma, d, dim);
    return c !== -1 && this.zeroPivotFacet(c, d, dim + 1) === sigma ? c : -1;
  }

  // ---- combinatorial number system ----

  /** Largest v ≤ top with C(v, k) ≤ idx (binary search). */
  private maxVertex(idx: number, k: number, top: number): number {
    const base = k * this.stride;
    const bt = this.binom;
    if (bt[base + top] <= idx) return top;
    let lo = k - 1; // C(k-1, k) = 0 ≤ idx
    let hi = top; // C(top, k) > idx
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (bt[base + mid] <= idx) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  /** Vertices of the dim-simplex with index idx, descending, into out[0..dim]. */
  private vertices(idx: number, dim: number, out: Int32Array): void {
    let top = this.n - 1;
    for (let k = dim + 1, m = 0; k >= 1; k--, m++) {
      top = this.maxVertex(idx, k, top);
      out[m] = top;
      idx -= this.b(top, k);
      top--;
    }
  }
}

/** Sorts (key, id) pairs by key ascending, stably (LSD radix sort on the float64 bit patterns of keys ≥ 0). */
function stableSortByKey(keys: Float64Array, ids: Float64Array): EntryList {
  const m = keys.length;
  const out = new EntryList(m);
  out.length = m;
  if (m === 0) return out;
  let kb: Uint32Array = new Uint32Array(keys.buffer, keys.byteOffset, 2 * m); // little-endian: [lo, hi]
  let ib: Float64Array = ids;
  let kt: Uint32Array = new Uint32Array(2 * m);
  let it: Float64Array = new Float64Array(m);
  const count = new Int32Array(65536);
  for (let pass = 0; pass < 4; pass++) {
    const word = pass >> 1;
    const shift = (pass & 1) * 16;
    count.fill(0);
    for (let e = 0; e < m; e++) count[(kb[2 * e + word] >>> shift) & 0xffff]++;
    if (count[(kb[word] >>> shift) & 0xffff] === m) continue; // this digit is the same everywhere
    let sum = 0;
    for (let b = 0; b < 65536; b++) {
      const c = count[b];
      count[b] = sum;
      sum += c;
    }
    for (let e = 0; e < m; e++) {
      const p = count[(kb[2 * e + word] >>> shift) & 0xffff]++;
      kt[2 * p] = kb[2 * e];
      kt[2 * p + 1] = kb[2 * e + 1];
      it[p] = ib[e];
    }
    [kb, kt] = [kt, kb];
    [ib, it] = [it, ib];
  }
  out.diam.set(new Float64Array(kb.buffer, kb.byteOffset, m));
  out.index.set(ib);
  return out;
}
