/**
 * Vega-Lite specs for the data lmdyn records itself (traces and sweeps); the lenses build their
 * own. The report renders them to SVG, the dashboard draws the same specs in the browser.
 */
import type { PlotSpec } from './plot.js';
import type { TrajectoryPoint } from '../trace/trajectory.js';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

export interface StepRow {
  sample: number;
  step: number;
  logprob: number | null;
  entropy: number | null;
}

/** Log-probability of each generated token and the entropy it was drawn from, per sample. */
export function perStepSpec(rows: readonly StepRow[]): PlotSpec {
  const panel = (field: 'logprob' | 'entropy', title: string) => ({
    width: 340,
    height: 180,
    mark: { type: 'line' as const, point: rows.length <= 400 },
    encoding: {
      x: { field: 'step', type: 'quantitative' as const, title: 'generated step' },
      y: { field, type: 'quantitative' as const, title },
      color: { field: 'sample', type: 'nominal' as const },
      tooltip: [{ field: 'sample' }, { field: 'step' }, { field, format: '.3f' }],
    },
  });
  return {
    $schema: SCHEMA,
    title: 'Per-step log-probability and entropy (model’s own distribution, nats)',
    data: { values: rows.map((r) => ({ ...r })) },
    hconcat: [panel('logprob', 'log p(token)'), panel('entropy', 'entropy H')],
  };
}

/** The hidden-state trajectory of each sample through its first two principal components. */
export function trajectorySpec(
  points: readonly TrajectoryPoint[],
  explained: readonly number[],
  hook: string,
  labels?: (p: TrajectoryPoint) => string,
): PlotSpec {
  const pct = (i: number) =>
    explained[i] === undefined ? '' : ` (${(100 * explained[i]).toFixed(1)}%)`;
  const values = points.map((p) => ({
    sample: p.sample,
    position: p.position,
    step: p.step,
    token: labels ? labels(p) : p.token,
    part: p.step < 0 ? 'prompt' : 'generated',
    pc1: p.pc1,
    pc2: p.pc2,
  }));
  return {
    $schema: SCHEMA,
    title: `Trajectories of ${hook} in PCA space (pooled over samples)`,
    data: { values },
    width: 420,
    height: 340,
    encoding: {
      x: { field: 'pc1', type: 'quantitative', title: `PC1${pct(0)}`, scale: { zero: false } },
      y: { field: 'pc2', type: 'quantitative', title: `PC2${pct(1)}`, scale: { zero: false } },
      color: { field: 'sample', type: 'nominal' },
    },
    layer: [
      {
        mark: { type: 'line', opacity: 0.6 },
        encoding: {
          order: { field: 'position', type: 'quantitative' },
          detail: { field: 'sample' },
        },
      },
      {
        mark: { type: 'point', size: 24 },
        encoding: {
          shape: {
            field: 'part',
            type: 'nominal',
            scale: { domain: ['prompt', 'generated'], range: ['square', 'circle'] },
          },
          tooltip: [{ field: 'sample' }, { field: 'position' }, { field: 'token' }],
        },
      },
    ],
  };
}

export interface SweepRow {
  config: string;
  temperature: number;
  top_p: number;
  top_k: number;
  repetition_penalty: number;
  mean_logprob: number | null;
  mean_entropy: number | null;
  distinct: number | null;
}

/** A (temperature × top-p) heatmap of one sweep metric, one panel per (top-k, penalty) pair. */
export function sweepHeatmapSpec(
  rows: readonly SweepRow[],
  metric: 'mean_logprob' | 'mean_entropy' | 'distinct',
  title: string,
): PlotSpec {
  const values = rows.map((r) => ({
    ...r,
    panel: `top-k ${r.top_k}, rep ${r.repetition_penalty}`,
  }));
  const panels = new Set(values.map((v) => v.panel)).size;
  const finite = rows
    .map((r) => r[metric])
    .filter((v): v is number => v !== null && Number.isFinite(v));
  const mid = finite.length > 0 ? (Math.min(...finite) + Math.max(...finite)) / 2 : 0;
  const chart = {
    width: 200,
    height: 160,
    encoding: {
      x: { field: 'top_p', type: 'ordinal' as const, title: 'top-p' },
      y: {
        field: 'temperature',
        type: 'ordinal' as const,
        title: 'temperature',
        sort: 'descending' as const,
      },
    },
    layer: [
      {
        mark: 'rect' as const,
        encoding: {
          color: {
            field: metric,
            type: 'quantitative' as const,
            title: metric,
            scale: { scheme: 'viridis' },
          },
          tooltip: [{ field: 'config' }, { field: metric, format: '.3f' }],
        },
      },
      {
        mark: { type: 'text' as const, fontSize: 10 },
        encoding: {
          text: { field: metric, type: 'quantitative' as const, format: '.2f' },
          // dark text on the bright (high) end of viridis, white on the dark end
          color: {
            condition: { test: `datum['${metric}'] > ${mid}`, value: 'black' },
            value: 'white',
          },
        },
      },
    ],
  };
  if (panels <= 1) return { $schema: SCHEMA, title, data: { values }, ...chart };
  return {
    $schema: SCHEMA,
    title,
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', title: null } },
    spec: chart,
  };
}
