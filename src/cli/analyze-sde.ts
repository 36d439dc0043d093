/**
 * `lmdyn analyze sde`: the SDE lens (papers.md §2) on a trace folder or on every configuration
 * of a sweep folder; writes sde.json, sde-model.json and the figures into that folder (or --out).
 * With --model-file the fitted model of an earlier run is reused: nothing is fitted, the traces
 * are projected with its PCA and simulated with its networks.
 */
import { join, resolve } from 'node:path';
import { Option } from 'commander';
import { LmdynError } from '../errors.js';
import { analyzeSde, DEFAULT_DIMS, type SdeInput, type SdeReport } from '../lenses/sde/analyze.js';
import { checkSdeOut, readSdeModel, writeSdeRun } from '../report/lenses/sde.js';
import type { SdeLoss } from '../lenses/sde/model.js';
import type { StateKind } from '../lenses/sde/states.js';
import { readTrace } from '../trace/io.js';
import { readSweepIndex } from '../trace/sweep.js';
import type { LensRegistrar } from './analyze.js';
import { parseInteger, parseNumber } from './args.js';
import { cite } from '../papers.js';
import { addJsonFlag, printResult } from './common.js';

interface SdeFlags {
  json?: boolean;
  trace?: string;
  sweep?: string;
  dims: number;
  seed: number;
  hook?: string;
  state: StateKind;
  time: 'unit' | 'step';
  loss: SdeLoss;
  hidden: number[];
  epochs: number;
  patience: number;
  lr: number;
  batch: number;
  replicas: number;
  kmBins?: number;
  modelFile?: string;
  out?: string;
  force?: boolean;
  png?: boolean;
}

export const registerSdeLens: LensRegistrar = (analyze) => {
  const cmd = analyze
    .command('sde')
    .description(
      `fit dX = μ(X,t)dt + σ(X,t)dW to last-layer trajectories, simulate, test the process (${cite('sde')})`,
    )
    .option('--trace <DIR>', 'a trace folder (lmdyn trace; generations or --text-file)')
    .option('--sweep <DIR>', 'a sweep folder (lmdyn sweep): one fit per configuration, shared PCA')
    .option(
      '--dims <K>',
      'PCA dimensions (2, 4, 8, 16 suggested)',
      parseInteger('--dims', 1, 64),
      DEFAULT_DIMS,
    )
    .option(
      '-s, --seed <S>',
      'seed of the split, the networks, minibatches and simulations',
      parseInteger('--seed', 0, 2 ** 31 - 1),
      1,
    )
    .option(
      '--hook <NAME>',
      'state hook (default ln_final.hook_normalized, else the last hook_resid_post)',
    )
    .addOption(
      new Option(
        '--state <KIND>',
        'last: the hook’s state; running-mean: mean over the text so far',
      )
        .choices(['last', 'running-mean'])
        .default('last'),
    )
    .addOption(
      new Option('--time <CONV>', 'unit: t = j/N_max, Δt = 1/N_max; step: t = j, Δt = 1')
        .choices(['unit', 'step'])
        .default('unit'),
    )
    .addOption(
      new Option(
        '--loss <L>',
        'nll: joint Euler–Maruyama likelihood; two-loss: drift MSE + diffusion moment matching',
      )
        .choices(['nll', 'two-loss'])
        .default('nll'),
    )
    .option('--hidden <LIST>', 'hidden widths of both networks', parseHidden, [128, 128])
    .option('--epochs <N>', 'most epochs', parseInteger('--epochs', 1, 100000), 300)
    .option(
      '--patience <N>',
      'stop after N epochs without a better validation NLL',
      parseInteger('--patience', 1, 100000),
      20,
    )
    .option('--lr <X>', 'Adam learning rate', parseNumber('--lr', 1e-7, 1), 1e-3)
    .option('--batch <N>', 'minibatch size', parseInteger('--batch', 1, 1_000_000), 256)
    .option(
      '--replicas <R>',
      'simulated paths per real start',
      parseInteger('--replicas', 1, 10000),
      16,
    )
    .option(
      '--km-bins <B>',
      'Kramers–Moyal bins per axis (default 30 in 1-D, 12 in 2-D)',
      parseInteger('--km-bins', 2, 1000),
    )
    .option('--model-file <F>', 'simulate with a fitted sde-model.json instead of fitting')
    .option(
      '-o, --out <DIR>',
      'where sde.json and the figures go (default: the trace or sweep folder)',
    )
    .option('--force', 'overwrite an earlier sde.json / sde-model.json there')
    .option('--png', 'also write PNG figures');
  addJsonFlag(cmd, 'the report (as written to sde.json)')
    .action(async (flags: SdeFlags) => {
      if (Boolean(flags.trace) === Boolean(flags.sweep)) {
        throw new LmdynError('bad_argument', 'give exactly one of --trace DIR or --sweep DIR');
      }
      const dir = resolve((flags.trace ?? flags.sweep)!);
      const out = flags.out ? resolve(flags.out) : dir;
      checkSdeOut(out, flags.force ?? false);
      const inputs = flags.trace
        ? [{ label: 'trace', dir, trace: readTrace(dir) }]
        : sweepInputs(dir);
      const model = flags.modelFile ? readSdeModel(resolve(flags.modelFile)) : undefined;
      const log = (line: string) => process.stderr.write(line + '\n');
      const { report, model: fitted } = analyzeSde(
        inputs,
        { kind: flags.trace ? 'trace' : 'sweep', dir },
        {
          dims: flags.dims,
          seed: flags.seed,
          hook: flags.hook,
          state: flags.state,
          time: flags.time,
          fit: {
            loss: flags.loss,
            hidden: flags.hidden,
            maxEpochs: flags.epochs,
            patience: flags.patience,
            lr: flags.lr,
            batchSize: flags.batch,
          },
          replicas: flags.replicas,
          km: flags.kmBins ? { bins: flags.kmBins } : undefined,
          model,
          log,
        },
      );
      await writeSdeRun(out, report, model ? null : fitted, { png: flags.png });
      printResult(flags.json, { out, report }, summary(report, out, model !== undefined));
    });
};

function sweepInputs(dir: string): SdeInput[] {
  const index = readSweepIndex(dir); // refuses an unfinished sweep, saying how to finish it
  return index.configs.map((c) => ({
    label: c.dir,
    dir: join(dir, c.dir),
    trace: readTrace(join(dir, c.dir)),
  }));
}

function parseHidden(value: string): number[] {
  const list = value.split(',').map((s) => s.trim());
  if (
    list.length === 0 ||
    list.some((s) => !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 4096)
  ) {
    throw new LmdynError(
      'bad_argument',
      `--hidden must be widths in [1, 4096] separated by commas, e.g. 128,128, got '${value}'`,
    );
  }
  return list.map(Number);
}

/** A few lines per data set: held-out NLL against the baselines, simulation checks, moments. */
export function summary(report: SdeReport, out: string, fromFile: boolean): string {
  const lines = [
    `sde: ${report.datasets.length} data set(s), ${report.states.hook} → PCA k = ${report.states.k} (${pct(report.states.pca.explained_variance_ratio)} of the variance), ${report.time.definition}${fromFile ? ', model from file' : ''} → ${out}`,
  ];
  for (const d of report.datasets) {
    const v = d.validation;
    const m = d.analyses.moments.summary;
    const fp = d.analyses.fixed_points.found;
    lines.push(
      `${d.label} (T ${d.sampling.temperature}, top-p ${d.sampling.topP}; ${d.paths} paths, split by ${d.split.mode}): ` +
        `test NLL ${f(v.nll.model.test)} (linear OU/VAR(1) ${f(v.nll.linear_test)}, constant ${f(v.nll.constant_test)}, Kramers–Moyal ${f(v.nll.kramers_moyal_test)}) nats/increment; ` +
        `KS mean ${f(v.ks_increments.mean_d)}; MMD² ${f(v.mmd_end_states.mmd2)} (p ${f(v.mmd_end_states.p)})`,
      `  moments real vs simulated: mean error ${f(m.mean_error_relative)} (of the states’ spread), Σ_t tr Σ sim/real ${f(m.trace_ratio_mean)} (last step ${f(m.trace_ratio_end)}); ` +
        `MSD α real ${f(d.analyses.msd.alpha_real)} sim ${f(d.analyses.msd.alpha_simulated)}; fixed points ${fp.length}${fp.length ? ` (${fp.map((p) => p.kind).join(', ')})` : ''}; ` +
        `‖μ‖ ${f(d.analyses.along_trajectories.mean.drift_norm)}, ‖σ‖ ${f(d.analyses.along_trajectories.mean.diffusion_norm)}`,
      `  residual checks (${d.analyses.residuals.scope}): ${d.headline
        .filter((h) => h.name.startsWith('residuals:'))
        .map(
          (h) =>
            `${h.name.slice(11)} ${f(h.value)}${h.definition.includes('α') ? ` (${h.definition.split('; ').pop()})` : ''}`,
        )
        .join('; ')}`,
    );
  }
  lines.push(
    `tags: all proposed — the SDE form is the paper’s (${cite('sde')}) but σ diagonal and the linear drift term are ours; states, estimation, validation, analyses too`,
  );
  return lines.join('\n') + '\n';
}

function pct(ratios: number[]): string {
  return `${(100 * ratios.reduce((a, b) => a + b, 0)).toFixed(1)}%`;
}

function f(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '–' : v.toPrecision(4);
}
