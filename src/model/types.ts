/**
 * The model as lmdyn sees it: one config, one set of weights in one convention, whatever file
 * it came from. Loaders translate every format into this; the forward pass reads only this.
 *
 * Conventions (fixed for every architecture):
 * - A Matrix is row-major [rows = out, cols = in] and acts as y = W x (llama2.c / PyTorch
 *   nn.Linear layout). GPT-2's Conv1D weights ([in, out]) are transposed by the loader.
 * - Q and K rows use the interleaved-pair rotary convention of llama2.c and GGUF: dimensions
 *   (2i, 2i+1) of a head rotate together. Hugging Face checkpoints (rotate_half) are permuted
 *   by the loader, biases included. With partial rotary (GPT-NeoX `rotary_pct`) only the first
 *   ropeDim dimensions of a head rotate, and only they are permuted. Per-head q/k norm weights
 *   (Qwen3, Gemma 3) are permuted the same way.
 * - RMSNorm weights are the gains themselves: Gemma's (applied by HF as 1 + weight) have the 1
 *   added by the loader (exact in f32 for bf16 weights), so every norm is x·σ ⊙ w.
 */
import type { Matrix } from '../tensor/matrix.js';
import type { Tokenizer } from '../tokenizer/types.js';

export type Architecture = 'llama' | 'gpt2' | 'gpt_neox' | 'gpt_neo' | 'gemma';

export interface ModelConfig {
  architecture: Architecture;
  /** The name the source file used, e.g. LlamaForCausalLM, GPTNeoXForCausalLM, GPT2LMHeadModel. */
  sourceArchitecture: string;
  dim: number; // d_model
  hiddenDim: number; // d_mlp
  nLayers: number;
  nHeads: number;
  nKvHeads: number; // grouped-query attention: nHeads % nKvHeads == 0
  headDim: number;
  vocabSize: number;
  seqLen: number; // longest context the model supports
  norm: 'rmsnorm' | 'layernorm';
  normEps: number;
  /**
   * gelu_new: the tanh approximation (GPT-2, GPT-Neo); gelu: the exact erf form (GPT-NeoX);
   * geglu: down(gelu_tanh(gate(x)) ⊙ up(x)) (Gemma's gelu_pytorch_tanh gating).
   */
  mlp: 'swiglu' | 'gelu_new' | 'gelu' | 'geglu';
  positional: 'rope' | 'learned';
  ropeTheta: number; // unused when positional = 'learned'
  ropeDim: number; // rotary dimensions per head (= headDim for llama, rotary_pct·headDim for GPT-NeoX)
  /** Scaled RoPE frequencies (HF `rope_scaling`); absent: the plain θ^(−2i/ropeDim). model/rope.ts. */
  ropeScaling?: RopeScaling;
  tiedEmbeddings: boolean;
  bosId: number | null;
  eosId: number | null;
  // The settings below are absent for the architectures that do not have them (llama, gpt2), so
  // every loader and hand-built config stays as it was; read them through the helpers below.
  /**
   * 'parallel' (GPT-NeoX use_parallel_residual): x + attn(ln1(x)) + mlp(ln2(x)), no resid_mid.
   * Default 'sequential': x_mid = x + attn(ln1(x)), x + … = x_mid + mlp(ln2(x_mid)).
   */
  residual?: 'sequential' | 'parallel';
  /** Attention scores are q·k · attnScale; default 1/√headDim (GPT-Neo: 1, no scaling). */
  attnScale?: number;
  /**
   * Per layer, the number of most recent positions (the query's own included) a query attends
   * to, or null for all of them (GPT-Neo's local / global layers). Default: every layer global.
   */
  attnWindow?: (number | null)[];
  /** GPT-NeoX `attention_bias`: q/k/v and output projections carry biases. Default true. */
  attentionBias?: boolean;
  /** Gemma: hook_embed = E[token] · embedScale (√d_model in the weights' dtype). Default 1. */
  embedScale?: number;
  /** Qwen3, Gemma 3: each head's q and k pass an RMSNorm (LayerWeights qNorm / kNorm) before RoPE. */
  qkNorm?: boolean;
  /** Gemma 2/3: the attention and MLP outputs pass an RMSNorm before joining the residual. */
  postNorms?: boolean;
  /** Gemma 2 attn_logit_softcapping: scores s → cap·tanh(s/cap) before the mask and softmax. */
  attnSoftcap?: number;
  /** Gemma 2 (3) final_logit_softcapping: logits → cap·tanh(logits/cap). */
  finalSoftcap?: number;
  /** Gemma 3 rope_local_base_freq: the RoPE base of the windowed (sliding) layers. */
  ropeLocalTheta?: number;
}

/**
 * RoPE scaling, as Hugging Face's `rope_scaling` (or `rope_parameters`) names it; model/rope.ts
 * applies it. `originalContext` is the context the model was pretrained with: rope_scaling's
 * original_max_position_embeddings for llama3, config max_position_embeddings for dynamic (HF's
 * `_compute_dynamic_ntk_parameters`), Phi-3's original_max_position_embeddings for longrope.
 * GGUF's `llama.rope.scaling.type` linear with `.factor` is { type: 'linear', factor }.
 */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalContext: number;
    }
  | { type: 'dynamic'; factor: number; originalContext: number }
  | {
      type: 'longrope';
      /** ropeDim/2 divisors of the frequencies up to originalContext positions, and beyond. */
      shortFactor: number[];
      longFactor: number[];
      originalContext: number;
      /** The factor on cos and sin (HF attention_factor; √(1 + ln s / ln originalContext) by default). */
      attentionFactor: number;
    };

/** Whether block l adds attention and MLP to the same input (GPT-NeoX's parallel residual). */
export function isParallel(c: ModelConfig): boolean {
  return c.residual === 'parallel';
}

/** The factor of the attention scores q·k. */
export function attentionScale(c: ModelConfig): number {
  return c.attnScale ?? 1 / Math.sqrt(c.headDim);
}

/** cap·tanh(x/cap) (Gemma 2's soft-capping of attention scores and logits). */
export function softcap(x: number, cap: number): number {
  return cap * Math.tanh(x / cap);
}

/** The first key position a query at `pos` of layer l attends to. */
export function windowStart(c: ModelConfig, l: number, pos: number): number {
  const w = c.attnWindow?.[l] ?? null;
  return w === null ? 0 : Math.max(0, pos - w + 1);
}

export interface LayerWeights {
  attnNorm: Float32Array; // [dim]
  attnNormBias: Float32Array | null; // [dim], layernorm only
  wq: Matrix; // [nHeads * headDim, dim]
  wk: Matrix; // [nKvHeads * headDim, dim]
  wv: Matrix; // [nKvHeads * headDim, dim]
  wo: Matrix; // [dim, nHeads * headDim]
  bq: Float32Array | null;
  bk: Float32Array | null;
  bv: Float32Array | null;
  bo: Float32Array | null;
  mlpNorm: Float32Array; // [dim]
  mlpNormBias: Float32Array | null;
  /** SwiGLU gate (llama w1); null for gelu MLPs. */
  wGate: Matrix | null; // [hiddenDim, dim]
  /** llama w3 / GPT-2 c_fc (transposed). */
  wUp: Matrix; // [hiddenDim, dim]
  bUp: Float32Array | null;
  /** llama w2 / GPT-2 mlp.c_proj (transposed). */
  wDown: Matrix; // [dim, hiddenDim]
  bDown: Float32Array | null;
  // Present only for the architectures that have them (config qkNorm, postNorms):
  /** Per-head RMSNorm weights of q and k (Qwen3, Gemma 3), in the interleaved rotary order. */
  qNorm?: Float32Array; // [headDim]
  kNorm?: Float32Array; // [headDim]
  /** RMSNorm weights of the attention and MLP outputs (Gemma's post norms). */
  attnPostNorm?: Float32Array; // [dim]
  mlpPostNorm?: Float32Array; // [dim]
}

export interface ModelWeights {
  tokenEmbedding: Matrix; // [vocab, dim]
  positionEmbedding: Matrix | null; // [seqLen, dim], learned positions only
  layers: LayerWeights[];
  finalNorm: Float32Array; // [dim]
  finalNormBias: Float32Array | null;
  /** The classifier; the same object as tokenEmbedding when tied. */
  unembedding: Matrix; // [vocab, dim]
  unembeddingBias: Float32Array | null;
}

export type ModelFormat = 'llama2c' | 'safetensors' | 'gguf';

export interface ModelSource {
  format: ModelFormat;
  /** The file or folder the weights were read from. */
  path: string;
  /** `hf:owner/name@rev` when it came from the hub. */
  hubId: string | null;
  /** sha256 of the weight file(s), hex; filled in lazily by io/fingerprint `weightsSha256`
   * (the trace recorder calls it); null until then and for models built in memory. */
  sha256: string | null;
  /** Format-specific detail: llama2c version, GGUF metadata, tensor dtypes, ... */
  details: Record<string, unknown>;
}

/** What every loader returns. `tokenizer` is null when the file carries none (llama2.c .bin). */
export interface LoadedModel {
  config: ModelConfig;
  weights: ModelWeights;
  tokenizer: Tokenizer | null;
  source: ModelSource;
}

export function parameterCount(config: ModelConfig): number {
  const { dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, seqLen } = config;
  const q = nHeads * headDim;
  const kv = nKvHeads * headDim;
  const layernorm = config.norm === 'layernorm';
  let perLayer = dim * q + 2 * dim * kv + q * dim; // wq wk wv wo
  perLayer += (layernorm ? 4 : 2) * dim; // norms (+ biases)
  perLayer += (config.mlp === 'swiglu' || config.mlp === 'geglu' ? 3 : 2) * dim * hiddenDim;
  if (config.qkNorm) perLayer += 2 * headDim;
  if (config.postNorms) perLayer += 2 * dim;
  const mlpBiases = hiddenDim + dim;
  if (config.architecture === 'gpt2') perLayer += q + 2 * kv + dim + mlpBiases;
  if (config.architecture === 'gpt_neox')
    perLayer += (config.attentionBias === false ? 0 : q + 2 * kv + dim) + mlpBiases;
  if (config.architecture === 'gpt_neo') perLayer += dim + mlpBiases; // out_proj, c_fc, c_proj
  let total = nLayers * perLayer + vocabSize * dim + (layernorm ? 2 : 1) * dim;
  if (config.positional === 'learned') total += seqLen * dim;
  if (!config.tiedEmbeddings) total += vocabSize * dim;
  return total;
}
