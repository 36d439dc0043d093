/** Demo step: the coupling lens (papers.md §5) on the demo model and its random twin. */
import { join } from 'node:path';
import { analyzeCoupling } from '../lenses/coupling/analyze.js';
import { writeCouplingRun } from '../report/lenses/coupling.js';
import type { DemoStep } from './demo-step.js';
import { cite } from '../papers.js';

const PROMPTS = [
  'Once upon a time, there was a little girl named Lily.',
  'The cat sat on the mat and looked at the bird.',
  'Tom and his mom went to the park to play.',
  'One day, a big red ball fell into the water.',
];

export const couplingDemo: DemoStep = {
  name: 'coupling',
  async run({ model, label, out, record }) {
    const dir = join(out, 'coupling');
    const report = analyzeCoupling(model, { prompts: PROMPTS, randomTwin: true, seed: 1, modelSpec: label });
    await writeCouplingRun(dir, report);
    const rows = [report.trained, ...(report.random_twin ? [report.random_twin] : [])].map((w) => {
      const k = w.model_coupling.by_k[0];
      return (
        `${w.weights.padEnd(12)} coupling m_K (K=${k.k}) ${fmt(k.value)}  LSS ${fmt(w.lss.mean)}  ` +
        `growth rate ${fmt(w.growth.rate)} (R² ${fmt(w.growth.r2_mean)})  linearisation fidelity ${fmt(w.fidelity.mean)}`
      );
    });
    record(
      `Coupling lens (${cite('coupling')}): residual Jacobians, trained vs random twin`,
      `${PROMPTS.length} prompts, last position, ${report.blocks.length} blocks → ${dir}/coupling.json and figures\n\n` +
        rows.join('\n') +
        `\n\ntags (docs/papers.md): model coupling ${report.trained.model_coupling.tag}, LSS ${report.trained.lss.tag}, ` +
        `growth ${report.trained.growth.tag}, fidelity ${report.trained.fidelity.tag}`,
    );
  },
};

function fmt(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '–' : v.toFixed(3);
}
