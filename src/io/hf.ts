/**
 * Hugging Face model folders (transformers `save_pretrained` layout): `config.json` plus
 * `model.safetensors`, or `model.safetensors.index.json` whose `weight_map` names the shard of
 * every tensor, or the same as `pytorch_model.bin[.index.json]` (torch.save zip, io/torch.ts). Architectures and their tensor names follow transformers' modeling files:
 *
 * - LlamaForCausalLM / Qwen2ForCausalLM: `model.embed_tokens`, `model.layers.{i}.input_layernorm`,
 *   `self_attn.{q,k,v,o}_proj` (Qwen2: q/k/v biases), `post_attention_layernorm`,
 *   `mlp.{gate,up,down}_proj`, `model.norm`, `lm_head` unless tied. HF stores Q/K rows in
 *   rotate_half order; they are permuted back to llama2.c's interleaved pairs (MANIFEST §5).
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
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { LmdynError, check } from '../errors.js';
import type { LayerWeights, ModelConfig, ModelWeights } from '../model/types.js';
import type { Matrix } from '../tensor/matrix.js';
import { newMatrix } from '../tensor/matrix.js';
import { allocF32 } from '../tensor/memory.js';
import { loadHfTokenizer } from '../tokenizer/hf.js';
import type { LoadedModel } from '../model/types.js';
import {
  closeSafetensors,
  openSafetensors,
  readTensorF32,
  type SafetensorsFile,
  type SafetensorsTensorInfo,
} from './safetensors.js';
import { openTorchCheckpoint } from './torch.js';

const SUPPORTED = [
  'LlamaForCausalLM',
  'Qwen2ForCausalLM',
  'GPT2LMHeadModel',
  'GPTNeoXForCausalLM',
  'GPTNeoForCausalLM',
] as const;
type SupportedArchitecture = (typeof SUPPORTED)[number];

/** Loads a Hugging Face model folder; the tokenizer is null when it has no tokenizer.json. */
export function loadHfFolder(dir: string): LoadedModel {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) {
    throw new LmdynError(
      'not_found',
      `${dir} has no config.json (a Hugging Face model folder needs one)`,
    );
  }
  const hf = readJsonObject(configPath);
  const arch = architectureOf(hf, configPath);
  const store = openTensorStore(dir);
  try {
    const { config, weights } =
      arch === 'GPT2LMHeadModel'
        ? gpt2Model(hf, store)
        : arch === 'GPTNeoXForCausalLM'
          ? gptNeoXModel(hf, store)
          : arch === 'GPTNeoForCausalLM'
            ? gptNeoModel(hf, store)
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

// ---- Llama / Qwen2 ------------------------------------------------------------------------------

function llamaModel(
  arch: 'LlamaForCausalLM' | 'Qwen2ForCausalLM',
  hf: Record<string, unknown>,
  store: TensorStore,
): { config: ModelConfig; weights: ModelWeights } {
  const qwen = arch === 'Qwen2ForCausalLM';
  const c = configReader(hf);
  const act = hf.hidden_act ?? 'silu';
  if (act !== 'silu') unsupported(arch, `hidden_act ${String(act)}`);
  const scaling = hf.rope_scaling as { rope_type?: unknown; type?: unknown } | null | undefined;
  if (scaling && (scaling.rope_type ?? scaling.type) !== 'default') {
    unsupported(arch, `rope_scaling ${JSON.stringify(scaling)}`);
  }
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
  const config: ModelConfig = {
    architecture: 'llama',
    sourceArchitecture: arch,
    dim,
    hiddenDim: c.int('intermediate_size'),
    nLayers: c.int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: c.int('vocab_size'),
    seqLen: c.int('max_position_embeddings', qwen ? 32768 : 2048),
    norm: 'rmsnorm',
    normEps: c.float('rms_norm_eps', 1e-6),
    mlp: 'swiglu',
    positional: 'rope',
    ropeTheta: c.float('rope_theta', 10000),
    ropeDim: headDim,
    // transformers defaults tie_word_embeddings to false for both; a file without lm_head is tied.
    tiedEmbeddings: tie === true || (tie !== false && !hasLmHead),
    bosId: c.tokenId('bos_token_id', qwen ? null : 1),
    eosId: c.tokenId('eos_token_id', qwen ? null : 2),
  };
  const { hiddenDim, vocabSize } = config;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const qkvBias = qwen || hf.attention_bias === true;
  const oBias = !qwen && hf.attention_bias === true;

  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    const p = `model.layers.${l}.`;
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
function openTensorStore(dir: string): TensorStore {
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
