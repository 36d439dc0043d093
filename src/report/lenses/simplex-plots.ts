/**
 * Vega-Lite specs of the simplex lens's figures (rendering is report/plot.ts's job):
 * distance to equilibrium over t for both flows, both flows on the top-3 face as ternary plots,
 * and loop-rate / escape / asymmetry charts of a set of generations.
 */
import type { PlotSpec } from '../plot.js';
import type { SimplexReport } from '../../lenses/simplex/analyze.js';
import type { LoopReport } from '../../lenses/simplex/path.js';
import { cite } from '../../papers.js';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
const FLOW_NAME = {
  paper: 'paper’s flow ṗ = p(s − s̄)/T',
  entropic: 'entropic flow ṗ = p(g − ḡ)',
} as const;

/** Figures of a context report (plus the loop charts when it measured a loop grid). */
export function simplexPlots(report: SimplexReport): { name: string; spec: PlotSpec }[] {
  return [
    { name: 'distance', spec: distancePlot(report) },
    { name: 'ternary', spec: ternaryPlot(report) },
    ...(report.loops ? loopPlots(report.loops) : []),
  ];
}

/**
 * ‖p(t) − π_T‖₁ and KL(p(t)‖π_T) (log scale) and F(p(t)) − F* (symlog) over t, both flows,
 * every start; the MWU maps (at t = kη) in the first panel.
 */
export function distancePlot(report: SimplexReport): PlotSpec {
  const fStar = report.equilibrium.free_energy_max;
  const values: Record<string, string | number>[] = [];
  for (const kind of ['paper', 'entropic'] as const) {
    for (const run of report.flows[kind].runs) {
      run.t.forEach((t, k) => {
        const base = { series: FLOW_SHORT[kind], start: run.start, t };
        values.push({ ...base, metric: L1, value: run.l1[k] });
        values.push({ ...base, metric: KL, value: run.kl[k] });
        values.push({ ...base, metric: FREE, value: run.free_energy[k] - fStar });
      });
    }
  }
  for (const m of report.mwu.runs) {
    const name =
      m.map === 'paper' ? `MWU map (paper’s), η = ${m.eta}` : `entropic mirror map, η = ${m.eta}`;
    m.k.forEach((k, i) =>
      values.push({ series: name, start: 'uniform', t: k * m.eta, metric: L1, value: m.l1[i] }),
    );
  }
  const panel = (metric: string, scale: Record<string, unknown>, keep: string) => ({
    transform: [{ filter: `datum.metric === '${metric}' && ${keep}` }],
    width: 520,
    height: 170,
    mark: { type: 'line', strokeWidth: 1.5, clip: true },
    encoding: {
      x: { field: 't', type: 'quantitative', title: 't (MWU maps: kη)' },
      y: { field: 'value', type: 'quantitative', title: metric, scale },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        legend: { orient: 'right', labelLimit: 300 },
      },
      strokeDash: { field: 'start', type: 'nominal', title: 'start' },
      detail: { field: 'start', type: 'nominal' },
    },
  });
  return {
    $schema: SCHEMA,
    title: {
      text: `Distance to the softmax equilibrium π_T (T = ${report.temperature})`,
      subtitle: [
        'paper’s flow: passes π_T at t = 1 (uniform start), then goes on to the argmax vertex; F peaks at t = 1',
        'entropic flow: converges to π_T; F non-decreasing',
      ],
    },
    data: { values },
    vconcat: [
      panel(L1, { type: 'log' }, 'datum.value > 1e-16'),
      panel(KL, { type: 'log' }, 'datum.value > 1e-16'),
      panel(FREE, { type: 'symlog', constant: 1e-3 }, 'true'),
    ],
  } as PlotSpec;
}

const L1 = '‖p(t) − π_T‖₁';
const KL = 'KL(p(t) ‖ π_T)';
const FREE = 'F(p(t)) − F*';
const FLOW_SHORT = { paper: 'paper’s flow', entropic: 'entropic flow' } as const;

/** Both flows on the top-3 face: barycentric trajectories from several starts, π_T marked. */
export function ternaryPlot(report: SimplexReport): PlotSpec {
  const h = Math.sqrt(3) / 2;
  const xy = (p: readonly number[]) => ({ x: p[1] + p[2] / 2, y: h * p[2] });
  const labels = report.ternary.tokens.map((t) => `${JSON.stringify(t.text)} (${t.id})`);
  const values: Record<string, string | number>[] = [];
  for (const kind of ['paper', 'entropic'] as const) {
    const flow = FLOW_NAME[kind];
    [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
      [1, 0, 0],
    ].forEach((v, i) => values.push({ flow, kind: 'edge', order: i, ...xy(v) }));
    [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ].forEach((v, i) =>
      values.push({
        flow,
        kind: 'label',
        label: labels[i] ?? '',
        x: xy(v).x,
        y: xy(v).y + (i === 2 ? 0.05 : -0.05),
      }),
    );
    values.push({ flow, kind: 'eq', label: 'π_T', ...xy(report.ternary.equilibrium) });
  }
  for (const tr of report.ternary.trajectories) {
    tr.points.forEach((pt, order) =>
      values.push({
        flow: FLOW_NAME[tr.flow],
        kind: 'traj',
        start: tr.start,
        order,
        t: pt.t,
        ...xy(pt.p),
      }),
    );
  }
  const axis = { axis: null, scale: { domain: [-0.1, 1.1] } };
  const yAxis = { axis: null, scale: { domain: [-0.1, h + 0.1] } };
  return {
    $schema: SCHEMA,
    title: {
      text: `Flows on the top-3 face (T = ${report.temperature})`,
      subtitle:
        'paper’s flow ends at the top vertex; the entropic flow ends at π_T (the sampler’s top-3 distribution)',
    },
    data: { values },
    facet: {
      column: {
        field: 'flow',
        type: 'nominal',
        title: null,
        sort: [FLOW_NAME.paper, FLOW_NAME.entropic],
      },
    },
    spec: {
      width: 300,
      height: 270,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'edge'" }],
          mark: { type: 'line', color: '#444' },
          encoding: {
            x: { field: 'x', type: 'quantitative', ...axis },
            y: { field: 'y', type: 'quantitative', ...yAxis },
            order: { field: 'order' },
          },
        },
        {
          transform: [{ filter: "datum.kind === 'traj'" }],
          mark: { type: 'line', strokeWidth: 1.3 },
          encoding: {
            x: { field: 'x', type: 'quantitative' },
            y: { field: 'y', type: 'quantitative' },
            order: { field: 'order' },
            color: { field: 'start', type: 'nominal', title: 'start' },
            detail: { field: 'start' },
          },
        },
        {
          transform: [{ filter: "datum.kind === 'eq'" }],
          mark: { type: 'point', shape: 'cross', size: 160, color: 'crimson', filled: true },
          encoding: {
            x: { field: 'x', type: 'quantitative' },
            y: { field: 'y', type: 'quantitative' },
          },
        },
        {
          transform: [{ filter: "datum.kind === 'label'" }],
          mark: { type: 'text', fontSize: 11 },
          encoding: {
            x: { field: 'x', type: 'quantitative' },
            y: { field: 'y', type: 'quantitative' },
            text: { field: 'label' },
          },
        },
      ],
    },
  };
}

/** Loop-rate heatmap (temperature × the first varying penalty, a panel per other setting), escape and asymmetry charts. */
export function loopPlots(loops: LoopReport): { name: string; spec: PlotSpec }[] {
  const penaltyOrder = [...new Set(loops.configs.map((c) => c.axes.penalty))];
  const penaltyName = loops.configs[0]?.axes.penalty_name ?? 'penalties';
  const rows = loops.configs.map((c) => ({
    temperature: c.axes.temperature,
    penalty: c.axes.penalty,
    panel: c.axes.panel,
    loop_rate: c.summary.loop_rate,
    loops: `${c.summary.loops}/${c.summary.distinct_sequences}`,
    asymmetry: c.score_response.asymmetry.mean ?? NaN,
  }));
  const facets = new Set(rows.map((r) => r.panel)).size;
  const heat = (field: 'loop_rate' | 'asymmetry', title: string, text: string): PlotSpec => {
    const cell = {
      width: Math.max(120, 60 * penaltyOrder.length),
      height: Math.max(100, 30 * new Set(rows.map((r) => r.temperature)).size),
      encoding: {
        x: {
          field: 'penalty',
          type: 'ordinal',
          sort: penaltyOrder,
          title: penaltyName,
          axis: { labelAngle: 0 },
        },
        y: { field: 'temperature', type: 'ordinal', title: 'temperature' },
      },
      layer: [
        {
          mark: 'rect',
          encoding: {
            color: {
              field,
              type: 'quantitative',
              title: field === 'loop_rate' ? 'loop rate' : 'asymmetry',
              scale: { scheme: 'viridis', ...(field === 'loop_rate' ? { domain: [0, 1] } : {}) },
            },
          },
        },
        {
          mark: { type: 'text', fontSize: 10 },
          encoding: {
            text: {
              field: text,
              type: field === 'asymmetry' ? 'quantitative' : 'nominal',
              ...(field === 'asymmetry' ? { format: '.2f' } : {}),
            },
            color: { value: 'white' },
          },
        },
      ],
    };
    const data = { values: rows.filter((r) => Number.isFinite(r[field])) };
    return (
      facets > 1
        ? {
            $schema: SCHEMA,
            title,
            data,
            facet: { column: { field: 'panel', type: 'nominal', title: null } },
            spec: cell,
          }
        : { $schema: SCHEMA, title, data, ...cell }
    ) as PlotSpec;
  };
  const escape = loops.configs.flatMap((c) =>
    c.escape.by_sigma
      .filter((e) => e.trials > 0)
      .map((e) => ({
        config: c.label,
        sigma: e.sigma,
        probability: e.probability,
        lo: e.ci95[0],
        hi: e.ci95[1],
      })),
  );
  const out = [
    {
      name: 'loop_rate',
      spec: heat(
        'loop_rate',
        `Loop rate: fraction of sequences ending in a repeated n-gram cycle (proposed, ${cite('simplex')})`,
        'loops',
      ),
    },
  ];
  if (escape.length) {
    out.push({
      name: 'escape',
      spec: {
        $schema: SCHEMA,
        title: 'Escape probability of a loop under logit noise N(0, σ²) (proposed)',
        data: { values: escape },
        width: 420,
        height: 220,
        encoding: {
          x: { field: 'sigma', type: 'ordinal', title: 'σ', axis: { labelAngle: 0 } },
          color: { field: 'config', type: 'nominal', title: null },
        },
        layer: [
          {
            mark: { type: 'line', point: true },
            encoding: {
              y: {
                field: 'probability',
                type: 'quantitative',
                scale: { domain: [0, 1] },
                title: 'P(escape within horizon), 95 % CI',
              },
            },
          },
          {
            mark: { type: 'errorbar' },
            encoding: {
              y: { field: 'lo', type: 'quantitative', title: 'P(escape within horizon), 95 % CI' },
              y2: { field: 'hi' },
            },
          },
        ],
      } as PlotSpec,
    });
  }
  if (rows.some((r) => Number.isFinite(r.asymmetry))) {
    out.push({
      name: 'asymmetry',
      spec: heat(
        'asymmetry',
        'Asymmetry ‖A − Aᵀ‖/‖A + Aᵀ‖ of the score response to counts (proposed)',
        'asymmetry',
      ),
    });
  }
  return out;
}
