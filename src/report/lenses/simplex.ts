/**
 * A simplex run on disk: simplex.json (the report) and the figures (SVG + Vega-Lite JSON, PNG
 * when asked). In sweep mode the report goes into the sweep folder itself, as simplex.json with
 * the figures prefixed `simplex_`. Every file is written by temp file + rename.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { commitBeside } from '../../io/commit.js';
import { writePlot } from '../plot.js';
import type { SimplexReport, SimplexSweepReport } from '../../lenses/simplex/analyze.js';
import { loopPlots, simplexPlots } from './simplex-plots.js';

export async function writeSimplexRun(
  dir: string,
  report: SimplexReport,
  options: { png?: boolean } = {},
): Promise<string[]> {
  // one committed unit (simplex.manifest.json), replacing an earlier simplex run there whole
  return commitBeside(dir, 'simplex', async (stage) => {
    writeFileAtomic(join(stage, 'simplex.json'), JSON.stringify(report, null, 1) + '\n');
    for (const { name, spec } of simplexPlots(report)) {
      await writePlot(join(stage, name), spec, { png: options.png });
    }
  });
}

export async function writeSweepLoops(
  sweepDir: string,
  report: SimplexSweepReport,
  options: { png?: boolean } = {},
): Promise<string[]> {
  return commitBeside(sweepDir, 'simplex', async (stage) => {
    writeFileAtomic(join(stage, 'simplex.json'), JSON.stringify(report, null, 1) + '\n');
    for (const { name, spec } of loopPlots(report.loops)) {
      await writePlot(join(stage, `simplex_${name}`), spec, { png: options.png });
    }
  });
}
