import type { Command } from 'commander';
import { generateText } from '../api.js';
import type { SamplingConfig } from '../decode/sampling.js';
import { TextStream } from '../tokenizer/stream.js';
import { parseInteger, parseNumber } from './args.js';
import {
  addChatFlags,
  addContextFlag,
  addEngineFlags,
  openModel,
  promptFromFlags,
  tokensWithin,
  type ChatFlags,
  withKernelThreads,
  type EngineFlags,
  type ModelFlags,
} from './common.js';

/** The sampling flags: every SamplingConfig field, and the seed. */
export interface SamplingFlags extends SamplingConfig {
  seed: number;
}

interface GenerateFlags extends ModelFlags, SamplingFlags, EngineFlags, ChatFlags {
  prompt: string;
  maxTokens: number;
  ctxSize?: number;
  json?: boolean;
}

export function samplingFromFlags(f: SamplingFlags): Partial<SamplingConfig> {
  return {
    temperature: f.temperature,
    topK: f.topK,
    topP: f.topP,
    minP: f.minP,
    repetitionPenalty: f.repetitionPenalty,
    frequencyPenalty: f.frequencyPenalty,
    presencePenalty: f.presencePenalty,
  };
}

export function addSamplingFlags(cmd: Command): Command {
  return cmd
    .option(
      '-t, --temperature <T>',
      'temperature; 0 = greedy (llama.cpp: --temp)',
      parseNumber('--temperature', 0, 100),
      1,
    )
    .option('--top-k <K>', 'keep the K most likely tokens; 0 = off', parseInteger('--top-k', 0), 0)
    .option(
      '-p, --top-p <P>',
      'nucleus: smallest set with mass ≥ P; 1 = off',
      parseNumber('--top-p', 0, 1, { openMin: true }),
      1,
    )
    .option(
      '--min-p <P>',
      'drop tokens below P × the top probability; 0 = off',
      parseNumber('--min-p', 0, 1),
      0,
    )
    .option(
      '--repetition-penalty <R>',
      'HF repetition penalty; 1 = off (llama.cpp: --repeat-penalty)',
      parseNumber('--repetition-penalty', 0.01, 100),
      1,
    )
    .option(
      '--frequency-penalty <A>',
      'subtract A × count of each seen token; 0 = off',
      parseNumber('--frequency-penalty', -10, 10),
      0,
    )
    .option(
      '--presence-penalty <A>',
      'subtract A from each seen token; 0 = off',
      parseNumber('--presence-penalty', -10, 10),
      0,
    )
    .option('-s, --seed <S>', 'random seed', parseInteger('--seed', 0, 2 ** 32 - 1), 42);
}

export function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('generate text; prints the text as it comes and the speed (tok/s)')
    .option('-m, --model <M>', 'model file, folder or hf:owner/name (default: see `lmdyn demo`)')
    .option('-z, --tokenizer <T>', 'tokenizer file or folder overriding the model’s own')
    .option('-i, --prompt <P>', 'prompt text (default: empty, i.e. BOS only)', '')
    .option(
      '-n, --max-tokens <N>',
      'tokens to generate at most (llama.cpp: --n-predict)',
      parseInteger('--max-tokens', 1),
      256,
    );
  addChatFlags(addContextFlag(addEngineFlags(addSamplingFlags(cmd))))
    .option('--json', 'print one JSON object instead of streaming text')
    .action((flags: GenerateFlags) => withKernelThreads(flags.threads, () => generate(flags)));
}

async function generate(flags: GenerateFlags): Promise<void> {
  const { model, label } = await openModel(flags);
  let stream: TextStream | null = null;
  const { ids: promptIds, text: promptText } = promptFromFlags(model, flags.prompt, flags);
  const result = generateText(model, {
    promptIds,
    maxTokens: tokensWithin(model, flags.ctxSize, promptIds.length, flags.maxTokens),
    sampling: samplingFromFlags(flags),
    seed: flags.seed,
    onToken: flags.json
      ? undefined
      : (id, promptIds) => {
          if (!stream) {
            stream = new TextStream(model.tokenizer, promptIds);
            process.stdout.write(model.tokenizer.decode(promptIds));
          }
          process.stdout.write(stream.push(id));
        },
  });
  if (flags.json) {
    process.stdout.write(
      JSON.stringify({
        model: label,
        prompt: promptText,
        prompt_ids: result.promptIds,
        ids: result.ids,
        text: result.text,
        finish_reason: result.finishReason,
        seed: result.seed,
        sampling: result.sampling,
        tokens_per_second: round(result.tokensPerSecond, 2),
      }) + '\n',
    );
  } else {
    const tail = stream === null ? result.text : (stream as TextStream).flush();
    process.stdout.write(tail);
    process.stdout.write('\n');
    process.stderr.write(`achieved tok/s: ${result.tokensPerSecond.toFixed(2)}\n`);
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
