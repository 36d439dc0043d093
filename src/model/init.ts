/**
 * The random twin (papers.md §5.9 item 3): the same configuration with the weights a training
 * run starts from, so every coupling metric can be set beside its untrained baseline.
 *
 * - llama family, as llama2.c's model.py (`_init_weights`, then the scaled residual
 *   projections): every linear weight and the token embedding ~ N(0, 0.02²); `wo` and `w3`
 *   (our wUp) ~ N(0, (0.02/√(2L))²); RMSNorm weights = 1; biases (Qwen2's q/k/v) = 0; the
 *   classifier is the embedding when tied, else its own N(0, 0.02²) draw.
 * - gpt2, as Hugging Face's GPT2PreTrainedModel._init_weights: Conv1D/Linear weights and the
 *   token and position embeddings ~ N(0, 0.02²) (initializer_range), biases = 0, LayerNorm
 *   weight 1 and bias 0; `attn.c_proj` and `mlp.c_proj` (our wo and wDown) ~ N(0, (0.02/√(2L))²).
 * - gpt_neo (TinyStories, trained with transformers), as GPTNeoPreTrainedModel._init_weights:
 *   every Linear and Embedding ~ N(0, 0.02²), biases 0, LayerNorm 1 and 0; no scaled projections.
 * - gpt_neox (Pythia), as the GPT-NeoX library's init_functions.py with Pythia's settings
 *   (init_method small_init, output_layer_init_method wang_init): embeddings, query_key_value,
 *   dense_h_to_4h and embed_out ~ N(0, 2/(5d)); attention.dense and dense_4h_to_h (our wo and
 *   wDown) ~ N(0, (2/(L·√d))²); biases 0, LayerNorm 1 and 0.
 * - gemma (Gemma 2/3, trained with HF's init in the released code), as Gemma2PreTrainedModel /
 *   Gemma3PreTrainedModel._init_weights: every Linear and the embedding ~ N(0, 0.02²), RMSNorm
 *   weights 0, i.e. gains 1 + 0 (the post-norms and q/k norms too); no scaled projections.
 *
 * - scheme 'hf': Hugging Face `AutoModelForCausalLM.from_config` (Llama / GPT-NeoX _init_weights):
 *   every Linear and the embedding ~ N(0, 0.02²) with no scaled projections — most likely how the
 *   coupling paper's random models were made. For gpt2 and gpt_neo HF's init is the one above.
 *
 * Draws come from createRng(seed) in a fixed order (embeddings, then each layer's wq, wk, wv,
 * wo, gate, up, down, then an untied classifier), so a seed names one twin.
 */
import { fromLoaded, type Model } from './model.js';
import type { LayerWeights, ModelConfig, ModelWeights } from './types.js';
import { newMatrix, type Matrix } from '../tensor/matrix.js';
import { allocF32 } from '../tensor/memory.js';
import { createRng, type Rng } from '../tensor/rng.js';

/** Standard deviation of every initialised weight except the scaled residual projections. */
export const INIT_STD = 0.02;

/** 'training': llama2.c's scaled initialisation (llama) / HF's (gpt2); 'hf': HF from_config. */
export type InitScheme = 'training' | 'hf';

/** The model with the same config, tokenizer and bias layout, and freshly initialised weights. */
export function randomTwin(model: Model, seed: number, scheme: InitScheme = 'training'): Model {
  const weights = initialWeights(model.config, seed, model.transformer.weights, scheme);
  const source = {
    ...model.source,
    details: {
      ...model.source.details,
      randomTwin: { seed, init: initName(model.config, scheme) },
    },
  };
  return fromLoaded({ config: model.config, weights, tokenizer: model.tokenizer, source });
}

/**
 * Training-time initial weights for `config` (see the file comment). `like` decides which
 * optional biases exist (they are zero); without it llama gets none and gpt2 all of GPT-2's.
 */
export function initialWeights(
  config: ModelConfig,
  seed: number,
  like?: ModelWeights,
  scheme: InitScheme = 'training',
): ModelWeights {
  const rng = createRng(seed);
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, seqLen } = config;
  // biases exist unless `like` says otherwise (llama and gemma have none)
  const biased = config.architecture !== 'llama' && config.architecture !== 'gemma';
  const std = initStds(config, scheme);
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const zeros = (n: number, present: boolean) => (present ? allocF32(n) : null);
  const ones = (n: number) => allocF32(n).fill(1);
  const tokenEmbedding = normalMatrix(vocabSize, dim, std.base, rng);
  const positionEmbedding =
    config.positional === 'learned' ? normalMatrix(seqLen, dim, std.base, rng) : null;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayers; l++) {
    const ref = like?.layers[l];
    const has = (b: Float32Array | null | undefined) =>
      ref ? b !== null && b !== undefined : biased;
    const wq = normalMatrix(qDim, dim, std.base, rng);
    const wk = normalMatrix(kvDim, dim, std.base, rng);
    const wv = normalMatrix(kvDim, dim, std.base, rng);
    const wo = normalMatrix(dim, qDim, std.wo, rng);
    const gated = config.mlp === 'swiglu' || config.mlp === 'geglu';
    const wGate = gated ? normalMatrix(hiddenDim, dim, std.base, rng) : null;
    const wUp = normalMatrix(hiddenDim, dim, std.wUp, rng);
    const wDown = normalMatrix(dim, hiddenDim, std.wDown, rng);
    layers.push({
      attnNorm: ones(dim),
      attnNormBias: zeros(dim, config.norm === 'layernorm'),
      wq,
      wk,
      wv,
      wo,
      bq: zeros(qDim, has(ref?.bq)),
      bk: zeros(kvDim, has(ref?.bk)),
      bv: zeros(kvDim, has(ref?.bv)),
      bo: zeros(dim, has(ref?.bo)),
      mlpNorm: ones(dim),
      mlpNormBias: zeros(dim, config.norm === 'layernorm'),
      wGate,
      wUp,
      bUp: zeros(hiddenDim, has(ref?.bUp)),
      wDown,
      bDown: zeros(dim, has(ref?.bDown)),
      ...(config.qkNorm ? { qNorm: ones(headDim), kNorm: ones(headDim) } : {}),
      ...(config.postNorms ? { attnPostNorm: ones(dim), mlpPostNorm: ones(dim) } : {}),
    });
  }
  const unembedding = config.tiedEmbeddings
    ? tokenEmbedding
    : normalMatrix(vocabSize, dim, std.base, rng);
  const unembeddingBias = like?.unembeddingBias ? allocF32(vocabSize) : null;
  return {
    tokenEmbedding,
    positionEmbedding,
    layers,
    finalNorm: ones(dim),
    finalNormBias: zeros(dim, config.norm === 'layernorm'),
    unembedding,
    unembeddingBias,
  };
}

/**
 * The standard deviations of the file comment: `base` for every weight not named here (and the
 * embeddings and an untied classifier), then wo, wUp (llama w3 / c_fc) and wDown.
 */
function initStds(
  config: ModelConfig,
  scheme: InitScheme = 'training',
): { base: number; wo: number; wUp: number; wDown: number } {
  if (scheme === 'hf' && hfInitDiffers(config))
    return { base: INIT_STD, wo: INIT_STD, wUp: INIT_STD, wDown: INIT_STD };
  const L = config.nLayers;
  const scaled = INIT_STD / Math.sqrt(2 * L);
  switch (config.architecture) {
    case 'llama': // model.py: wo and w3 scaled
      return { base: INIT_STD, wo: scaled, wUp: scaled, wDown: INIT_STD };
    case 'gpt2': // attn.c_proj and mlp.c_proj scaled
      return { base: INIT_STD, wo: scaled, wUp: INIT_STD, wDown: scaled };
    case 'gpt_neo':
    case 'gemma':
      return { base: INIT_STD, wo: INIT_STD, wUp: INIT_STD, wDown: INIT_STD };
    case 'gpt_neox': {
      const small = Math.sqrt(2 / (5 * config.dim));
      const wang = 2 / (L * Math.sqrt(config.dim));
      return { base: small, wo: wang, wUp: small, wDown: wang };
    }
  }
}

/**
 * Whether Hugging Face's from_config initialisation (N(0, 0.02²) everywhere for Llama and
 * GPT-NeoX) differs from the training-time one above; for gpt2 and gpt_neo they are the same.
 */
export function hfInitDiffers(config: ModelConfig): boolean {
  return config.architecture === 'llama' || config.architecture === 'gpt_neox';
}

/** Which published initialisation `initialWeights` follows for this architecture. */
export function initName(config: ModelConfig, scheme: InitScheme = 'training'): string {
  if (scheme === 'hf' && hfInitDiffers(config))
    return `HF from_config (${config.architecture === 'llama' ? 'LlamaPreTrainedModel' : 'GPTNeoXPreTrainedModel'}._init_weights): every linear weight and the embedding N(0, 0.02²), no scaled projections, norms 1, biases 0`;
  switch (config.architecture) {
    case 'gpt2':
      return 'HF GPT2PreTrainedModel._init_weights: N(0, 0.02²), c_proj N(0, (0.02/√(2L))²), LayerNorm 1/0, biases 0';
    case 'gpt_neo':
      return 'HF GPTNeoPreTrainedModel._init_weights: N(0, 0.02²), LayerNorm 1/0, biases 0';
    case 'gemma':
      return 'HF Gemma2/Gemma3PreTrainedModel._init_weights: N(0, 0.02²), RMSNorm weights 0 (gains 1), no scaled projections';
    case 'gpt_neox':
      return 'GPT-NeoX init_functions (Pythia): small_init N(0, 2/(5d)), attention.dense and dense_4h_to_h wang_init N(0, (2/(L·√d))²), LayerNorm 1/0, biases 0';
    case 'llama':
      return 'llama2.c model.py: N(0, 0.02²), wo and w3 N(0, (0.02/√(2L))²), norms 1, biases 0';
  }
}

function normalMatrix(rows: number, cols: number, std: number, rng: Rng): Matrix {
  const data = allocF32(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
  return newMatrix(rows, cols, data);
}
