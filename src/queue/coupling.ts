/**
 * Coupling studies through the queue: one job per model (`--models`) or per training checkpoint
 * (`--checkpoints`). Each worker analyses its model with analyzeOneModel, writes the model's
 * coupling run (as the local study does) and keeps its report in `.lmdyn-queue/` in the output
 * folder; once all are in, the coordinator assembles the study with the local path's functions
 * (acrossModelsReport, trainingDynamicsReport, the same writers) and removes `.lmdyn-queue/`.
 * The finished folder is the local one, byte for byte.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import {
  acrossModelsReport,
  checkAcrossModels,
  type AcrossModelsReport,
  type AcrossOptions,
} from '../lenses/coupling/across.js';
import { modelRunDir, writeAcrossSummary } from '../report/lenses/coupling.js';
import type { CouplingReport } from '../lenses/coupling/analyze.js';
import {
  trainingDynamicsReport,
  type TrainingDynamicsReport,
  type TrainingOptions,
} from '../lenses/coupling/training.js';
import { listCheckpoints, validationLossByStep } from '../io/training-run.js';
import { writeTrainingDynamics } from '../report/lenses/coupling.js';
import { checkOutDir } from '../trace/io.js';
import { connectQueue } from './connection.js';
import { runKey, runUnitsOnQueue, type QueueRunOptions } from './coordinator.js';
import {
  PENDING_DIR,
  isUnitDone,
  readUnitReport,
  type CouplingUnit,
  type CouplingUnitOptions,
} from './units.js';

export type QueuedStudyOptions = QueueRunOptions & { png?: boolean; force?: boolean };

/** `analyze coupling --models … --queue URL`: as analyzeCouplingAcrossModels + writeAcrossModels. */
export async function couplingAcrossModelsOnQueue(
  specs: readonly string[],
  options: AcrossOptions,
  outDir: string,
  url: string,
  queued: QueuedStudyOptions = {},
): Promise<{ report: AcrossModelsReport; perModel: CouplingReport[] }> {
  checkAcrossModels(specs, options);
  const perModel = await runStudy(specs, options, outDir, url, queued, true);
  const report = acrossModelsReport(perModel, options);
  await writeAcrossSummary(resolve(outDir), report, { png: queued.png });
  rmSync(join(resolve(outDir), PENDING_DIR), { recursive: true, force: true });
  return { report, perModel };
}

/** `analyze coupling --checkpoints RUN --queue URL`: as analyzeCouplingOverTraining + its writer. */
export async function couplingOverTrainingOnQueue(
  runDir: string,
  options: TrainingOptions,
  outDir: string,
  url: string,
  queued: QueuedStudyOptions = {},
): Promise<{ report: TrainingDynamicsReport }> {
  const checkpoints = listCheckpoints(runDir);
  const valLoss = await validationLossByStep(runDir);
  const specs = checkpoints.map((c) => c.path);
  const perModel = await runStudy(specs, options, outDir, url, queued, false);
  const across = acrossModelsReport(perModel, options);
  const report = trainingDynamicsReport(runDir, checkpoints, valLoss, across, perModel, options);
  await writeTrainingDynamics(resolve(outDir), { report }, { png: queued.png });
  rmSync(join(resolve(outDir), PENDING_DIR), { recursive: true, force: true });
  return { report };
}

/**
 * Enqueues the models whose report is not yet in the folder, waits for them, and returns every
 * model's report in order. A folder that holds this study's `.lmdyn-queue/plan.json` is resumed;
 * any other non-empty folder is refused unless `force`.
 */
async function runStudy(
  specs: readonly string[],
  options: AcrossOptions,
  outDir: string,
  url: string,
  queued: QueuedStudyOptions,
  modelRuns: boolean,
): Promise<CouplingReport[]> {
  const conn = await connectQueue(url); // before anything is written
  const dir = resolve(outDir);
  const unitOptions: CouplingUnitOptions = {
    prompts: options.prompts,
    positions: options.positions,
    k: options.k,
    includeFinalNorm: options.includeFinalNorm,
    interactions: options.interactions,
    seed: options.seed,
  };
  const units = specs.map((spec, index): CouplingUnit => ({
    kind: 'coupling',
    dir,
    index,
    spec,
    open: spec.startsWith('hf:') ? spec : resolve(spec),
    options: unitOptions,
    runDir: modelRuns ? modelRunDir(index, spec) : null,
    png: queued.png ?? false,
  }));
  const plan = JSON.stringify(units, null, 1) + '\n';
  const planPath = join(dir, PENDING_DIR, 'plan.json');
  const resuming = existsSync(planPath) && readFileSync(planPath, 'utf8') === plan;
  if (!resuming) {
    checkOutDir(dir, queued.force ?? false);
    rmSync(join(dir, PENDING_DIR), { recursive: true, force: true });
    mkdirSync(join(dir, PENDING_DIR), { recursive: true });
    writeFileAtomic(planPath, plan);
  }
  const todo = units.filter((u) => !isUnitDone(u)).map((unit) => ({ index: unit.index, unit }));
  await runUnitsOnQueue(conn, runKey(dir, plan), todo, units.length, queued);
  return units.map((u) => readUnitReport(dir, u.index));
}
