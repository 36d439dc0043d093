/**
 * A gravity run on disk: gravity.json (the report) and the figures (SVG + Vega-Lite JSON, PNG
 * when asked). Every file is written by temp file + rename; JSON writes NaN as null.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { commitBeside } from '../../io/commit.js';
import { writePlot } from '../plot.js';
import type { GravityReport } from '../../lenses/gravity/analyze.js';
import { gravityPlots } from './gravity-plots.js';

/**
 * Writes the run into `dir` (created if needed; the caller has checked it may be written) as one
 * committed unit (gravity.manifest.json), replacing an earlier gravity run there whole.
 */
export async function writeGravityRun(
  dir: string,
  report: GravityReport,
  options: { png?: boolean } = {},
): Promise<string[]> {
  return commitBeside(dir, 'gravity', async (stage) => {
    writeFileAtomic(join(stage, 'gravity.json'), JSON.stringify(report, null, 1) + '\n');
    for (const { name, spec } of gravityPlots(report)) {
      await writePlot(join(stage, name), spec, { png: options.png });
    }
  });
}
