/**
 * Results as code for the trajectory lenses (issue 22): the DMET decoding grid, the SDE fit and
 * the simplex loop study, each recorded afresh into a temporary folder from fixed seeds on
 * stories260K and analysed with the library's defaults. The pages quote these numbers, so a
 * docs number is always one `npm run results` away from its command.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openModel } from '../api.js';
import { analyzeDmet } from '../lenses/dmet/analyze.js';
import { openDmetSource, writeDmetRun } from '../report/lenses/dmet.js';
import { loadDictionary } from '../io/dictionary.js';
import { analyzeSde } from '../lenses/sde/analyze.js';
import { analyzeSweepLoops } from '../lenses/simplex/analyze.js';
import { writeSweepLoops } from '../report/lenses/simplex.js';
import { readSweepGenerations } from '../lenses/simplex/generations.js';
import { readTrace } from '../trace/io.js';
import { readSweepIndex, runSweep, type SweepGrid, type SweepPlan } from '../trace/sweep.js';

/** A section's markdown and the figures it embeds (file name under docs/results/img → SVG text). */
export interface SectionOutput {
  text: string;
  figures: Record<string, string>;
}

/** Four significant digits (the pages' precision). */
function fmt(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : Number(v.toPrecision(4)).toString();
}

const MODEL = 'test/fixtures/models/stories260K/stories260K.bin';
const PROMPT = 'Once upon a time';
const HOOK = 'ln_final.hook_normalized';

/** Runs `body` on a fresh sweep of `grid` in a temporary folder, removed afterwards. */
async function withSweep<T>(
  root: string,
  plan: Omit<SweepPlan, 'model' | 'tokenizer' | 'prompt' | 'hooks'>,
  body: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-results-'));
  try {
    await runSweep(
      { model: resolve(root, MODEL), tokenizer: null, prompt: PROMPT, hooks: [HOOK], ...plan },
      join(dir, 'sweep'),
    );
    return await body(join(dir, 'sweep'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function gridOf(g: Partial<SweepGrid>): SweepGrid {
  return {
    temperature: g.temperature ?? [1],
    topP: g.topP ?? [1],
    topK: g.topK ?? [0],
    repetitionPenalty: g.repetitionPenalty ?? [1],
  };
}

export const DMET_GRID = {
  temperature: [0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 2.0],
  topP: [0.3, 0.6, 0.8, 1.0],
  samples: 10,
  maxTokens: 100,
  seed: 42,
};

/** The DMET grid: T × top-p, trajectory metrics against text quality (docs/lenses/dmet.md). */
export async function dmetSection(root: string): Promise<SectionOutput> {
  const g = DMET_GRID;
  return withSweep(
    root,
    {
      samples: g.samples,
      maxTokens: g.maxTokens,
      seed: g.seed,
      logits: { kind: 'topk', k: 20 },
      grid: gridOf({ temperature: g.temperature, topP: g.topP }),
    },
    async (dir) => {
      const scorer = await openModel(resolve(root, MODEL));
      try {
        const result = analyzeDmet(openDmetSource(dir), {
          scorer,
          scorerSpec: MODEL,
          dictionary: loadDictionary(),
        });
        const { report } = result;
        const out = join(dir, '..', 'dmet');
        await writeDmetRun(out, result, { plots: true });
        const figures: Record<string, string> = {};
        for (const name of ['heatmap_C_mean', 'heatmap_silhouette', 'heatmap_persistence', 'temperature_trend'])
          figures[`dmet-${name}.svg`] = readFileSync(join(out, 'dmet-plots', `${name}.svg`), 'utf8');
        const tr = report.temperature_trend;
        const rows = tr.temperature.map((t, i) => {
          const v = (m: string) => fmt(tr.metrics[m].mean[i]);
          return `| ${t} | ${v('C_mean')} | ${v('C_norm')} | ${v('silhouette')} | ${v('persistence')} | ${v('log_ppl')} | ${v('diversity')} |`;
        });
        const rho = (m: string) => fmt(tr.metrics[m].spearman_rho);
        const t = report.tests;
        const tested = t.per_config_pearson.tests.filter((x) => x.p !== null).length;
        const b = report.balanced_region;
        const sequences = report.configurations.reduce((a, c) => a + c.sequences, 0);
        const text = [
          `Model \`${MODEL}\`, prompt “${PROMPT}”, ${report.configurations.length} configurations (T ${g.temperature.join(', ')} × top-p ${g.topP.join(', ')}), ${g.samples} samples of ${g.maxTokens} tokens each (seed ${g.seed}; ${sequences} sequences), states \`${report.config.hook}\`, ${report.config.space} z-score + PCA(2), k-means k = ${report.config.clusters} (seed ${report.seed.kmeans}). The generating model scores its own text (perplexity tagged proposed).`,
          '',
          'Means over top-p per temperature (C = mean step of the 2-D trajectory, lower = more continuous; Q = silhouette; P = longest H1 bar):',
          '',
          '| T | C_mean | C_norm | Q | P | log ppl | distinct-2 |',
          '| --- | --- | --- | --- | --- | --- | --- |',
          ...rows,
          '',
          `Spearman ρ with temperature (over the ${tr.temperature.length} means): C_mean ${rho('C_mean')}, silhouette ${rho('silhouette')}, persistence ${rho('persistence')}, log ppl ${rho('log_ppl')}, distinct-2 ${rho('diversity')}.`,
          `Per-configuration Pearson tests of metric against quality: ${t.per_config_pearson.significant_q05} of ${tested} at Benjamini–Hochberg q < 0.05.`,
          `Balanced region (C_mean ≤ ${fmt(b.bounds.max_C_mean)}, distinct-2 ≥ ${fmt(b.bounds.min_diversity)}): ${b.configs.length ? b.configs.map((c) => `T ${c.temperature}/p ${c.top_p}`).join(', ') : 'none'}.`,
          '',
          `Shows: on this model and prompt the step length C ${(tr.metrics.C_mean.spearman_rho ?? 0) > 0 ? 'grows' : 'does not grow'} with temperature (Spearman ρ ${rho('C_mean')}; the paper reports less continuous trajectories at higher T) and log perplexity ${(tr.metrics.log_ppl.spearman_rho ?? 0) > 0 ? 'rises' : 'does not rise'} with it (ρ ${rho('log_ppl')}); the silhouette is at most ${fmt(Math.max(...tr.metrics.silhouette.mean.filter((x): x is number => x !== null)))}, against the paper’s published 0.76.`,
          'Does not show: anything across prompts or models (one prompt, one 260K-parameter model), nor the paper’s sentence-T5 coherence (not available offline; ours is proposed).',
          '',
          'Means per grid cell (★ = the balanced region), and the trend with temperature:',
          '',
          ...Object.keys(figures).map((f) => `![${f}](img/${f})`),
        ].join('\n');
        return { text, figures };
      } finally {
        scorer.dispose();
      }
    },
  );
}

export const SDE_RUN = { samples: 40, maxTokens: 64, temperature: 0.8, seed: 7, dims: 8 };

/** The SDE fit on one temperature's paths, against its baselines (docs/lenses/sde.md). */
export async function sdeSection(root: string): Promise<SectionOutput> {
  const r = SDE_RUN;
  return withSweep(
    root,
    {
      samples: r.samples,
      maxTokens: r.maxTokens,
      seed: r.seed,
      logits: { kind: 'none' },
      grid: gridOf({ temperature: [r.temperature] }),
    },
    async (dir) => {
      const cdir = join(dir, readSweepIndex(dir).configs[0].dir);
      const { report } = analyzeSde(
        [{ label: 'trace', dir: cdir, trace: readTrace(cdir) }],
        { kind: 'trace', dir: cdir },
        { dims: r.dims, seed: 1 },
      );
      const d = report.datasets[0];
      const v = d.validation;
      const m = d.analyses.moments.summary;
      const res = d.headline.filter((h) => h.name.startsWith('residuals:'));
      const text = [
        `Model \`${MODEL}\`, prompt “${PROMPT}”, T ${r.temperature}, ${r.samples} paths of ${r.maxTokens} tokens (seed ${r.seed}), states \`${report.states.hook}\` → PCA k = ${report.states.k} (${fmt(100 * report.states.pca.explained_variance_ratio.reduce((a, b) => a + b, 0))} % of the variance); ${report.time.definition}; fit seed ${report.seed}, split by ${d.split.mode} (${d.split.train_paths}/${d.split.validation_paths}/${d.split.test_paths} paths).`,
        '',
        '| held-out NLL (nats per increment) | value |',
        '| --- | --- |',
        `| neural SDE (drift + diagonal diffusion MLPs) | ${fmt(v.nll.model.test)} |`,
        `| linear OU / VAR(1) Gaussian baseline | ${fmt(v.nll.linear_test)} |`,
        `| binned Kramers–Moyal | ${fmt(v.nll.kramers_moyal_test)} |`,
        `| constant drift and diffusion | ${fmt(v.nll.constant_test)} |`,
        '',
        `Simulated against real: mean KS distance of increments ${fmt(v.ks_increments.mean_d)}; MMD² of end states ${fmt(v.mmd_end_states.mmd2)} (permutation p ${fmt(v.mmd_end_states.p)}); mean error ${fmt(m.mean_error_relative)} of the states’ spread; Σ_t tr Σ simulated/real ${fmt(m.trace_ratio_mean)} (last step ${fmt(m.trace_ratio_end)}); fitted in ${d.fit.epochs} epochs (best ${d.fit.best_epoch}).`,
        `Residual checks on held-out paths: ${res.map((h) => `${h.name.slice(11)} ${fmt(h.value)}`).join('; ')}.`,
        '',
        `Shows: ${v.nll.model.test !== null && v.nll.linear_test !== null && v.nll.model.test < v.nll.linear_test ? 'the fitted SDE beats the linear OU / VAR(1) baseline on held-out paths (the honest reference), and the constant and Kramers–Moyal baselines by more' : 'the fitted SDE does not beat the linear OU / VAR(1) baseline on held-out paths'}.`,
        'Does not show: that the Gaussian increments of dX = μ dt + σ dW describe these paths well — the residual checks say whether the standardised residuals look Gaussian; one temperature, one prompt, one small model. Every SDE metric is proposed (the SDE form is the paper’s; diagonal σ and the linear baseline are ours).',
      ].join('\n');
      return { text, figures: {} };
    },
  );
}

export const LOOP_STUDY = {
  temperature: [0, 0.3, 0.7, 1],
  repetitionPenalty: [0.7, 0.8, 0.9, 1, 1.1, 1.3],
  samples: 32,
  maxTokens: 400,
  seed: 42,
};

/** Loops under history-dependent penalties, with their escape under logit noise (docs/lenses/simplex.md). */
export async function simplexSection(root: string): Promise<SectionOutput> {
  const g = LOOP_STUDY;
  return withSweep(
    root,
    {
      samples: g.samples,
      maxTokens: g.maxTokens,
      seed: g.seed,
      logits: { kind: 'none' },
      grid: gridOf({ temperature: g.temperature, repetitionPenalty: g.repetitionPenalty }),
    },
    async (dir) => {
      const set = readSweepGenerations(dir);
      const model = await openModel(resolve(root, MODEL));
      try {
        const report = analyzeSweepLoops(set, model, { seed: 1, modelSpec: MODEL });
        const { loops } = report;
        await writeSweepLoops(dir, report);
        const figures: Record<string, string> = {};
        for (const name of ['loop_rate', 'escape'])
          figures[`simplex-${name}.svg`] = readFileSync(join(dir, `simplex_${name}.svg`), 'utf8');
        const sigmas = loops.options.sigmas;
        const rows = loops.configs
          .filter((c) => c.summary.loops > 0)
          .map((c) => {
            const s = c.summary;
            const esc = c.escape.by_sigma.map((b) =>
              b.probability === null ? '–' : `${fmt(b.probability)} (${b.escaped}/${b.trials})`,
            );
            return `| ${c.label} | ${s.loops}/${s.distinct_sequences}${s.distinct_sequences < s.samples ? ` (of ${s.samples})` : ''} | ${fmt(s.loop_rate)} [${fmt(s.loop_rate_ci95[0])}, ${fmt(s.loop_rate_ci95[1])}] | ${fmt(s.mean_period)} | ${s.time_to_loop === null ? '–' : fmt(s.time_to_loop.median)} | ${esc.join(' | ')} |`;
          });
        const none = loops.configs.filter((c) => c.summary.loops === 0).map((c) => c.label);
        const amplifying = loops.configs.filter((c) => c.sampling.repetitionPenalty < 1);
        const looping = (cs: typeof loops.configs) => cs.filter((c) => c.summary.loops > 0).length;
        const below = looping(amplifying);
        const above = looping(loops.configs.filter((c) => c.sampling.repetitionPenalty >= 1));
        const text = [
          `Model \`${MODEL}\`, prompt “${PROMPT}”, T ${g.temperature.join(', ')} × repetition penalty θ ${g.repetitionPenalty.join(', ')}, ${g.samples} samples of ${g.maxTokens} tokens (seed ${g.seed}); a loop is a cycle repeated at least ${loops.options.loop.minRepeats} times over at least ${loops.options.loop.minSpan} tokens at the end of the generation; escape = leaving the cycle within the horizon when Gaussian noise σ is added to the logits (${loops.options.trials} trials per loop, seed ${loops.options.seed}). Identical sequences count once (greedy decoding gives one distinct sequence per configuration). All loop metrics are proposed.`,
          '',
          `| config | loops / distinct sequences | loop rate [Wilson 95 %] | mean period | median time to loop | ${sigmas.map((s) => `escape σ=${s}`).join(' | ')} |`,
          `| --- | --- | --- | --- | --- | ${sigmas.map(() => '---').join(' | ')} |`,
          ...rows,
          '',
          `No loop: ${none.length ? none.join(', ') : 'none'}.`,
          '',
          `Shows: loops in ${below} of the ${amplifying.length} configurations with an amplifying penalty (θ < 1) and in ${above} of the ${amplifying.length === loops.configs.length ? 0 : loops.configs.length - amplifying.length} with θ ≥ 1 (no amplification, the baseline); the escape columns say how brittle each loop is to logit noise (σ = 0: the sampler’s own noise).`,
          'Does not show: loop rates of larger models or other prompts; the intervals are per configuration and are not corrected for the number of configurations.',
          '',
          ...Object.keys(figures).map((f) => `![${f}](img/${f})`),
        ].join('\n');
        return { text, figures };
      } finally {
        model.dispose();
      }
    },
  );
}
