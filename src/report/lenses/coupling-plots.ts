/**
 * Vega-Lite specs of the coupling lens's figures, built from a CouplingReport (rendering is
 * report/plot.ts's job). Trained and random-twin results sit side by side in every figure.
 */
import type { PlotSpec } from '../plot.js';
import type { CouplingReport, WeightsReport } from '../../lenses/coupling/analyze.js';

/** The figures of one report: file base name → spec. */
export function couplingPlots(report: CouplingReport): { name: string; spec: PlotSpec }[] {
  return [
    ...report.trained.coupling.by_k.map((e) => ({
      name: `coupling_k${e.k}`,
      spec: couplingHeatmap(report, e.k),
    })),
    { name: 'spectra', spec: spectra(report) },
    { name: 'lss', spec: lineShape(report) },
    { name: 'growth', spec: growth(report) },
  ];
}

/** §5.3 heatmap of C_K[i][j] = m_K(J_i, J_j), mean over prompts and positions. */
export function couplingHeatmap(report: CouplingReport, k: number): PlotSpec {
  const values = weightsOf(report).flatMap((w) => {
    const entry = w.coupling.by_k.find((e) => e.k === k);
    if (!entry) return [];
    // the diagonal (m_K(J, J) = 0) is left out so the colour scale shows the off-diagonal range
    return entry.matrix.flatMap((row, i) =>
      row.flatMap((v, j) =>
        i === j ? [] : [{ weights: w.weights, i: report.blocks[i], j: report.blocks[j], m_K: v }],
      ),
    );
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `Block coupling m_K, K = ${k} (exact: code metrics.py; lower = more coupled)`,
    data: { values },
    facet: { column: { field: 'weights', type: 'nominal', title: null, sort: WEIGHTS_ORDER } },
    spec: {
      width: 220,
      height: 220,
      mark: 'rect',
      encoding: {
        x: { field: 'j', type: 'ordinal', sort: report.blocks, title: 'basis of J_j' },
        y: { field: 'i', type: 'ordinal', sort: report.blocks, title: 'J_i' },
        color: { field: 'm_K', type: 'quantitative', scale: { scheme: 'viridis' } },
        tooltip: [{ field: 'i' }, { field: 'j' }, { field: 'm_K', format: '.4f' }],
      },
    },
  };
}

/** Mean singular value spectrum of each block's Jacobian. */
export function spectra(report: CouplingReport): PlotSpec {
  const values = weightsOf(report).flatMap((w) =>
    w.singular_values.mean_by_block.flatMap((s, b) =>
      s.map((v, i) => ({
        weights: w.weights,
        block: report.blocks[b],
        index: i + 1,
        singular_value: v,
      })),
    ),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Singular values of J^l per block (mean over prompts and positions)',
    data: { values },
    facet: { column: { field: 'weights', type: 'nominal', title: null, sort: WEIGHTS_ORDER } },
    spec: {
      width: 260,
      height: 200,
      mark: 'line',
      encoding: {
        x: { field: 'index', type: 'quantitative', title: 'i' },
        y: { field: 'singular_value', type: 'quantitative', scale: { type: 'log' }, title: 's_i' },
        color: { field: 'block', type: 'ordinal', sort: report.blocks },
      },
    },
  };
}

/** §5.6 line-shape score of every token's depth trajectory. */
export function lineShape(report: CouplingReport): PlotSpec {
  const values = weightsOf(report).flatMap((w) =>
    w.lss.per_prompt.flatMap((row, p) =>
      row.map((lss, t) => ({ weights: w.weights, prompt: p + 1, position: t, lss })),
    ),
  );
  const means = weightsOf(report)
    .map((w) => `${w.weights} ${w.lss.mean.toFixed(3)}`)
    .join(', ');
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `Line-shape score per token (1 = straight; mean: ${means})`,
    data: { values },
    width: 360,
    height: 220,
    mark: { type: 'point', filled: true, opacity: 0.7 },
    encoding: {
      x: { field: 'position', type: 'quantitative', title: 'token position' },
      y: { field: 'lss', type: 'quantitative', scale: { type: 'log' }, title: 'LSS' },
      color: { field: 'weights', type: 'nominal', sort: WEIGHTS_ORDER },
      tooltip: [{ field: 'prompt' }, { field: 'position' }, { field: 'lss', format: '.3f' }],
    },
  };
}

/** §5.7 mean log step size and mean log norm against depth. */
export function growth(report: CouplingReport): PlotSpec {
  const steps = weightsOf(report).flatMap((w) =>
    w.growth.mean_log_step.map((v, i) => ({ weights: w.weights, l: i + 1, log_step: v })),
  );
  const norms = weightsOf(report).flatMap((w) =>
    w.norm_growth.mean_log_norm.map((v, l) => ({ weights: w.weights, l, log_norm: v })),
  );
  const rates = weightsOf(report)
    .map((w) => `${w.weights} ${w.growth.rate === null ? '–' : w.growth.rate.toFixed(3)}`)
    .join(', ');
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `Layer-wise growth (proposed; rate e^b per layer: ${rates})`,
    hconcat: [
      {
        data: { values: steps },
        width: 260,
        height: 200,
        mark: { type: 'line', point: true },
        encoding: {
          x: {
            field: 'l',
            type: 'quantitative',
            title: 'step l',
            axis: { tickMinStep: 1, format: 'd' },
          },
          y: { field: 'log_step', type: 'quantitative', title: 'mean log ‖x^l − x^{l−1}‖' },
          color: { field: 'weights', type: 'nominal', sort: WEIGHTS_ORDER },
        },
      },
      {
        data: { values: norms },
        width: 260,
        height: 200,
        mark: { type: 'line', point: true },
        encoding: {
          x: {
            field: 'l',
            type: 'quantitative',
            title: 'state l',
            axis: { tickMinStep: 1, format: 'd' },
          },
          y: { field: 'log_norm', type: 'quantitative', title: 'mean log ‖x^l‖' },
          color: { field: 'weights', type: 'nominal', sort: WEIGHTS_ORDER },
        },
      },
    ],
  };
}

/** Across models: a per-model quantity against the supplied score, one labelled point per model. */
export function modelsScatter(
  rows: readonly { model: string; x: number; score: number }[],
  xTitle: string,
): PlotSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `${xTitle} against the score`,
    data: { values: rows.map((r) => ({ ...r })) },
    width: 320,
    height: 240,
    layer: [
      { mark: { type: 'point', filled: true } },
      { mark: { type: 'text', dy: -8 }, encoding: { text: { field: 'model' } } },
    ],
    encoding: {
      x: { field: 'x', type: 'quantitative', title: xTitle, scale: { zero: false } },
      y: { field: 'score', type: 'quantitative', title: 'score', scale: { zero: false } },
    },
  };
}

const WEIGHTS_ORDER = ['trained', 'random_twin'];

function weightsOf(report: CouplingReport): WeightsReport[] {
  return report.random_twin ? [report.trained, report.random_twin] : [report.trained];
}
