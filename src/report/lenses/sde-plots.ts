/**
 * Vega-Lite specs of the SDE lens's figures, built from an SdeReport (report/plot.ts renders).
 * Line figures colour by data set, so a sweep's configurations share one panel; maps
 * (drift field, phase portraits) get one panel per data set.
 */
import type { PlotSpec } from '../plot.js';
import type { SdeReport } from '../../lenses/sde/analyze.js';
import { cite } from '../../papers.js';
import { fixed } from '../format.js';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** The figures of one report: file base name → spec. */
export function sdePlots(report: SdeReport): { name: string; spec: PlotSpec }[] {
  const out = [
    { name: 'sde-drift-field', spec: driftField(report) },
    { name: 'sde-along-trajectories', spec: alongTrajectories(report) },
    { name: 'sde-moments', spec: moments(report) },
    { name: 'sde-msd', spec: msd(report) },
    { name: 'sde-phase-portraits', spec: phasePortraits(report) },
    { name: 'sde-residuals-qq', spec: residualQq(report) },
    { name: 'sde-residuals-acf', spec: residualAcf(report) },
    { name: 'sde-kramers-moyal', spec: kramersMoyal(report) },
  ];
  if (report.datasets.some((d) => d.fit.history.length > 0))
    out.push({ name: 'sde-training', spec: training(report) });
  if (report.across_temperatures)
    out.push({ name: 'sde-temperatures', spec: temperatures(report) });
  return out;
}

const tagNote = `[proposed] ${cite('sde')}`;

/** §2.5 items 1 and 5: μ on the PC1 × PC2 grid as arrows, real paths, fixed points. */
export function driftField(report: SdeReport): PlotSpec {
  const values: Record<string, unknown>[] = [];
  for (const d of report.datasets) {
    const g = d.analyses.grid;
    const spacing = Math.min(step(g.x), step(g.y)) || 1;
    const longest = Math.max(...g.points.map((p) => Math.hypot(p.mu1, p.mu2)), 1e-300);
    const s = (0.9 * spacing) / longest;
    for (const p of g.points) {
      values.push({
        kind: 'arrow',
        dataset: d.label,
        x: p.x,
        y: p.y,
        x2: p.x + s * p.mu1,
        y2: p.y + s * p.mu2,
        drift_norm: p.drift_norm,
      });
    }
    d.figures.real_paths.forEach((path, i) =>
      path.forEach(([x, y], j) =>
        values.push({ kind: 'path', dataset: d.label, path: i, step: j, x, y }),
      ),
    );
    for (const f of d.analyses.fixed_points.found) {
      values.push({ kind: 'fixed', dataset: d.label, x: f.x[0], y: f.x[1] ?? 0, type: f.kind });
    }
  }
  const layers = [
    {
      transform: [{ filter: "datum.kind === 'path'" }],
      mark: { type: 'line', opacity: 0.35, strokeWidth: 1 },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: 'PC1' },
        y: { field: 'y', type: 'quantitative', title: 'PC2' },
        detail: { field: 'path', type: 'nominal' },
        order: { field: 'step', type: 'quantitative' },
        color: { value: '#888' },
      },
    },
    {
      transform: [{ filter: "datum.kind === 'arrow'" }],
      mark: { type: 'rule', strokeWidth: 1.5 },
      encoding: {
        x: { field: 'x', type: 'quantitative' },
        y: { field: 'y', type: 'quantitative' },
        x2: { field: 'x2' },
        y2: { field: 'y2' },
        color: {
          field: 'drift_norm',
          type: 'quantitative',
          scale: { scheme: 'viridis' },
          title: '‖μ‖',
        },
      },
    },
    {
      transform: [{ filter: "datum.kind === 'arrow'" }],
      mark: { type: 'point', filled: true, size: 6 },
      encoding: {
        x: { field: 'x', type: 'quantitative' },
        y: { field: 'y', type: 'quantitative' },
        color: { field: 'drift_norm', type: 'quantitative' },
      },
    },
    {
      transform: [{ filter: "datum.kind === 'fixed'" }],
      mark: { type: 'point', shape: 'cross', size: 140, filled: true, color: '#d62728' },
      encoding: {
        x: { field: 'x', type: 'quantitative' },
        y: { field: 'y', type: 'quantitative' },
        tooltip: [{ field: 'type' }],
      },
    },
  ];
  const t = report.datasets[0]?.analyses.grid.t ?? 0;
  return panels(
    report,
    values,
    `Drift field μ on PC1 × PC2 (other PCs at their mean, t = ${t.toPrecision(3)}), real paths, fixed points (+) — ${tagNote}`,
    { layer: layers, width: 260, height: 220 },
  );
}

/** §2.5 item 1: ‖μ‖, ‖σ‖ and the signal-to-noise ratio along the trajectories. */
export function alongTrajectories(report: SdeReport): PlotSpec {
  const values = report.datasets.flatMap((d) => {
    const a = d.analyses.along_trajectories;
    return a.t.flatMap((t, j) => [
      { dataset: d.label, t, quantity: '‖μ‖', value: a.drift_norm[j] },
      { dataset: d.label, t, quantity: '‖σ‖', value: a.diffusion_norm[j] },
      { dataset: d.label, t, quantity: 'SNR ‖μ‖Δt/(‖σ‖√Δt)', value: a.snr[j] },
    ]);
  });
  return {
    $schema: SCHEMA,
    title: `Drift and diffusion along the real trajectories (mean over paths) — ${tagNote}`,
    data: { values },
    facet: { column: { field: 'quantity', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 220,
      height: 180,
      mark: 'line',
      encoding: {
        x: { field: 't', type: 'quantitative', title: 't' },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'dataset', type: 'nominal' },
      },
    },
  };
}

/** §2.5 item 2: ensemble mean of PC1 and total variance tr Σ, real against simulated. */
export function moments(report: SdeReport): PlotSpec {
  const values = report.datasets.flatMap((d) => {
    const m = d.analyses.moments;
    return m.t.flatMap((t, j) => [
      { dataset: d.label, t, source: 'real', quantity: 'mean of PC1', value: m.mean_real[j][0] },
      {
        dataset: d.label,
        t,
        source: 'simulated',
        quantity: 'mean of PC1',
        value: m.mean_simulated[j][0],
      },
      { dataset: d.label, t, source: 'real', quantity: 'tr Σ', value: m.trace_cov_real[j] },
      {
        dataset: d.label,
        t,
        source: 'simulated',
        quantity: 'tr Σ',
        value: m.trace_cov_simulated[j],
      },
    ]);
  });
  return {
    $schema: SCHEMA,
    title: `Ensemble moments, real against simulated (Euler–Maruyama from the real first states) — ${tagNote}`,
    data: { values },
    facet: { column: { field: 'quantity', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 260,
      height: 190,
      mark: 'line',
      encoding: {
        x: { field: 't', type: 'quantitative' },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'dataset', type: 'nominal' },
        strokeDash: { field: 'source', type: 'nominal' },
      },
    },
  };
}

/** §2.5 item 3: mean squared displacement, log-log. */
export function msd(report: SdeReport): PlotSpec {
  const values = report.datasets.flatMap((d) => {
    const m = d.analyses.msd;
    return m.tau.flatMap((tau, j) => [
      { dataset: d.label, tau, source: `real (α ${fixed(m.alpha_real, 2)})`, msd: m.real[j] },
      {
        dataset: d.label,
        tau,
        source: `simulated (α ${fixed(m.alpha_simulated, 2)})`,
        msd: m.simulated[j],
      },
    ]);
  });
  return {
    $schema: SCHEMA,
    title: `Mean squared displacement E‖x_{t+τ} − x_t‖² — ${tagNote}`,
    data: { values },
    width: 320,
    height: 220,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'tau', type: 'quantitative', scale: { type: 'log' }, title: 'τ (steps)' },
      y: { field: 'msd', type: 'quantitative', scale: { type: 'log' }, title: 'MSD' },
      color: { field: 'dataset', type: 'nominal' },
      strokeDash: { field: 'source', type: 'nominal' },
    },
  };
}

/** §2.5 item 5: (x_i, Δx_i) portraits of PC1 and PC2, real and simulated. */
export function phasePortraits(report: SdeReport): PlotSpec {
  const values = report.datasets.flatMap((d) =>
    d.figures.phase.map((p) => ({
      dataset: d.label,
      source: p.source,
      component: `PC${p.component}`,
      x: p.x,
      dx: p.dx,
    })),
  );
  return {
    $schema: SCHEMA,
    title: `Phase portraits (x_i, Δx_i) — ${tagNote}`,
    data: { values },
    facet: {
      row: { field: 'dataset', type: 'nominal', title: null },
      column: { field: 'component', type: 'nominal', title: null },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec: {
      width: 220,
      height: 160,
      mark: { type: 'point', size: 10, opacity: 0.5 },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: 'x_i' },
        y: { field: 'dx', type: 'quantitative', title: 'Δx_i' },
        color: { field: 'source', type: 'nominal' },
      },
    },
  };
}

/** §2.5 item 4: normal QQ plot of the standardised residuals of PC1. */
export function residualQq(report: SdeReport): PlotSpec {
  const values = report.datasets.flatMap((d) =>
    d.analyses.residuals.qq.map((q) => ({ dataset: d.label, ...q })),
  );
  const lim = Math.max(3, ...values.map((v) => Math.abs(v.theoretical)));
  return {
    $schema: SCHEMA,
    title: `Standardised residuals (Δx − μΔt)/(σ√Δt) of PC1 against N(0, 1) — ${tagNote}`,
    layer: [
      {
        data: {
          values: [
            { a: -lim, b: -lim },
            { a: lim, b: lim },
          ],
        },
        mark: { type: 'line', color: '#999', strokeDash: [4, 4] },
        encoding: {
          x: { field: 'a', type: 'quantitative' },
          y: { field: 'b', type: 'quantitative' },
        },
      },
      {
        data: { values },
        mark: { type: 'point', size: 12 },
        encoding: {
          x: { field: 'theoretical', type: 'quantitative', title: 'normal quantile' },
          y: { field: 'sample', type: 'quantitative', title: 'residual quantile' },
          color: { field: 'dataset', type: 'nominal' },
        },
      },
    ],
    width: 300,
    height: 260,
  };
}

/** §2.5 item 4: residual autocorrelation at lags 1–5 per component, with the white-noise band. */
export function residualAcf(report: SdeReport): PlotSpec {
  const values = report.datasets.flatMap((d) =>
    d.analyses.residuals.per_component.slice(0, 4).flatMap((c, i) =>
      c.acf.map((r, l) => ({
        dataset: d.label,
        component: `PC${i + 1}`,
        lag: l + 1,
        r,
        band: d.analyses.residuals.acf_band,
      })),
    ),
  );
  return {
    $schema: SCHEMA,
    title: `Residual autocorrelation (dashes: ±1.96/√n) — ${tagNote}`,
    data: { values },
    facet: { column: { field: 'component', type: 'nominal', title: null } },
    spec: {
      width: 150,
      height: 160,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'lag', type: 'ordinal' },
            y: { field: 'r', type: 'quantitative', title: 'autocorrelation' },
            color: { field: 'dataset', type: 'nominal' },
          },
        },
        {
          mark: { type: 'rule', strokeDash: [3, 3], color: '#999' },
          encoding: { y: { aggregate: 'max', field: 'band' } },
        },
        {
          mark: { type: 'rule', strokeDash: [3, 3], color: '#999' },
          encoding: { y: { aggregate: 'max', field: 'band_neg' } },
          transform: [{ calculate: '-datum.band', as: 'band_neg' }],
        },
      ],
    },
  };
}

/** Kramers–Moyal bins against the network averaged over the same increments. */
export function kramersMoyal(report: SdeReport): PlotSpec {
  const values = report.datasets.flatMap((d) =>
    d.analyses.kramers_moyal.cells.flatMap((c) =>
      [0, 1]
        .filter((i) => i < c.drift.length)
        .flatMap((i) => [
          {
            dataset: d.label,
            quantity: 'drift μ_i',
            component: `PC${i + 1}`,
            km: c.drift[i],
            network: c.network_drift[i],
            count: c.count,
          },
          {
            dataset: d.label,
            quantity: 'diffusion σ_i',
            component: `PC${i + 1}`,
            km: c.diffusion[i],
            network: c.network_diffusion[i],
            count: c.count,
          },
        ]),
    ),
  );
  return {
    $schema: SCHEMA,
    title: `Kramers–Moyal bins (x) against the fitted network (y), per bin and component — ${tagNote}`,
    data: { values },
    facet: { column: { field: 'quantity', type: 'nominal', title: null } },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec: {
      width: 240,
      height: 220,
      mark: { type: 'point', filled: true, opacity: 0.6 },
      encoding: {
        x: { field: 'km', type: 'quantitative', title: 'Kramers–Moyal', scale: { zero: false } },
        y: { field: 'network', type: 'quantitative', title: 'network', scale: { zero: false } },
        color: { field: 'dataset', type: 'nominal' },
        shape: { field: 'component', type: 'nominal' },
        size: { field: 'count', type: 'quantitative', legend: null },
      },
    },
  };
}

/** Loss curves (the paper's reported output): validation NLL per epoch, training NLL when the loss is the NLL. */
export function training(report: SdeReport): PlotSpec {
  const nll = report.estimation.loss === 'nll';
  const values = report.datasets.flatMap((d) =>
    d.fit.history.flatMap((h) => [
      ...(nll && Number.isFinite(h.train)
        ? [{ dataset: d.label, epoch: h.epoch, series: 'train', nll: h.train }]
        : []),
      { dataset: d.label, epoch: h.epoch, series: 'validation', nll: h.validation },
    ]),
  );
  return {
    $schema: SCHEMA,
    title: `Training: Euler–Maruyama NLL per increment (best epoch kept) — [proposed] ${cite('sde')}`,
    data: { values },
    width: 320,
    height: 200,
    mark: 'line',
    encoding: {
      x: { field: 'epoch', type: 'quantitative' },
      y: { field: 'nll', type: 'quantitative', scale: { zero: false }, title: 'NLL (nats)' },
      color: { field: 'dataset', type: 'nominal' },
      strokeDash: { field: 'series', type: 'nominal' },
    },
  };
}

/** §2.5 item 5 across a sweep: drift, diffusion, SNR and held-out NLL against temperature. */
export function temperatures(report: SdeReport): PlotSpec {
  const rows = report.across_temperatures?.rows ?? [];
  const values = rows.flatMap((r) => [
    {
      temperature: r.temperature,
      top_p: String(r.top_p),
      quantity: 'mean ‖μ‖',
      value: r.drift_norm,
    },
    {
      temperature: r.temperature,
      top_p: String(r.top_p),
      quantity: 'mean ‖σ‖',
      value: r.diffusion_norm,
    },
    { temperature: r.temperature, top_p: String(r.top_p), quantity: 'SNR', value: r.snr },
    { temperature: r.temperature, top_p: String(r.top_p), quantity: 'test NLL', value: r.nll_test },
  ]);
  return {
    $schema: SCHEMA,
    title: `Drift and diffusion across decoding temperatures — ${tagNote}`,
    data: { values },
    facet: { column: { field: 'quantity', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 180,
      height: 170,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'temperature', type: 'quantitative', title: 'T' },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
        color: { field: 'top_p', type: 'nominal', title: 'top-p' },
      },
    },
  };
}

/** One panel per data set (wrapped, 3 per row) when there are several. */
function panels(
  report: SdeReport,
  values: Record<string, unknown>[],
  title: string,
  spec: Record<string, unknown>,
): PlotSpec {
  if (report.datasets.length === 1)
    return { $schema: SCHEMA, title, data: { values }, ...spec } as unknown as PlotSpec;
  return {
    $schema: SCHEMA,
    title,
    data: { values },
    facet: { field: 'dataset', type: 'nominal', title: null },
    columns: 3,
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec,
  } as unknown as PlotSpec;
}

function step(v: readonly number[]): number {
  return v.length > 1 ? Math.abs(v[1] - v[0]) : 0;
}
