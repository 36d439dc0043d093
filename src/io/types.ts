import type { ModelConfig, ModelSource, ModelWeights } from '../model/types.js';
import type { Tokenizer } from '../tokenizer/types.js';

/** What every loader returns. `tokenizer` is null when the file carries none (llama2.c .bin). */
export interface LoadedModel {
  config: ModelConfig;
  weights: ModelWeights;
  tokenizer: Tokenizer | null;
  source: ModelSource;
}
