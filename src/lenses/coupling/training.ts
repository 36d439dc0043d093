/**
 * Coupling over training (papers.md §5.9 item 4, §5.10 "Pythia training"): the coupling lens on
 * every checkpoint a `lmdyn train` run kept (`checkpoints/step-NNNNNNNN.bin`, step 0 being the
 * initial weights), one row per checkpoint with the run's own validation loss at that step, and
 * a description of each curve's shape — how early it moves and whether it has levelled off — so
 * the paper's claim ("coupling appears within roughly the first 10–20k steps, then plateaus")
 * can be checked on a run of our own. The shape statistics are ours (proposed); the curves are
 * the lens's model-level quantities (§5.5) and carry its tags. The run folder is read by
 * io/training-run.ts (readTrainingRun) and the files written by report/lenses/coupling.ts.
 */
import { resolve } from 'node:path';
import type { Model } from '../../model/model.js';
import { VERSION } from '../../version.js';
import type { CouplingOptions, CouplingReport, Tag } from './analyze.js';
import { analyzeCouplingAcrossModels, type AcrossModelsReport } from './across.js';
import { paperRef } from '../../papers.js';

/** A kept checkpoint of a training run: its step and file. */
export interface Checkpoint {
  step: number;
  path: string;
}

/** What the lens needs of a `lmdyn train` run folder (io/training-run.ts reads it). */
export interface TrainingRun {
  dir: string;
  /** At least two, by step. */
  checkpoints: readonly Checkpoint[];
  /** The run's held-out loss by step (train.parquet); empty when it has none. */
  valLoss: ReadonlyMap<number, number>;
}

export interface CheckpointRow {
  step: number;
  checkpoint: string;
  /** The run's held-out loss at this step (train.parquet), null when it was not evaluated. */
  val_loss: number | null;
  coupling: number;
  log10_coupling: number;
  lss_mean: number;
  growth_rate: number | null;
  growth_r2: number | null;
  fidelity_mean: number;
}

/** How a curve y(step) moves from its first to its last checkpoint (proposed). */
export interface CurveShape {
  quantity: string;
  initial: number;
  final: number;
  /** final − initial */
  change: number;
  /**
   * Smallest checkpoint step from which y stays at least 50 % (90 %) of the way from initial to
   * final, as a fraction of the run's last step; null when the curve does not move.
   */
  reach_50: number | null;
  reach_90: number | null;
  /** |y(last) − y(halfway checkpoint)| / |change|: the share of the move left for the second half. */
  second_half_share: number | null;
  /** Largest |y − y(last)| / |change| over the checkpoints in the second half. */
  second_half_range: number | null;
  /** The checkpoint farthest from the initial value (first one on ties), its step as a fraction of the last. */
  peak: number;
  peak_at: number | null;
  /**
   * (final − initial) / (peak − initial): how much of the largest move is still there at the end
   * (1 = it stayed, a plateau; near 0 = it went back); null when the curve never moves.
   */
  peak_retained: number | null;
}

export interface TrainingDynamicsReport {
  lens: 'coupling-training';
  spec: string;
  lmdyn_version: string;
  run: string;
  prompts: string[];
  headline_k: number;
  seed: number;
  tags: Record<'coupling' | 'lss_mean' | 'growth_rate' | 'fidelity_mean' | 'shape', Tag>;
  definitions: Record<'peak' | 'reach' | 'second_half_share' | 'second_half_range', string>;
  rows: CheckpointRow[];
  shapes: CurveShape[];
}

/**
 * The shape of y over steps (steps ascending, the last one the run's end): see CurveShape.
 * `reach_f` is the first step s with (y(s') − y0)/Δ ≥ f for every checkpoint s' ≥ s.
 */
export function curveShape(
  quantity: string,
  steps: readonly number[],
  y: readonly number[],
): CurveShape {
  const n = y.length;
  const initial = y[0];
  const final = y[n - 1];
  const change = final - initial;
  const last = steps[n - 1];
  const moves = Number.isFinite(change) && change !== 0 && last > 0;
  const reach = (f: number): number | null => {
    if (!moves) return null;
    let from = n - 1;
    while (from > 0 && (y[from - 1] - initial) / change >= f) from--;
    return steps[from] / last;
  };
  let half = 0;
  while (half < n - 1 && steps[half] < last / 2) half++;
  let range = 0;
  for (let i = half; i < n; i++) range = Math.max(range, Math.abs(y[i] - final));
  let peak = 0;
  for (let i = 1; i < n; i++) if (Math.abs(y[i] - initial) > Math.abs(y[peak] - initial)) peak = i;
  const excursion = y[peak] - initial;
  return {
    quantity,
    initial,
    final,
    change,
    reach_50: reach(0.5),
    reach_90: reach(0.9),
    second_half_share: moves ? Math.abs(final - y[half]) / Math.abs(change) : null,
    second_half_range: moves ? range / Math.abs(change) : null,
    peak: y[peak],
    peak_at: last > 0 ? steps[peak] / last : null,
    peak_retained: excursion !== 0 && Number.isFinite(excursion) ? change / excursion : null,
  };
}

export type TrainingOptions = Omit<CouplingOptions, 'modelSpec' | 'onJacobians' | 'randomTwin'>;

/** The coupling lens on each checkpoint in step order (as analyzeCouplingAcrossModels), and the curves' shapes. */
export async function analyzeCouplingOverTraining(
  run: TrainingRun,
  open: (path: string) => Promise<Model>,
  options: TrainingOptions,
): Promise<{ report: TrainingDynamicsReport; perCheckpoint: CouplingReport[] }> {
  // each checkpoint is one model of the across-models analysis (open, analyse, free)
  const { report: across, perModel } = await analyzeCouplingAcrossModels(
    run.checkpoints.map((c) => c.path),
    open,
    options,
  );
  return {
    report: trainingDynamicsReport(
      run.dir,
      run.checkpoints,
      run.valLoss,
      across,
      perModel,
      options,
    ),
    perCheckpoint: perModel,
  };
}

/**
 * The report from the per-checkpoint analyses (in step order) and their across-models rows;
 * the local run above and a queued one (src/queue/) both end here.
 */
export function trainingDynamicsReport(
  runDir: string,
  checkpoints: readonly Checkpoint[],
  valLoss: ReadonlyMap<number, number>,
  across: AcrossModelsReport,
  perModel: readonly CouplingReport[],
  options: TrainingOptions,
): TrainingDynamicsReport {
  const headlineK = across.headline_k;
  const rows = across.rows.map((m, i): CheckpointRow => ({
    step: checkpoints[i].step,
    checkpoint: checkpoints[i].path,
    val_loss: valLoss.get(checkpoints[i].step) ?? null,
    coupling: m.coupling,
    log10_coupling: m.log10_coupling,
    lss_mean: m.lss_mean,
    growth_rate: m.growth_rate,
    growth_r2: m.growth_r2,
    fidelity_mean: perModel[i].trained.fidelity.mean,
  }));
  const steps = rows.map((r) => r.step);
  const shapes: CurveShape[] = [
    curveShape(
      'coupling',
      steps,
      rows.map((r) => r.coupling),
    ),
    curveShape(
      'lss_mean',
      steps,
      rows.map((r) => r.lss_mean),
    ),
    curveShape(
      'growth_rate',
      steps,
      rows.map((r) => r.growth_rate ?? NaN),
    ),
    curveShape(
      'fidelity_mean',
      steps,
      rows.map((r) => r.fidelity_mean),
    ),
  ];
  const withLoss = rows.filter((r) => r.val_loss !== null);
  if (withLoss.length >= 2 && withLoss[withLoss.length - 1].step === steps[steps.length - 1]) {
    shapes.push(
      curveShape(
        'val_loss',
        withLoss.map((r) => r.step),
        withLoss.map((r) => r.val_loss as number),
      ),
    );
  }
  return {
    lens: 'coupling-training',
    spec: paperRef('coupling'),
    lmdyn_version: VERSION,
    run: resolve(runDir),
    prompts: [...options.prompts],
    headline_k: headlineK,
    seed: options.seed ?? 1,
    tags: {
      coupling: 'proposed',
      lss_mean: 'proposed',
      growth_rate: 'proposed',
      fidelity_mean: 'proposed',
      shape: 'proposed',
    },
    definitions: {
      peak: 'peak: the checkpoint value farthest from step 0; peak_at its step / the last step; peak_retained = (last − step 0) / (peak − step 0), 1 for a plateau, near 0 when the move is undone',
      reach:
        'reach_f: the first checkpoint step from which the quantity stays at least the fraction f of the way from its step-0 value to its last value, divided by the last step',
      second_half_share:
        '|y(last) − y(first checkpoint at or after half the run)| / |y(last) − y(0)|',
      second_half_range:
        'max over checkpoints in the second half of |y − y(last)| / |y(last) − y(0)|',
    },
    rows,
    shapes,
  };
}
