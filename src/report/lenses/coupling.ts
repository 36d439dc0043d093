/**
 * A coupling run on disk: coupling.json (the report), jacobians.safetensors (when asked) and the
 * figures (SVG + Vega-Lite JSON, PNG when asked); the across-models folder (coupling-models.*,
 * one coupling run per model) and the over-training one (coupling-training.*). Every file is
 * written by temp file + rename, each run as one committed unit (io/commit.ts).
 */
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { commitBeside } from '../../io/commit.js';
import { writeSafetensors, type TensorToWrite } from '../../io/safetensors.js';
import { writePlot } from '../plot.js';
import type { CouplingReport, JacobianRecord } from '../../lenses/coupling/analyze.js';
import type { AcrossModelsReport, ModelRow } from '../../lenses/coupling/across.js';
import type { CheckpointRow, TrainingDynamicsReport } from '../../lenses/coupling/training.js';
import { couplingPlots, modelsScatter } from './coupling-plots.js';

/** Collects the Jacobians an analysis hands to `onJacobians`, for jacobians.safetensors. */
export interface JacobianCollector {
  onJacobians: (record: JacobianRecord) => void;
  /**
   * `blocks.{l}.jacobian` (trained) and `random_twin.blocks.{l}.jacobian`, F32 [N, d, d] with
   * row = output and column = input; `ln_final.jacobian` likewise when included; and
   * `jacobian_index` I32 [N, 2] = (prompt, position) of each of the N entries.
   */
  tensors(report: CouplingReport): TensorToWrite[];
}

export function collectJacobians(): JacobianCollector {
  const records: JacobianRecord[] = [];
  return {
    onJacobians: (r) => records.push({ ...r, blocks: r.blocks.map((b) => b.slice()) }),
    tensors: (report) => {
      const d = report.model.config.dim;
      const out: TensorToWrite[] = [];
      for (const label of ['trained', 'random_twin'] as const) {
        const mine = records.filter((r) => r.weights === label);
        if (mine.length === 0) continue;
        const prefix = label === 'trained' ? '' : 'random_twin.';
        report.blocks.forEach((block, b) => {
          const data = new Float32Array(mine.length * d * d);
          mine.forEach((r, i) => data.set(r.blocks[b], i * d * d));
          out.push({
            name: `${prefix}${block}.jacobian`,
            dtype: 'F32',
            shape: [mine.length, d, d],
            data,
          });
        });
        if (label === 'trained') {
          const index = Int32Array.from(mine.flatMap((r) => [r.prompt, r.position]));
          out.push({ name: 'jacobian_index', dtype: 'I32', shape: [mine.length, 2], data: index });
        }
      }
      return out;
    },
  };
}

/**
 * Writes the run into `dir` (created if needed; the caller has checked it may be written) as one
 * committed unit (coupling.manifest.json), replacing an earlier coupling run there whole.
 */
export async function writeCouplingRun(
  dir: string,
  report: CouplingReport,
  options: { jacobians?: JacobianCollector; png?: boolean } = {},
): Promise<string[]> {
  return commitBeside(dir, 'coupling', (stage) => writeCouplingFiles(stage, report, options));
}

async function writeCouplingFiles(
  dir: string,
  report: CouplingReport,
  options: { jacobians?: JacobianCollector; png?: boolean },
): Promise<void> {
  writeFileAtomic(join(dir, 'coupling.json'), JSON.stringify(report, null, 1) + '\n');
  if (options.jacobians) {
    const path = join(dir, 'jacobians.safetensors');
    writeSafetensors(path, options.jacobians.tensors(report), {
      format: 'lmdyn-coupling-jacobians',
      definition:
        'J^l = dx^l_T/dx^{l-1}_T - I (ln_final: d ln_final(x^L_T)/dx^L_T); row = output, column = input',
      model: report.model.spec,
      lmdyn_version: report.lmdyn_version,
    });
  }
  for (const { name, spec } of couplingPlots(report)) {
    await writePlot(join(dir, name), spec, { png: options.png });
  }
}

/** Writes coupling-models.json, coupling-models.csv, one coupling run per model, and scatter plots. */
export async function writeAcrossModels(
  dir: string,
  result: { report: AcrossModelsReport; perModel: CouplingReport[] },
  options: { png?: boolean } = {},
): Promise<void> {
  for (const [i, r] of result.perModel.entries()) {
    await writeCouplingRun(join(dir, modelRunDir(i, r.model.spec)), r, options);
  }
  await writeAcrossSummary(dir, result.report, options);
}

/** The folder of the i-th (0-based) model's coupling run inside an across-models folder. */
export function modelRunDir(i: number, spec: string): string {
  return join('models', `${i + 1}-${safeName(spec)}`);
}

/**
 * coupling-models.json, coupling-models.csv and, with scores, the scatter plots, as one committed
 * unit (coupling-models.manifest.json, io/commit.ts); each model's run is its own unit.
 */
export async function writeAcrossSummary(
  dir: string,
  report: AcrossModelsReport,
  options: { png?: boolean } = {},
): Promise<void> {
  await commitBeside(dir, 'coupling-models', (stage) => writeSummaryFiles(stage, report, options));
}

async function writeSummaryFiles(
  dir: string,
  report: AcrossModelsReport,
  options: { png?: boolean },
): Promise<void> {
  writeFileAtomic(join(dir, 'coupling-models.json'), JSON.stringify(report, null, 1) + '\n');
  const cols: (keyof ModelRow)[] = [
    'model',
    'parameters',
    'depth',
    'width',
    'coupling',
    'log10_coupling',
    'lss_mean',
    'growth_rate',
    'growth_r2',
    'score',
  ];
  const csv = [cols.join(','), ...report.rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))];
  writeFileAtomic(join(dir, 'coupling-models.csv'), csv.join('\n') + '\n');
  const rows = report.rows;
  if (report.correlations) {
    for (const q of ['coupling', 'lss_mean'] as const) {
      const points = rows.map((r) => ({ model: r.model, x: r[q], score: r.score as number }));
      await writePlot(join(dir, `score_vs_${q}`), modelsScatter(points, q), options);
    }
  }
}

/**
 * Writes coupling-training.json, coupling-training.csv and the curves (SVG, PNG on request) as
 * one committed unit (coupling-training.manifest.json, io/commit.ts).
 */
export async function writeTrainingDynamics(
  dir: string,
  result: { report: TrainingDynamicsReport },
  options: { png?: boolean } = {},
): Promise<void> {
  await commitBeside(dir, 'coupling-training', (stage) =>
    writeTrainingFiles(stage, result, options),
  );
}

async function writeTrainingFiles(
  dir: string,
  result: { report: TrainingDynamicsReport },
  options: { png?: boolean },
): Promise<void> {
  const { report } = result;
  writeFileAtomic(join(dir, 'coupling-training.json'), JSON.stringify(report, null, 1) + '\n');
  const cols: (keyof CheckpointRow)[] = [
    'step',
    'val_loss',
    'coupling',
    'log10_coupling',
    'lss_mean',
    'growth_rate',
    'growth_r2',
    'fidelity_mean',
    'checkpoint',
  ];
  const csv = [cols.join(','), ...report.rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))];
  writeFileAtomic(join(dir, 'coupling-training.csv'), csv.join('\n') + '\n');
  const values = report.rows.flatMap((r) =>
    (
      [
        ['coupling m_K', r.coupling],
        ['LSS (mean)', r.lss_mean],
        ['growth rate', r.growth_rate],
        ['validation loss', r.val_loss],
      ] as const
    )
      .filter(([, v]) => v !== null && Number.isFinite(v))
      .map(([quantity, v]) => ({ step: r.step, quantity, value: v })),
  );
  await writePlot(
    join(dir, 'training'),
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: `coupling lens over training (K = ${report.headline_k}; proposed)`,
      data: { values },
      facet: { row: { field: 'quantity', type: 'nominal', title: null } },
      spec: {
        width: 420,
        height: 110,
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'training step' },
          y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: null },
        },
      },
      resolve: { scale: { y: 'independent' } },
    },
    options,
  );
}

/** One CSV cell: empty for null and non-finite numbers, RFC 4180 quoting for text. */
export function csvCell(v: string | number | null): string {
  if (v === null) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  return /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

function safeName(spec: string): string {
  return basename(spec.replace(/\/+$/, '')).replace(/[^A-Za-z0-9._-]+/g, '_') || 'model';
}
