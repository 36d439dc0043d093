/**
 * `lmdyn` command line. Each command lives in its own file; this one wires them up and turns
 * every user error into one line on stderr and a non-zero exit code.
 */
import { Command, CommanderError } from 'commander';
import { LmdynError } from '../errors.js';
import { VERSION } from '../version.js';
import { registerAnalyze } from './analyze.js';
import { registerConvert } from './convert.js';
import { registerDemo } from './demo.js';
import { registerGenerate } from './generate.js';
import { registerInfo } from './info.js';
import { registerModels } from './list-models.js';
import { LENSES } from './lenses.js';
import { registerReport } from './report.js';
import { registerServe } from './serve.js';
import { registerSweep } from './sweep.js';
import { registerPersistence } from './persistence.js';
import { registerTrace } from './trace.js';
import { registerTrain } from './train.js';
import { registerWorker } from './worker.js';

/**
 * llama.cpp's long option names for the same settings, accepted as aliases (`--temp 0.7` and
 * `--temp=0.7`). `--top-p`, `--top-k`, `--min-p`, `--seed`, `--threads`, `--ctx-size`, `--model`
 * and the penalties already have llama.cpp's names.
 */
export const LLAMA_CPP_ALIASES: Readonly<Record<string, string>> = {
  '--temp': '--temperature',
  '--n-predict': '--max-tokens',
  '--repeat-penalty': '--repetition-penalty',
};

/** argv with llama.cpp's aliases renamed (nothing after a bare `--` is touched). */
export function applyAliases(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  return argv.map((arg, i) => {
    if (end !== -1 && i > end) return arg;
    const [name, ...value] = arg.split('=');
    const to = Object.hasOwn(LLAMA_CPP_ALIASES, name) ? LLAMA_CPP_ALIASES[name] : undefined;
    return to ? [to, ...value].join('=') : arg;
  });
}

export async function main(argv: string[]): Promise<number> {
  endQuietlyOnClosedPipe();
  const program = new Command('lmdyn')
    .description('language-model generation as a dynamical system')
    .version(VERSION)
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(s.replace(/^error: /, 'error: ').trimEnd() + '\n'),
    });
  registerGenerate(program);
  registerInfo(program);
  registerModels(program);
  registerConvert(program);
  registerTrace(program);
  registerSweep(program);
  registerPersistence(program);
  registerAnalyze(program, LENSES);
  registerDemo(program);
  registerTrain(program);
  registerReport(program);
  registerServe(program);
  registerWorker(program);
  const override = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  program.commands.forEach(override);
  try {
    await program.parseAsync(applyAliases(argv), { from: 'user' });
    return 0;
  } catch (err) {
    return reportError(err);
  }
}

/**
 * `lmdyn generate … | head -1`: when the reader of standard output goes away, stop at once and
 * exit 0, as Unix tools do, instead of an unhandled EPIPE (a commit under way is left to the
 * next run's clean-up; nothing half-written looks whole).
 */
function endQuietlyOnClosedPipe(): void {
  const onError = (err: NodeJS.ErrnoException): void => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') process.exit(0);
    throw err;
  };
  if (process.stdout.listenerCount('error') === 0) process.stdout.on('error', onError);
  if (process.stderr.listenerCount('error') === 0) process.stderr.on('error', onError);
}

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version exit with 0 and have been printed already; usage errors were printed too.
    if (
      err.code === 'commander.helpDisplayed' ||
      err.code === 'commander.version' ||
      err.code === 'commander.help'
    )
      return 0;
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof LmdynError) {
      process.stderr.write(`error: ${cause.message}\n`);
    }
    return 2;
  }
  if (err instanceof LmdynError) {
    process.stderr.write(`error: ${err.message}\n`);
    return err.code === 'bad_argument' ? 2 : 1;
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && typeof e.message === 'string' && e.syscall) {
    process.stderr.write(`error: ${e.message}\n`);
    return 1;
  }
  process.stderr.write(
    `internal error (a bug in lmdyn, please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  return 70;
}
