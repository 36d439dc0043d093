/**
 * A simplex run on disk: simplex.json (the report) and the figures (SVG + Vega-Lite JSON, PNG
 * when asked). In sweep mode the report goes into the sweep folder itself, as simplex.json with
 * the figures prefixed `simplex_`. Every file is written by temp file + rename. The loop
 * statistics' input, a sweep's generations, is read here through the run-folder store.
 */
import { join, resolve } from 'node:path';
import { validateSampling } from '../../decode/sampling.js';
import { LmdynError } from '../../errors.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { commitBeside } from '../../io/commit.js';
import { writePlot } from '../plot.js';
import type { SimplexReport, SimplexSweepReport } from '../../lenses/simplex/analyze.js';
import type { GenerationConfig, GenerationSet } from '../../lenses/simplex/generations.js';
import { isComplete, readSweepIndex, readTraceHeader } from '../../trace/store.js';
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

/**
 * The generations of a sweep folder, finished or not: each committed configuration (io/commit.ts)
 * is whole, so an unfinished sweep's recorded configurations are read and the rest listed as
 * missing. Reads only each configuration's trace.json.
 */
export function readSweepGenerations(dir: string): GenerationSet {
  const root = resolve(dir);
  const index = readSweepIndex(root, { finished: false });
  const configs: GenerationConfig[] = [];
  const missing: string[] = [];
  for (const c of index.configs) {
    if (!isComplete(join(root, c.dir))) {
      missing.push(c.dir);
      continue;
    }
    const header = readTraceHeader(join(root, c.dir));
    configs.push({
      dir: c.dir,
      sampling: validateSampling(header.meta.decoding),
      samples: header.samples.map((s) => ({
        promptIds: s.promptIds,
        ids: s.ids,
        finishReason: s.finishReason,
        seed: s.seed,
      })),
    });
  }
  if (configs.length === 0) {
    throw new LmdynError(
      'not_found',
      `${dir} holds no finished sweep configuration (none is committed with its trace.manifest.json)`,
    );
  }
  return {
    source: 'sweep',
    sweepDir: root,
    model: index.plan.model,
    tokenizer: index.plan.tokenizer,
    prompt: index.plan.prompt,
    maxTokens: index.plan.maxTokens,
    configs,
    missing,
  };
}
