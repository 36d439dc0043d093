/**
 * A run folder with one of everything the report and the dashboard draw: a trace, a 2 × 2 sweep
 * and a coupling run recorded with stories260K, plus small stand-in reports of the other lenses
 * (dmet, simplex, gravity, sde: a `lens` field, tagged metrics, figures written by writePlot),
 * and a folder holding only a figure. The stand-ins exercise the generic path every lens takes.
 */
import { commitBeside } from '../../src/io/commit.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { openModel } from '../../src/api.js';
import type { Model } from '../../src/model/model.js';
import { analyzeCoupling } from '../../src/lenses/coupling/analyze.js';
import { writeCouplingRun } from '../../src/report/lenses/coupling.js';
import { writePlot, type PlotSpec } from '../../src/report/plot.js';
import { writeTrace } from '../../src/trace/io.js';
import { recordTrace } from '../../src/trace/record.js';
import { runSweep } from '../../src/trace/sweep.js';
import { model as modelPath } from '../helpers/paths.js';

export const STORIES = modelPath('stories260K', 'stories260K.bin');

/** The figures the report must show, by section folder (every vl.json plus the built-in ones). */
export const EXPECTED_FIGURES: Record<string, string[]> = {
  trace: ['per_step', 'trajectory_pca'],
  sweep: ['sweep_entropy', 'sweep_logprob', 'sweep_distinct'],
  coupling: ['coupling_k10', 'spectra', 'lss', 'growth'],
  'lenses/dmet': ['heatmap_C_mean', 'persistence_diagrams', 'trajectories', 'wrapped'],
  'lenses/simplex': ['ternary'],
  'lenses/gravity': ['potential'],
  'lenses/sde': ['drift'],
  loose: ['loose'],
};

/** Figures that have nothing to show, by section folder: the report states a note instead. */
export const EXPECTED_NOTES: Record<string, string[]> = {
  'lenses/dmet': ['heatmap_grammar'],
  'lenses/sde': ['kramers_moyal'],
};

/** The DMET stand-in's 8 × 5 grid (a DMET-size sweep: 40 configurations). */
export const GRID_T = [0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5];
export const GRID_P = [0.5, 0.7, 0.8, 0.9, 1];

export async function makeRunFolder(root: string, model?: Model): Promise<void> {
  const m = model ?? (await openModel(STORIES));
  const trace = recordTrace(m, {
    spec: STORIES,
    prompt: 'Once upon a time',
    samples: 2,
    maxTokens: 12,
    sampling: { temperature: 1.2 },
    seed: 4,
  });
  writeTrace(join(root, 'trace'), trace, { tokenText: (id) => m.tokenizer.decode([id]) });
  await runSweep(
    {
      model: STORIES,
      tokenizer: null,
      prompt: 'Once upon a time',
      samples: 2,
      maxTokens: 10,
      seed: 1,
      hooks: ['blocks.*.hook_resid_post'],
      logits: { kind: 'none' },
      grid: { temperature: [0.5, 1], topP: [0.9, 1], topK: [0], repetitionPenalty: [1] },
    },
    join(root, 'sweep'),
    { workers: 1 },
  );
  const coupling = analyzeCoupling(m, {
    prompts: ['Once upon a time, there was a girl.'],
    k: [10],
    randomTwin: true,
    interactions: false,
    seed: 1,
    modelSpec: STORIES,
  });
  await writeCouplingRun(join(root, 'coupling'), coupling);

  await standIn(
    root,
    'dmet',
    {
      source: { kind: 'sweep', dir: '../../sweep' },
      metrics: {
        C_mean: { tag: 'exact', mean: 0.25 },
        silhouette: { tag: 'proposed', value: 0.5 },
      },
      untagged: { mean: 9 },
    },
    {
      heatmap_C_mean: heat([0.5, 1], [0.9, 1]),
      // grammar = 1 in every configuration: a one-colour heatmap the report replaces by a note
      heatmap_grammar: { ...heat([0.5, 1], [0.9, 1], () => 1), title: 'grammar (exact)' },
      // 40 panels, temperature × top-p, as the DMET lens draws a 8 × 5 grid: wider than a page
      'dmet-plots/trajectories': {
        data: {
          values: GRID_T.flatMap((temperature) =>
            GRID_P.flatMap((top_p) =>
              [0, 1, 2].map((t) => ({
                temperature,
                top_p,
                t,
                x: Math.cos(t + temperature),
                y: Math.sin(t * top_p),
              })),
            ),
          ),
        },
        facet: {
          row: { field: 'top_p', type: 'ordinal', title: 'top-p' },
          column: { field: 'temperature', type: 'ordinal', title: 'temperature' },
        },
        spec: {
          width: 130,
          height: 110,
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'x', type: 'quantitative' },
            y: { field: 'y', type: 'quantitative' },
            order: { field: 't' },
          },
        },
      },
      // 40 panels in one wrapped row: the report wraps them to the page
      wrapped: {
        data: {
          values: GRID_T.flatMap((temperature) =>
            GRID_P.map((top_p) => ({
              panel: `T ${temperature} · p ${top_p}`,
              a: temperature,
              b: top_p,
            })),
          ),
        },
        facet: { field: 'panel', type: 'nominal' },
        columns: 40,
        spec: {
          width: 90,
          height: 60,
          mark: 'point',
          encoding: {
            x: { field: 'a', type: 'quantitative' },
            y: { field: 'b', type: 'quantitative' },
          },
        },
      },
      'dmet-plots/persistence_diagrams': {
        data: {
          values: [
            { birth: 0, death: 1.5, dim: 'H0' },
            { birth: 0.4, death: 0.9, dim: 'H1' },
            { birth: 0, death: 0.7, dim: 'H0' },
          ],
        },
        mark: 'point',
        encoding: {
          x: { field: 'birth', type: 'quantitative' },
          y: { field: 'death', type: 'quantitative' },
          color: { field: 'dim', type: 'nominal' },
        },
      },
    },
  );
  // a ternary plot: the flow from the uniform point towards a vertex, in barycentric → 2-D
  const ternary = Array.from({ length: 20 }, (_, i) => {
    const a = 1 / 3 + (i / 19) * (0.9 - 1 / 3);
    const b = (1 - a) / 2;
    return { t: i, x: b + a / 2, y: (Math.sqrt(3) / 2) * a };
  });
  await standIn(
    root,
    'simplex',
    { equilibrium: { distance: { tag: 'exact', value: 0.0125 } } },
    {
      ternary: {
        data: { values: ternary },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'x', type: 'quantitative' },
          y: { field: 'y', type: 'quantitative' },
          order: { field: 't' },
        },
      },
    },
  );
  await standIn(
    root,
    'gravity',
    {
      wells: [{ name: 'well 1', depth: { tag: 'proposed', value: 1.75 } }],
      // p-values as a lens states them: one below what double precision vouches for
      sensitivity: {
        tag: 'proposed',
        spearman_rho: 0.5,
        spearman_p: 1e-300,
        pearson_p: 0.0123,
        top_p: 0.9,
      },
    },
    {
      potential: {
        data: {
          values: [
            { v: 'a', phi: 1 },
            { v: 'b', phi: 2.5 },
            { v: 'c', phi: 0.5 },
          ],
        },
        mark: 'bar',
        encoding: { x: { field: 'v', type: 'nominal' }, y: { field: 'phi', type: 'quantitative' } },
      },
    },
  );
  await standIn(
    root,
    'sde',
    {
      drift: { tag: 'proposed', mean: -0.3 },
      // a family of data sets: the report draws one small table per data set
      datasets: ['000_t0.5_p1', '001_t1_p1'].map((label, i) => ({
        label,
        headline: [
          {
            name: 'test NLL',
            tag: 'proposed',
            definition: 'NLL per held-out increment',
            value: 10 + i,
          },
          {
            name: 'test NLL, constant baseline',
            tag: 'proposed',
            definition: 'Brownian baseline',
            value: 12 + i,
          },
          { name: 'SNR', tag: 'proposed', definition: 'signal to noise', value: 1.5 - i },
          { name: 'fixed points', tag: 'proposed', definition: 'zeros of μ', value: 1 },
        ],
      })),
    },
    {
      // no Kramers–Moyal bin held enough points: a figure with no data, replaced by a note
      kramers_moyal: {
        data: { values: [] },
        facet: { column: { field: 'quantity', type: 'nominal' } },
        spec: {
          mark: 'point',
          encoding: {
            x: { field: 'km', type: 'quantitative' },
            y: { field: 'network', type: 'quantitative' },
          },
        },
      },
      drift: {
        data: {
          values: [
            { x: -1, mu: 0.3 },
            { x: 0, mu: 0 },
            { x: 1, mu: -0.3 },
          ],
        },
        mark: 'line',
        encoding: {
          x: { field: 'x', type: 'quantitative' },
          y: { field: 'mu', type: 'quantitative' },
        },
      },
    },
  );
  mkdirSync(join(root, 'loose'), { recursive: true });
  await writePlot(join(root, 'loose', 'loose'), {
    data: { values: [{ a: 1 }, { a: 2 }] },
    mark: 'tick',
    encoding: { x: { field: 'a', type: 'quantitative' } },
  });
}

/** A (temperature × top-p) heatmap as the DMET lens draws it (no config field: cells are found by T and p). */
function heat(
  ts: number[],
  ps: number[],
  value: (i: number, j: number) => number = (i, j) => i + 2 * j,
): PlotSpec {
  const values = ts.flatMap((temperature, i) =>
    ps.map((top_p, j) => ({ temperature, top_p, value: value(i, j) })),
  );
  return {
    data: { values },
    mark: 'rect',
    encoding: {
      x: { field: 'temperature', type: 'ordinal' },
      y: { field: 'top_p', type: 'ordinal' },
      color: { field: 'value', type: 'quantitative' },
    },
  };
}

/** A lens report with its figures; figures named `sub/name` go into a subfolder (as DMET's do). */
async function standIn(
  root: string,
  lens: string,
  body: Record<string, unknown>,
  plots: Record<string, PlotSpec>,
): Promise<void> {
  const json = {
    lens,
    spec: `docs/papers.md (${lens})`,
    lmdyn_version: '0.1.0',
    model: { spec: STORIES },
    seed: 3,
    ...body,
  };
  // committed as a lens's writer does (io/commit.ts), so readers accept it
  await commitBeside(join(root, 'lenses', lens), lens, async (dir) => {
    writeFileSync(join(dir, `${lens}.json`), JSON.stringify(json, null, 1));
    for (const [name, spec] of Object.entries(plots)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      await writePlot(join(dir, name), spec);
    }
  });
}
