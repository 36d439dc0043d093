/**
 * Coupling across models (papers.md §5.9 item 2): one row per model — model-level coupling
 * (§5.5), mean LSS, growth rate, parameters, depth, width — and, with a score per model (e.g. a
 * benchmark average), the correlation of each quantity with the score. The files are written by
 * report/lenses/coupling.ts (writeAcrossModels); the scores file is read by io/text.ts (readScores).
 */
import { basename } from 'node:path';
import type { Model } from '../../model/model.js';
import { LmdynError } from '../../errors.js';
import { VERSION } from '../../version.js';
import { analyzeCoupling, type CouplingOptions, type CouplingReport, type Tag } from './analyze.js';
import { correlate, type Correlation } from './correlate.js';
import { paperRef } from '../../papers.js';

export interface ModelRow {
  model: string;
  parameters: number;
  depth: number;
  width: number;
  /** Model-level coupling at the headline K (§5.5, proposed) and its log10. */
  coupling: number;
  log10_coupling: number;
  lss_mean: number;
  growth_rate: number | null;
  growth_r2: number | null;
  score: number | null;
}

export interface AcrossModelsReport {
  lens: 'coupling-models';
  spec: string;
  lmdyn_version: string;
  prompts: string[];
  /** The K of the `coupling` column (the first K asked for, clipped to each model's d). */
  headline_k: number;
  seed: number;
  tags: Record<'coupling' | 'log10_coupling' | 'lss_mean' | 'growth_rate' | 'correlations', Tag>;
  rows: ModelRow[];
  /** One entry per quantity against the score; null without scores. */
  correlations: ({ quantity: string } & Correlation)[] | null;
}

export type AcrossOptions = Omit<CouplingOptions, 'modelSpec' | 'onJacobians' | 'randomTwin'> & {
  /** Score per model, keyed by the spec as given or its file/folder name. */
  scores?: ReadonlyMap<string, number>;
};

/** Opens each model in turn, analyses it, frees it, and collects the rows. */
export async function analyzeCouplingAcrossModels(
  specs: readonly string[],
  open: (spec: string) => Promise<Model>,
  options: AcrossOptions,
): Promise<{ report: AcrossModelsReport; perModel: CouplingReport[] }> {
  checkAcrossModels(specs, options);
  const perModel: CouplingReport[] = [];
  for (const spec of specs) {
    options.log?.(`model ${perModel.length + 1}/${specs.length}: ${spec}`);
    perModel.push(await analyzeOneModel(spec, open, options));
  }
  return { report: acrossModelsReport(perModel, options), perModel };
}

/** Refuses an empty model list, and a scores table that misses one of the models. */
export function checkAcrossModels(specs: readonly string[], options: AcrossOptions): void {
  if (specs.length === 0) throw new LmdynError('bad_argument', '--models needs at least one model');
  const scores = options.scores;
  if (scores) {
    const missing = specs.filter((s) => scoreFor(scores, s) === null);
    if (missing.length)
      throw new LmdynError('bad_argument', `no score for ${missing.join(', ')} in the scores file`);
  }
}

/**
 * One model of the study: opened, analysed (§5) and its weights freed. The local loop above and
 * the queue workers (src/queue/) both call this, one model per job.
 */
export async function analyzeOneModel(
  spec: string,
  open: (spec: string) => Promise<Model>,
  options: AcrossOptions,
): Promise<CouplingReport> {
  const model = await open(spec);
  try {
    return analyzeCoupling(model, { ...options, modelSpec: spec });
  } finally {
    model.dispose();
  }
}

/** The across-models report (rows, correlations with the scores) from the per-model reports, in order. */
export function acrossModelsReport(
  perModel: readonly CouplingReport[],
  options: AcrossOptions,
): AcrossModelsReport {
  const scores = options.scores;
  const headlineK = (options.k ?? [10])[0];
  const rows = perModel.map((r): ModelRow => {
    const c = r.trained.model_coupling.by_k.find(
      (e) => e.k === Math.min(headlineK, r.model.config.dim),
    );
    const coupling = c ? c.value : NaN;
    return {
      model: r.model.spec,
      parameters: r.model.parameters,
      depth: r.model.config.nLayers,
      width: r.model.config.dim,
      coupling,
      log10_coupling: Math.log10(coupling),
      lss_mean: r.trained.lss.mean,
      growth_rate: r.trained.growth.rate,
      growth_r2: r.trained.growth.r2_mean,
      score: scores ? scoreFor(scores, r.model.spec) : null,
    };
  });
  return {
    lens: 'coupling-models',
    spec: paperRef('coupling'),
    lmdyn_version: VERSION,
    prompts: [...options.prompts],
    headline_k: headlineK,
    seed: options.seed ?? 1,
    tags: {
      coupling: 'proposed',
      log10_coupling: 'proposed',
      lss_mean: 'proposed',
      growth_rate: 'proposed',
      correlations: 'proposed',
    },
    rows,
    correlations: scores ? correlations(rows) : null,
  };
}

function correlations(rows: readonly ModelRow[]): ({ quantity: string } & Correlation)[] {
  const score = rows.map((r) => r.score as number);
  const quantities: [string, (r: ModelRow) => number][] = [
    ['coupling', (r) => r.coupling],
    ['log10_coupling', (r) => r.log10_coupling],
    ['lss_mean', (r) => r.lss_mean],
    ['growth_rate', (r) => r.growth_rate ?? NaN],
    ['log10_parameters', (r) => Math.log10(r.parameters)],
    ['depth', (r) => r.depth],
    ['width', (r) => r.width],
  ];
  return quantities.map(([quantity, f]) => ({ quantity, ...correlate(rows.map(f), score) }));
}

function scoreFor(scores: ReadonlyMap<string, number>, spec: string): number | null {
  return scores.get(spec) ?? scores.get(basename(spec.replace(/\/+$/, ''))) ?? null;
}
