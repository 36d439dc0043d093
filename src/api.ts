/**
 * The library's front door: open a model, generate, run with a cache of hook activations.
 * The CLI and the dashboard are thin clients of these functions.
 */
import { requireFiniteWeights } from './model/finite.js';
import { LmdynError } from './errors.js';
import { loadModel, type LoadOptions } from './io/load.js';
import type { LoadedModel } from './io/types.js';
import { Transformer } from './model/forward.js';
import type { Hook } from './model/hooks.js';
import type { ModelConfig, ModelSource } from './model/types.js';
import { generateBatch, type FinishReason, type GenerationStep } from './decode/generate.js';
import type { SamplingConfig } from './decode/sampling.js';
import type { Tokenizer } from './tokenizer/types.js';

/** A loaded model ready to run: config, weights, tokenizer and the forward pass. */
export interface Model {
  config: ModelConfig;
  tokenizer: Tokenizer;
  source: ModelSource;
  transformer: Transformer;
  /** Returns the weights and buffers to the kernels' memory; the model is unusable afterwards. */
  dispose(): void;
  readonly disposed: boolean;
}

export async function openModel(spec: string, options: LoadOptions = {}): Promise<Model> {
  return fromLoaded(await loadModel(spec, options));
}

export function fromLoaded(loaded: LoadedModel): Model {
  if (!loaded.tokenizer) {
    throw new LmdynError('not_found', `${loaded.source.path} has no tokenizer; pass one`);
  }
  requireFiniteWeights(loaded.weights, loaded.source.path); // as generation and every lens need
  const transformer = new Transformer(loaded);
  let disposed = false;
  return {
    config: loaded.config,
    tokenizer: loaded.tokenizer,
    source: loaded.source,
    transformer,
    dispose() {
      if (disposed) return;
      disposed = true;
      transformer.dispose();
    },
    get disposed() {
      return disposed;
    },
  };
}

/** The prompt's ids with BOS first where the tokenizer has one; never empty. */
export function encodePrompt(model: Model, prompt: string): number[] {
  const ids = model.tokenizer.encode(prompt, { bos: true });
  if (ids.length === 0) {
    const bos = model.tokenizer.bosId ?? model.config.bosId;
    if (bos === null) throw new LmdynError('bad_argument', 'an empty prompt needs a BOS token');
    return [bos];
  }
  if (ids.length > model.config.seqLen) {
    throw new LmdynError(
      'context_overflow',
      `the prompt has ${ids.length} tokens; the model's context holds ${model.config.seqLen}`,
    );
  }
  return ids;
}

/** Tokens that end generation: EOS, and for llama2.c checkpoints also BOS (as run.c does). */
export function stopIds(model: Model): number[] {
  const ids = new Set<number>();
  const eos = model.tokenizer.eosId ?? model.config.eosId;
  if (eos !== null) ids.add(eos);
  const bos = model.tokenizer.bosId ?? model.config.bosId;
  if (model.source.format === 'llama2c' && bos !== null) ids.add(bos);
  return [...ids];
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
