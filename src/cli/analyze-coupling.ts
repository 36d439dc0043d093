/**
 * `lmdyn analyze coupling`: the coupling lens (papers.md §5) on one model (with its random twin
 * on request) or across several models, written into one output folder.
 */
import { resolve } from 'node:path';
import { openModel as openSpec } from '../api.js';
import { LmdynError } from '../errors.js';
import {
  analyzeCoupling,
  DEFAULT_K,
  type CouplingConvention,
  type CouplingReport,
  type PositionSpec,
} from '../lenses/coupling/analyze.js';
import { analyzeCouplingAcrossModels } from '../lenses/coupling/across.js';
import { writeAcrossModels } from '../report/lenses/coupling.js';
import { collectJacobians, writeCouplingRun } from '../report/lenses/coupling.js';
import {
  analyzeCouplingOverTraining,
  type TrainingDynamicsReport,
} from '../lenses/coupling/training.js';
import { writeTrainingDynamics } from '../report/lenses/coupling.js';
import { couplingAcrossModelsOnQueue, couplingOverTrainingOnQueue } from '../queue/coupling.js';
import { startKernelThreads } from '../tensor/wasm/threads.js';
import { checkOutDir } from '../trace/io.js';
import type { LensRegistrar } from './analyze.js';
import { parseInteger } from './args.js';
import { addJsonFlag, openModel, printResult } from './common.js';
import { attemptsOption, progressPrinter } from './sweep.js';
import { readScores, readTextFile } from '../io/text.js';
import { readTrainingRun } from '../io/training-run.js';
import { cite } from '../papers.js';

interface CouplingFlags {
  json?: boolean;
  model?: string;
  models?: string[];
  checkpoints?: string;
  tokenizer?: string;
  prompt?: string;
  prompts?: string;
  positions: PositionSpec;
  k: number[];
  randomTwin?: boolean;
  includeFinalNorm?: boolean;
  convention: string;
  interactions: boolean;
  saveJacobians?: boolean;
  seed: number;
  scores?: string;
  png?: boolean;
  out: string;
  force?: boolean;
  queue?: string;
  attempts: number;
}

export const registerCouplingLens: LensRegistrar = (analyze) => {
  const cmd = analyze
    .command('coupling')
    .description(`residual Jacobians, block coupling, line-shape score and growth (${cite('coupling')})`)
    .option('-m, --model <M>', 'model file, folder or hf:owner/name')
    .option('--models <LIST>', 'several models, comma-separated: one row per model', parseModelList)
    .option(
      '--checkpoints <RUN>',
      'a lmdyn train run folder: one row per kept checkpoint (step 0 = initial weights)',
    )
    .option('-z, --tokenizer <T>', 'tokenizer overriding the model’s own (with --model)')
    .option('-i, --prompt <P>', 'one prompt')
    .option('--prompts <FILE>', 'prompts, one per line (or JSONL with a "text" field)')
    .option(
      '--positions <P>',
      'query positions: last | all | i,j,… (0-based)',
      parsePositions,
      'last',
    )
    .option('--k <LIST>', 'K values of m_K, comma-separated (clipped to d)', parseKList, [
      ...DEFAULT_K,
    ])
    .option('--random-twin', 'also measure the same config with training-time random weights')
    .option('--include-final-norm', 'add ∂ln_final(x^L_T)/∂x^L_T as a last block')
    .option(
      '--convention <C>',
      "lmdyn (default) or paper-code: the authors' code, whose last block includes the final norm and whose fidelity is align.py's",
      'lmdyn',
    )
    .option('--no-interactions', 'skip the context → last-token family (§5.4 c)')
    .option(
      '--save-jacobians',
      'write jacobians.safetensors (blocks.{l}.jacobian, F32 [positions, d, d])',
    )
    .option(
      '-s, --seed <S>',
      'seed of the random twin and the randomized SVD',
      parseInteger('--seed', 0, 2 ** 32 - 1),
      1,
    )
    .option('--scores <CSV>', 'with --models: a model,score table to correlate with')
    .option('--png', 'also write PNG figures')
    .requiredOption('-o, --out <DIR>', 'output folder')
    .option('--force', 'overwrite a non-empty output folder')
    .option(
      '--queue <URL>',
      'with --models or --checkpoints: one job per model on `lmdyn worker`s through Redis (redis://HOST[:PORT][/DB]); --out must be a folder every worker sees',
    )
    .option(...attemptsOption);
  addJsonFlag(cmd, 'the report (as written to coupling.json)')
    .action(async (flags: CouplingFlags) => {
      const out = resolve(flags.out);
      const prompts = promptsFrom(flags);
      const sources = [flags.model, flags.models, flags.checkpoints].filter((v) => v !== undefined);
      if (sources.length !== 1)
        throw new LmdynError('bad_argument', 'give one of --model, --models or --checkpoints');
      if (!flags.model && (flags.saveJacobians || flags.randomTwin)) {
        throw new LmdynError(
          'bad_argument',
          '--save-jacobians and --random-twin apply to a single --model',
        );
      }
      if (flags.scores && !flags.models)
        throw new LmdynError('bad_argument', '--scores needs --models');
      if (flags.queue && flags.model)
        throw new LmdynError('bad_argument', '--queue applies to --models and --checkpoints');
      // a queued study checks its folder itself: it may resume one it started
      if (!flags.queue) checkOutDir(out, flags.force ?? false);
      const scores = flags.scores ? readScores(flags.scores) : undefined;
      const log = (line: string) => process.stderr.write(line + '\n');
      const common = {
        prompts,
        positions: flags.positions,
        k: flags.k,
        includeFinalNorm: flags.includeFinalNorm ?? false,
        convention: parseConvention(flags.convention),
        interactions: flags.interactions,
        seed: flags.seed,
        log,
      };
      if (flags.queue) {
        const queued = {
          png: flags.png,
          force: flags.force,
          attempts: flags.attempts,
          log,
          onProgress: progressPrinter(
            process.stderr,
            'coupling',
            flags.models ? 'models' : 'checkpoints',
          ),
        };
        if (flags.models) {
          const result = await couplingAcrossModelsOnQueue(
            flags.models,
            { ...common, scores },
            out,
            flags.queue,
            queued,
          );
          printResult(flags.json, { out, report: result.report }, acrossText(result.report.rows, result.report.headline_k, out));
        } else {
          const result = await couplingOverTrainingOnQueue(
            flags.checkpoints as string,
            common,
            out,
            flags.queue,
            queued,
          );
          printResult(flags.json, { out, report: result.report }, trainingText(result.report, out));
        }
        return;
      }
      await startKernelThreads();
      if (flags.models) {
        const result = await analyzeCouplingAcrossModels(flags.models, (spec) => openSpec(spec), {
          ...common,
          scores,
        });
        await writeAcrossModels(out, result, { png: flags.png });
        printResult(flags.json, { out, report: result.report }, acrossText(result.report.rows, result.report.headline_k, out));
        return;
      }
      if (flags.checkpoints) {
        const result = await analyzeCouplingOverTraining(
          await readTrainingRun(flags.checkpoints),
          (path) => openSpec(path),
          common,
        );
        await writeTrainingDynamics(out, result, { png: flags.png });
        printResult(flags.json, { out, report: result.report }, trainingText(result.report, out));
        return;
      }
      const { model, label } = await openModel(flags, log);
      const jacobians = flags.saveJacobians ? collectJacobians() : undefined;
      const report = analyzeCoupling(model, {
        ...common,
        randomTwin: flags.randomTwin ?? false,
        modelSpec: label,
        onJacobians: jacobians?.onJacobians,
      });
      await writeCouplingRun(out, report, { jacobians, png: flags.png });
      printResult(flags.json, { out, report }, summaryText(report, out));
    });
};

function promptsFrom(flags: CouplingFlags): string[] {
  if (flags.prompt !== undefined && flags.prompts)
    throw new LmdynError('bad_argument', 'give --prompt or --prompts, not both');
  if (flags.prompts) return readTextFile(flags.prompts);
  if (flags.prompt !== undefined) return [flags.prompt];
  throw new LmdynError('bad_argument', 'the coupling lens needs --prompt P or --prompts FILE');
}

function parseConvention(value: string): CouplingConvention {
  if (value === 'lmdyn' || value === 'paper-code') return value;
  throw new LmdynError('bad_argument', `--convention must be lmdyn or paper-code, got '${value}'`);
}

function parsePositions(value: string): PositionSpec {
  if (value === 'last' || value === 'all') return value;
  const list = value.split(',').map((s) => s.trim());
  if (list.length === 0 || list.some((s) => !/^\d+$/.test(s))) {
    throw new LmdynError(
      'bad_argument',
      `--positions must be last, all or 0-based indices like 0,3,7, got '${value}'`,
    );
  }
  return list.map(Number);
}

function parseKList(value: string): number[] {
  const list = value.split(',').map((s) => s.trim());
  if (list.length === 0 || list.some((s) => !/^\d+$/.test(s) || Number(s) < 1)) {
    throw new LmdynError(
      'bad_argument',
      `--k must be whole numbers ≥ 1 separated by commas, got '${value}'`,
    );
  }
  return list.map(Number);
}

function parseModelList(value: string): string[] {
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) throw new LmdynError('bad_argument', '--models needs at least one model');
  return list;
}

function summaryText(report: CouplingReport, out: string): string {
  const lines = [
    `coupling: ${report.prompts.length} prompt(s), d = ${report.model.config.dim}, ${report.blocks.length} blocks, convention ${report.options.convention} → ${out}`,
  ];
  const kNote = report.k
    .filter((e) => e.used !== e.requested)
    .map((e) => `K ${e.requested} → ${e.used}`);
  if (kNote.length) lines.push(`K clipped to d: ${kNote.join(', ')}`);
  const weights = [report.trained, report.random_twin, report.random_twin_hf].filter(
    (w): w is NonNullable<typeof w> => w !== null,
  );
  for (const w of weights) {
    const level = w.model_coupling.no_shared_basis.by_k;
    const mc = w.model_coupling.by_k
      .map(
        (e, i) =>
          `K=${e.k} ${fmt(e.value)} (no shared basis ${fmt(level[i].mean)} ± ${fmt(level[i].sd)})`,
      )
      .join(', ');
    const g = w.growth;
    const init = 'init' in w ? ` [${(w as { init: string }).init.split(':')[0]}]` : '';
    lines.push(
      `${w.weights}${init}: model coupling ${mc}; LSS mean ${fmt(w.lss.mean)}; growth rate ${fmt(g.rate)} (R² ${fmt(g.r2_mean)}); fidelity ${fmt(w.fidelity.mean)} (${w.fidelity.tag})`,
    );
  }
  return lines.join('\n');
}

function acrossText(
  rows: {
    model: string;
    coupling: number;
    lss_mean: number;
    growth_rate: number | null;
    score: number | null;
  }[],
  k: number,
  out: string,
): string {
  const lines = [`coupling across ${rows.length} models (K = ${k}) → ${out}`];
  for (const r of rows) {
    lines.push(
      `${r.model}: coupling ${fmt(r.coupling)}, LSS ${fmt(r.lss_mean)}, growth ${fmt(r.growth_rate)}${r.score === null ? '' : `, score ${fmt(r.score)}`}`,
    );
  }
  return lines.join('\n');
}

function trainingText(report: TrainingDynamicsReport, out: string): string {
  const lines = [
    `coupling over training: ${report.rows.length} checkpoints (K = ${report.headline_k}; m_K lower = more coupled) → ${out}`,
  ];
  for (const r of report.rows) {
    lines.push(
      `step ${r.step}: coupling ${fmt(r.coupling)}, LSS ${fmt(r.lss_mean)}, growth ${fmt(r.growth_rate)}${r.val_loss === null ? '' : `, val loss ${fmt(r.val_loss)}`}`,
    );
  }
  for (const s of report.shapes) {
    lines.push(
      `${s.quantity}: ${fmt(s.initial)} → ${fmt(s.final)}; farthest from step 0 ${fmt(s.peak)} at ${pct(s.peak_at)} of training, ${pct(s.peak_retained)} of that move kept at the end; 90% of the net change by ${pct(s.reach_90)} (proposed)`,
    );
  }
  return lines.join('\n');
}

function pct(v: number | null): string {
  return v === null ? '–' : `${(100 * v).toFixed(0)}%`;
}

function fmt(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '–' : v.toPrecision(4);
}
