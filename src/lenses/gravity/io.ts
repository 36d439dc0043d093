/**
 * A gravity run on disk: gravity.json (the report) and the figures (SVG + Vega-Lite JSON, PNG
 * when asked). Every file is written by temp file + rename; JSON writes NaN as null.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { writePlot } from '../../report/plot.js';
import type { GravityReport } from './analyze.js';
import { gravityPlots } from './plots.js';

/** Writes the run into `dir` (created if needed; the caller has checked it may be written). */
export async function writeGravityRun(
  dir: string,
  report: GravityReport,
  options: { png?: boolean } = {},
): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const written = [join(dir, 'gravity.json')];
  writeFileAtomic(written[0], JSON.stringify(report, null, 1) + '\n');
  for (const { name, spec } of gravityPlots(report)) {
    written.push(await writePlot(join(dir, name), spec, { png: options.png }));
  }
  return written;
}
