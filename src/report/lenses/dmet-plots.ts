/**
 * Vega-Lite specs of the DMET lens's figures (rendering is report/plot.ts's job): 2-D trajectories
 * coloured by step, heatmaps of configuration means over (temperature, top-p) with the balanced
 * region marked, persistence diagrams, and the trend of C, Q and P with temperature.
 */
import type { PlotSpec } from '../plot.js';
import type { DmetResult } from '../../lenses/dmet/analyze.js';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** Metrics drawn as heatmaps (file dmet-plots/heatmap_<metric>). */
export const HEATMAP_METRICS = [
  'C_mean',
  'C_norm',
  'silhouette',
  'persistence',
  'log_ppl',
  'diversity',
  'grammar',
  'coherence',
] as const;

export function dmetPlots(result: DmetResult): { name: string; spec: PlotSpec }[] {
  const grid = result.report.heatmaps;
  const plots = [
    { name: 'trajectories', spec: trajectories(result) },
    { name: 'persistence_diagrams', spec: persistenceDiagrams(result) },
  ];
  if (grid.temperature.length > 1 || grid.top_p.length > 1) {
    for (const m of HEATMAP_METRICS) plots.push({ name: `heatmap_${m}`, spec: heatmap(result, m) });
  }
  if (grid.temperature.length > 1)
    plots.push({ name: 'temperature_trend', spec: temperatureTrend(result) });
  return plots;
}

/** Label of a configuration in facets: "T 0.7 · p 0.9" (top-k / penalty added when used). */
function configLabels(result: DmetResult): Map<number, { t: number; p: number; label: string }> {
  return new Map(
    result.report.configurations.map((c) => {
      const extra =
        (c.top_k > 0 ? ` · k ${c.top_k}` : '') +
        (c.repetition_penalty !== 1 ? ` · r ${c.repetition_penalty}` : '');
      return [
        c.index,
        { t: c.temperature, p: c.top_p, label: `T ${c.temperature} · p ${c.top_p}${extra}` },
      ];
    }),
  );
}

/**
 * The 2-D curve of one sample per configuration (a sweep: sample 0, faceted temperature ×
 * top-p) or of every sample (one trace), points coloured by generation step, jumps as crosses.
 */
export function trajectories(result: DmetResult): PlotSpec {
  const single = result.report.source.kind === 'trace';
  const labels = configLabels(result);
  const values = result.curves
    .filter((c) => single || c.sample === 0)
    .map((c) => ({
      ...c,
      temperature: labels.get(c.config)!.t,
      top_p: labels.get(c.config)!.p,
      panel: single ? `sample ${c.sample}` : labels.get(c.config)!.label,
    }));
  const facet = single
    ? { facet: { field: 'panel', type: 'nominal' as const, title: null }, columns: 5 }
    : {
        facet: {
          row: { field: 'top_p', type: 'ordinal' as const, title: 'top-p' },
          column: { field: 'temperature', type: 'ordinal' as const, title: 'temperature' },
        },
      };
  const space = result.report.config.space;
  return {
    $schema: SCHEMA,
    title: `DMET trajectories (${space === 'pooled' ? 'pooled' : 'per-sequence'} PCA of z-scored ${result.report.config.hook}; ${single ? 'every sample' : 'sample 0 per configuration'})`,
    data: { values },
    ...facet,
    spec: {
      width: 110,
      height: 110,
      layer: [
        {
          mark: { type: 'line', color: '#bbb', strokeWidth: 0.7 },
          encoding: {
            x: { field: 'pc1', type: 'quantitative', title: 'PC1' },
            y: { field: 'pc2', type: 'quantitative', title: 'PC2' },
            order: { field: 'step' },
          },
        },
        {
          mark: { type: 'circle', size: 12 },
          encoding: {
            x: { field: 'pc1', type: 'quantitative' },
            y: { field: 'pc2', type: 'quantitative' },
            color: {
              field: 'step',
              type: 'quantitative',
              scale: { scheme: 'viridis' },
              title: 'step',
            },
            tooltip: [{ field: 'step' }, { field: 'cluster' }],
          },
        },
        {
          transform: [{ filter: 'datum.jump == 1' }],
          mark: { type: 'point', shape: 'cross', color: 'red', size: 40 },
          encoding: {
            x: { field: 'pc1', type: 'quantitative' },
            y: { field: 'pc2', type: 'quantitative' },
          },
        },
      ],
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  };
}

/** Mean of one metric per (temperature, top-p); the balanced region marked with ★. */
export function heatmap(result: DmetResult, metric: string): PlotSpec {
  const h = result.report.heatmaps;
  const balanced = new Set(
    result.report.balanced_region.configs.map((c) => `${c.temperature}|${c.top_p}`),
  );
  const values = h.temperature.flatMap((t, i) =>
    h.top_p.map((p, j) => ({
      temperature: t,
      top_p: p,
      value: h.metrics[metric][i][j],
      mark: balanced.has(`${t}|${p}`) ? '★' : '',
    })),
  );
  const info = result.report.metrics[metric];
  return {
    $schema: SCHEMA,
    title: `${metric} (${info ? info.tag : 'derived'}), mean per configuration; ★ = balanced region`,
    data: { values },
    width: 36 * h.temperature.length,
    height: 36 * h.top_p.length,
    encoding: {
      x: { field: 'temperature', type: 'ordinal', title: 'temperature' },
      y: { field: 'top_p', type: 'ordinal', title: 'top-p', sort: 'descending' },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: {
            field: 'value',
            type: 'quantitative',
            scale: { scheme: 'viridis' },
            title: metric,
          },
          tooltip: [
            { field: 'temperature' },
            { field: 'top_p' },
            { field: 'value', format: '.4f' },
          ],
        },
      },
      {
        mark: { type: 'text', color: 'white', fontSize: 14 },
        encoding: { text: { field: 'mark' } },
      },
    ],
  };
}

/** Birth–death diagrams (H0 finite pairs and H1) of sample 0 per configuration. */
export function persistenceDiagrams(result: DmetResult): PlotSpec {
  const single = result.report.source.kind === 'trace';
  const labels = configLabels(result);
  const points = result.diagrams
    .filter((d) => d.death !== null && (single || d.sample === 0))
    .map((d) => ({
      birth: d.birth,
      death: d.death as number,
      dim: `H${d.dim}`,
      panel: single ? `sample ${d.sample}` : labels.get(d.config)!.label,
    }));
  // the diagonal birth = death of each panel, as two points of a line
  const top = new Map<string, number>();
  for (const v of points) top.set(v.panel, Math.max(top.get(v.panel) ?? 0, v.death));
  const diagonal = [...top].flatMap(([panel, m]) =>
    [0, m].map((x) => ({ birth: x, death: x, dim: 'diagonal', panel })),
  );
  const values = [...points, ...diagonal];
  const order = single
    ? undefined
    : result.report.configurations.map((c) => labels.get(c.index)!.label);
  return {
    $schema: SCHEMA,
    title: `Persistence diagrams of the Rips filtration (${single ? 'every sample' : 'sample 0 per configuration'}); P = longest H1 bar`,
    data: { values },
    facet: { field: 'panel', type: 'nominal', title: null, sort: order },
    columns: single ? 5 : Math.max(1, result.report.heatmaps.temperature.length),
    spec: {
      width: 90,
      height: 90,
      layer: [
        {
          transform: [{ filter: "datum.dim == 'diagonal'" }],
          mark: { type: 'line', color: '#999', strokeDash: [3, 3] },
          encoding: {
            x: { field: 'birth', type: 'quantitative' },
            y: { field: 'death', type: 'quantitative' },
          },
        },
        {
          transform: [{ filter: "datum.dim != 'diagonal'" }],
          mark: { type: 'point', size: 14, filled: true },
          encoding: {
            x: { field: 'birth', type: 'quantitative', title: 'birth' },
            y: { field: 'death', type: 'quantitative', title: 'death' },
            color: { field: 'dim', type: 'nominal', title: null },
          },
        },
      ],
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  };
}

/** Mean ± sd of C_mean, silhouette and P per temperature (pooled over top-p). */
export function temperatureTrend(result: DmetResult): PlotSpec {
  const tr = result.report.temperature_trend;
  const values = ['C_mean', 'C_norm', 'silhouette', 'persistence', 'log_ppl', 'diversity'].flatMap(
    (m) =>
      tr.temperature.map((t, i) => {
        const mean = tr.metrics[m].mean[i];
        const sd = tr.metrics[m].sd[i] ?? 0;
        return {
          metric: m,
          temperature: t,
          mean,
          lo: mean === null ? null : mean - sd,
          hi: mean === null ? null : mean + sd,
        };
      }),
  );
  return {
    $schema: SCHEMA,
    title: 'DMET metrics vs temperature (mean ± sd over sequences, all top-p)',
    data: { values },
    facet: {
      field: 'metric',
      type: 'nominal',
      title: null,
      sort: ['C_mean', 'C_norm', 'silhouette', 'persistence', 'log_ppl', 'diversity'],
    },
    columns: 3,
    spec: {
      width: 200,
      height: 130,
      layer: [
        {
          mark: { type: 'area', opacity: 0.25 },
          encoding: {
            x: { field: 'temperature', type: 'quantitative' },
            y: { field: 'lo', type: 'quantitative', title: null },
            y2: { field: 'hi' },
          },
        },
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'temperature', type: 'quantitative' },
            y: { field: 'mean', type: 'quantitative' },
          },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  };
}
