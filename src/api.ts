/**
 * The library's front door: open a model, generate, run with a cache of hook activations.
 * The CLI and the dashboard are thin clients of these functions.
 */
import { loadModel, type LoadOptions } from './io/load.js';
import type { Hook } from './model/hooks.js';
import { encodePrompt, fromLoaded, stopIds, type Model } from './model/model.js';
import { generateBatch, type FinishReason, type GenerationStep } from './decode/generate.js';
import type { SamplingConfig } from './decode/sampling.js';

export async function openModel(spec: string, options: LoadOptions = {}): Promise<Model> {
  return fromLoaded(await loadModel(spec, options));
}

export interface GenerateTextOptions {
  prompt?: string;
  /** Token ids to start from instead of `prompt`. */
  promptIds?: readonly number[];
  maxTokens?: number;
  sampling?: Partial<SamplingConfig>;
  seed?: number;
  hooks?: readonly Hook[];
  onToken?: (id: number, promptIds: readonly number[]) => void;
  onStep?: (step: GenerationStep) => void | 'stop';
}

export interface GenerateTextResult {
  promptIds: number[];
  ids: number[];
  /** Decoded prompt plus continuation. */
  text: string;
  finishReason: FinishReason;
  seed: number;
  sampling: SamplingConfig;
  tokensPerSecond: number;
  prefillMs: number;
}

export function generateText(model: Model, options: GenerateTextOptions = {}): GenerateTextResult {
  const promptIds = options.promptIds ? [...options.promptIds] : encodePrompt(model, options.prompt ?? '');
  const { outputs, timing } = generateBatch(
    model.transformer,
    [{ promptIds, maxTokens: options.maxTokens ?? 256, sampling: options.sampling, seed: options.seed }],
    {
      hooks: options.hooks,
      stopIds: stopIds(model),
      onStep: (step) => {
        options.onToken?.(step.token, promptIds);
        return options.onStep?.(step);
      },
    },
  );
  const out = outputs[0];
  return {
    promptIds,
    ids: out.ids,
    text: model.tokenizer.decode([...promptIds, ...out.ids]),
    finishReason: out.finishReason,
    seed: out.seed,
    sampling: out.sampling,
    tokensPerSecond: timing.tokensPerSecond,
    prefillMs: timing.prefillMs,
  };
}
