/**
 * A coupling run on disk: coupling.json (the report), jacobians.safetensors (when asked) and the
 * figures (SVG + Vega-Lite JSON, PNG when asked). Every file is written by temp file + rename.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { commitBeside } from '../../io/commit.js';
import { writeSafetensors, type TensorToWrite } from '../../io/safetensors.js';
import { writePlot } from '../../report/plot.js';
import type { CouplingReport, JacobianRecord } from './analyze.js';
import { couplingPlots } from './plots.js';

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
