import type { Command } from 'commander';
import { openModel as open } from '../api.js';
import { encodePrompt, type Model } from '../model/model.js';
import { applyChatTemplate } from '../tokenizer/chat.js';
import { LmdynError } from '../errors.js';
import type { WeightFormat } from '../model/quantize.js';
import { startKernelThreads, stopKernelThreads } from '../tensor/wasm/threads.js';
import { WEIGHTS_CHOICES, type WeightsChoice } from '../io/resident.js';
import { parseBytes, parseInteger } from './args.js';
import { defaultModel } from '../io/discover.js';

export interface ModelFlags {
  model?: string;
  tokenizer?: string;
  /** Convert the f32 weight matrices at load (--quantize, the older name of --weights). */
  quantize?: WeightFormat;
  /** How the weight matrices stay in memory (--weights). */
  weights?: WeightsChoice;
  /** The budget of --weights auto (--weights-budget). */
  weightsBudget?: number;
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
  const model = await open(spec, {
    tokenizer: flags.tokenizer,
    quantize: flags.quantize,
    weights: flags.weights,
    weightsBudget: flags.weightsBudget,
  });
  return { model, label: spec };
}

export interface EngineFlags {
  /** Threads for the matmuls, the calling one included (--threads). */
  threads?: number;
  quantize?: WeightFormat;
  weights?: WeightsChoice;
  weightsBudget?: number;
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

/** --threads N, --weights and --quantize q8_0, for the commands that run the model. */
export function addEngineFlags(cmd: Command): Command {
  return addWeightsFlags(addThreadsFlag(cmd)).option(
    '--quantize <FORMAT>',
    'the older name of --weights for q8_0 and f32',
    parseWeightFormat,
  );
}

/** --weights auto|f32|f16|bf16|q8_0 and --weights-budget SIZE. */
export function addWeightsFlags(cmd: Command): Command {
  return cmd
    .option(
      '--weights <FORMAT>',
      'how weight matrices stay in memory: auto (default: f32 if it fits --weights-budget, else the file’s f16/bf16), f32, f16, bf16 (16-bit, computed in f32), q8_0',
      parseWeightsChoice,
    )
    .option(
      '--weights-budget <SIZE>',
      'memory f32 weights may take under --weights auto (default: half of this machine’s memory)',
      parseBytes('--weights-budget'),
    );
}

export function parseWeightsChoice(value: string): WeightsChoice {
  const found = WEIGHTS_CHOICES.find((c) => c === value);
  if (found) return found;
  throw new LmdynError('bad_argument', `--weights must be one of ${WEIGHTS_CHOICES.join(', ')}, got '${value}'`);
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
