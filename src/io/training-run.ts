/**
 * A `lmdyn train` run folder as the coupling-over-training lens reads it: the kept checkpoints
 * (`checkpoints/step-NNNNNNNN.bin`, step 0 the initial weights) and the validation loss by step
 * from train.parquet.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LmdynError } from '../errors.js';
import { readParquet } from './parquet.js';

export interface Checkpoint {
  step: number;
  path: string;
}

/** The run's checkpoints (at least two) and validation loss, for analyzeCouplingOverTraining. */
export async function readTrainingRun(runDir: string): Promise<{
  dir: string;
  checkpoints: Checkpoint[];
  valLoss: Map<number, number>;
}> {
  return {
    dir: runDir,
    checkpoints: listCheckpoints(runDir),
    valLoss: await validationLossByStep(runDir),
  };
}

const STEP_FILE = /^step-(\d+)\.bin$/;

/** The kept checkpoints of a training run folder (or of its checkpoints/ folder), by step. */
export function listCheckpoints(runDir: string): Checkpoint[] {
  const dir = existsSync(join(runDir, 'checkpoints')) ? join(runDir, 'checkpoints') : runDir;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    throw new LmdynError('not_found', `cannot read the training run ${runDir}`);
  }
  const found = names
    .map((name) => ({ name, m: STEP_FILE.exec(name) }))
    .filter((e): e is { name: string; m: RegExpExecArray } => e.m !== null)
    .map((e) => ({ step: Number(e.m[1]), path: join(dir, e.name) }))
    .sort((a, b) => a.step - b.step);
  if (found.length < 2) {
    throw new LmdynError(
      'bad_argument',
      `${runDir}: needs at least two checkpoints (checkpoints/step-N.bin, written by lmdyn train --checkpoint-every K), found ${found.length}`,
    );
  }
  return found;
}

/** val_loss by step from the run's train.parquet (empty when the run has none). */
export async function validationLossByStep(runDir: string): Promise<Map<number, number>> {
  const path = join(runDir, 'train.parquet');
  const out = new Map<number, number>();
  if (!existsSync(path)) return out;
  for (const row of await readParquet(path)) {
    const step = Number(row.step);
    const v = Number(row.val_loss);
    if (Number.isFinite(step) && Number.isFinite(v)) out.set(step, v);
  }
  return out;
}
