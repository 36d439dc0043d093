import type { Command } from 'commander';
import { resolve } from 'node:path';
import { LmdynError } from '../errors.js';
import { DEFAULT_HOOKS } from '../trace/record.js';
import { runSweepOnQueue } from '../queue/sweep.js';
import { runSweep, type SweepPlan } from '../trace/sweep.js';
import type { LogitsMode } from '../trace/types.js';
import { parseBytes, parseInteger, parseNumber } from './args.js';
import { availableCores } from './common.js';
import { defaultModel } from '../io/discover.js';
import { defaultMaxMemory, parseHooks, parseLogitsMode } from './trace.js';
import { printResult } from './common.js';

interface SweepFlags {
  json?: boolean;
  model?: string;
  tokenizer?: string;
  prompt: string;
  temperature: number[];
  topP: number[];
  topK: number[];
  repetitionPenalty: number[];
  samples: number;
  maxTokens: number;
  seed: number;
  hooks: string[];
  logits: LogitsMode;
  workers?: number;
  out: string;
  force?: boolean;
  queue?: string;
  attempts: number;
  maxMemory?: number;
  yes?: boolean;
}

/** Configurations a sweep may have (each one is a trace folder and a worker's recording). */
export const MAX_SWEEP_CONFIGS = 10_000;

/** A comma-separated list of values, each checked by `one`. */
function list(flag: string, one: (v: string) => number) {
  return (value: string): number[] => {
    const parts = value.split(',').map((s) => s.trim());
    if (parts.some((p) => p === ''))
      throw new LmdynError('bad_argument', `${flag} takes comma-separated values, got '${value}'`);
    const vals = parts.map(one);
    if (new Set(vals).size !== vals.length)
      throw new LmdynError('bad_argument', `${flag} lists a value twice: '${value}'`);
    return vals;
  };
}

export function registerSweep(program: Command): void {
  program
    .command('sweep')
    .description('record a trace folder per point of a decoding grid (worker threads, resumable)')
    .option('-m, --model <M>', 'model file, folder or hf:owner/name')
    .option('-z, --tokenizer <T>', 'tokenizer overriding the model’s own')
    .option('-i, --prompt <P>', 'prompt text', '')
    .option(
      '--temperature <LIST>',
      'temperatures',
      list('--temperature', parseNumber('--temperature', 0, 100)),
      [1],
    )
    .option(
      '--top-p <LIST>',
      'top-p values',
      list('--top-p', parseNumber('--top-p', 0, 1, { openMin: true })),
      [1],
    )
    .option(
      '--top-k <LIST>',
      'top-k values (0 = off)',
      list('--top-k', parseInteger('--top-k', 0)),
      [0],
    )
    .option(
      '--repetition-penalty <LIST>',
      'repetition penalties (1 = off)',
      list('--repetition-penalty', parseNumber('--repetition-penalty', 0.01, 100)),
      [1],
    )
    .option('--samples <S>', 'samples per configuration', parseInteger('--samples', 1, 100000), 10)
    .option(
      '-n, --max-tokens <N>',
      'tokens per sample at most',
      parseInteger('--max-tokens', 1),
      100,
    )
    .option(
      '-s, --seed <S>',
      'sample i of every configuration uses seed + i',
      parseInteger('--seed', 0, 2 ** 32 - 1),
      42,
    )
    .option('--hooks <GLOBS>', 'hook names or globs, comma-separated', parseHooks, DEFAULT_HOOKS)
    .option('--logits <MODE>', 'none | topk:K | full', parseLogitsMode, { kind: 'topk', k: 20 })
    .option(
      '--workers <N>',
      'worker threads (default: one per core)',
      parseInteger('--workers', 1, 64),
    )
    .requiredOption(
      '-o, --out <DIR>',
      'output folder (re-running into it finishes what is missing)',
    )
    .option('--force', 'overwrite a folder that holds something else')
    .option(
      '--queue <URL>',
      'run the configurations on `lmdyn worker`s through Redis (redis://HOST[:PORT][/DB]); --out must be a folder every worker sees',
    )
    .option(...attemptsOption)
    .option(
      '--max-memory <SIZE>',
      'refuse a configuration estimated to need more memory per worker (default: half of this machine’s, shared by the workers)',
      parseBytes('--max-memory'),
    )
    .option('--yes', 'record whatever the memory estimate says')
    .option('--json', 'print the sweep index (sweep.json) as one JSON object instead of the summary')
    .action(async (flags: SweepFlags) => {
      const size =
        flags.temperature.length *
        flags.topP.length *
        flags.topK.length *
        flags.repetitionPenalty.length;
      if (size > MAX_SWEEP_CONFIGS) {
        throw new LmdynError(
          'bad_argument',
          `the grid has ${size} configurations (${flags.temperature.length} × ${flags.topP.length} × ${flags.topK.length} × ${flags.repetitionPenalty.length}), over the limit of ${MAX_SWEEP_CONFIGS}; split it into several sweeps`,
        );
      }
      if (flags.queue && flags.workers !== undefined) {
        throw new LmdynError(
          'bad_argument',
          '--workers sets the threads of a local sweep; with --queue, start `lmdyn worker --queue URL` processes instead',
        );
      }
      let model = flags.model;
      if (model !== undefined && model.trim() === '')
        throw new LmdynError('bad_argument', 'the model path is empty');
      if (model === undefined) {
        const choice = defaultModel();
        model = choice.spec;
        process.stderr.write(`model: ${model} (${choice.why})\n`);
      }
      const bar = progressPrinter(process.stderr);
      const plan: SweepPlan = {
        model: model.startsWith('hf:') ? model : resolve(model),
        tokenizer: flags.tokenizer ? resolve(flags.tokenizer) : null,
        prompt: flags.prompt,
        samples: flags.samples,
        maxTokens: flags.maxTokens,
        seed: flags.seed,
        hooks: flags.hooks,
        logits: flags.logits,
        grid: {
          temperature: flags.temperature,
          topP: flags.topP,
          topK: flags.topK,
          repetitionPenalty: flags.repetitionPenalty,
        },
      };
      const index = flags.queue
        ? await runSweepOnQueue(plan, flags.out, flags.queue, {
            force: flags.force,
            attempts: flags.attempts,
            onProgress: bar,
            log: (line) => process.stderr.write(line + '\n'),
          })
        : await runSweep(plan, flags.out, {
            force: flags.force,
            workers: flags.workers,
            onProgress: bar,
            maxBytes: flags.yes
              ? undefined
              : (flags.maxMemory ??
                defaultMaxMemory() / (flags.workers ?? (await availableCores()))),
          });
      printResult(
        flags.json,
        { out: resolve(flags.out), index },
        `sweep: ${index.configs.length} configurations → ${resolve(flags.out)}/sweep.json`,
      );
    });
}

/** `--attempts N`: tries per queued job before it is reported as failed. */
export const attemptsOption = [
  '--attempts <N>',
  'with --queue: tries per job before it is reported as failed',
  parseInteger('--attempts', 1, 100),
  3,
] as const;

/** Progress of a run of units (done of total, the last one's label). */
export interface UnitProgress {
  done: number;
  total: number;
  /** Units found finished before this run began (not counted in the rate). */
  skipped: number;
  label?: string;
}

/** A bar with ETA on a terminal; plain lines otherwise. */
export function progressPrinter(
  stream: NodeJS.WriteStream,
  what = 'sweep',
  units = 'configurations',
): (p: UnitProgress & { config?: { dir: string } }) => void {
  const start = Date.now();
  return (p) => {
    const fresh = p.done - p.skipped;
    const elapsed = (Date.now() - start) / 1000;
    const rate = fresh > 0 ? elapsed / fresh : NaN;
    const eta = Number.isFinite(rate) ? formatSeconds(rate * (p.total - p.done)) : '?';
    const name = p.label ?? p.config?.dir;
    const label = name ? ` (${name})` : p.skipped > 0 ? ` (${p.skipped} already done)` : '';
    if (stream.isTTY) {
      const width = 30;
      const filled = Math.round((width * p.done) / Math.max(1, p.total));
      stream.write(
        `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${p.done}/${p.total} ${units}  ETA ${eta}   `,
      );
      if (p.done === p.total) stream.write('\n');
    } else {
      stream.write(`${what}: ${p.done}/${p.total} ${units}${label}, ETA ${eta}\n`);
    }
  };
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - 60 * m)).padStart(2, '0')}s`;
}
