/**
 * The hub models people start from (`lmdyn models`): each with the numbers of its published
 * config.json, its parameter count and its resident size per weight format, and whether this
 * build's Hugging Face loader accepts its architecture and settings.
 *
 * Nothing is downloaded: the config numbers are embedded, each row citing where they were read.
 * "Supported" means the loader accepts this very config.json (probed: the loader is run on a
 * folder holding it and no weights, and must get past the config to the first missing tensor);
 * architectures enter the loader together with float64-reference tests on random-weight models
 * of that architecture (test/model/arch-*.test.ts). It does not mean these real weights were run
 * here.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdynError } from '../errors.js';
import { parameterCount, type Architecture, type ModelConfig } from '../model/types.js';
import { loadHfFolder } from './hf.js';
import { writeSafetensors } from './safetensors.js';

export interface KnownModel {
  /** Hub id (owner/name), as `lmdyn generate -m` takes it. */
  hubId: string;
  family: string;
  /** The published config.json's keys that fix the shapes (and the settings the loader checks). */
  config: Record<string, unknown>;
  /** dtype of the published weights (config.json torch_dtype). */
  dtype: 'float32' | 'float16' | 'bfloat16';
  /** Where the config numbers were read. */
  source: string;
}

/** Pythia's shared config.json keys (GPT-NeoX: fused q|k|v, rotary_pct 0.25, parallel residual). */
const PYTHIA = {
  architectures: ['GPTNeoXForCausalLM'],
  model_type: 'gpt_neox',
  hidden_act: 'gelu',
  rotary_pct: 0.25,
  rotary_emb_base: 10000,
  use_parallel_residual: true,
  tie_word_embeddings: false,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 2048,
  vocab_size: 50304,
};

/**
 * The table. Sources: the models' config.json as quoted in public repositories found with the
 * project's code search (the hub itself is not reachable from here), and the model cards.
 */
export const KNOWN_MODELS: readonly KnownModel[] = [
  // Pythia: d_model / layers / heads from the model cards' "Pythia model" table
  // (huggingface.co/EleutherAI/pythia-14m, …/pythia-410m-v0); intermediate 4·d, vocab 50304 and the
  // shared keys from pythia-70m's config.json (hidden_size 512, num_layers 6, heads 8,
  // intermediate_size 2048, vocab_size 50304, max_position_embeddings 2048, rotary_pct 0.25).
  {
    hubId: 'EleutherAI/pythia-14m',
    family: 'Pythia',
    config: { ...PYTHIA, hidden_size: 128, num_hidden_layers: 6, num_attention_heads: 4, intermediate_size: 512 },
    dtype: 'float16',
    source: 'huggingface.co/EleutherAI/pythia-14m model card (14M: d 128, 6 layers, 4 heads)',
  },
  {
    hubId: 'EleutherAI/pythia-70m',
    family: 'Pythia',
    config: { ...PYTHIA, hidden_size: 512, num_hidden_layers: 6, num_attention_heads: 8, intermediate_size: 2048 },
    dtype: 'float16',
    source: 'huggingface.co/EleutherAI/pythia-70m config.json (as restated with its URL in public code)',
  },
  {
    hubId: 'EleutherAI/pythia-160m',
    family: 'Pythia',
    config: { ...PYTHIA, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 },
    dtype: 'float16',
    source: 'huggingface.co/EleutherAI/pythia-160m model card (160M: d 768, 12 layers, 12 heads)',
  },
  {
    hubId: 'EleutherAI/pythia-410m',
    family: 'Pythia',
    config: { ...PYTHIA, hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16, intermediate_size: 4096 },
    dtype: 'float16',
    source: 'huggingface.co/EleutherAI/pythia-410m model card (410M: d 1024, 24 layers, 16 heads)',
  },
  {
    // GPTNeoConfig as printed from roneneldan/TinyStories-33M (public code): hidden 768, 16 heads,
    // 4 layers global/local, max_position_embeddings 2048; window 256 and the GPT-Neo tokenizer's
    // 50257 tokens per the TinyStories paper (arXiv 2305.07759, §"We use GPT-Neo architecture with
    // window size 256")
    hubId: 'roneneldan/TinyStories-33M',
    family: 'TinyStories',
    config: {
      architectures: ['GPTNeoForCausalLM'],
      model_type: 'gpt_neo',
      activation_function: 'gelu_new',
      hidden_size: 768,
      num_heads: 16,
      num_layers: 4,
      attention_types: [[['global', 'local'], 2]],
      window_size: 256,
      max_position_embeddings: 2048,
      vocab_size: 50257,
      layer_norm_epsilon: 1e-5,
    },
    dtype: 'float32',
    source: 'roneneldan/TinyStories-33M GPTNeoConfig (as printed in public code) and arXiv 2305.07759',
  },
  {
    // HuggingFaceTB/SmolLM2-135M config.json, quoted in full in github.com/satyasundar/erav3-s13
    // README.md and a Rust test fixture (max_position_embeddings 8192 in the current file)
    hubId: 'HuggingFaceTB/SmolLM2-135M',
    family: 'SmolLM2',
    config: {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_act: 'silu',
      hidden_size: 576,
      intermediate_size: 1536,
      num_hidden_layers: 30,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-5,
      rope_theta: 100000,
      rope_scaling: null,
      tie_word_embeddings: true,
      vocab_size: 49152,
    },
    dtype: 'bfloat16',
    source: 'HuggingFaceTB/SmolLM2-135M config.json (quoted in github.com/satyasundar/erav3-s13 README.md)',
  },
  {
    // Qwen/Qwen2.5-0.5B config.json, quoted in full in public code ("# Qwen/Qwen2.5-0.5B / model config")
    hubId: 'Qwen/Qwen2.5-0.5B',
    family: 'Qwen2.5',
    config: {
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      hidden_act: 'silu',
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      use_sliding_window: false,
      tie_word_embeddings: true,
      vocab_size: 151936,
    },
    dtype: 'bfloat16',
    source: 'Qwen/Qwen2.5-0.5B config.json (quoted in public code; same numbers in rwth-i6/i6_experiments qwen2_configs.py for Qwen2-0.5B)',
  },
  {
    // https://huggingface.co/Qwen/Qwen3-0.6B/raw/main/config.json, quoted in public code
    hubId: 'Qwen/Qwen3-0.6B',
    family: 'Qwen3',
    config: {
      architectures: ['Qwen3ForCausalLM'],
      model_type: 'qwen3',
      hidden_act: 'silu',
      hidden_size: 1024,
      head_dim: 128,
      intermediate_size: 3072,
      num_hidden_layers: 28,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      max_position_embeddings: 40960,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      rope_scaling: null,
      attention_bias: false,
      tie_word_embeddings: true,
      vocab_size: 151936,
    },
    dtype: 'bfloat16',
    source: 'huggingface.co/Qwen/Qwen3-0.6B/raw/main/config.json (quoted with its URL in public code)',
  },
  {
    // meta-llama/Llama-3.2-1B(-Instruct) config.json, quoted in
    // github.com/kevinstephano/thunder_model_blocks hf_llama/llama_config.py
    hubId: 'meta-llama/Llama-3.2-1B',
    family: 'Llama 3.2',
    config: {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_act: 'silu',
      hidden_size: 2048,
      head_dim: 64,
      intermediate_size: 8192,
      num_hidden_layers: 16,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-5,
      rope_theta: 500000,
      rope_scaling: {
        factor: 32,
        high_freq_factor: 4,
        low_freq_factor: 1,
        original_max_position_embeddings: 8192,
        rope_type: 'llama3',
      },
      tie_word_embeddings: true,
      vocab_size: 128256,
    },
    dtype: 'bfloat16',
    source: 'meta-llama/Llama-3.2-1B-Instruct config.json (quoted in github.com/kevinstephano/thunder_model_blocks)',
  },
  {
    // google/gemma-2-2b: hidden 2304, intermediate 9216, 26 layers, 8 heads, 4 kv heads, vocab
    // 256000 (public code restating the config); head_dim 256, soft-capping 50 / 30 and window
    // 4096 are transformers' Gemma2Config defaults, which the 2b config keeps
    hubId: 'google/gemma-2-2b',
    family: 'Gemma 2',
    config: {
      architectures: ['Gemma2ForCausalLM'],
      model_type: 'gemma2',
      hidden_activation: 'gelu_pytorch_tanh',
      hidden_size: 2304,
      head_dim: 256,
      intermediate_size: 9216,
      num_hidden_layers: 26,
      num_attention_heads: 8,
      num_key_value_heads: 4,
      max_position_embeddings: 8192,
      attn_logit_softcapping: 50,
      final_logit_softcapping: 30,
      sliding_window: 4096,
      query_pre_attn_scalar: 256,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      vocab_size: 256000,
    },
    dtype: 'float32',
    source: 'google/gemma-2-2b shape as restated in public code (model_params "gemma-2-2b"); transformers Gemma2Config defaults',
  },
  {
    // microsoft/Phi-3-mini-4k-instruct: Phi3Config defaults = the 4k config (vocab 32064, hidden
    // 3072, intermediate 8192, 32 layers, 32 heads, kv = heads, max_position 4096, untied), as
    // restated in public code (Microsoft.ML.GenAI.Phi Phi3Config, xorbits docs)
    hubId: 'microsoft/Phi-3-mini-4k-instruct',
    family: 'Phi-3',
    config: {
      architectures: ['Phi3ForCausalLM'],
      model_type: 'phi3',
      hidden_act: 'silu',
      hidden_size: 3072,
      intermediate_size: 8192,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 32,
      max_position_embeddings: 4096,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      tie_word_embeddings: false,
      vocab_size: 32064,
    },
    dtype: 'bfloat16',
    source: 'microsoft/Phi-3-mini-4k-instruct config (Phi3Config defaults, restated in Microsoft.ML.GenAI.Phi)',
  },
  {
    // openai-community/gpt2 (GPT-2 small): n_embd 768, n_layer 12, n_head 12, n_positions 1024,
    // vocab 50257 (the GPT-2 paper's 117M row, as restated in public code)
    hubId: 'openai-community/gpt2',
    family: 'GPT-2',
    config: {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      activation_function: 'gelu_new',
      n_embd: 768,
      n_layer: 12,
      n_head: 12,
      n_positions: 1024,
      vocab_size: 50257,
      layer_norm_epsilon: 1e-5,
    },
    dtype: 'float32',
    source: 'openai-community/gpt2 config (n_embd 768, n_layer 12, n_head 12, n_positions 1024, vocab 50257)',
  },
];

/** A row of `lmdyn models`: the table's entry with its counts, sizes and support in this build. */
export interface KnownModelRow {
  hubId: string;
  family: string;
  architecture: string;
  parameters: number;
  /** Bytes of the weights resident per weight format (norms and biases f32 in every case). */
  bytes: { f32: number; '16-bit': number; q8_0: number };
  dtype: KnownModel['dtype'];
  supported: boolean;
  /** Why not, when not supported (the loader's own message). */
  why: string | null;
  source: string;
}

/** Every row, with support probed against this build's loader. */
export function knownModelRows(models: readonly KnownModel[] = KNOWN_MODELS): KnownModelRow[] {
  return models.map((m) => {
    const { parameters, matrixValues } = knownModelCounts(m);
    const vectors = parameters - matrixValues;
    const probe = probeLoader(m.config);
    return {
      hubId: m.hubId,
      family: m.family,
      architecture: (m.config.architectures as string[])[0],
      parameters,
      bytes: {
        f32: 4 * parameters,
        '16-bit': 2 * matrixValues + 4 * vectors,
        q8_0: matrixValues * (1 + 4 / 32) + 4 * vectors,
      },
      dtype: m.dtype,
      supported: probe === null,
      why: probe,
      source: m.source,
    };
  });
}

/**
 * Parameter count (parameterCount of the config's ModelConfig, plus the parameters of settings
 * ModelConfig does not describe yet: Qwen2's q/k/v biases, Qwen3's per-head q/k norms, Gemma 2's
 * post-attention / post-MLP norms) and how many of them are in weight matrices.
 */
export function knownModelCounts(m: KnownModel): { parameters: number; matrixValues: number } {
  const c = modelConfigOf(m.config);
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const arch = (m.config.architectures as string[])[0];
  let extra = 0;
  if (arch === 'Qwen2ForCausalLM') extra += c.nLayers * (q + 2 * kv); // q/k/v biases
  if (arch === 'Qwen3ForCausalLM') extra += c.nLayers * 2 * c.headDim; // q_norm, k_norm
  if (arch === 'Gemma2ForCausalLM') extra += c.nLayers * 2 * c.dim; // post-attention, post-MLP norms
  const parameters = parameterCount(c) + extra;
  const perLayer =
    c.dim * q + 2 * c.dim * kv + q * c.dim + (c.mlp === 'swiglu' ? 3 : 2) * c.dim * c.hiddenDim;
  let matrixValues = c.nLayers * perLayer + c.vocabSize * c.dim;
  if (!c.tiedEmbeddings) matrixValues += c.vocabSize * c.dim;
  if (c.positional === 'learned') matrixValues += c.seqLen * c.dim;
  return { parameters, matrixValues };
}

/** The shapes of a config.json as lmdyn's ModelConfig (transformers' key names per family). */
function modelConfigOf(hf: Record<string, unknown>): ModelConfig {
  const num = (k: string, fallback?: number): number => {
    const v = hf[k] ?? fallback;
    if (typeof v !== 'number') throw new Error(`known model config: ${k} missing`);
    return v;
  };
  const arch = (hf.architectures as string[])[0];
  const base = { sourceArchitecture: arch, bosId: null, eosId: null, normEps: 1e-5, ropeTheta: 10000 };
  if (arch === 'GPT2LMHeadModel') {
    const dim = num('n_embd');
    const nHeads = num('n_head');
    return {
      ...base,
      architecture: 'gpt2',
      dim,
      hiddenDim: num('n_inner', 4 * dim),
      nLayers: num('n_layer'),
      nHeads,
      nKvHeads: nHeads,
      headDim: dim / nHeads,
      vocabSize: num('vocab_size'),
      seqLen: num('n_positions'),
      norm: 'layernorm',
      mlp: 'gelu_new',
      positional: 'learned',
      ropeDim: 0,
      tiedEmbeddings: true,
    };
  }
  const dim = num('hidden_size');
  const nHeads = num(hf.num_heads === undefined ? 'num_attention_heads' : 'num_heads');
  const headDim = num('head_dim', dim / nHeads);
  const family: Record<string, Architecture> = {
    GPTNeoXForCausalLM: 'gpt_neox',
    GPTNeoForCausalLM: 'gpt_neo',
  };
  const architecture = family[arch] ?? 'llama';
  const layernorm = architecture !== 'llama';
  return {
    ...base,
    architecture,
    dim,
    hiddenDim: num('intermediate_size', 4 * dim),
    nLayers: num(hf.num_layers === undefined ? 'num_hidden_layers' : 'num_layers'),
    nHeads,
    nKvHeads: num('num_key_value_heads', nHeads),
    headDim,
    vocabSize: num('vocab_size'),
    seqLen: num('max_position_embeddings'),
    norm: layernorm ? 'layernorm' : 'rmsnorm',
    mlp: architecture === 'llama' ? 'swiglu' : architecture === 'gpt_neox' ? 'gelu' : 'gelu_new',
    positional: architecture === 'gpt_neo' ? 'learned' : 'rope',
    ropeDim: headDim,
    // GPT-Neo's lm_head is the embedding (TinyStories); the rest say tie_word_embeddings
    tiedEmbeddings: architecture === 'gpt_neo' ? true : hf.tie_word_embeddings !== false,
  };
}

/**
 * null when this build's Hugging Face loader accepts `config` (it reads past the config to the
 * first tensor, which the probe folder does not have), else the loader's reason.
 */
export function probeLoader(config: Record<string, unknown>): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-probe-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    writeSafetensors(join(dir, 'model.safetensors'), []);
    loadHfFolder(dir);
    return null;
  } catch (err) {
    if (!(err instanceof LmdynError)) throw err;
    if (err.code === 'bad_format' && / missing tensor /.test(err.message)) return null; // past the config
    return err.message.replace(`${join(dir, 'config.json')}: `, '').replace(`${dir}: `, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
