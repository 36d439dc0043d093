/**
 * A simplex run on disk: simplex.json (the report) and the figures (SVG + Vega-Lite JSON, PNG
 * when asked). In sweep mode the report goes into the sweep folder itself, as simplex.json with
 * the figures prefixed `simplex_`. Every file is written by temp file + rename.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { writePlot } from '../../report/plot.js';
import type { SimplexReport, SimplexSweepReport } from './analyze.js';
import { loopPlots, simplexPlots } from './plots.js';

export async function writeSimplexRun(
  dir: string,
  report: SimplexReport,
  options: { png?: boolean } = {},
): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const written = [join(dir, 'simplex.json')];
  writeFileAtomic(written[0], JSON.stringify(report, null, 1) + '\n');
  for (const { name, spec } of simplexPlots(report)) {
    written.push(await writePlot(join(dir, name), spec, { png: options.png }));
  }
  return written;
}

export async function writeSweepLoops(
  sweepDir: string,
  report: SimplexSweepReport,
  options: { png?: boolean } = {},
): Promise<string[]> {
  const written = [join(sweepDir, 'simplex.json')];
  writeFileAtomic(written[0], JSON.stringify(report, null, 1) + '\n');
  for (const { name, spec } of loopPlots(report.loops)) {
    written.push(await writePlot(join(sweepDir, `simplex_${name}`), spec, { png: options.png }));
  }
  return written;
}
