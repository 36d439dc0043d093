import type { Command } from 'commander';
import { openModel as open } from '../api.js';
import { encodePrompt, type Model } from '../model/model.js';
import { applyChatTemplate } from '../tokenizer/chat.js';
import { LmdynError } from '../errors.js';
import type { WeightFormat } from '../model/quantize.js';
import { startKernelThreads, stopKernelThreads } from '../tensor/wasm/threads.js';
import { parseInteger } from './args.js';
import { defaultModel } from '../io/discover.js';

export interface ModelFlags {
  model?: string;
  tokenizer?: string;
  /** Convert the f32 weight matrices at load (--quantize). */
  quantize?: WeightFormat;
}

/** Opens --model (or the default model, saying which) with --tokenizer and --quantize if given. */
export async function openModel(
  flags: ModelFlags,
  log: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<{ model: Model; label: string }> {
  let spec = flags.model;
  if (spec === undefined) {
    const choice = defaultModel();
    spec = choice.spec;
    log(`model: ${spec} (${choice.why})`);
  }
  const model = await open(spec, { tokenizer: flags.tokenizer, quantize: flags.quantize });
  return { model, label: spec };
}

export interface EngineFlags {
  /** Threads for the matmuls, the calling one included (--threads). */
  threads?: number;
  quantize?: WeightFormat;
}

/** Cores this process may use (os.availableParallelism where Node has it). */
export async function availableCores(): Promise<number> {
  const os = await import('node:os');
  return typeof os.availableParallelism === 'function'
    ? os.availableParallelism()
    : os.cpus().length;
}

/** --threads N. */
export function addThreadsFlag(cmd: Command): Command {
  return cmd.option(
    '--threads <N>',
    'threads for the matmuls (default: all cores, at most 8; 1 = no helpers)',
    parseInteger('--threads', 1, 64),
  );
}

/** --threads N and --quantize q8_0, for the commands that run the model. */
export function addEngineFlags(cmd: Command): Command {
  return addThreadsFlag(cmd).option(
    '--quantize <FORMAT>',
    'convert f32 weight matrices at load: q8_0 (llama2.c runq.c / GGUF Q8_0, group 32) or f32 = keep',
    parseWeightFormat,
  );
}

export function parseWeightFormat(value: string): WeightFormat {
  if (value === 'q8_0' || value === 'f32') return value;
  throw new LmdynError('bad_argument', `--quantize must be q8_0 or f32, got '${value}'`);
}

/**
 * Runs `body` with the kernel helper threads started (--threads, default all cores up to 8)
 * and stops them afterwards, also when `body` throws, so the process can end. Where threads
 * cannot run (no shared memory, LMDYN_KERNELS=js) everything stays on the calling thread.
 */
export async function withKernelThreads<T>(
  threads: number | undefined,
  body: () => Promise<T> | T,
): Promise<T> {
  const wanted = threads ?? Math.min(await availableCores(), 8);
  if (wanted > 1) await startKernelThreads({ helpers: wanted - 1 });
  try {
    return await body();
  } finally {
    stopKernelThreads();
  }
}

/**
 * Starts the kernel helper threads for the rest of the command (--threads, default all cores up
 * to 8) and stops them when the process has nothing left to do.
 */
export async function startCliThreads(threads: number | undefined): Promise<number> {
  const wanted = threads ?? Math.min(await availableCores(), 8);
  const helpers = wanted > 1 ? await startKernelThreads({ helpers: wanted - 1 }) : 0;
  if (helpers > 0) process.once('beforeExit', () => stopKernelThreads());
  return 1 + helpers;
}

/** --json, for every command that prints results. */
export function addJsonFlag(cmd: Command, what = 'the result'): Command {
  return cmd.option('--json', `print ${what} as one JSON object on stdout instead of the text summary`);
}

/** Prints `text` (a summary) or, with --json, `value` as one line of JSON (non-finite numbers as null). */
export function printResult(json: boolean | undefined, value: unknown, text: string): void {
  if (json) {
    process.stdout.write(
      JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)) + '\n',
    );
  } else {
    process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }
}

/** --ctx-size N (llama.cpp's -c): at most N positions, prompt included. */
export function addContextFlag(cmd: Command): Command {
  return cmd.option(
    '-c, --ctx-size <N>',
    'context size: at most N positions, prompt included (default and maximum: the model’s context)',
    parseInteger('--ctx-size', 1),
  );
}

/** The tokens left to generate within --ctx-size after a prompt of `promptLength` tokens. */
export function tokensWithin(model: Model, ctxSize: number | undefined, promptLength: number, maxTokens: number): number {
  if (ctxSize === undefined) return maxTokens;
  const limit = model.config.seqLen;
  if (ctxSize > limit) {
    throw new LmdynError('bad_argument', `--ctx-size ${ctxSize} is beyond the model's context (${limit})`);
  }
  if (promptLength >= ctxSize) {
    throw new LmdynError('context_overflow', `the prompt has ${promptLength} tokens; --ctx-size ${ctxSize} leaves no room to generate`);
  }
  return Math.min(maxTokens, ctxSize - promptLength);
}

export interface ChatFlags {
  chat?: boolean;
  system?: string;
  chatTemplate?: string;
}

/** --chat, --system, --chat-template: the prompt as a user turn of the model's chat template. */
export function addChatFlags(cmd: Command): Command {
  return cmd
    .option('--chat', 'wrap the prompt as a user message in the model’s chat template (tokenizer_config.json)')
    .option('--system <S>', 'with --chat: a system message first')
    .option('--chat-template <FILE>', 'with --chat: a Jinja chat template file instead of the model’s own');
}

/** The prompt's ids and text: encoded as is, or through the chat template with --chat. */
export function promptFromFlags(model: Model, prompt: string, f: ChatFlags): { ids: number[]; text: string } {
  if (!f.chat) {
    if (f.system !== undefined || f.chatTemplate !== undefined) {
      throw new LmdynError('bad_argument', '--system and --chat-template need --chat');
    }
    return { ids: encodePrompt(model, prompt), text: prompt };
  }
  const messages = [
    ...(f.system !== undefined ? [{ role: 'system', content: f.system }] : []),
    { role: 'user', content: prompt },
  ];
  return applyChatTemplate(model, messages, { template: f.chatTemplate });
}
