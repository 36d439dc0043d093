/**
 * A loaded model ready to run (config, weights, tokenizer, forward pass) and the two facts every
 * caller asks of it: the prompt's ids and the ids that stop generation. Loading from a path or
 * hub id is the front door's job (api.ts openModel); lenses and traces take a Model.
 */
import { LmdynError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { requireFiniteWeights } from './finite.js';
import { Transformer } from './forward.js';
import type { LoadedModel, ModelConfig, ModelSource } from './types.js';

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
