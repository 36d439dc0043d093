/**
 * Hidden-state trajectories seen through their principal components, for pictures only (the
 * lenses do their own science): PCA (tensor/linalg.ts) fitted on at most `maxFit` evenly spaced
 * states, then every state projected onto the components.
 */
import { pca } from '../tensor/linalg.js';
import type { Trace } from './types.js';

export interface Projection {
  /** [n, k] coordinates of every row, row-major. */
  coords: Float64Array;
  k: number;
  /** Share of the variance along each kept component. */
  explained: number[];
  /** The fit: mean [d] and unit components [k, d], to project more rows (`projectRow`). */
  mean: Float64Array;
  components: Float64Array;
}

/** Projects the rows of x [n, d] on their top-k principal components. */
export function projectPca(
  x: ArrayLike<number>,
  n: number,
  d: number,
  k: number,
  maxFit = 1500,
): Projection {
  const kk = Math.min(k, d, Math.max(n - 1, 1));
  if (n < 2) {
    const components = new Float64Array(kk * d);
    for (let c = 0; c < kk; c++) components[c * d + c] = 1;
    const mean = n === 1 ? Float64Array.from({ length: d }, (_, j) => x[j]) : new Float64Array(d);
    return {
      coords: new Float64Array(n * kk),
      k: kk,
      explained: new Array<number>(kk).fill(0),
      mean,
      components,
    };
  }
  const stride = Math.max(1, Math.ceil(n / maxFit));
  const fitRows = Math.ceil(n / stride);
  const fit = new Float64Array(fitRows * d);
  for (let r = 0; r < fitRows; r++)
    for (let j = 0; j < d; j++) fit[r * d + j] = x[r * stride * d + j];
  const p = pca(fit, fitRows, d, kk);
  const coords = new Float64Array(n * p.k);
  for (let i = 0; i < n; i++) projectRow(x, i * d, d, p.mean, p.components, p.k, coords, i * p.k);
  return {
    coords,
    k: p.k,
    explained: [...p.explainedVarianceRatio],
    mean: p.mean,
    components: p.components,
  };
}

/** out[at + c] = (x[offset .. offset + d] − mean) · component c, for c < k. */
export function projectRow(
  x: ArrayLike<number>,
  offset: number,
  d: number,
  mean: Float64Array,
  components: Float64Array,
  k: number,
  out: Float64Array | number[],
  at = 0,
): void {
  for (let c = 0; c < k; c++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += (x[offset + j] - mean[j]) * components[c * d + j];
    out[at + c] = s;
  }
}

export interface TrajectoryPoint {
  sample: number;
  position: number;
  /** Generated step (0 = first generated token), or −1 inside the prompt. */
  step: number;
  token: number;
  pc1: number;
  pc2: number;
  pc3: number;
}

/** The hook a trajectory is drawn from: the last block's output, else the final norm, else any. */
export function trajectoryHook(hooks: readonly string[]): string | null {
  const blocks = hooks
    .map((h) => /^blocks\.(\d+)\.hook_resid_post$/.exec(h))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  if (blocks.length > 0) return blocks[0][0];
  if (hooks.includes('ln_final.hook_normalized')) return 'ln_final.hook_normalized';
  return hooks[0] ?? null;
}

/** Every recorded position of every sample, projected on 3 components pooled over the samples. */
export function traceTrajectories(
  trace: Trace,
  hook = trajectoryHook([...trace.states.keys()]),
): { hook: string; points: TrajectoryPoint[]; explained: number[] } | null {
  if (hook === null) return null;
  const state = trace.states.get(hook);
  if (!state) return null;
  const { width: d, data } = state; // data: [samples, positions, d]
  const P = trace.positions;
  const rows: { sample: number; position: number; offset: number }[] = [];
  trace.samples.forEach((s, i) => {
    const length = s.promptIds.length + s.ids.length;
    for (let p = 0; p < Math.min(length, P); p++) {
      const offset = (i * P + p) * d;
      if (Number.isFinite(data[offset])) rows.push({ sample: i, position: p, offset });
    }
  });
  const x = new Float64Array(rows.length * d);
  rows.forEach((r, i) => {
    for (let j = 0; j < d; j++) x[i * d + j] = data[r.offset + j];
  });
  const proj = projectPca(x, rows.length, d, 3);
  const points = rows.map((r, i) => {
    const s = trace.samples[r.sample];
    return {
      sample: r.sample,
      position: r.position,
      step: r.position - s.promptIds.length,
      token: trace.tokens[r.sample * P + r.position],
      pc1: proj.coords[i * proj.k],
      pc2: proj.k > 1 ? proj.coords[i * proj.k + 1] : 0,
      pc3: proj.k > 2 ? proj.coords[i * proj.k + 2] : 0,
    };
  });
  return { hook, points, explained: proj.explained };
}
