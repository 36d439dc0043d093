/**
 * `lmdyn analyze dmet`: the DMET lens (papers.md §1) on a `lmdyn sweep` folder or one trace
 * folder; dmet.json, dmet.parquet and the figures go into that folder (or --out).
 */
import { resolve } from 'node:path';
import { openModel } from '../api.js';
import type { Model } from '../model/model.js';
import { LmdynError } from '../errors.js';
import { loadDictionary } from '../io/dictionary.js';
import {
  analyzeDmet,
  checkDmetOptions,
  DEFAULT_HOOK,
  type DmetOptions,
  type DmetReport,
} from '../lenses/dmet/analyze.js';
import { minimumPoints, type PcaSigns, type Space } from '../lenses/dmet/dynamics.js';
import { openDmetSource, writeDmetRun } from '../report/lenses/dmet.js';
import { DEFAULT_BALANCED } from '../lenses/dmet/summary.js';
import type { LensRegistrar } from './analyze.js';
import { parseInteger, parseNumber } from './args.js';
import { cite } from '../papers.js';
import { addJsonFlag, printResult } from './common.js';

interface DmetFlags {
  json?: boolean;
  sweep?: string;
  trace?: string;
  out?: string;
  hook: string;
  keepFirstStep?: boolean;
  includeLastToken?: boolean;
  space: Space;
  bugCompatible?: boolean;
  convention: 'lmdyn' | 'paper-code';
  pcaSigns: PcaSigns;
  clusters: number;
  seed: number;
  kmeansInit: number;
  ripsThreshold?: number;
  predictability: boolean;
  scorer?: string;
  scorerTokenizer?: string;
  textModel: boolean;
  balancedContinuity: number | 'median';
  balancedDiversity: number | 'median';
  plots: boolean;
  png?: boolean;
}

export const registerDmetLens: LensRegistrar = (analyze) => {
  const cmd = analyze
    .command('dmet')
    .description(
      `trajectory continuity, clustering, persistence vs text quality over a decoding grid (${cite('dmet')})`,
    )
    .option('--sweep <DIR>', 'a folder made by lmdyn sweep')
    .option('--trace <DIR>', 'one trace folder made by lmdyn trace (sampled)')
    .option('-o, --out <DIR>', 'where dmet.json etc. go (default: the --sweep / --trace folder)')
    .option(
      '--hook <NAME>',
      'last-layer state to use (post-final-norm by default, as HF hidden_states[-1])',
      DEFAULT_HOOK,
    )
    .option(
      '--keep-first-step',
      'keep generation step 0 (the last prompt position), which the code drops',
    )
    .option(
      '--include-last-token',
      'append the last generated token’s state (HF never computes it)',
    )
    .option(
      '--space <S>',
      'per-sequence (PCA per sequence, the code) | pooled (one PCA over all) | full (no PCA)',
      parseSpace,
      'per-sequence',
    )
    .option(
      '--bug-compatible',
      'continuity as the released code computes it (mean |PC2 − PC1|; C_std NaN)',
    )
    .option(
      '--convention <C>',
      'lmdyn (default) | paper-code: the released code’s continuity on scikit-learn-signed per-sequence PCA',
      parseConvention,
      'lmdyn',
    )
    .option(
      '--pca-signs <S>',
      'sign rule of the per-sequence PCA: sklearn>=1.5 (largest loading positive) | sklearn<1.5 (largest score positive)',
      parsePcaSigns,
      'sklearn>=1.5',
    )
    .option('--clusters <K>', 'k of k-means', parseInteger('--clusters', 2, 1000), 3)
    .option(
      '-s, --seed <S>',
      'k-means++ seed (the code: random_state = 42)',
      parseInteger('--seed', 0, 2 ** 32 - 1),
      42,
    )
    .option(
      '--kmeans-init <N>',
      'k-means++ starts, lowest inertia wins (scikit-learn ≥ 1.4: 1; older: 10)',
      parseInteger('--kmeans-init', 1, 1000),
      1,
    )
    .option(
      '--rips-threshold <X>',
      'largest Rips diameter (default: the enclosing radius, as ripser)',
      parseNumber('--rips-threshold', 0, Number.MAX_VALUE),
    )
    .option('--no-predictability', 'skip the AR(1) predictability feature ([proposed])')
    .option(
      '--scorer <M>',
      'model scoring perplexity and coherence (default: the model that generated)',
    )
    .option('--scorer-tokenizer <T>', 'tokenizer for --scorer')
    .option('--no-text-model', 'skip perplexity and coherence (no scorer model is loaded)')
    .option(
      '--balanced-continuity <X>',
      'balanced region: largest configuration-mean C_mean, or median',
      parseBound('--balanced-continuity', Number.MAX_VALUE),
      DEFAULT_BALANCED.maxContinuity,
    )
    .option(
      '--balanced-diversity <Y>',
      'balanced region: smallest configuration-mean distinct-2, or median',
      parseBound('--balanced-diversity', 1),
      DEFAULT_BALANCED.minDiversity,
    )
    .option('--no-plots', 'write no figures')
    .option('--png', 'also write PNG figures');
  addJsonFlag(cmd, 'the report (as written to dmet.json)')
    .action(async (flags: DmetFlags) => {
      if (!!flags.sweep === !!flags.trace)
        throw new LmdynError('bad_argument', 'give --sweep DIR or --trace DIR (one of them)');
      if (flags.scorerTokenizer && !flags.scorer)
        throw new LmdynError('bad_argument', '--scorer-tokenizer needs --scorer');
      if (flags.scorer && !flags.textModel)
        throw new LmdynError('bad_argument', 'give --scorer or --no-text-model, not both');
      const input = resolve((flags.sweep ?? flags.trace)!);
      const source = openDmetSource(input);
      if (flags.sweep && source.kind !== 'sweep')
        throw new LmdynError('bad_argument', `${input} is a trace folder; use --trace`);
      if (flags.trace && source.kind !== 'trace')
        throw new LmdynError('bad_argument', `${input} is a sweep folder; use --sweep`);
      const log = (line: string) => process.stderr.write(line + '\n');
      const options: Omit<DmetOptions, 'scorer' | 'dictionary'> = {
        hook: flags.hook,
        keepFirstStep: flags.keepFirstStep ?? false,
        includeLastToken: flags.includeLastToken ?? false,
        space: flags.space,
        bugCompatible: flags.bugCompatible ?? false,
        convention: flags.convention,
        pcaSigns: flags.pcaSigns,
        clusters: flags.clusters,
        kmeansSeed: flags.seed,
        kmeansInit: flags.kmeansInit,
        ripsThreshold: flags.ripsThreshold,
        predictability: flags.predictability,
        balanced: {
          maxContinuity: flags.balancedContinuity,
          minDiversity: flags.balancedDiversity,
        },
        log,
      };
      checkDmetOptions(source, options);
      // a trajectory has at most max-tokens (+1) points; k-means with k clusters needs k + 1
      const most = source.maxTokens + 1;
      if (minimumPoints(flags.clusters) > most) {
        throw new LmdynError(
          'bad_argument',
          `--clusters ${flags.clusters} needs trajectories of ${minimumPoints(flags.clusters)} points; those in ${input} have at most ${most} (recorded with -n ${source.maxTokens}); lower --clusters`,
        );
      }
      let scorer: Model | null = null;
      let scorerSpec: string | undefined;
      if (flags.textModel) {
        scorerSpec = flags.scorer ?? source.recordedWith.model;
        const tokenizer = flags.scorer
          ? flags.scorerTokenizer
          : (source.recordedWith.tokenizer ?? undefined);
        log(`dmet: scorer ${scorerSpec}${flags.scorer ? '' : ' (the model that generated)'}`);
        scorer = await openModel(scorerSpec, { tokenizer });
      }
      const result = analyzeDmet(source, {
        ...options,
        scorer,
        scorerSpec,
        dictionary: loadDictionary(),
      });
      const skipped = result.report.skipped.length;
      if (skipped > 0 && skipped >= result.rows.length) {
        throw new LmdynError(
          'bad_argument',
          `every sequence was skipped (${result.report.skipped[0].reason}); lower --clusters or record longer generations`,
        );
      }
      const out = resolve(flags.out ?? input);
      await writeDmetRun(out, result, { png: flags.png, plots: flags.plots });
      printResult(flags.json, { out, report: result.report }, summaryLines(result.report, out).join('\n'));
    });
};

function parseBound(flag: string, max: number) {
  const number = parseNumber(flag, 0, max);
  return (value: string): number | 'median' => (value === 'median' ? 'median' : number(value));
}

function parseSpace(value: string): Space {
  if (value === 'per-sequence' || value === 'pooled' || value === 'full') return value;
  throw new LmdynError(
    'bad_argument',
    `--space must be per-sequence, pooled or full, got '${value}'`,
  );
}

/** The terminal summary: the trend with temperature and the test counts. */
export function summaryLines(report: DmetReport, out: string): string[] {
  const tr = report.temperature_trend;
  const rows = report.configurations.reduce((a, c) => a + c.sequences, 0);
  const lines = [
    `dmet: ${report.source.configurations} configuration(s), ${rows} sequences, hook ${report.config.hook}, space ${report.config.space}, convention ${report.config.convention}${report.config.bug_compatible ? ' (bug-compatible continuity)' : ''} → ${out}/dmet.json`,
    `${'T'.padStart(5)} ${'C_mean'.padStart(8)} ${'C_norm'.padStart(7)} ${'Q'.padStart(7)} ${'P'.padStart(7)} ${'log_ppl'.padStart(8)} ${'div-2'.padStart(6)}`,
  ];
  tr.temperature.forEach((t, i) => {
    const v = (m: string, w: number) => fmt(tr.metrics[m].mean[i]).padStart(w);
    lines.push(
      `${String(t).padStart(5)} ${v('C_mean', 8)} ${v('C_norm', 7)} ${v('silhouette', 7)} ${v('persistence', 7)} ${v('log_ppl', 8)} ${v('diversity', 6)}`,
    );
  });
  if (tr.temperature.length > 1) {
    const rho = (m: string) => `${m} ρ=${fmt(tr.metrics[m].spearman_rho)}`;
    lines.push(
      `Spearman with temperature: ${['C_mean', 'silhouette', 'persistence', 'log_ppl', 'diversity'].map(rho).join(', ')}`,
    );
  }
  const t = report.tests;
  lines.push(
    `per-configuration Pearson: ${t.per_config_pearson.significant_q05} of ${t.per_config_pearson.tests.filter((x) => x.p !== null).length} tests with BH q < 0.05`,
  );
  const b = report.balanced_region;
  lines.push(
    `balanced region (C_mean ≤ ${fmt(b.bounds.max_C_mean)}, distinct-2 ≥ ${fmt(b.bounds.min_diversity)}): ${b.configs.length ? b.configs.map((c) => `T ${c.temperature}/p ${c.top_p}`).join(', ') : 'none'}`,
  );
  if (report.skipped.length)
    lines.push(`skipped ${report.skipped.length} short sequence(s) (see dmet.json skipped)`);
  return lines;
}

function fmt(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '–' : v.toFixed(3);
}

function parseConvention(value: string): 'lmdyn' | 'paper-code' {
  if (value === 'lmdyn' || value === 'paper-code') return value;
  throw new LmdynError('bad_argument', `--convention must be lmdyn or paper-code, got '${value}'`);
}

function parsePcaSigns(value: string): PcaSigns {
  if (value === 'sklearn>=1.5' || value === 'sklearn<1.5') return value;
  throw new LmdynError(
    'bad_argument',
    `--pca-signs must be sklearn>=1.5 or sklearn<1.5, got '${value}'`,
  );
}
