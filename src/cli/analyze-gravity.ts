/**
 * `lmdyn analyze gravity`: the information-gravity lens (papers.md §3, all proposed) on one
 * model and a set of prompts, written into one output folder (gravity.json and figures).
 */
import { resolve } from 'node:path';
import { LmdynError } from '../errors.js';
import {
  analyzeGravity,
  type GravityReport,
  type ReferencePositions,
} from '../lenses/gravity/analyze.js';
import {
  defaultParaphrasePaths,
  defaultReferencePath,
  readParaphrases,
} from '../io/data.js';
import { writeGravityRun } from '../report/lenses/gravity.js';
import { DEFAULT_TEMPERATURES } from '../lenses/gravity/temperature.js';
import { startKernelThreads } from '../tensor/wasm/threads.js';
import { checkOutDir } from '../trace/io.js';
import type { LensRegistrar } from './analyze.js';
import { parseInteger, parseNumber } from './args.js';
import { addJsonFlag, openModel, printResult } from './common.js';
import { readTextFile } from '../io/text.js';
import { pValue } from '../report/format.js';
import { cite } from '../papers.js';

interface GravityFlags {
  json?: boolean;
  model?: string;
  tokenizer?: string;
  prompt?: string;
  prompts?: string;
  reference?: string;
  referencePositions: ReferencePositions;
  temperature: number;
  k: number;
  basinWidth: number;
  paraphrases?: string[];
  sensitivity: boolean;
  temperatures: number[];
  samples: number;
  maxTokens: number;
  eigenvalues: number;
  seed: number;
  png?: boolean;
  out: string;
  force?: boolean;
}

export const registerGravityLens: LensRegistrar = (analyze) => {
  const cmd = analyze
    .command('gravity')
    .description(
      `information gravity: potential, masses, wells, curvature, voids, sensitivity (${cite('gravity')}, proposed)`,
    )
    .option('-m, --model <M>', 'model file, folder or hf:owner/name')
    .option('-z, --tokenizer <T>', 'tokenizer overriding the model’s own')
    .option('-i, --prompt <P>', 'one prompt')
    .option('--prompts <FILE>', 'prompts, one per line (or JSONL with a "text" field)')
    .option(
      '--reference <FILE>',
      'reference corpus for densities, one text per line (default: the shipped data/corpus/reference.txt)',
    )
    .option(
      '--reference-positions <P>',
      'reference query states at every position of each text (all) or only its last (last)',
      parseReferencePositions,
      'all',
    )
    .option(
      '-t, --temperature <T>',
      'temperature of the Boltzmann law, G and the basin (> 0)',
      parseNumber('--temperature', 1e-3, 100),
      1,
    )
    .option('--k <N>', 'neighbours of the kNN density', parseInteger('--k', 1, 1000), 10)
    .option(
      '--basin-width <W>',
      'basin B = {v : Φ_v ≤ Φ_min + W·T}',
      parseNumber('--basin-width', 0, 1000),
      1,
    )
    .option(
      '--paraphrases <FILES>',
      'paraphrase sets, comma-separated JSONL files (default: the shipped tinystories + general sets)',
      parseFileList,
    )
    .option('--no-sensitivity', 'skip the paraphrase sensitivity analysis')
    .option('--temperatures <LIST>', 'temperature grid, comma-separated', parseTemperatures, [
      ...DEFAULT_TEMPERATURES,
    ])
    .option(
      '--samples <N>',
      'sampled continuations per prompt and temperature (distinct-n)',
      parseInteger('--samples', 0, 1000),
      4,
    )
    .option(
      '--max-tokens <N>',
      'length of each sampled continuation',
      parseInteger('--max-tokens', 0, 100000),
      24,
    )
    .option(
      '--eigenvalues <N>',
      'eigenvalues of G to report',
      parseInteger('--eigenvalues', 1, 100000),
      8,
    )
    .option(
      '-s, --seed <S>',
      'seed of the samples, the KL-check directions and the eigensolver',
      parseInteger('--seed', 0, 2 ** 32 - 1),
      1,
    )
    .option('--png', 'also write PNG figures')
    .requiredOption('-o, --out <DIR>', 'output folder')
    .option('--force', 'overwrite a non-empty output folder');
  addJsonFlag(cmd, 'the report (as written to gravity.json)')
    .action(async (flags: GravityFlags) => {
      const out = resolve(flags.out);
      const prompts = promptsFrom(flags);
      checkOutDir(out, flags.force ?? false);
      const referencePath = flags.reference ?? defaultReferencePath();
      const reference = {
        texts: readTextFile(referencePath),
        source: flags.reference ? referencePath : 'data/corpus/reference.txt (shipped with lmdyn)',
      };
      let paraphrases = null;
      if (flags.sensitivity) {
        const paths = flags.paraphrases ?? defaultParaphrasePaths();
        paraphrases = {
          sets: paths.flatMap((p) => readParaphrases(p)),
          sources: flags.paraphrases
            ? paths
            : paths.map((p) => `data/paraphrases/${p.split(/[\\/]/).pop()} (shipped with lmdyn)`),
        };
      }
      await startKernelThreads();
      const log = (line: string) => process.stderr.write(line + '\n');
      const { model, label } = await openModel(flags, log);
      const report = analyzeGravity(model, {
        prompts,
        temperature: flags.temperature,
        reference,
        referencePositions: flags.referencePositions,
        k: flags.k,
        basinWidth: flags.basinWidth,
        paraphrases,
        temperatures: flags.temperatures,
        samples: flags.samples,
        maxTokens: flags.maxTokens,
        eigenvalues: flags.eigenvalues,
        seed: flags.seed,
        modelSpec: label,
        log,
      });
      await writeGravityRun(out, report, { png: flags.png });
      printResult(flags.json, { out, report }, summary(report, out));
    });
};

function promptsFrom(flags: GravityFlags): string[] {
  if (flags.prompt !== undefined && flags.prompts)
    throw new LmdynError('bad_argument', 'give --prompt or --prompts, not both');
  if (flags.prompts) return readTextFile(flags.prompts);
  if (flags.prompt !== undefined) return [flags.prompt];
  throw new LmdynError('bad_argument', 'the gravity lens needs --prompt P or --prompts FILE');
}

function parseReferencePositions(value: string): ReferencePositions {
  if (value === 'all' || value === 'last') return value;
  throw new LmdynError('bad_argument', `--reference-positions must be all or last, got '${value}'`);
}

function parseFileList(value: string): string[] {
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0)
    throw new LmdynError('bad_argument', '--paraphrases needs at least one file');
  return list;
}

function parseTemperatures(value: string): number[] {
  const list = value.split(',').map((s) => s.trim());
  const nums = list.map(Number);
  if (
    list.length === 0 ||
    list.some((s) => s === '') ||
    nums.some((t) => !(Number.isFinite(t) && t > 0))
  ) {
    throw new LmdynError(
      'bad_argument',
      `--temperatures must be numbers > 0 separated by commas, got '${value}'`,
    );
  }
  return nums;
}

/** The terminal summary: one line per prompt, the checks, and the sensitivity headline. */
export function summary(report: GravityReport, out: string): string {
  const lines = [
    `gravity (proposed, ${cite('gravity')}): ${report.prompts.length} prompt(s), T = ${report.temperature}, ${report.reference.states} reference states, d_eff = ${report.reference.d_eff} → ${out}`,
  ];
  for (const p of report.prompts) {
    lines.push(
      `${JSON.stringify(p.text.length > 40 ? p.text.slice(0, 39) + '…' : p.text)}: M_geo ${fmt(p.M_geo)}, M_info ${fmt(p.M_info)}, H ${fmt(p.entropy_t1)}, κ ${fmt(p.kappa_t1)}, depth ${fmt(p.depth)}, log ρ ${fmt(p.density.log_density)}, void ${fmt(p.void_score)}`,
    );
  }
  const id = report.identity_check;
  const so = report.second_order_check;
  lines.push(
    `identity softmax(−Φ/T) = sampler: ${id.passed ? 'pass' : 'FAIL'} (max |Δp| ${id.max_abs_diff_exact.toExponential(1)} exact, ${id.max_abs_diff_recomputed.toExponential(1)} from q)`,
    `second order KL ≈ ½δᵀGδ: ${so.passed ? 'pass' : 'FAIL'} (max relative error ${so.max_rel_error.toExponential(1)})`,
  );
  const s = report.sensitivity;
  if (s) {
    const h = s.headline;
    const pairs = s.correlations.find(
      (c) => c.level === 'pairs' && c.domain === 'all' && c.x === 'kappa',
    );
    const pre = s.correlations.find(
      (c) => c.level === 'sets' && c.domain === 'all' && c.x === 'kappa_pre_norm',
    );
    lines.push(
      `sensitivity: Spearman(JSD, κ) over ${h.n} paraphrase sets ρ = ${fmt(h.spearman_rho)} (p = ${pValue(h.spearman_p)}, BH q = ${pValue(h.spearman_q)} over the ${2 * s.correlations.length} tests of the table), Pearson r = ${fmt(h.pearson_r)}; ` +
        `κ pulled back through the final norm ρ = ${fmt(pre?.spearman_rho ?? null)} (q = ${pValue(pre?.spearman_q ?? null)}); over ${pairs?.n ?? 0} pairs ρ = ${fmt(pairs?.spearman_rho ?? null)} (p = ${pValue(pairs?.spearman_p ?? null)}, q = ${pValue(pairs?.spearman_q ?? null)}; pairs share members, so pair p-values are optimistic)`,
    );
  }
  return lines.join('\n');
}

function fmt(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '–' : v.toPrecision(4);
}
