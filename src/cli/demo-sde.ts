/**
 * Demo step: the SDE lens (papers.md §2) on the demo's decoding sweep — one small drift and
 * diffusion fit per configuration in a shared 4-D PCA, simulated and compared with the real
 * ensemble (moments) across temperatures. Small networks and few epochs keep it to seconds.
 */
import { join } from 'node:path';
import { analyzeSde, type SdeInput } from '../lenses/sde/analyze.js';
import { writeSdeRun } from '../report/lenses/sde.js';
import { readTrace } from '../trace/io.js';
import { readSweepIndex } from '../trace/sweep.js';
import type { DemoStep } from './demo-step.js';
import { cite } from '../papers.js';

export const sdeDemo: DemoStep = {
  name: 'sde',
  async run({ sweepDir, out, record }) {
    const dir = join(out, 'sde');
    const index = readSweepIndex(sweepDir);
    const inputs: SdeInput[] = index.configs.map((c) => ({
      label: c.dir,
      dir: join(sweepDir, c.dir),
      trace: readTrace(join(sweepDir, c.dir)),
    }));
    const start = performance.now();
    const { report, model } = analyzeSde(
      inputs,
      { kind: 'sweep', dir: sweepDir },
      {
        dims: 4,
        seed: 1,
        replicas: 8,
        fit: { hidden: [32, 32], maxEpochs: 60, patience: 10, lr: 3e-3 },
      },
    );
    await writeSdeRun(dir, report, model);
    const rows = report.datasets.map((d) => {
      const m = d.analyses.moments.summary;
      const a = d.analyses.along_trajectories.mean;
      return (
        `T ${String(d.sampling.temperature).padEnd(4)} top-p ${String(d.sampling.topP).padEnd(4)} ` +
        `test NLL ${fmt(d.validation.nll.model.test)} (constant ${fmt(d.validation.nll.constant_test)})  ` +
        `‖μ‖ ${fmt(a.drift_norm)} ‖σ‖ ${fmt(a.diffusion_norm)} SNR ${fmt(a.snr)}  ` +
        `moments sim vs real: mean error ${fmt(m.mean_error_relative)}, tr Σ ratio ${fmt(m.trace_ratio_mean)}`
      );
    });
    record(
      `SDE lens (${cite('sde')}): drift and diffusion fitted per decoding configuration, simulated against the real ensemble`,
      `${inputs.length} configurations, ${report.states.hook} → PCA k = ${report.states.k}, ${report.time.definition}; ` +
        `fitted and simulated in ${((performance.now() - start) / 1000).toFixed(1)} s → ${dir}/sde.json, sde-model.json and figures\n\n` +
        rows.join('\n') +
        `\n\ntags (docs/papers.md): SDE form ${report.tags.model_form.tag}; states, estimation, validation, analyses ${report.tags.analyses.tag}` +
        ` (demo settings: hidden 32×32, ≤ 60 epochs; 4 samples per configuration, so increments are split at random)`,
    );
  },
};

function fmt(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '–' : v.toPrecision(3);
}
