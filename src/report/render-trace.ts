/**
 * Report blocks for a trace folder (trace/io.ts) and for a sweep folder (trace/sweep.ts): the
 * samples and their text, per-step log-probability and entropy, and the hidden-state
 * trajectories through PCA; for a sweep, one row and one heatmap cell per configuration.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { closeSafetensors, openSafetensors, readTensorData } from '../io/safetensors.js';
import { readTrace } from '../trace/io.js';
import { isConfigDirName, type SweepConfig, type SweepIndex } from '../trace/sweep.js';
import { folderPlots, provenanceBlock, type Block, type SectionRenderer } from './section.js';
import {
  perStepSpec,
  sweepHeatmapSpec,
  trajectorySpec,
  type StepRow,
  type SweepRow,
} from './specs.js';
import { traceTrajectories } from './trajectory.js';
import { meanFinite } from '../stats/describe.js';

export const renderTrace: SectionRenderer = (result) => {
  const trace = readTrace(result.dir);
  const meta = trace.meta;
  const blocks: Block[] = [provenanceBlock(result)];
  blocks.push({
    type: 'table',
    title: `${trace.samples.length} samples, ${trace.steps} steps at most (${meta.mode}, hooks: ${meta.hooks.join(', ')})`,
    head: [
      'sample',
      'seed',
      'prompt tokens',
      'generated',
      'finish',
      'mean log p',
      'mean H',
      'text',
    ],
    rows: trace.samples.map((s, i) => [
      i,
      s.seed,
      s.promptIds.length,
      s.ids.length,
      s.finishReason,
      meanFinite(trace.logprob.subarray(i * trace.steps, (i + 1) * trace.steps)),
      meanFinite(trace.entropy.subarray(i * trace.steps, (i + 1) * trace.steps)),
      clip(s.text, 400),
    ]),
  });
  const rows: StepRow[] = [];
  trace.samples.forEach((s, i) => {
    for (let k = 0; k < s.ids.length && k < trace.steps; k++) {
      rows.push({
        sample: i,
        step: k,
        logprob: finiteOrNull(trace.logprob[i * trace.steps + k]),
        entropy: finiteOrNull(trace.entropy[i * trace.steps + k]),
      });
    }
  });
  if (rows.length > 0) blocks.push({ type: 'plot', name: 'per_step', spec: perStepSpec(rows) });
  const traj = traceTrajectories(trace);
  if (traj && traj.points.length > 1) {
    blocks.push({
      type: 'plot',
      name: 'trajectory_pca',
      spec: trajectorySpec(traj.points, traj.explained, traj.hook),
    });
  }
  blocks.push(...folderPlots(result));
  return blocks;
};

export const renderSweep: SectionRenderer = (result) => {
  const index = result.json as unknown as SweepIndex;
  const blocks: Block[] = [provenanceBlock(result)];
  const rows = sweepRows(result.dir, index.configs);
  const done = rows.filter((r) => r.mean_logprob !== null || r.mean_entropy !== null);
  blocks.push({
    type: 'table',
    title: `${index.configs.length} configurations (${done.length} recorded), ${index.plan.samples} samples × ${index.plan.maxTokens} tokens, prompt “${clip(index.plan.prompt, 80)}”`,
    head: [
      'config',
      'temperature',
      'top-p',
      'top-k',
      'rep. penalty',
      'mean log p',
      'mean H',
      'distinct tokens',
    ],
    rows: rows.map((r) => [
      r.config,
      r.temperature,
      r.top_p,
      r.top_k,
      r.repetition_penalty,
      r.mean_logprob,
      r.mean_entropy,
      r.distinct,
    ]),
  });
  if (done.length > 0) {
    blocks.push({
      type: 'plot',
      name: 'sweep_entropy',
      spec: sweepHeatmapSpec(
        done,
        'mean_entropy',
        'Mean entropy per configuration (nats; click a cell in the dashboard for its trajectories)',
      ),
    });
    blocks.push({
      type: 'plot',
      name: 'sweep_logprob',
      spec: sweepHeatmapSpec(
        done,
        'mean_logprob',
        'Mean log-probability of the sampled tokens per configuration (nats)',
      ),
    });
    blocks.push({
      type: 'plot',
      name: 'sweep_distinct',
      spec: sweepHeatmapSpec(
        done,
        'distinct',
        'Distinct tokens / generated tokens per configuration',
      ),
    });
  }
  blocks.push(...folderPlots(result));
  return blocks;
};

/** One row per configuration, read from the per-step tensors only (not the hidden states). */
export function sweepRows(dir: string, configs: readonly SweepConfig[]): SweepRow[] {
  return configs.map((c) => {
    const row: SweepRow = {
      config: c.dir,
      temperature: c.sampling.temperature,
      top_p: c.sampling.topP,
      top_k: c.sampling.topK,
      repetition_penalty: c.sampling.repetitionPenalty,
      mean_logprob: null,
      mean_entropy: null,
      distinct: null,
    };
    try {
      // only a plain folder name inside the sweep (a crafted '../x' reads nothing outside)
      // Internal invariant, not user input: caught just below: the folder is then shown as a lone trace.
      if (!isConfigDirName(c.dir)) throw new Error('not inside the sweep');
      const file = openSafetensors(join(dir, c.dir, 'trace.safetensors'));
      try {
        row.mean_logprob = meanFinite(readTensorData(file, 'logprob') as Float32Array);
        row.mean_entropy = meanFinite(readTensorData(file, 'entropy') as Float32Array);
        const json = JSON.parse(readFileSync(join(dir, c.dir, 'trace.json'), 'utf8')) as {
          samples: { ids: number[] }[];
        };
        const generated = json.samples.flatMap((s) => s.ids);
        row.distinct = generated.length > 0 ? new Set(generated).size / generated.length : null;
      } finally {
        closeSafetensors(file);
      }
    } catch {
      // not recorded yet (an interrupted sweep): the row stays empty
    }
    return row;
  });
}


function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

function clip(text: string, n: number): string {
  return text.length > n ? text.slice(0, n - 1) + '…' : text;
}
