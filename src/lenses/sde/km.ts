/**
 * Non-parametric Kramers–Moyal baseline (papers.md §2.4 [proposed]; anchors.md §1.15): the
 * first two conditional moments of the increments in bins of the state,
 *   μ̂_i(bin) = E[Δx_i | x ∈ bin] / Δt,    σ̂_i²(bin) = Var[Δx_i | x ∈ bin] / Δt,
 * the finite-Δt Euler–Maruyama reading of the drift and of the diagonal diffusion. Bins are
 * equal-width over the data range of at most two conditioning components (default the first
 * two PCs); other components vary inside a bin, so in k > 2 dimensions the estimate is the
 * drift averaged over them. Standard errors: sd/(√n·Δt) for μ̂, σ̂/√(2(n − 1)) for σ̂.
 */
import { LmdynError } from '../../errors.js';
import type { IncrementSet } from './paths.js';

export interface KmOptions {
  /** Conditioning components (default [0] for k = 1, else [0, 1]). */
  axes?: number[];
  /** Bins per axis (default 30 for one axis, 12 for two). */
  bins?: number;
  /** Bins with fewer increments are left out (default 20). */
  minCount?: number;
}

export interface KmCell {
  /** Bin index per axis. */
  index: number[];
  /** Bin centre per axis. */
  center: number[];
  count: number;
  /** [k] drift, diffusion σ (not σ²), and their standard errors. */
  drift: number[];
  diffusion: number[];
  driftSe: number[];
  diffusionSe: number[];
  /** Mean state of the increments in the bin [k]. */
  meanState: number[];
}

export interface KmEstimate {
  k: number;
  dt: number;
  axes: number[];
  bins: number;
  minCount: number;
  /** Per axis: bins + 1 edges. */
  edges: number[][];
  /** Populated bins (count ≥ minCount). */
  cells: KmCell[];
}

export function kramersMoyal(set: IncrementSet, options: KmOptions = {}): KmEstimate {
  const { k, n, dt } = set;
  const axes = options.axes ?? (k === 1 ? [0] : [0, 1]);
  if (axes.length < 1 || axes.length > 2 || axes.some((a) => a < 0 || a >= k)) {
    throw new LmdynError('bad_argument', `kramersMoyal: axes [${axes.join(', ')}] for k = ${k}`);
  }
  const bins = options.bins ?? (axes.length === 1 ? 30 : 12);
  const minCount = options.minCount ?? 20;
  const edges = axes.map((a) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (let r = 0; r < n; r++) {
      lo = Math.min(lo, set.x[r * k + a]);
      hi = Math.max(hi, set.x[r * k + a]);
    }
    if (!(hi > lo)) hi = lo + 1;
    return Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
  });
  const nCells = bins ** axes.length;
  const count = new Float64Array(nCells);
  const sum = new Float64Array(nCells * k);
  const sumSq = new Float64Array(nCells * k);
  const sumX = new Float64Array(nCells * k);
  for (let r = 0; r < n; r++) {
    const cell = cellOf(edges, axes, set.x.subarray(r * k, (r + 1) * k), bins);
    count[cell]++;
    for (let i = 0; i < k; i++) {
      const d = set.dx[r * k + i];
      sum[cell * k + i] += d;
      sumSq[cell * k + i] += d * d;
      sumX[cell * k + i] += set.x[r * k + i];
    }
  }
  const cells: KmCell[] = [];
  for (let c = 0; c < nCells; c++) {
    const m = count[c];
    if (m < Math.max(2, minCount)) continue;
    const index = axes.length === 1 ? [c] : [Math.floor(c / bins), c % bins];
    const drift: number[] = [];
    const diffusion: number[] = [];
    const driftSe: number[] = [];
    const diffusionSe: number[] = [];
    for (let i = 0; i < k; i++) {
      const mean = sum[c * k + i] / m;
      const variance = Math.max(0, (sumSq[c * k + i] - m * mean * mean) / (m - 1));
      drift.push(mean / dt);
      driftSe.push(Math.sqrt(variance / m) / dt);
      const s = Math.sqrt(variance / dt);
      diffusion.push(s);
      diffusionSe.push(s / Math.sqrt(2 * (m - 1)));
    }
    cells.push({
      index,
      center: index.map((b, a) => (edges[a][b] + edges[a][b + 1]) / 2),
      count: m,
      drift,
      diffusion,
      driftSe,
      diffusionSe,
      meanState: Array.from({ length: k }, (_, i) => sumX[c * k + i] / m),
    });
  }
  return { k, dt, axes, bins, minCount, edges, cells };
}

/** The populated cell containing state x [k], or null (outside the range or too few counts). */
export function kmLookup(km: KmEstimate, x: ArrayLike<number>): KmCell | null {
  for (let a = 0; a < km.axes.length; a++) {
    const e = km.edges[a];
    const v = x[km.axes[a]];
    if (v < e[0] || v > e[e.length - 1]) return null;
  }
  const cell = cellOf(km.edges, km.axes, x, km.bins);
  const index = km.axes.length === 1 ? [cell] : [Math.floor(cell / km.bins), cell % km.bins];
  return km.cells.find((c) => c.index.every((v, i) => v === index[i])) ?? null;
}

function cellOf(edges: number[][], axes: number[], x: ArrayLike<number>, bins: number): number {
  let cell = 0;
  for (let a = 0; a < axes.length; a++) {
    const e = edges[a];
    const lo = e[0];
    const width = (e[e.length - 1] - lo) / bins;
    const b = Math.min(bins - 1, Math.max(0, Math.floor((x[axes[a]] - lo) / width)));
    cell = cell * bins + b;
  }
  return cell;
}
