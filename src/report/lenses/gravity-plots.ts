/**
 * Vega-Lite specs of the gravity lens's figures, built from a GravityReport (rendering is
 * report/plot.ts's job): the potential of the top tokens, curvature against sensitivity, the
 * density histogram with the queries marked, and entropy (escape, distinct-2) against T.
 */
import { pValue } from '../format.js';
import type { PlotSpec } from '../plot.js';
import type { GravityReport } from '../../lenses/gravity/analyze.js';
import { cite } from '../../papers.js';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
/** Prompts drawn in the per-prompt figures (all are in gravity.json). */
const MAX_PROMPTS = 8;

export function gravityPlots(report: GravityReport): { name: string; spec: PlotSpec }[] {
  const out = [
    { name: 'potential', spec: potentialPlot(report) },
    { name: 'density', spec: densityPlot(report) },
    { name: 'temperature', spec: temperaturePlot(report) },
  ];
  if (report.sensitivity)
    out.splice(1, 0, { name: 'curvature_sensitivity', spec: curvatureSensitivity(report) });
  return out;
}

function label(report: GravityReport, i: number): string {
  const t = report.prompts[i].text;
  return `${i + 1}: ${t.length > 32 ? t.slice(0, 31) + '…' : t}`;
}

/** Φ − Φ_min of each prompt's top tokens, with the basin edge κ_B·T. */
export function potentialPlot(report: GravityReport): PlotSpec {
  const shown = report.prompts.slice(0, MAX_PROMPTS);
  const values = shown.flatMap((p, i) =>
    p.top_tokens.map((t, rank) => ({
      prompt: label(report, i),
      rank: rank + 1,
      token: JSON.stringify(t.token),
      depth: t.phi - p.top_tokens[0].phi,
      prob: t.prob,
      in_basin: t.phi - p.top_tokens[0].phi <= p.at_temperature.basin.width * report.temperature,
    })),
  );
  const edge = report.options.basin_width * report.temperature;
  return {
    $schema: SCHEMA,
    title: `Potential Φ − Φ_min of the top tokens (proposed, ${cite('gravity')}; basin edge κ_B·T = ${edge})`,
    data: { values },
    facet: { field: 'prompt', type: 'nominal', title: null },
    columns: 2,
    resolve: { scale: { x: 'independent' } },
    spec: {
      width: 300,
      height: 150,
      layer: [
        {
          mark: 'bar',
          encoding: {
            x: { field: 'token', type: 'nominal', sort: { field: 'rank' }, title: null },
            y: { field: 'depth', type: 'quantitative', title: 'Φ − Φ_min (logits)' },
            color: { field: 'in_basin', type: 'nominal', title: 'in basin' },
            tooltip: [
              { field: 'token' },
              { field: 'depth', format: '.3f' },
              { field: 'prob', format: '.4f' },
            ],
          },
        },
        { mark: { type: 'rule', strokeDash: [4, 3] }, encoding: { y: { datum: edge } } },
      ],
    },
  };
}

/** Sensitivity (JSD) against κ per paraphrase set and against δᵀGδ per pair. */
export function curvatureSensitivity(report: GravityReport): PlotSpec {
  const s = report.sensitivity;
  if (!s) throw new Error('no sensitivity in the report');
  const sets = s.sets.map((x) => ({
    set: x.id,
    domain: x.domain,
    kappa: x.mean_kappa,
    jsd: x.mean_jsd,
  }));
  const pairs = s.pairs.map((x) => ({ set: x.set, domain: x.domain, dgd: x.dgd, jsd: x.jsd }));
  const rho = (level: 'sets' | 'pairs', x: 'kappa' | 'dgd') => {
    const r = s.correlations.find((c) => c.level === level && c.domain === 'all' && c.x === x);
    return r && r.spearman_rho !== null
      ? `ρ = ${r.spearman_rho.toFixed(2)}, p = ${pValue(r.spearman_p)}, BH q = ${pValue(r.spearman_q)}`
      : 'ρ –';
  };
  return {
    $schema: SCHEMA,
    title: `Query sensitivity against curvature (proposed, ${cite('gravity')}, curvature vs sensitivity, T = ${s.temperature})`,
    hconcat: [
      {
        title: `sets: mean JSD vs mean κ (${rho('sets', 'kappa')})`,
        data: { values: sets },
        width: 280,
        height: 240,
        mark: { type: 'point', filled: true },
        encoding: {
          x: { field: 'kappa', type: 'quantitative', scale: { zero: false }, title: 'κ = tr G' },
          y: { field: 'jsd', type: 'quantitative', scale: { type: 'log' }, title: 'JSD (nats)' },
          color: { field: 'domain', type: 'nominal' },
          tooltip: [
            { field: 'set' },
            { field: 'kappa', format: '.3f' },
            { field: 'jsd', format: '.4f' },
          ],
        },
      },
      {
        title: `pairs: JSD vs δᵀGδ (${rho('pairs', 'dgd')})`,
        data: { values: pairs },
        width: 280,
        height: 240,
        layer: [
          {
            mark: { type: 'point', filled: true, opacity: 0.7 },
            encoding: {
              x: { field: 'dgd', type: 'quantitative', scale: { type: 'log' }, title: 'δᵀGδ' },
              y: {
                field: 'jsd',
                type: 'quantitative',
                scale: { type: 'log' },
                title: 'JSD (nats)',
              },
              color: { field: 'domain', type: 'nominal' },
              tooltip: [
                { field: 'set' },
                { field: 'dgd', format: '.3f' },
                { field: 'jsd', format: '.4f' },
              ],
            },
          },
          {
            // second-order prediction JSD ≈ δᵀGδ / 8
            transform: [{ calculate: 'datum.dgd / 8', as: 'predicted' }],
            mark: { type: 'line', color: 'gray', strokeDash: [4, 3] },
            encoding: {
              x: { field: 'dgd', type: 'quantitative' },
              y: { field: 'predicted', type: 'quantitative' },
            },
          },
        ],
      },
    ],
  };
}

/** Histogram of the reference states' log ρ_k with each query marked. */
export function densityPlot(report: GravityReport): PlotSpec {
  const dEff = report.reference.d_eff;
  const values = report.reference.log_rk.map((r) => ({ log_density: -dEff * r }));
  const queries = report.prompts.slice(0, MAX_PROMPTS).map((p, i) => ({
    prompt: label(report, i),
    log_density: p.density.log_density,
  }));
  return {
    $schema: SCHEMA,
    title: `kNN density of query states (proposed; k = ${report.reference.k}, d_eff = ${dEff}; ${report.reference.texts} reference texts)`,
    width: 420,
    height: 220,
    layer: [
      {
        data: { values },
        mark: { type: 'bar', opacity: 0.6, color: 'steelblue' },
        encoding: {
          x: {
            field: 'log_density',
            type: 'quantitative',
            bin: { maxbins: 30 },
            title: 'log ρ_k = −d_eff log r_k (+ const)',
          },
          y: { aggregate: 'count', type: 'quantitative', title: 'reference states' },
        },
      },
      {
        data: { values: queries },
        mark: { type: 'rule', strokeWidth: 2 },
        encoding: {
          x: { field: 'log_density', type: 'quantitative' },
          color: { field: 'prompt', type: 'nominal', title: 'query' },
          tooltip: [{ field: 'prompt' }, { field: 'log_density', format: '.2f' }],
        },
      },
    ],
  };
}

/** Entropy, escape probability and distinct-2 against T, one line per prompt. */
export function temperaturePlot(report: GravityReport): PlotSpec {
  const values = report.temperature_sweep.per_prompt
    .slice(0, MAX_PROMPTS)
    .flatMap((rows, i) => rows.map((r) => ({ prompt: label(report, i), ...r })));
  const temperatures = [...new Set(values.map((r) => r.T))].sort((a, b) => a - b);
  const panel = (field: string, title: string) => ({
    width: 220,
    height: 180,
    mark: { type: 'line' as const, point: true },
    encoding: {
      // ticks at the temperatures measured; labels that would touch are dropped, none pushed
      // inwards (vega's default flush put 0.2 on top of 0.4 and 1.8 on top of 2.0)
      x: {
        field: 'T',
        type: 'quantitative' as const,
        title: 'temperature T',
        axis: { values: temperatures, labelOverlap: true, labelFlush: false },
      },
      y: { field, type: 'quantitative' as const, title },
      color: { field: 'prompt', type: 'nominal' as const, title: 'prompt' },
    },
  });
  return {
    $schema: SCHEMA,
    title: `Temperature and diversity (proposed, ${cite('gravity')})`,
    data: { values },
    hconcat: [
      panel('entropy', 'H(P_T) (nats)'),
      panel('escape_basin', 'escape 1 − P_T(B)'),
      panel('distinct_2', 'distinct-2 of samples'),
    ],
  };
}
