/** Demo step: the DMET lens (papers.md §1) on the demo's decoding sweep, the demo model as scorer. */
import { join } from 'node:path';
import { loadDictionary } from '../io/dictionary.js';
import { analyzeDmet } from '../lenses/dmet/analyze.js';
import { openDmetSource, writeDmetRun } from '../report/lenses/dmet.js';
import type { DemoStep } from './demo-step.js';
import { cite } from '../papers.js';

export const dmetDemo: DemoStep = {
  name: 'dmet',
  async run({ model, label, out, sweepDir, record }) {
    const dir = join(out, 'dmet');
    const result = analyzeDmet(openDmetSource(sweepDir), {
      scorer: model,
      scorerSpec: label,
      dictionary: loadDictionary(),
    });
    await writeDmetRun(dir, result);
    const report = result.report;
    const head = `${'T'.padStart(4)} ${'top-p'.padStart(5)} ${'C_mean'.padStart(7)} ${'C_norm'.padStart(7)} ${'Q'.padStart(6)} ${'P'.padStart(6)} ${'log ppl'.padStart(7)} ${'div-2'.padStart(6)}`;
    const rows = report.configurations.map((c) => {
      const v = (m: string, w: number) => fmt(c.mean[m]).padStart(w);
      return `${String(c.temperature).padStart(4)} ${String(c.top_p).padStart(5)} ${v('C_mean', 7)} ${v('C_norm', 7)} ${v('silhouette', 6)} ${v('persistence', 6)} ${v('log_ppl', 7)} ${v('diversity', 6)}`;
    });
    const t = report.tests;
    record(
      `DMET lens (${cite('dmet')}): trajectory continuity, clustering and persistence vs text quality`,
      `${report.configurations.reduce((a, c) => a + c.sequences, 0)} sequences of ${sweepDir}, states ${report.config.hook} ` +
        `(post-final-norm), per-sequence z-score + PCA(2) → ${dir}/dmet.json, dmet.parquet and figures\n\n` +
        [head, ...rows].join('\n') +
        `\n\nC = state continuity (mean step ‖z_{t+1} − z_t‖; lower = smoother), Q = silhouette of k-means (k = 3, seed ${report.seed.kmeans}), ` +
        `P = longest H1 bar of the Rips filtration; log ppl under the demo model.\n` +
        `per-configuration Pearson: ${t.per_config_pearson.significant_q05} of ${t.per_config_pearson.tests.filter((x) => x.p !== null).length} tests with BH q < 0.05\n` +
        `tags (docs/papers.md): C, Q, P, log ppl, spelling, diversity, grammar ${report.metrics.C_mean.tag}; ` +
        `coherence, predictability ${report.metrics.coherence.tag}`,
    );
  },
};

function fmt(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(3);
}
