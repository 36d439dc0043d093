/** Demo step: the information-gravity lens (papers.md §3, proposed) on the demo model. */
import { join } from 'node:path';
import { analyzeGravity } from '../lenses/gravity/analyze.js';
import {
  defaultParaphrasePaths,
  defaultReferencePath,
  readParaphrases,
} from '../io/data.js';
import { writeGravityRun } from '../report/lenses/gravity.js';
import type { DemoStep } from './demo-step.js';
import { readTextFile } from '../io/text.js';
import { pValue } from '../report/format.js';
import { cite } from '../papers.js';

const PROMPTS = [
  'Once upon a time, there was a little girl named',
  'The cat sat on the',
  'The capital of France is',
  'Quantum chromodynamics predicts that',
];

export const gravityDemo: DemoStep = {
  name: 'gravity',
  async run({ model, label, out, record }) {
    const dir = join(out, 'gravity');
    const paths = defaultParaphrasePaths();
    const report = analyzeGravity(model, {
      prompts: PROMPTS,
      reference: {
        texts: readTextFile(defaultReferencePath()),
        source: 'data/corpus/reference.txt (shipped with lmdyn)',
      },
      paraphrases: { sets: paths.flatMap((p) => readParaphrases(p)), sources: paths },
      samples: 2,
      maxTokens: 16,
      seed: 1,
      modelSpec: label,
    });
    await writeGravityRun(dir, report);
    const rows = report.prompts.map(
      (p) =>
        `${JSON.stringify(p.text).padEnd(52)} M_geo ${fmt(p.M_geo)}  M_info ${fmt(p.M_info)}  H ${fmt(p.entropy_t1)}  ` +
        `κ ${fmt(p.kappa_t1)}  depth ${fmt(p.depth)}  log ρ ${fmt(p.density.log_density, 1)}  void ${fmt(p.void_score)}`,
    );
    const s = report.sensitivity;
    const h = s?.headline;
    const dgd = s?.correlations.find(
      (c) => c.level === 'sets' && c.domain === 'all' && c.x === 'dgd',
    );
    const t = report.temperature_sweep.mean;
    record(
      `Information-gravity lens (${cite('gravity')}, all proposed): potential, mass, curvature, voids`,
      `${PROMPTS.length} prompts at T = ${report.temperature}; ${report.reference.states} reference states from ` +
        `${report.reference.texts} shipped texts (d_eff ${report.reference.d_eff}) → ${dir}/gravity.json and figures\n\n` +
        rows.join('\n') +
        `\n\nidentity softmax(−Φ/T) = sampler: ${report.identity_check.passed ? 'pass' : 'FAIL'} ` +
        `(max |Δp| ${report.identity_check.max_abs_diff_exact.toExponential(1)}); ` +
        `KL ≈ ½δᵀGδ: ${report.second_order_check.passed ? 'pass' : 'FAIL'} (relative error ${report.second_order_check.max_rel_error.toExponential(1)})\n` +
        (h && dgd
          ? `sensitivity over ${h.n} paraphrase sets: Spearman(JSD, κ) ${fmt(h.spearman_rho)} (p ${pValue(h.spearman_p)}), ` +
            `Spearman(JSD, δᵀGδ) ${fmt(dgd.spearman_rho)} (p ${pValue(dgd.spearman_p)})\n`
          : '') +
        `mean entropy over T ${t.map((r) => `${r.T}: ${fmt(r.entropy)}`).join(', ')} nats`,
    );
  },
};

function fmt(v: number | null, digits = 3): string {
  return v === null || !Number.isFinite(v) ? '–' : v.toFixed(digits);
}
