/**
 * An SDE run on disk, inside the analysed trace or sweep folder (or --out): sde.json (the
 * report), sde-model.json (weights, PCA, time convention; reusable with --model-file) and the
 * figures sde-*.svg (+ .vl.json, .png when asked). Every file is written by temp file + rename.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LmdynError } from '../../errors.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { commitBeside } from '../../io/commit.js';
import { writePlot } from '../plot.js';
import { validateModelFile, type SdeModelFile, type SdeReport } from '../../lenses/sde/analyze.js';
import { sdePlots } from './sde-plots.js';

export const SDE_FILES = ['sde.json', 'sde-model.json'] as const;

/** Refuses to overwrite an earlier SDE run in `dir` unless `force`. */
export function checkSdeOut(dir: string, force: boolean): void {
  const present = [...SDE_FILES, 'sde.manifest.json'].filter((f) => existsSync(join(dir, f)));
  if (present.length > 0 && !force) {
    throw new LmdynError(
      'bad_argument',
      `${join(dir, present[0])} exists; use --force to overwrite it or choose another --out`,
    );
  }
}

export async function writeSdeRun(
  dir: string,
  report: SdeReport,
  model: SdeModelFile | null,
  options: { png?: boolean } = {},
): Promise<string[]> {
  // one committed unit (sde.manifest.json), replacing an earlier SDE run there whole
  return commitBeside(dir, 'sde', async (stage) => {
    writeFileAtomic(join(stage, 'sde.json'), JSON.stringify(report, roundFloats, 1) + '\n');
    if (model) writeFileAtomic(join(stage, 'sde-model.json'), JSON.stringify(model) + '\n');
    for (const { name, spec } of sdePlots(report)) {
      await writePlot(join(stage, name), spec, { png: options.png });
    }
  });
}

export function readSdeModel(path: string): SdeModelFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new LmdynError('not_found', `cannot read the model file ${path}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LmdynError('bad_format', `${path} is not valid JSON`);
  }
  return validateModelFile(value, path);
}

/** The report keeps 7 significant digits (the model file keeps full precision). */
function roundFloats(_key: string, value: unknown): unknown {
  return typeof value === 'number' && Number.isFinite(value) && !Number.isInteger(value)
    ? Number(value.toPrecision(7))
    : value;
}
