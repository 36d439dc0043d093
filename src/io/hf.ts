/**
 * Hugging Face model folders (transformers `save_pretrained` layout): `config.json` plus
 * `model.safetensors`, or `model.safetensors.index.json` whose `weight_map` names the shard of
 * every tensor, or the same as `pytorch_model.bin[.index.json]` (torch.save zip, io/torch.ts). Architectures and their tensor names follow transformers' modeling files:
 *
 * - LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM: `model.embed_tokens`,
 *   `model.layers.{i}.input_layernorm`,
 *   `self_attn.{q,k,v,o}_proj` (Qwen2: q/k/v biases), `post_attention_layernorm`,
 *   `mlp.{gate,up,down}_proj`, `model.norm`, `lm_head` unless tied. HF stores Q/K rows in
 *   rotate_half order; they are permuted back to llama2.c's interleaved pairs (MANIFEST §5).
 *   `rope_scaling` linear / dynamic / llama3 (ropeSettings); Mistral's `sliding_window`.
 * - Phi3ForCausalLM (Phi-3, Phi-4-mini): as Llama with `self_attn.qkv_proj` (q|k|v rows) and
 *   `mlp.gate_up_proj` (gate|up rows) split at load, `partial_rotary_factor`, `sliding_window`,
 *   and `rope_scaling` longrope (short/long factors, attention factor on cos/sin).
 * - GPT2LMHeadModel: `[transformer.]wte/wpe`, `h.{i}.ln_1`, `attn.c_attn` (Conv1D [d, 3d] = q|k|v),
 *   `attn.c_proj`, `ln_2`, `mlp.c_fc`, `mlp.c_proj`, `ln_f`. Conv1D weights are [in, out] and
 *   are transposed to [out, in].
 * - GPTNeoXForCausalLM (Pythia): `gpt_neox.embed_in`, `gpt_neox.layers.{i}.input_layernorm`,
 *   `attention.query_key_value` (fused per head: rows [head, q|k|v, headDim]), `attention.dense`,
 *   `post_attention_layernorm`, `mlp.dense_h_to_4h`, `mlp.dense_4h_to_h`,
 *   `gpt_neox.final_layer_norm`, `embed_out` (untied). Rotary on the first rotary_pct·headDim
 *   dims of each head in rotate_half order, permuted to interleaved pairs like Llama's.
 * - GPTNeoForCausalLM (TinyStories): `transformer.wte/wpe`, `h.{i}.ln_1`,
 *   `attn.attention.{q,k,v}_proj` (no biases), `attn.attention.out_proj`, `ln_2`, `mlp.c_fc`,
 *   `mlp.c_proj` (nn.Linear, [out, in]), `ln_f`; scores are not scaled by 1/√d and the
 *   `attention_types` "local" layers see only the last `window_size` positions.
 * - Qwen3ForCausalLM: Llama's tensors plus `self_attn.{q,k}_norm` (per-head RMSNorm over head_dim,
 *   before RoPE; permuted to interleaved pairs like the q/k rows); head_dim is its own setting.
 * - Gemma2ForCausalLM / Gemma3ForCausalLM (text): Llama's tensor names plus
 *   `pre_feedforward_layernorm` (the MLP's pre-norm) and `post_attention_layernorm` /
 *   `post_feedforward_layernorm` (norms of the branch outputs), Gemma 3's `self_attn.{q,k}_norm`;
 *   every RMSNorm scales by 1 + weight (the 1 is added here). See gemmaModel for the settings.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { LmdynError, check } from '../errors.js';
import type { LayerWeights, ModelConfig, ModelWeights, RopeScaling } from '../model/types.js';
import type { Matrix } from '../tensor/matrix.js';
import { newMatrix } from '../tensor/matrix.js';
import { allocF32 } from '../tensor/memory.js';
import type { H16Format } from '../tensor/half.js';
import { loadHfTokenizer } from '../tokenizer/hf.js';
import type { LoadedModel } from '../model/types.js';
import {
  closeSafetensors,
  openSafetensors,
  readMatrix16,
  readTensorF32,
  type SafetensorsFile,
  type SafetensorsTensorInfo,
} from './safetensors.js';
import { openTorchCheckpoint } from './torch.js';
import { f32ToBf16, roundToHalf } from './gguf-quants.js';

const SUPPORTED = [
  'LlamaForCausalLM',
  'MistralForCausalLM',
  'Phi3ForCausalLM',
  'Qwen2ForCausalLM',
  'GPT2LMHeadModel',
  'GPTNeoXForCausalLM',
  'GPTNeoForCausalLM',
  'Qwen3ForCausalLM',
  'Gemma2ForCausalLM',
  'Gemma3ForCausalLM',
] as const;
type SupportedArchitecture = (typeof SUPPORTED)[number];

/**
 * Loads a Hugging Face model folder; the tokenizer is null when it has no tokenizer.json. With
 * `keep16`, weight matrices read whole from the file stay resident in that 16-bit format.
 */
export function loadHfFolder(dir: string, options: { keep16?: H16Format } = {}): LoadedModel {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) {
    throw new LmdynError(
      'not_found',
      `${dir} has no config.json (a Hugging Face model folder needs one)`,
    );
  }
  const hf = readJsonObject(configPath);
  const arch = architectureOf(hf, configPath);
  const store = openTensorStore(dir, options.keep16);
  try {
    const { config, weights } =
      arch === 'GPT2LMHeadModel'
        ? gpt2Model(hf, store)
        : arch === 'GPTNeoXForCausalLM'
          ? gptNeoXModel(hf, store)
          : arch === 'GPTNeoForCausalLM'
            ? gptNeoModel(hf, store)
            : arch === 'Qwen3ForCausalLM'
              ? qwen3Model(hf, store)
              : arch === 'Gemma2ForCausalLM' || arch === 'Gemma3ForCausalLM'
                ? gemmaModel(arch, hf, store)
                : llamaModel(arch, hf, store);
    const tokenizer = existsSync(join(dir, 'tokenizer.json')) ? loadHfTokenizer(dir) : null;
    const dtypes: Record<string, number> = {};
    for (const t of store.where.values()) dtypes[t.info.dtype] = (dtypes[t.info.dtype] ?? 0) + 1;
    return {
      config,
      weights,
      tokenizer,
      source: {
        format: 'safetensors',
        path: dir,
        hubId: null,
        sha256: null,
        details: {
          files: store.files.map((f) => relative(dir, f.path)),
          dtypes,
          metadata: store.files[0].metadata,
        },
      },
    };
  } finally {
    store.close();
  }
}

// ---- config.json --------------------------------------------------------------------------------

function architectureOf(hf: Record<string, unknown>, path: string): SupportedArchitecture {
  const list = hf.architectures;
  const name = Array.isArray(list) && typeof list[0] === 'string' ? list[0] : null;
  if (name === null || !(SUPPORTED as readonly string[]).includes(name)) {
    throw new LmdynError(
      'unsupported',
      `${path}: unknown architecture ${name ?? `(none; model_type ${String(hf.model_type)})`}; supported: ${SUPPORTED.join(', ')}`,
    );
  }
  return name as SupportedArchitecture;
}

/** Reads config.json fields with transformers' defaults and lmdyn's checks. */
function configReader(hf: Record<string, unknown>) {
  const bad = (key: string, what: string): never => {
    throw new LmdynError('bad_format', `config.json: ${key} ${what}`);
  };
  return {
    int(key: string, fallback?: number): number {
      const v = hf[key] ?? fallback;
      if (!(Number.isSafeInteger(v) && (v as number) > 0))
        bad(key, 'is missing or not a positive integer');
      return v as number;
    },
    float(key: string, fallback: number): number {
      const v = hf[key] ?? fallback;
      if (!(typeof v === 'number' && Number.isFinite(v) && v > 0))
        bad(key, 'is not a positive number');
      return v as number;
    },
    /** A token id, or the first of a list of ids; null when absent. */
    tokenId(key: string, fallback: number | null): number | null {
      const v = hf[key] === undefined ? fallback : hf[key];
      const first = Array.isArray(v) ? v[0] : v;
      return Number.isSafeInteger(first) ? (first as number) : null;
    },
  };
}

function unsupported(arch: string, what: string): never {
  throw new LmdynError('unsupported', `${arch}: ${what} is not supported`);
}

// ---- Llama / Mistral / Phi-3 / Qwen2 -------------------------------------------------------------

type LlamaLike =
  | 'LlamaForCausalLM'
  | 'MistralForCausalLM'
  | 'Phi3ForCausalLM'
  | 'Qwen2ForCausalLM'
  | 'Qwen3ForCausalLM';

function llamaModel(
  arch: LlamaLike,
  hf: Record<string, unknown>,
  store: TensorStore,
): { config: ModelConfig; weights: ModelWeights } {
  const qwen = arch === 'Qwen2ForCausalLM';
  const phi3 = arch === 'Phi3ForCausalLM';
  const c = configReader(hf);
  const act = hf.hidden_act ?? 'silu';
  if (act !== 'silu') unsupported(arch, `hidden_act ${String(act)}`);
  if (hf.mlp_bias === true) unsupported(arch, 'mlp_bias');
  if (qwen && hf.use_sliding_window === true) unsupported(arch, 'use_sliding_window');

  const dim = c.int('hidden_size');
  const nHeads = c.int('num_attention_heads');
  const nKvHeads = c.int('num_key_value_heads', nHeads);
  check(
    hf.head_dim !== undefined || dim % nHeads === 0,
    'bad_format',
    `config.json: hidden_size ${dim} is not a multiple of num_attention_heads ${nHeads}`,
  );
  const headDim = c.int('head_dim', dim / nHeads);
  check(
    nHeads % nKvHeads === 0,
    'bad_format',
    `config.json: ${nHeads} heads are not a multiple of ${nKvHeads} kv heads`,
  );
  check(
    headDim % 2 === 0,
    'bad_format',
    `config.json: head_dim ${headDim} is odd; RoPE rotates pairs`,
  );
  const hasLmHead = store.where.has('lm_head.weight');
  const tie = hf.tie_word_embeddings;
  const maxPositions = c.int(
    'max_position_embeddings',
    {
      LlamaForCausalLM: 2048,
      MistralForCausalLM: 131072,
      Phi3ForCausalLM: 4096,
      Qwen2ForCausalLM: 32768,
      Qwen3ForCausalLM: 32768,
    }[arch],
  );
  const rope = ropeSettings(arch, hf, headDim, maxPositions);
  const nLayers = c.int('num_hidden_layers');
  // Mistral and Phi-3: every layer attends to the last sliding_window positions, the query's own
  // included (masking_utils.sliding_window_overlay: kv_idx > q_idx − sliding_window).
  const window = arch === 'MistralForCausalLM' || phi3 ? hf.sliding_window : null;
  if (!(
    window === undefined ||
    window === null ||
    (Number.isSafeInteger(window) && (window as number) > 0)
  ))
    throw new LmdynError(
      'bad_format',
      `config.json: sliding_window ${String(window)} is not a positive integer or null`,
    );
  const config: ModelConfig = {
    architecture: 'llama',
    sourceArchitecture: arch,
    dim,
    hiddenDim: c.int('intermediate_size'),
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: c.int('vocab_size'),
    seqLen: rope.seqLen,
    norm: 'rmsnorm',
    normEps: c.float('rms_norm_eps', phi3 ? 1e-5 : 1e-6),
    mlp: 'swiglu',
    positional: 'rope',
    ropeTheta: rope.theta,
    ropeDim: rope.dim,
    // transformers defaults tie_word_embeddings to false for these; a file without lm_head is tied.
    tiedEmbeddings: tie === true || (tie !== false && !hasLmHead),
    bosId: c.tokenId('bos_token_id', qwen ? null : 1),
    eosId: c.tokenId('eos_token_id', qwen ? null : phi3 ? 32000 : 2),
    ...(rope.scaling ? { ropeScaling: rope.scaling } : {}),
    ...(typeof window === 'number' && window < rope.seqLen
      ? { attnWindow: new Array<number | null>(nLayers).fill(window) }
      : {}),
  };
  const { hiddenDim, vocabSize } = config;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const qkvBias = qwen || hf.attention_bias === true;
  const oBias = !qwen && hf.attention_bias === true;

  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const p = `model.layers.${l}.`;
    if (phi3) {
      layers.push(phi3Layer(store, p, config));
      continue;
    }
    layers.push({
      attnNorm: store.vector(`${p}input_layernorm.weight`, dim),
      attnNormBias: null,
      wq: ropeInterleaved(
        store.raw(`${p}self_attn.q_proj.weight`, [qDim, dim]),
        nHeads,
        headDim,
        dim,
      ),
      wk: ropeInterleaved(
        store.raw(`${p}self_attn.k_proj.weight`, [kvDim, dim]),
        nKvHeads,
        headDim,
        dim,
      ),
      wv: store.matrix(`${p}self_attn.v_proj.weight`, kvDim, dim),
      wo: store.matrix(`${p}self_attn.o_proj.weight`, dim, qDim),
      bq: qkvBias
        ? ropeInterleaved(store.raw(`${p}self_attn.q_proj.bias`, [qDim]), nHeads, headDim, 1).data
        : null,
      bk: qkvBias
        ? ropeInterleaved(store.raw(`${p}self_attn.k_proj.bias`, [kvDim]), nKvHeads, headDim, 1)
            .data
        : null,
      bv: qkvBias ? store.vector(`${p}self_attn.v_proj.bias`, kvDim) : null,
      bo: oBias ? store.vector(`${p}self_attn.o_proj.bias`, dim) : null,
      mlpNorm: store.vector(`${p}post_attention_layernorm.weight`, dim),
      mlpNormBias: null,
      wGate: store.matrix(`${p}mlp.gate_proj.weight`, hiddenDim, dim),
      wUp: store.matrix(`${p}mlp.up_proj.weight`, hiddenDim, dim),
      bUp: null,
      wDown: store.matrix(`${p}mlp.down_proj.weight`, dim, hiddenDim),
      bDown: null,
    });
  }
  const tokenEmbedding = store.matrix('model.embed_tokens.weight', vocabSize, dim);
  const weights: ModelWeights = {
    tokenEmbedding,
    positionEmbedding: null,
    layers,
    finalNorm: store.vector('model.norm.weight', dim),
    finalNormBias: null,
    unembedding: config.tiedEmbeddings
      ? tokenEmbedding
      : store.matrix('lm_head.weight', vocabSize, dim),
    unembeddingBias: null,
  };
  return { config, weights };
}

// ---- Qwen3 --------------------------------------------------------------------------------------

/**
 * Qwen3 is Llama with RMSNorm(q) and RMSNorm(k) per head before RoPE (modeling_qwen3.py) and
 * head_dim its own setting (Qwen3Config default 128; 0.6B: 16 heads × 128 > hidden 1024).
 * Qwen3Config's other defaults are given to llamaModel; o_proj has a bias with attention_bias,
 * like q/k/v (Llama's rule, not Qwen2's).
 */
function qwen3Model(
  hf: Record<string, unknown>,
  store: TensorStore,
): { config: ModelConfig; weights: ModelWeights } {
  const arch = 'Qwen3ForCausalLM';
  if (hf.use_sliding_window === true) unsupported(arch, 'use_sliding_window');
  const defaults = {
    head_dim: 128,
    max_position_embeddings: 32768,
    bos_token_id: null,
    eos_token_id: null,
  };
  const { config, weights } = llamaModel(arch, { ...defaults, ...hf }, store);
  const { headDim } = config;
  weights.layers.forEach((lw, l) => {
    const p = `model.layers.${l}.self_attn.`;
    lw.qNorm = ropeInterleaved(store.raw(`${p}q_norm.weight`, [headDim]), 1, headDim, 1).data;
    lw.kNorm = ropeInterleaved(store.raw(`${p}k_norm.weight`, [headDim]), 1, headDim, 1).data;
  });
  return { config: { ...config, qkNorm: true }, weights };
}

// ---- Gemma 2 / Gemma 3 ----------------------------------------------------------------------------

/**
 * Gemma 2 and Gemma 3 text models, from modeling_gemma2.py / modeling_gemma3.py:
 * - h0 = embed_tokens[ids] · √hidden_size, the factor cast to the weights' dtype as HF does
 *   (`torch.tensor(hidden_size**0.5, dtype=…)`: √1152 = 33.94 is 34.0 in bfloat16);
 * - x += post_attention_layernorm(attn(input_layernorm(x)));
 *   x += post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x))),
 *   mlp = down(gelu_tanh(gate(h)) ⊙ up(h)); every RMSNorm is x·σ ⊙ (1 + w);
 * - scores = q·k · query_pre_attn_scalar^−½; Gemma 2 soft-caps them, cap·tanh(s/cap)
 *   (attn_logit_softcapping; Gemma 3's attention does not pass the setting on, so neither do we);
 * - sliding layers see the last sliding_window positions (masking_utils: kv > q − window):
 *   `layer_types` when given, else Gemma 2's even layers and Gemma 3's layers with
 *   (i + 1) % sliding_window_pattern ≠ 0; Gemma 3's rotate with rope_local_base_freq, the global
 *   ones with rope_theta;
 * - Gemma 3: q_norm / k_norm per head before RoPE;
 * - logits = cap·tanh(logits/cap) with final_logit_softcapping.
 * Defaults are Gemma2Config's / Gemma3TextConfig's.
 */
function gemmaModel(
  arch: 'Gemma2ForCausalLM' | 'Gemma3ForCausalLM',
  hf: Record<string, unknown>,
  store: TensorStore,
): { config: ModelConfig; weights: ModelWeights } {
  const gemma3 = arch === 'Gemma3ForCausalLM';
  const c = configReader(hf);
  const act = hf.hidden_activation ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh' && act !== 'gelu_new') {
    unsupported(arch, `hidden_activation ${String(act)} (gelu_pytorch_tanh is)`);
  }
  if (hf.attention_bias === true) unsupported(arch, 'attention_bias');
  if (hf.use_bidirectional_attention === true) unsupported(arch, 'use_bidirectional_attention');
  const optional = (key: string, fallback: number | null): number | undefined => {
    const v = hf[key] === undefined ? fallback : hf[key];
    if (v === null) return undefined;
    check(
      typeof v === 'number' && Number.isFinite(v) && v > 0,
      'bad_format',
      `config.json: ${key} is not a positive number or null`,
    );
    return v as number;
  };

  const dim = c.int('hidden_size', 2304);
  const nHeads = c.int('num_attention_heads', 8);
  const nKvHeads = c.int('num_key_value_heads', 4);
  const headDim = c.int('head_dim', 256);
  const nLayers = c.int('num_hidden_layers', 26);
  check(
    nHeads % nKvHeads === 0,
    'bad_format',
    `config.json: ${nHeads} heads are not a multiple of ${nKvHeads} kv heads`,
  );
  check(
    headDim % 2 === 0,
    'bad_format',
    `config.json: head_dim ${headDim} is odd; RoPE rotates pairs`,
  );
  const window = optional('sliding_window', 4096);
  if (window === undefined) unsupported(arch, 'sliding_window null');
  const sliding = gemmaSlidingLayers(arch, hf, nLayers);
  const rope = gemmaRope(arch, hf);
  const vocabSize = c.int('vocab_size', gemma3 ? 262208 : 256000);
  const config: ModelConfig = {
    architecture: 'gemma',
    sourceArchitecture: arch,
    dim,
    hiddenDim: c.int('intermediate_size', 9216),
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    seqLen: c.int('max_position_embeddings', gemma3 ? 131072 : 8192),
    norm: 'rmsnorm',
    normEps: c.float('rms_norm_eps', 1e-6),
    mlp: 'geglu',
    positional: 'rope',
    ropeTheta: rope.global,
    ropeDim: headDim,
    tiedEmbeddings: hf.tie_word_embeddings !== false || !store.where.has('lm_head.weight'),
    bosId: c.tokenId('bos_token_id', 2),
    eosId: c.tokenId('eos_token_id', 1),
    attnScale: 1 / Math.sqrt(c.float('query_pre_attn_scalar', 256)),
    attnWindow: sliding.map((s) => (s ? (window as number) : null)),
    embedScale: inDtype(Math.sqrt(dim), store.where.get('model.embed_tokens.weight')?.info.dtype),
    postNorms: true,
    ...(gemma3 ? { qkNorm: true, ropeLocalTheta: rope.local } : {}),
  };
  const attnCap = gemma3 ? undefined : optional('attn_logit_softcapping', 50);
  const finalCap = optional('final_logit_softcapping', gemma3 ? null : 30);
  if (attnCap !== undefined) config.attnSoftcap = attnCap;
  if (finalCap !== undefined) config.finalSoftcap = finalCap;

  const { hiddenDim } = config;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const gain = (name: string, n: number): Float32Array => {
    const v = store.vector(name, n);
    for (let i = 0; i < n; i++) v[i] += 1; // Gemma's RMSNorm: x·σ ⊙ (1 + w)
    return v;
  };
  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayers; l++) {
    const p = `model.layers.${l}.`;
    const a = `${p}self_attn.`;
    const headGain = (name: string): Float32Array => {
      const v = ropeInterleaved(store.raw(name, [headDim]), 1, headDim, 1).data;
      for (let i = 0; i < headDim; i++) v[i] += 1;
      return v;
    };
    layers.push({
      attnNorm: gain(`${p}input_layernorm.weight`, dim),
      attnNormBias: null,
      wq: ropeInterleaved(store.raw(`${a}q_proj.weight`, [qDim, dim]), nHeads, headDim, dim),
      wk: ropeInterleaved(store.raw(`${a}k_proj.weight`, [kvDim, dim]), nKvHeads, headDim, dim),
      wv: store.matrix(`${a}v_proj.weight`, kvDim, dim),
      wo: store.matrix(`${a}o_proj.weight`, dim, qDim),
      bq: null,
      bk: null,
      bv: null,
      bo: null,
      mlpNorm: gain(`${p}pre_feedforward_layernorm.weight`, dim),
      mlpNormBias: null,
      wGate: store.matrix(`${p}mlp.gate_proj.weight`, hiddenDim, dim),
      wUp: store.matrix(`${p}mlp.up_proj.weight`, hiddenDim, dim),
      bUp: null,
      wDown: store.matrix(`${p}mlp.down_proj.weight`, dim, hiddenDim),
      bDown: null,
      attnPostNorm: gain(`${p}post_attention_layernorm.weight`, dim),
      mlpPostNorm: gain(`${p}post_feedforward_layernorm.weight`, dim),
      ...(gemma3
        ? { qNorm: headGain(`${a}q_norm.weight`), kNorm: headGain(`${a}k_norm.weight`) }
        : {}),
    });
  }
  const tokenEmbedding = store.matrix('model.embed_tokens.weight', vocabSize, dim);
  const weights: ModelWeights = {
    tokenEmbedding,
    positionEmbedding: null,
    layers,
    finalNorm: gain('model.norm.weight', dim),
    finalNormBias: null,
    unembedding: config.tiedEmbeddings
      ? tokenEmbedding
      : store.matrix('lm_head.weight', vocabSize, dim),
    unembeddingBias: null,
  };
  return { config, weights };
}

/** Which layers slide: `layer_types`, else Gemma 2's even layers / Gemma 3's sliding_window_pattern. */
function gemmaSlidingLayers(
  arch: 'Gemma2ForCausalLM' | 'Gemma3ForCausalLM',
  hf: Record<string, unknown>,
  nLayers: number,
): boolean[] {
  const types = hf.layer_types;
  if (types !== undefined && types !== null) {
    check(
      Array.isArray(types) &&
        types.length === nLayers &&
        types.every((t) => t === 'sliding_attention' || t === 'full_attention'),
      'bad_format',
      `config.json: layer_types is not a list of ${nLayers} "sliding_attention" / "full_attention"`,
    );
    return (types as string[]).map((t) => t === 'sliding_attention');
  }
  if (arch === 'Gemma2ForCausalLM') return Array.from({ length: nLayers }, (_, l) => l % 2 === 0);
  const pattern = hf.sliding_window_pattern ?? hf._sliding_window_pattern ?? 6;
  check(
    Number.isSafeInteger(pattern) && (pattern as number) > 0,
    'bad_format',
    `config.json: sliding_window_pattern ${JSON.stringify(pattern)} is not a positive integer`,
  );
  return Array.from({ length: nLayers }, (_, l) => (l + 1) % (pattern as number) !== 0);
}

/**
 * RoPE bases of the global and (Gemma 3) sliding layers: rope_theta and rope_local_base_freq, or
 * the per-layer-type `rope_parameters` of newer transformers. Scaled RoPE is refused.
 */
function gemmaRope(
  arch: 'Gemma2ForCausalLM' | 'Gemma3ForCausalLM',
  hf: Record<string, unknown>,
): { global: number; local: number } {
  const gemma3 = arch === 'Gemma3ForCausalLM';
  const base = (v: unknown, key: string): number => {
    check(
      typeof v === 'number' && Number.isFinite(v) && v > 0,
      'bad_format',
      `config.json: ${key} ${JSON.stringify(v)} is not a positive number`,
    );
    return v as number;
  };
  const plain = (r: unknown): boolean => {
    if (r === undefined || r === null) return true;
    const t = isRecord(r) ? (r.rope_type ?? r.type) : undefined;
    return t === 'default' || t === undefined;
  };
  const params = hf.rope_parameters;
  if (isRecord(params) && (isRecord(params.full_attention) || isRecord(params.sliding_attention))) {
    const full = params.full_attention as Record<string, unknown> | undefined;
    const slide = params.sliding_attention as Record<string, unknown> | undefined;
    if (!plain(full) || !plain(slide))
      unsupported(arch, `rope_parameters ${JSON.stringify(params)}`);
    const g = base(full?.rope_theta ?? hf.rope_theta ?? (gemma3 ? 1e6 : 10000), 'rope_theta');
    return {
      global: g,
      local: base(slide?.rope_theta ?? hf.rope_local_base_freq ?? 10000, 'rope_local_base_freq'),
    };
  }
  const scaling = hf.rope_scaling ?? params;
  if (!plain(scaling)) {
    unsupported(arch, `rope_scaling ${JSON.stringify(scaling)} (on the global layers)`);
  }
  const g = base(
    (isRecord(params) ? params.rope_theta : undefined) ?? hf.rope_theta ?? (gemma3 ? 1e6 : 10000),
    'rope_theta',
  );
  return { global: g, local: base(hf.rope_local_base_freq ?? 10000, 'rope_local_base_freq') };
}

/** x as the dtype of the weights holds it (HF casts Gemma's √d factor to the weights' dtype). */
function inDtype(x: number, dtype: string | undefined): number {
  if (dtype === 'F64') return x;
  if (dtype === 'F16') return roundToHalf(x);
  if (dtype === 'BF16') {
    const bits = new Uint32Array([f32ToBf16(x) << 16]);
    return new Float32Array(bits.buffer)[0];
  }
  return Math.fround(x);
}

/**
 * A Phi-3 decoder layer: `self_attn.qkv_proj` [q | k | v rows] and `mlp.gate_up_proj`
 * [gate | up rows] (Phi3MLP: `gate, up = chunk(2)`; up · silu(gate)) are split at load into
 * llama's separate matrices; only the first ropeDim dims of each q/k head rotate
 * (partial_rotary_factor) and only they are permuted.
 */
function phi3Layer(store: TensorStore, p: string, c: ModelConfig): LayerWeights {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, ropeDim } = c;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const qkv = store.raw(`${p}self_attn.qkv_proj.weight`, [qDim + 2 * kvDim, dim]);
  const gateUp = store.raw(`${p}mlp.gate_up_proj.weight`, [2 * hiddenDim, dim]);
  const rows = (w: Float32Array, from: number, n: number): Float32Array =>
    w.subarray(from * dim, (from + n) * dim);
  return {
    attnNorm: store.vector(`${p}input_layernorm.weight`, dim),
    attnNormBias: null,
    wq: ropeInterleaved(rows(qkv, 0, qDim), nHeads, headDim, dim, ropeDim),
    wk: ropeInterleaved(rows(qkv, qDim, kvDim), nKvHeads, headDim, dim, ropeDim),
    wv: newMatrix(kvDim, dim, copyF32(rows(qkv, qDim + kvDim, kvDim))),
    wo: store.matrix(`${p}self_attn.o_proj.weight`, dim, qDim),
    bq: null,
    bk: null,
    bv: null,
    bo: null,
    mlpNorm: store.vector(`${p}post_attention_layernorm.weight`, dim),
    mlpNormBias: null,
    wGate: newMatrix(hiddenDim, dim, copyF32(rows(gateUp, 0, hiddenDim))),
    wUp: newMatrix(hiddenDim, dim, copyF32(rows(gateUp, hiddenDim, hiddenDim))),
    bUp: null,
    wDown: store.matrix(`${p}mlp.down_proj.weight`, dim, hiddenDim),
    bDown: null,
  };
}

/**
 * RoPE's base, rotary dims, scaling and lmdyn's context for the llama family, from config.json's
 * `rope_theta`, `partial_rotary_factor` (Phi-3) and `rope_scaling` (or transformers 5's
 * `rope_parameters`; `rope_type`, or `type` as older configs spell it), read as
 * modeling_rope_utils.py reads them (model/rope.ts applies them). The context is
 * max_position_embeddings, except for dynamic NTK, which exists to run past it: there lmdyn allows
 * factor × max_position_embeddings positions.
 */
function ropeSettings(
  arch: LlamaLike,
  hf: Record<string, unknown>,
  headDim: number,
  maxPositions: number,
): { theta: number; dim: number; scaling: RopeScaling | undefined; seqLen: number } {
  const params = isRecord(hf.rope_parameters) ? hf.rope_parameters : null;
  const rs = isRecord(hf.rope_scaling) ? hf.rope_scaling : params;
  const num = (v: unknown, what: string): number => {
    if (!(typeof v === 'number' && Number.isFinite(v) && v > 0))
      throw new LmdynError(
        'bad_format',
        `config.json: ${what} ${JSON.stringify(v)} is not a positive number`,
      );
    return v;
  };
  const theta = num(hf.rope_theta ?? params?.rope_theta ?? 10000, 'rope_theta');
  const phi3 = arch === 'Phi3ForCausalLM';
  const partial = phi3
    ? num(hf.partial_rotary_factor ?? params?.partial_rotary_factor ?? 1, 'partial_rotary_factor')
    : 1;
  const dim = Math.floor(headDim * partial); // HF: int(head_dim * partial_rotary_factor)
  check(
    partial <= 1 && dim >= 2 && dim % 2 === 0,
    'bad_format',
    `config.json: ${dim} rotary dims per head (head_dim ${headDim} × partial_rotary_factor ${partial}) is not a positive even number`,
  );
  let type = String(rs?.rope_type ?? rs?.type ?? 'default');
  if (phi3 && (type === 'su' || type === 'yarn')) type = 'longrope'; // Phi3Config's renaming
  const key = (k: string): number => num(rs?.[k], `rope_scaling.${k}`);
  const plain = { theta, dim, seqLen: maxPositions };
  if (type === 'default') return { ...plain, scaling: undefined };
  if (type === 'linear') return { ...plain, scaling: { type, factor: key('factor') } };
  if (type === 'dynamic' && !phi3) {
    const factor = key('factor');
    return {
      ...plain,
      scaling: { type, factor, originalContext: maxPositions },
      seqLen: Math.max(maxPositions, Math.floor(maxPositions * factor)),
    };
  }
  if (type === 'llama3' && !phi3) {
    const scaling: RopeScaling = {
      type,
      factor: key('factor'),
      lowFreqFactor: key('low_freq_factor'),
      highFreqFactor: key('high_freq_factor'),
      originalContext: key('original_max_position_embeddings'),
    };
    check(
      scaling.highFreqFactor > scaling.lowFreqFactor,
      'bad_format',
      `config.json: rope_scaling.high_freq_factor ${scaling.highFreqFactor} is not above low_freq_factor ${scaling.lowFreqFactor}`,
    );
    return { ...plain, scaling };
  }
  if (type === 'longrope' && phi3) {
    const factors = (k: string): number[] => {
      const v = rs?.[k];
      if (!(
        Array.isArray(v) &&
        v.length === dim / 2 &&
        v.every((x) => typeof x === 'number' && x > 0)
      ))
        throw new LmdynError(
          'bad_format',
          `config.json: rope_scaling.${k} is not a list of ${dim / 2} positive numbers (rotary dims / 2)`,
        );
      return v as number[];
    };
    const original = num(
      hf.original_max_position_embeddings ?? rs?.original_max_position_embeddings ?? maxPositions,
      'original_max_position_embeddings',
    );
    // transformers < 5 takes factor = max_position_embeddings / original when config.json has
    // original_max_position_embeddings, transformers 5 rope_scaling.factor when given: refuse a
    // config where the two differ rather than pick one.
    const ratio = maxPositions / original;
    const given = rs?.factor;
    if (
      given !== undefined &&
      given !== null &&
      Math.abs(num(given, 'rope_scaling.factor') - ratio) > 1e-9 * ratio
    )
      unsupported(
        arch,
        `longrope with rope_scaling.factor ${String(given)} ≠ max_position_embeddings / original_max_position_embeddings (${ratio})`,
      );
    const attention = rs?.attention_factor;
    const attentionFactor =
      attention !== undefined && attention !== null
        ? num(attention, 'rope_scaling.attention_factor')
        : ratio <= 1
          ? 1
          : Math.sqrt(1 + Math.log(ratio) / Math.log(original));
    return {
      ...plain,
      scaling: {
        type,
        shortFactor: factors('short_factor'),
        longFactor: factors('long_factor'),
        originalContext: original,
        attentionFactor,
      },
    };
  }
  const known = phi3 ? 'default, longrope (su)' : 'default, linear, dynamic, llama3';
  throw new LmdynError(
    'unsupported',
    `${arch}: rope_scaling type ${JSON.stringify(type)} is not supported (${arch} reads ${known})`,
  );
}

/**
 * Undoes HF's rotate_half row order (convert_llama_weights_to_hf.py `permute`; MANIFEST §5): in
 * each head, interleaved row 2i+j was stored at HF row i + j·ropeDim/2 (j ∈ {0, 1}, i <
 * ropeDim/2); rows from ropeDim on (GPT-NeoX's partial rotary) do not rotate and stay put.
 * `hfRows`: [nHeads·headDim, cols] in HF order → a fresh allocF32 matrix in interleaved order.
 */
function ropeInterleaved(
  hfRows: Float32Array,
  nHeads: number,
  headDim: number,
  cols: number,
  ropeDim = headDim,
): Matrix {
  const out = allocF32(hfRows.length);
  out.set(hfRows);
  const half = ropeDim / 2;
  for (let h = 0; h < nHeads; h++) {
    const base = h * headDim;
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (base + i + j * half) * cols;
        out.set(hfRows.subarray(from, from + cols), (base + 2 * i + j) * cols);
      }
    }
  }
  return newMatrix(nHeads * headDim, cols, out);
}

// ---- GPT-2 --------------------------------------------------------------------------------------

function gpt2Model(
  hf: Record<string, unknown>,
  store: TensorStore,
): { config: ModelConfig; weights: ModelWeights } {
  const arch = 'GPT2LMHeadModel';
  const c = configReader(hf);
  const act = hf.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new') unsupported(arch, `activation_function ${String(act)} (only gelu_new)`);
  if (hf.scale_attn_by_inverse_layer_idx === true)
    unsupported(arch, 'scale_attn_by_inverse_layer_idx');
  if (hf.scale_attn_weights === false) unsupported(arch, 'scale_attn_weights false');

  const dim = c.int('n_embd');
  const nHeads = c.int('n_head');
  check(
    dim % nHeads === 0,
    'bad_format',
    `config.json: n_embd ${dim} is not a multiple of n_head ${nHeads}`,
  );
  const hiddenDim = c.int('n_inner', 4 * dim);
  const vocabSize = c.int('vocab_size');
  const seqLen = c.int('n_positions', 1024);
  // Saved GPT-2 checkpoints name tensors `transformer.*` (GPT2LMHeadModel) or bare (GPT2Model).
  const pre =
    store.where.has('transformer.wte.weight') || !store.where.has('wte.weight')
      ? 'transformer.'
      : '';
  const hasLmHead = store.where.has('lm_head.weight');
  const config: ModelConfig = {
    architecture: 'gpt2',
    sourceArchitecture: arch,
    dim,
    hiddenDim,
    nLayers: c.int('n_layer'),
    nHeads,
    nKvHeads: nHeads,
    headDim: dim / nHeads,
    vocabSize,
    seqLen,
    norm: 'layernorm',
    normEps: c.float('layer_norm_epsilon', 1e-5),
    mlp: 'gelu_new',
    positional: 'learned',
    ropeTheta: 10000, // unused with learned positions
    ropeDim: 0,
    // GPT2Config ties by default; an untied file says so and carries lm_head.weight.
    tiedEmbeddings: !(hf.tie_word_embeddings === false && hasLmHead),
    bosId: c.tokenId('bos_token_id', 50256),
    eosId: c.tokenId('eos_token_id', 50256),
  };

  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const p = `${pre}h.${l}.`;
    // c_attn: x·W + b with W [d, 3d]; output columns are q | k | v.
    const cAttn = store.raw(`${p}attn.c_attn.weight`, [dim, 3 * dim]);
    const bAttn = store.vector(`${p}attn.c_attn.bias`, 3 * dim);
    layers.push({
      attnNorm: store.vector(`${p}ln_1.weight`, dim),
      attnNormBias: store.vector(`${p}ln_1.bias`, dim),
      wq: conv1dColumns(cAttn, dim, 3 * dim, 0, dim),
      wk: conv1dColumns(cAttn, dim, 3 * dim, dim, dim),
      wv: conv1dColumns(cAttn, dim, 3 * dim, 2 * dim, dim),
      wo: conv1dColumns(store.raw(`${p}attn.c_proj.weight`, [dim, dim]), dim, dim, 0, dim),
      bq: copyF32(bAttn.subarray(0, dim)),
      bk: copyF32(bAttn.subarray(dim, 2 * dim)),
      bv: copyF32(bAttn.subarray(2 * dim, 3 * dim)),
      bo: store.vector(`${p}attn.c_proj.bias`, dim),
      mlpNorm: store.vector(`${p}ln_2.weight`, dim),
      mlpNormBias: store.vector(`${p}ln_2.bias`, dim),
      wGate: null,
      wUp: conv1dColumns(
        store.raw(`${p}mlp.c_fc.weight`, [dim, hiddenDim]),
        dim,
        hiddenDim,
        0,
        hiddenDim,
      ),
      bUp: store.vector(`${p}mlp.c_fc.bias`, hiddenDim),
      wDown: conv1dColumns(
        store.raw(`${p}mlp.c_proj.weight`, [hiddenDim, dim]),
        hiddenDim,
        dim,
        0,
        dim,
      ),
      bDown: store.vector(`${p}mlp.c_proj.bias`, dim),
    });
  }
  const tokenEmbedding = store.matrix(`${pre}wte.weight`, vocabSize, dim);
  const weights: ModelWeights = {
    tokenEmbedding,
    positionEmbedding: store.matrix(`${pre}wpe.weight`, seqLen, dim),
    layers,
    finalNorm: store.vector(`${pre}ln_f.weight`, dim),
    finalNormBias: store.vector(`${pre}ln_f.bias`, dim),
    unembedding: config.tiedEmbeddings
      ? tokenEmbedding
      : store.matrix('lm_head.weight', vocabSize, dim),
    unembeddingBias: null,
  };
  return { config, weights };
}

// ---- GPT-NeoX (Pythia) ----------------------------------------------------------------------------

function gptNeoXModel(
  hf: Record<string, unknown>,
  store: TensorStore,
): { config: ModelConfig; weights: ModelWeights } {
  const arch = 'GPTNeoXForCausalLM';
  const c = configReader(hf);
  const act = hf.hidden_act ?? 'gelu';
  if (act !== 'gelu' && act !== 'gelu_new') {
    unsupported(arch, `hidden_act ${String(act)} (gelu and gelu_new are)`);
  }
  // transformers ≤ 4.44 name the rotary settings rotary_pct / rotary_emb_base and rope_scaling;
  // later versions also write rope_theta, partial_rotary_factor, or a rope_parameters object.
  const rope = (hf.rope_parameters ?? hf.rope_scaling ?? null) as Record<string, unknown> | null;
  const ropeType = rope ? (rope.rope_type ?? rope.type ?? 'default') : 'default';
  if (ropeType !== 'default') unsupported(arch, `rope scaling ${JSON.stringify(rope)}`);
  const ropeSetting = (keys: string[], fallback: number): number => {
    for (const k of keys) {
      const v = rope?.[k] ?? hf[k];
      if (v !== undefined && v !== null) return v as number;
    }
    return fallback;
  };
  const rotaryPct = ropeSetting(['partial_rotary_factor', 'rotary_pct'], 0.25);
  const ropeTheta = ropeSetting(['rope_theta', 'rotary_emb_base'], 10000);

  const dim = c.int('hidden_size');
  const nHeads = c.int('num_attention_heads');
  check(
    dim % nHeads === 0,
    'bad_format',
    `config.json: hidden_size ${dim} is not a multiple of num_attention_heads ${nHeads}`,
  );
  const headDim = dim / nHeads;
  check(
    typeof rotaryPct === 'number' && rotaryPct > 0 && rotaryPct <= 1,
    'bad_format',
    `config.json: rotary_pct ${String(rotaryPct)} is not in (0, 1]`,
  );
  check(
    typeof ropeTheta === 'number' && Number.isFinite(ropeTheta) && ropeTheta > 0,
    'bad_format',
    `config.json: rotary_emb_base ${String(ropeTheta)} is not a positive number`,
  );
  const ropeDim = Math.floor(headDim * rotaryPct); // HF: int(head_size * rotary_pct)
  check(
    ropeDim >= 2 && ropeDim % 2 === 0,
    'bad_format',
    `config.json: ${ropeDim} rotary dims per head (head size ${headDim} × rotary_pct ${rotaryPct}) is not a positive even number`,
  );
  const hiddenDim = c.int('intermediate_size');
  const vocabSize = c.int('vocab_size');
  const hasHead = store.where.has('embed_out.weight');
  const bias = hf.attention_bias !== false; // GPTNeoXConfig default True
  const config: ModelConfig = {
    architecture: 'gpt_neox',
    sourceArchitecture: arch,
    dim,
    hiddenDim,
    nLayers: c.int('num_hidden_layers'),
    nHeads,
    nKvHeads: nHeads,
    headDim,
    vocabSize,
    seqLen: c.int('max_position_embeddings', 2048),
    norm: 'layernorm',
    normEps: c.float('layer_norm_eps', 1e-5),
    mlp: act,
    positional: 'rope',
    ropeTheta,
    ropeDim,
    // GPTNeoXConfig defaults tie_word_embeddings to false; a file without embed_out is tied.
    tiedEmbeddings: hf.tie_word_embeddings === true || !hasHead,
    bosId: c.tokenId('bos_token_id', 0),
    eosId: c.tokenId('eos_token_id', 2),
    residual: hf.use_parallel_residual === false ? 'sequential' : 'parallel',
    attentionBias: bias,
  };

  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const p = `gpt_neox.layers.${l}.`;
    // query_key_value: rows [head h][q | k | v][i] (HF views its output as [heads, 3·headDim]).
    const qkv = store.raw(`${p}attention.query_key_value.weight`, [3 * dim, dim]);
    const qkvBias = bias ? store.raw(`${p}attention.query_key_value.bias`, [3 * dim]) : null;
    const part = (w: Float32Array, j: number, cols: number): Float32Array => {
      const out = new Float32Array(dim * cols);
      for (let h = 0; h < nHeads; h++) {
        const from = (h * 3 + j) * headDim * cols;
        out.set(w.subarray(from, from + headDim * cols), h * headDim * cols);
      }
      return out;
    };
    const rotated = (w: Float32Array, j: number, cols: number): Matrix =>
      ropeInterleaved(part(w, j, cols), nHeads, headDim, cols, ropeDim);
    layers.push({
      attnNorm: store.vector(`${p}input_layernorm.weight`, dim),
      attnNormBias: store.vector(`${p}input_layernorm.bias`, dim),
      wq: rotated(qkv, 0, dim),
      wk: rotated(qkv, 1, dim),
      wv: newMatrix(dim, dim, copyF32(part(qkv, 2, dim))),
      wo: store.matrix(`${p}attention.dense.weight`, dim, dim),
      bq: qkvBias ? rotated(qkvBias, 0, 1).data : null,
      bk: qkvBias ? rotated(qkvBias, 1, 1).data : null,
      bv: qkvBias ? copyF32(part(qkvBias, 2, 1)) : null,
      bo: bias ? store.vector(`${p}attention.dense.bias`, dim) : null,
      mlpNorm: store.vector(`${p}post_attention_layernorm.weight`, dim),
      mlpNormBias: store.vector(`${p}post_attention_layernorm.bias`, dim),
      wGate: null,
      wUp: store.matrix(`${p}mlp.dense_h_to_4h.weight`, hiddenDim, dim),
      bUp: store.vector(`${p}mlp.dense_h_to_4h.bias`, hiddenDim),
      wDown: store.matrix(`${p}mlp.dense_4h_to_h.weight`, dim, hiddenDim),
      bDown: store.vector(`${p}mlp.dense_4h_to_h.bias`, dim),
    });
  }
  const tokenEmbedding = store.matrix('gpt_neox.embed_in.weight', vocabSize, dim);
  const weights: ModelWeights = {
    tokenEmbedding,
    positionEmbedding: null,
    layers,
    finalNorm: store.vector('gpt_neox.final_layer_norm.weight', dim),
    finalNormBias: store.vector('gpt_neox.final_layer_norm.bias', dim),
    unembedding: config.tiedEmbeddings
      ? tokenEmbedding
      : store.matrix('embed_out.weight', vocabSize, dim),
    unembeddingBias: null,
  };
  return { config, weights };
}

// ---- GPT-Neo (TinyStories) ------------------------------------------------------------------------

function gptNeoModel(
  hf: Record<string, unknown>,
  store: TensorStore,
): { config: ModelConfig; weights: ModelWeights } {
  const arch = 'GPTNeoForCausalLM';
  const c = configReader(hf);
  const act = hf.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu') {
    unsupported(arch, `activation_function ${String(act)} (gelu_new and gelu are)`);
  }
  const dim = c.int('hidden_size');
  const nHeads = c.int(hf.num_heads === undefined ? 'num_attention_heads' : 'num_heads');
  check(
    dim % nHeads === 0,
    'bad_format',
    `config.json: hidden_size ${dim} is not a multiple of num_heads ${nHeads}`,
  );
  const nLayers = c.int(hf.num_layers === undefined ? 'num_hidden_layers' : 'num_layers');
  const windowSize = c.int('window_size', 256);
  const attnWindow = attentionLayers(hf.attention_types, nLayers).map((t) =>
    t === 'local' ? windowSize : null,
  );
  const hiddenDim = c.int('intermediate_size', 4 * dim);
  const vocabSize = c.int('vocab_size');
  const seqLen = c.int('max_position_embeddings', 2048);
  const hasLmHead = store.where.has('lm_head.weight');
  const config: ModelConfig = {
    architecture: 'gpt_neo',
    sourceArchitecture: arch,
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads: nHeads,
    headDim: dim / nHeads,
    vocabSize,
    seqLen,
    norm: 'layernorm',
    normEps: c.float('layer_norm_epsilon', 1e-5),
    mlp: act,
    positional: 'learned',
    ropeTheta: 10000, // unused with learned positions
    ropeDim: 0,
    // GPTNeoConfig ties by default; an untied file says so and carries lm_head.weight.
    tiedEmbeddings: !(hf.tie_word_embeddings === false && hasLmHead),
    bosId: c.tokenId('bos_token_id', 50256),
    eosId: c.tokenId('eos_token_id', 50256),
    attnScale: 1, // GPTNeoSelfAttention._attn: softmax(q·kᵀ), no 1/√d
    attnWindow,
  };

  const layers: LayerWeights[] = [];
  for (let l = 0; l < nLayers; l++) {
    const p = `transformer.h.${l}.`;
    const a = `${p}attn.attention.`;
    layers.push({
      attnNorm: store.vector(`${p}ln_1.weight`, dim),
      attnNormBias: store.vector(`${p}ln_1.bias`, dim),
      wq: store.matrix(`${a}q_proj.weight`, dim, dim),
      wk: store.matrix(`${a}k_proj.weight`, dim, dim),
      wv: store.matrix(`${a}v_proj.weight`, dim, dim),
      wo: store.matrix(`${a}out_proj.weight`, dim, dim),
      bq: null,
      bk: null,
      bv: null,
      bo: store.vector(`${a}out_proj.bias`, dim),
      mlpNorm: store.vector(`${p}ln_2.weight`, dim),
      mlpNormBias: store.vector(`${p}ln_2.bias`, dim),
      wGate: null,
      wUp: store.matrix(`${p}mlp.c_fc.weight`, hiddenDim, dim),
      bUp: store.vector(`${p}mlp.c_fc.bias`, hiddenDim),
      wDown: store.matrix(`${p}mlp.c_proj.weight`, dim, hiddenDim),
      bDown: store.vector(`${p}mlp.c_proj.bias`, dim),
    });
  }
  const tokenEmbedding = store.matrix('transformer.wte.weight', vocabSize, dim);
  const weights: ModelWeights = {
    tokenEmbedding,
    positionEmbedding: store.matrix('transformer.wpe.weight', seqLen, dim),
    layers,
    finalNorm: store.vector('transformer.ln_f.weight', dim),
    finalNormBias: store.vector('transformer.ln_f.bias', dim),
    unembedding: config.tiedEmbeddings
      ? tokenEmbedding
      : store.matrix('lm_head.weight', vocabSize, dim),
    unembeddingBias: null,
  };
  return { config, weights };
}

/**
 * GPTNeoConfig.expand_attention_types_params: [[["global", "local"], 12]] → 24 layer types
 * (default as GPTNeoConfig's); the list must name every layer.
 */
function attentionLayers(types: unknown, nLayers: number): ('global' | 'local')[] {
  const spec = types ?? [[['global', 'local'], nLayers / 2]];
  const bad = (): never => {
    throw new LmdynError(
      'bad_format',
      `config.json: attention_types ${JSON.stringify(types)} is not [[["global"|"local", ...], count], ...]`,
    );
  };
  const out: ('global' | 'local')[] = [];
  if (!Array.isArray(spec)) bad();
  for (const item of spec as unknown[]) {
    if (!Array.isArray(item) || item.length !== 2 || !Array.isArray(item[0])) bad();
    const [kinds, count] = item as [unknown[], unknown];
    if (!(Number.isSafeInteger(count) && (count as number) >= 0 && (count as number) <= nLayers))
      bad();
    for (let i = 0; i < (count as number); i++) {
      for (const k of kinds) {
        if (k !== 'global' && k !== 'local') bad();
        out.push(k as 'global' | 'local');
      }
      if (out.length > nLayers) break;
    }
  }
  check(
    out.length === nLayers,
    'bad_format',
    `config.json: attention_types name ${out.length} layers, num_layers is ${nLayers}`,
  );
  return out;
}

/**
 * Columns [start, start + count) of a Conv1D weight `w` [rows = in, cols = out], transposed to a
 * Matrix [count (out), rows (in)] in allocF32 memory.
 */
function conv1dColumns(
  w: Float32Array,
  rows: number,
  cols: number,
  start: number,
  count: number,
): Matrix {
  const out = allocF32(count * rows);
  for (let i = 0; i < rows; i++) {
    const row = i * cols + start;
    for (let o = 0; o < count; o++) out[o * rows + i] = w[row + o];
  }
  return newMatrix(count, rows, out);
}

function copyF32(src: Float32Array): Float32Array {
  const out = allocF32(src.length);
  out.set(src);
  return out;
}

// ---- tensors from one file or from shards ---------------------------------------------------------

/** The weight files of an HF folder, in transformers' order of preference. */
export const WEIGHT_FILES = [
  'model.safetensors',
  'model.safetensors.index.json',
  'pytorch_model.bin',
  'pytorch_model.bin.index.json',
] as const;

interface TensorStore {
  files: SafetensorsFile[];
  where: Map<string, { file: SafetensorsFile; info: SafetensorsTensorInfo }>;
  /** A tensor of `n` values as an allocF32 vector. */
  vector(name: string, n: number): Float32Array;
  /** A [rows, cols] tensor as an allocF32 Matrix. */
  matrix(name: string, rows: number, cols: number): Matrix;
  /** A tensor of the given shape in a scratch buffer, for loaders that rearrange it. */
  raw(name: string, shape: number[]): Float32Array;
  close(): void;
}

/**
 * The folder's tensors, from the first of model.safetensors, model.safetensors.index.json,
 * pytorch_model.bin, pytorch_model.bin.index.json (transformers' order of preference). A
 * PyTorch checkpoint is read through io/torch.ts as byte ranges, like a safetensors file.
 */
function openTensorStore(dir: string, keep16?: H16Format): TensorStore {
  const files: SafetensorsFile[] = [];
  const where = new Map<string, { file: SafetensorsFile; info: SafetensorsTensorInfo }>();
  const close = (): void => files.forEach(closeSafetensors);
  const single = (path: string, open: (path: string) => SafetensorsFile): void => {
    const file = open(path);
    files.push(file);
    for (const info of file.tensors) where.set(info.name, { file, info });
  };
  const sharded = (index: string, open: (path: string) => SafetensorsFile): void => {
    const weightMap = readJsonObject(index).weight_map;
    check(isRecord(weightMap), 'bad_format', `${index}: weight_map is missing`);
    const shards = new Map<string, SafetensorsFile>();
    for (const [name, shard] of Object.entries(weightMap)) {
      check(
        typeof shard === 'string',
        'bad_format',
        `${index}: weight_map.${name} is not a file name`,
      );
      const shardPath = resolve(dir, shard);
      check(
        !relative(resolve(dir), shardPath).startsWith('..'),
        'bad_format',
        `${index}: shard ${shard} is outside the model folder`,
      );
      let file = shards.get(shardPath);
      if (!file) {
        file = open(shardPath);
        shards.set(shardPath, file);
        files.push(file);
      }
      const info = file.byName.get(name);
      check(info, 'bad_format', `${index}: tensor ${name} is not in its shard ${shard}`);
      where.set(name, { file, info });
    }
  };
  try {
    const found = WEIGHT_FILES.find((f) => existsSync(join(dir, f)));
    if (found === undefined) {
      throw new LmdynError('not_found', `${dir} has none of ${WEIGHT_FILES.join(', ')}`);
    }
    const open = found.startsWith('pytorch_model') ? openTorchCheckpoint : openSafetensors;
    if (found.endsWith('.index.json')) sharded(join(dir, found), open);
    else single(join(dir, found), open);
  } catch (err) {
    close();
    throw err;
  }

  const locate = (
    name: string,
    shape: number[],
  ): { file: SafetensorsFile; info: SafetensorsTensorInfo } => {
    const hit = where.get(name);
    if (!hit) throw new LmdynError('bad_format', `${dir}: missing tensor ${name}`);
    const got = hit.info.shape;
    check(
      got.join() === shape.join(),
      'bad_format',
      `${dir}: tensor ${name} has shape [${got.join(', ')}], expected [${shape.join(', ')}]`,
    );
    return hit;
  };
  return {
    files,
    where,
    vector: (name, n) => {
      const { file } = locate(name, [n]);
      return readTensorF32(file, name);
    },
    matrix: (name, rows, cols) => {
      const { file } = locate(name, [rows, cols]);
      if (keep16) return readMatrix16(file, name, rows, cols, keep16);
      return newMatrix(rows, cols, readTensorF32(file, name));
    },
    raw: (name, shape) => {
      const { file } = locate(name, shape);
      return readTensorF32(file, name, new Float32Array(shape.reduce((a, d) => a * d, 1)));
    },
    close,
  };
}

function readJsonObject(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new LmdynError('bad_format', `${path}: not valid JSON (${(err as Error).message})`);
  }
  if (!isRecord(parsed)) throw new LmdynError('bad_format', `${path}: not a JSON object`);
  return parsed;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
