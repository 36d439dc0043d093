/**
 * GGUF architectures as llama.cpp names them (llama-arch.cpp LLM_TENSOR_NAMES, convert_hf_to_gguf.py):
 * one table entry per `general.architecture` gives the metadata key prefix, the tensors per layer
 * and their lmdyn fields, the row order of the rotary q/k rows, and the norm / MLP / position
 * conventions. The loader (gguf.ts) and the writer (gguf-write.ts) both read the table, so an
 * architecture is one entry plus its special cases (`special`, `refuse`, `extraKvs`).
 *
 * Rotary row order: llama.cpp's converter permutes Q/K rows of `llama` into interleaved pairs
 * (LLAMA_ROPE_TYPE_NORM), the order lmdyn uses (model/types.ts), so they load as stored. For
 * LLAMA_ROPE_TYPE_NEOX architectures (qwen2, gptneox) the converter keeps Hugging Face's
 * rotate_half order ('halves'): the loader permutes them to interleaved pairs, the writer back.
 */
import { LmdynError, check } from '../errors.js';
import type { Architecture, LayerWeights, ModelConfig, ModelWeights } from '../model/types.js';
import type { Matrix } from '../tensor/matrix.js';
import { MAX_SEQ_LEN } from './llama2c.js';
import { describe, type GgufMetadata, type Kv } from './gguf-metadata.js';
import { freeMatrix, selectEntries, selectRows, type GgufTensors } from './gguf-tensors.js';
import { ValueType } from './gguf-reader.js';

/** A tensor dimension, resolved from the config. */
type Dim = 'dim' | 'q' | 'kv' | 'qkv' | 'hidden' | 'vocab' | 'ctx';

/** lmdyn's layer fields, plus llama.cpp's fused q|k|v rows (attn_qkv). */
type LayerField = Exclude<keyof LayerWeights, never> | 'wqkv' | 'bqkv';
type GlobalField = Exclude<keyof ModelWeights, 'layers'>;

interface TensorSpec<F> {
  /** llama.cpp's name (without `blk.N.` for a layer tensor). */
  name: string;
  field: F;
  /** [rows] for a vector, [rows, cols] for a matrix (GGUF lists it as [cols, rows]). */
  shape: [Dim] | [Dim, Dim];
  /** Absent in some files of the architecture (the field is then null). */
  optional?: boolean;
}

export interface GgufArchitecture {
  /** general.architecture and the prefix of its metadata keys. */
  name: string;
  architecture: Architecture;
  norm: ModelConfig['norm'];
  mlp: ModelConfig['mlp'];
  positional: ModelConfig['positional'];
  /** Row order of Q/K in the file ('halves': HF rotate_half, LLAMA_ROPE_TYPE_NEOX); null: no RoPE. */
  rope: 'interleaved' | 'halves' | null;
  global: TensorSpec<GlobalField>[];
  layer: TensorSpec<LayerField>[];
  /** The config settings the architecture adds to the common ones. */
  special?: (meta: GgufMetadata, c: ModelConfig, tensors: GgufTensors) => Partial<ModelConfig>;
  /** Refuses metadata naming a feature lmdyn does not implement. */
  refuse?: (meta: GgufMetadata) => void;
  /** The writer's architecture-specific metadata. */
  extraKvs?: (c: ModelConfig) => Kv[];
  /**
   * output.weight is written even when tied (llama.cpp's GPT2Model writes it), so one equal to
   * token_embd.weight is read as tied.
   */
  writesTiedOutput?: boolean;
  /** GPT-NeoX's parallel residual can be stored (`{arch}.use_parallel_residual`). */
  parallelResidual?: boolean;
  /** Whether the writer stores a model of this config as this architecture. */
  writes: (c: ModelConfig) => boolean;
}

const vec = <F>(name: string, field: F, rows: Dim, optional = false): TensorSpec<F> => ({
  name,
  field,
  shape: [rows],
  optional,
});
const mat = <F>(name: string, field: F, rows: Dim, cols: Dim, optional = false): TensorSpec<F> => ({
  name,
  field,
  shape: [rows, cols],
  optional,
});

const LLAMA_LAYER: TensorSpec<LayerField>[] = [
  vec('attn_norm.weight', 'attnNorm', 'dim'),
  mat('attn_q.weight', 'wq', 'q', 'dim'),
  mat('attn_k.weight', 'wk', 'kv', 'dim'),
  mat('attn_v.weight', 'wv', 'kv', 'dim'),
  mat('attn_output.weight', 'wo', 'dim', 'q'),
  vec('ffn_norm.weight', 'mlpNorm', 'dim'),
  mat('ffn_gate.weight', 'wGate', 'hidden', 'dim'), // w1
  mat('ffn_up.weight', 'wUp', 'hidden', 'dim'), // w3
  mat('ffn_down.weight', 'wDown', 'dim', 'hidden'), // w2
];

const QWEN2_LAYER: TensorSpec<LayerField>[] = [
  ...LLAMA_LAYER.slice(0, 4),
  vec('attn_q.bias', 'bq', 'q'),
  vec('attn_k.bias', 'bk', 'kv'),
  vec('attn_v.bias', 'bv', 'kv'),
  ...LLAMA_LAYER.slice(4),
];

/** GPT-2 and GPT-NeoX: LayerNorm with bias, fused [q; k; v] rows, a two-matrix GELU MLP. */
const GPT_LAYER = (attentionBias: boolean): TensorSpec<LayerField>[] => [
  vec('attn_norm.weight', 'attnNorm', 'dim'),
  vec('attn_norm.bias', 'attnNormBias', 'dim'),
  mat('attn_qkv.weight', 'wqkv', 'qkv', 'dim'),
  vec('attn_qkv.bias', 'bqkv', 'qkv', !attentionBias),
  mat('attn_output.weight', 'wo', 'dim', 'q'),
  vec('attn_output.bias', 'bo', 'dim', !attentionBias),
  vec('ffn_norm.weight', 'mlpNorm', 'dim'),
  vec('ffn_norm.bias', 'mlpNormBias', 'dim'),
  mat('ffn_up.weight', 'wUp', 'hidden', 'dim'),
  vec('ffn_up.bias', 'bUp', 'hidden'),
  mat('ffn_down.weight', 'wDown', 'dim', 'hidden'),
  vec('ffn_down.bias', 'bDown', 'dim'),
];

const RMS_GLOBAL: TensorSpec<GlobalField>[] = [
  mat('token_embd.weight', 'tokenEmbedding', 'vocab', 'dim'),
  vec('output_norm.weight', 'finalNorm', 'dim'),
  mat('output.weight', 'unembedding', 'vocab', 'dim', true),
];

export const GGUF_ARCHITECTURES: readonly GgufArchitecture[] = [
  {
    name: 'llama',
    architecture: 'llama',
    norm: 'rmsnorm',
    mlp: 'swiglu',
    positional: 'rope',
    rope: 'interleaved',
    global: RMS_GLOBAL,
    layer: LLAMA_LAYER,
    refuse(meta) {
      meta.refuse(
        'llama.rope.scaling.type',
        (v) => v === 'none',
        'RoPE scaling is not implemented',
      );
      meta.refuse('llama.rope.scale_linear', (v) => v === 1, 'RoPE scaling is not implemented');
      meta.refuse(
        'llama.expert_count',
        (v) => !(typeof v === 'number' && v > 0),
        'mixture-of-experts llama',
      );
    },
    writes: (c) => c.architecture === 'llama' && !isQwen2(c),
  },
  {
    // convert_hf_to_gguf.py Qwen2Model: LlamaModel's tensors plus q/k/v biases, Q/K rows not
    // permuted (llama_model_rope_type: LLM_ARCH_QWEN2 is LLAMA_ROPE_TYPE_NEOX)
    name: 'qwen2',
    architecture: 'llama',
    norm: 'rmsnorm',
    mlp: 'swiglu',
    positional: 'rope',
    rope: 'halves',
    global: RMS_GLOBAL,
    layer: QWEN2_LAYER,
    refuse(meta) {
      meta.refuse(
        'qwen2.rope.scaling.type',
        (v) => v === 'none',
        'RoPE scaling is not implemented',
      );
    },
    writes: (c) => c.architecture === 'llama' && isQwen2(c),
  },
  {
    // GPT2Model: Conv1D weights transposed to [out, in]; token_embd written again as output
    name: 'gpt2',
    architecture: 'gpt2',
    norm: 'layernorm',
    mlp: 'gelu_new',
    positional: 'learned',
    rope: null,
    global: [
      mat('token_embd.weight', 'tokenEmbedding', 'vocab', 'dim'),
      mat('position_embd.weight', 'positionEmbedding', 'ctx', 'dim'),
      vec('output_norm.weight', 'finalNorm', 'dim'),
      vec('output_norm.bias', 'finalNormBias', 'dim'),
      mat('output.weight', 'unembedding', 'vocab', 'dim', true),
    ],
    layer: GPT_LAYER(true),
    writesTiedOutput: true,
    writes: (c) => c.architecture === 'gpt2',
  },
  {
    // GPTNeoXModel: query_key_value's per-head [q|k|v] rows regrouped to [q; k; v];
    // LLAMA_ROPE_TYPE_NEOX on the first rope.dimension_count dims of each head; llama.cpp's
    // GELU is the tanh form, Pythia's (HF hidden_act "gelu") the erf form, which lmdyn uses
    name: 'gptneox',
    architecture: 'gpt_neox',
    norm: 'layernorm',
    mlp: 'gelu',
    positional: 'rope',
    rope: 'halves',
    global: [
      mat('token_embd.weight', 'tokenEmbedding', 'vocab', 'dim'),
      vec('output_norm.weight', 'finalNorm', 'dim'),
      vec('output_norm.bias', 'finalNormBias', 'dim'),
      mat('output.weight', 'unembedding', 'vocab', 'dim', true),
    ],
    layer: GPT_LAYER(false),
    parallelResidual: true,
    refuse(meta) {
      meta.refuse(
        'gptneox.rope.scaling.type',
        (v) => v === 'none',
        'RoPE scaling is not implemented',
      );
    },
    special: (meta, _c, tensors) => ({
      residual: meta.bool('gptneox.use_parallel_residual', true) ? 'parallel' : 'sequential',
      attentionBias: tensors.has('blk.0.attn_qkv.bias'),
    }),
    extraKvs: (c) => [
      {
        key: 'gptneox.use_parallel_residual',
        type: ValueType.Bool,
        value: c.residual !== 'sequential',
      },
    ],
    writes: (c) => c.architecture === 'gpt_neox',
  },
];

/** Qwen2 (HF Qwen2ForCausalLM, or a qwen2 GGUF read back) is stored as GGUF qwen2. */
function isQwen2(c: ModelConfig): boolean {
  return c.sourceArchitecture === 'Qwen2ForCausalLM' || c.sourceArchitecture === 'qwen2';
}

export function supportedArchitectures(): string {
  return GGUF_ARCHITECTURES.map((a) => a.name).join(', ');
}

/** The table entry of the file's general.architecture; unknown ones are refused in one line. */
export function ggufArchitecture(meta: GgufMetadata): GgufArchitecture {
  const name = meta.get('general.architecture');
  check(typeof name === 'string', 'bad_format', `${meta.path}: general.architecture is missing`);
  const arch = GGUF_ARCHITECTURES.find((a) => a.name === name);
  if (!arch) {
    throw new LmdynError(
      'unsupported',
      `${meta.path}: GGUF architecture '${name}' (supported: ${supportedArchitectures()})`,
    );
  }
  return arch;
}

/** The config from `{arch}.*` metadata and the embedding's shape. */
export function ggufConfig(
  arch: GgufArchitecture,
  meta: GgufMetadata,
  tensors: GgufTensors,
): ModelConfig {
  const path = meta.path;
  const p = arch.name;
  arch.refuse?.(meta);
  const dim = meta.int(`${p}.embedding_length`);
  const nHeads = meta.int(`${p}.attention.head_count`);
  const nKvHeads = meta.int(`${p}.attention.head_count_kv`, nHeads);
  check(
    dim % nHeads === 0,
    'bad_format',
    `${path}: embedding_length ${dim} is not a multiple of head_count ${nHeads}`,
  );
  check(
    nHeads % nKvHeads === 0,
    'bad_format',
    `${path}: head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`,
  );
  const headDim = dim / nHeads;
  const keyLength = meta.get(`${p}.attention.key_length`);
  if (keyLength !== undefined && keyLength !== headDim) {
    throw new LmdynError(
      'unsupported',
      `${path}: attention.key_length ${describe(keyLength)} differs from ${headDim}`,
    );
  }
  const rope = arch.positional === 'rope';
  const ropeDim = rope ? meta.int(`${p}.rope.dimension_count`, headDim) : 0;
  check(
    ropeDim % 2 === 0 && ropeDim <= headDim,
    'bad_format',
    `${path}: rope.dimension_count ${ropeDim} must be even and at most the head size ${headDim}`,
  );
  const seqLen = meta.int(`${p}.context_length`);
  check(
    seqLen <= MAX_SEQ_LEN,
    'bad_format',
    `${path}: context_length ${seqLen} is beyond any real model`,
  );
  const embedding = tensors.byName.get('token_embd.weight');
  check(embedding, 'bad_format', `${path}: tensor token_embd.weight is missing`);
  const vocabSize = embedding.dims[1] ?? 0;
  check(
    vocabSize > 0,
    'bad_format',
    `${path}: token_embd.weight has shape [${embedding.dims.join(', ')}]`,
  );
  const config: ModelConfig = {
    architecture: arch.architecture,
    sourceArchitecture: arch.name,
    dim,
    hiddenDim: meta.int(`${p}.feed_forward_length`),
    nLayers: meta.int(`${p}.block_count`),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    seqLen,
    norm: arch.norm,
    normEps: meta.float(
      arch.norm === 'rmsnorm'
        ? `${p}.attention.layer_norm_rms_epsilon`
        : `${p}.attention.layer_norm_epsilon`,
    ),
    mlp: arch.mlp,
    positional: arch.positional,
    ropeTheta: rope ? meta.float(`${p}.rope.freq_base`, 10000) : 10000,
    ropeDim,
    // a classifier absent is tied; so is GPT-2's, which the converter writes as a copy
    tiedEmbeddings:
      !tensors.has('output.weight') ||
      (arch.writesTiedOutput === true && tensors.sameData('output.weight', 'token_embd.weight')),
    bosId: meta.optionalId('tokenizer.ggml.bos_token_id', vocabSize),
    eosId: meta.optionalId('tokenizer.ggml.eos_token_id', vocabSize),
  };
  return { ...config, ...arch.special?.(meta, config, tensors) };
}

function dimOf(c: ModelConfig, d: Dim): number {
  switch (d) {
    case 'dim':
      return c.dim;
    case 'q':
      return c.nHeads * c.headDim;
    case 'kv':
      return c.nKvHeads * c.headDim;
    case 'qkv':
      return (c.nHeads + 2 * c.nKvHeads) * c.headDim;
    case 'hidden':
      return c.hiddenDim;
    case 'vocab':
      return c.vocabSize;
    case 'ctx':
      return c.seqLen;
  }
}

/** Every tensor name the architecture may hold; others are refused (unknown layouts). */
function expectedNames(
  arch: GgufArchitecture,
  nLayers: number,
): { all: Set<string>; required: number } {
  const all = new Set(arch.global.map((s) => s.name));
  let required = arch.global.filter((s) => !s.optional).length;
  const perLayer = arch.layer.filter((s) => !s.optional).length;
  for (let i = 0; i < nLayers; i++) for (const s of arch.layer) all.add(`blk.${i}.${s.name}`);
  required += nLayers * perLayer;
  return { all, required };
}

/** The weights named by the table, in lmdyn's conventions (rotary rows interleaved, q/k/v apart). */
export function ggufWeights(
  arch: GgufArchitecture,
  c: ModelConfig,
  tensors: GgufTensors,
): ModelWeights {
  const path = tensors.path;
  // block_count comes from metadata: bound it by the tensors present before looping over it
  const { all, required } = expectedNames(arch, Math.min(c.nLayers, tensors.byName.size));
  check(
    required <= tensors.byName.size,
    'bad_format',
    `${path}: block_count ${c.nLayers} needs ${required} tensors; the file has ${tensors.byName.size}`,
  );
  const unknown = [...tensors.byName.keys()].filter((n) => !all.has(n));
  if (unknown.length > 0) {
    throw new LmdynError(
      'unsupported',
      `${path}: unexpected ${arch.name} tensors ${unknown.slice(0, 5).join(', ')}`,
    );
  }
  const read = <F>(spec: TensorSpec<F>, prefix: string): Matrix | Float32Array | null => {
    const name = prefix + spec.name;
    if (spec.optional && !tensors.has(name)) return null;
    const [rows, cols] = spec.shape;
    return cols === undefined
      ? tensors.vector(name, dimOf(c, rows))
      : tensors.matrix(name, dimOf(c, rows), dimOf(c, cols));
  };
  const layers: LayerWeights[] = [];
  for (let i = 0; i < c.nLayers; i++) {
    const got = new Map<LayerField, Matrix | Float32Array | null>();
    for (const spec of arch.layer) got.set(spec.field, read(spec, `blk.${i}.`));
    layers.push(layerFrom(arch, c, got));
  }
  const g = new Map<GlobalField, Matrix | Float32Array | null>();
  for (const spec of arch.global) g.set(spec.field, read(spec, ''));
  const tokenEmbedding = g.get('tokenEmbedding') as Matrix;
  return {
    tokenEmbedding,
    positionEmbedding: (g.get('positionEmbedding') as Matrix | undefined) ?? null,
    layers,
    finalNorm: g.get('finalNorm') as Float32Array,
    finalNormBias: (g.get('finalNormBias') as Float32Array | undefined) ?? null,
    unembedding: c.tiedEmbeddings ? tokenEmbedding : (g.get('unembedding') as Matrix),
    unembeddingBias: null,
  };
}

function layerFrom(
  arch: GgufArchitecture,
  c: ModelConfig,
  got: Map<LayerField, Matrix | Float32Array | null>,
): LayerWeights {
  const m = (f: LayerField): Matrix => got.get(f) as Matrix;
  const v = (f: LayerField): Float32Array | null =>
    (got.get(f) as Float32Array | undefined) ?? null;
  let wq: Matrix, wk: Matrix, wv: Matrix;
  let bq = v('bq');
  let bk = v('bk');
  let bv = v('bv');
  if (got.has('wqkv')) {
    // llama.cpp's fused rows: all q rows, then k, then v
    const [q, k, vv] = qkvRanges(c);
    const qkv = m('wqkv');
    wq = selectRows(qkv, q);
    wk = selectRows(qkv, k);
    wv = selectRows(qkv, vv);
    freeMatrix(qkv);
    const b = v('bqkv');
    if (b) [bq, bk, bv] = [selectEntries(b, q), selectEntries(b, k), selectEntries(b, vv)];
  } else {
    [wq, wk, wv] = [m('wq'), m('wk'), m('wv')];
  }
  if (arch.rope === 'halves') {
    const qOrder = ropeRowOrder(c.nHeads, c.headDim, c.ropeDim);
    const kOrder = ropeRowOrder(c.nKvHeads, c.headDim, c.ropeDim);
    const [hq, hk] = [wq, wk];
    wq = selectRows(hq, qOrder);
    wk = selectRows(hk, kOrder);
    freeMatrix(hq);
    freeMatrix(hk);
    if (bq) bq = selectEntries(bq, qOrder);
    if (bk) bk = selectEntries(bk, kOrder);
  }
  return {
    attnNorm: v('attnNorm')!,
    attnNormBias: v('attnNormBias'),
    wq,
    wk,
    wv,
    wo: m('wo'),
    bq,
    bk,
    bv,
    bo: v('bo'),
    mlpNorm: v('mlpNorm')!,
    mlpNormBias: v('mlpNormBias'),
    wGate: (got.get('wGate') as Matrix | undefined) ?? null,
    wUp: m('wUp'),
    bUp: v('bUp'),
    wDown: m('wDown'),
    bDown: v('bDown'),
  };
}

/** Row indices of q, k and v inside llama.cpp's fused [q; k; v] rows. */
function qkvRanges(c: ModelConfig): [Int32Array, Int32Array, Int32Array] {
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const range = (from: number, n: number): Int32Array =>
    Int32Array.from({ length: n }, (_, i) => from + i);
  return [range(0, q), range(q, kv), range(q + kv, kv)];
}

/**
 * Interleaved row r of a rotary projection is row order[r] in rotate_half order: in each head,
 * interleaved row 2i+j is rotate_half row i + j·ropeDim/2 (j ∈ {0, 1}, i < ropeDim/2); rows
 * from ropeDim on (partial rotary) do not rotate and stay put. (HF's convert_llama_weights_to_hf
 * `permute`, inverted; the same order io/hf.ts applies.)
 */
export function ropeRowOrder(nHeads: number, headDim: number, ropeDim: number): Int32Array {
  const order = new Int32Array(nHeads * headDim);
  const half = ropeDim / 2;
  for (let h = 0; h < nHeads; h++) {
    const base = h * headDim;
    for (let r = 0; r < headDim; r++) order[base + r] = base + r;
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) order[base + 2 * i + j] = base + i + j * half;
    }
  }
  return order;
}

/** The inverse permutation: rotate_half row s is interleaved row inverse[s]. */
export function inverseOrder(order: Int32Array): Int32Array {
  const inv = new Int32Array(order.length);
  for (let r = 0; r < order.length; r++) inv[order[r]!] = r;
  return inv;
}

// --- the writer's side ---------------------------------------------------------------------------

/** The table entry the writer stores `c` as; a one-line error for a model no entry holds. */
export function architectureForWriting(c: ModelConfig): GgufArchitecture {
  const arch = GGUF_ARCHITECTURES.find((a) => a.writes(c));
  if (!arch) {
    throw new LmdynError(
      'unsupported',
      `GGUF export writes ${supportedArchitectures()}; ${c.sourceArchitecture} (${c.architecture}) is none of them`,
    );
  }
  return arch;
}

export interface WritableTensor {
  name: string;
  /** Innermost first, as GGUF lists them: a [rows, cols] matrix is [cols, rows]. */
  dims: number[];
  matrix: boolean;
  values: () => Float32Array;
}

/**
 * The tensors of `w` under the table's names, in llama.cpp's order (globals, then the blocks),
 * with q/k rows in the file's rotary order and fused q|k|v rows where the architecture fuses them.
 * A tensor the model lacks is skipped when optional and refused otherwise.
 */
export function tensorsForWriting(
  arch: GgufArchitecture,
  c: ModelConfig,
  w: ModelWeights,
  valuesOf: (m: Matrix) => Float32Array,
): WritableTensor[] {
  const out: WritableTensor[] = [];
  const add = <F>(
    spec: TensorSpec<F>,
    prefix: string,
    values: (() => Float32Array) | null,
  ): void => {
    if (values === null) {
      if (spec.optional) return;
      throw new LmdynError(
        'unsupported',
        `GGUF ${arch.name} needs ${spec.name}; this ${c.sourceArchitecture} model has none`,
      );
    }
    const [rows, cols] = spec.shape;
    out.push({
      name: prefix + spec.name,
      dims: cols === undefined ? [dimOf(c, rows)] : [dimOf(c, cols), dimOf(c, rows)],
      matrix: cols !== undefined,
      values,
    });
  };
  const tied = c.tiedEmbeddings || w.unembedding === w.tokenEmbedding;
  for (const spec of arch.global) {
    const value = w[spec.field] as Matrix | Float32Array | null;
    // a tied classifier is not written where the architecture may omit it (llama.cpp ties then)
    const skip =
      value === null ||
      (spec.field === 'unembedding' && tied && spec.optional && !arch.writesTiedOutput);
    add(spec, '', skip ? null : () => (value instanceof Float32Array ? value : valuesOf(value!)));
  }
  const held = new Set<string>(arch.layer.map((s) => s.field));
  if (held.has('wqkv')) for (const f of ['wq', 'wk', 'wv']) held.add(f);
  if (held.has('bqkv')) for (const f of ['bq', 'bk', 'bv']) held.add(f);
  const globals = new Set<string>(arch.global.map((s) => s.field));
  for (const f of ['positionEmbedding', 'finalNormBias', 'unembeddingBias'] as const) {
    if (w[f] !== null && !globals.has(f)) refuseField(arch, c, f);
  }
  w.layers.forEach((l, i) => {
    for (const [f, v] of Object.entries(l)) if (v !== null && !held.has(f)) refuseField(arch, c, f);
    const fields = layerForWriting(arch, c, l, valuesOf);
    for (const spec of arch.layer) add(spec, `blk.${i}.`, fields.get(spec.field) ?? null);
  });
  return out;
}

function refuseField(arch: GgufArchitecture, c: ModelConfig, field: string): never {
  throw new LmdynError(
    'unsupported',
    `GGUF ${arch.name} has no tensor for ${field}, which this ${c.sourceArchitecture} model has`,
  );
}

/** Each layer field's values in the file's order (lazy, so one tensor is in memory at a time). */
function layerForWriting(
  arch: GgufArchitecture,
  c: ModelConfig,
  l: LayerWeights,
  valuesOf: (m: Matrix) => Float32Array,
): Map<LayerField, (() => Float32Array) | null> {
  const qOrder =
    arch.rope === 'halves' ? inverseOrder(ropeRowOrder(c.nHeads, c.headDim, c.ropeDim)) : null;
  const kOrder =
    arch.rope === 'halves' ? inverseOrder(ropeRowOrder(c.nKvHeads, c.headDim, c.ropeDim)) : null;
  const rows = (values: Float32Array, cols: number, order: Int32Array | null): Float32Array => {
    if (!order) return values;
    const out = new Float32Array(values.length);
    for (let r = 0; r < order.length; r++) {
      out.set(values.subarray(order[r]! * cols, (order[r]! + 1) * cols), r * cols);
    }
    return out;
  };
  const fields = new Map<LayerField, (() => Float32Array) | null>();
  const matrix = (f: LayerField, m: Matrix | null): void => {
    fields.set(f, m ? () => valuesOf(m) : null);
  };
  const vector = (f: LayerField, v: Float32Array | null): void => {
    fields.set(f, v ? () => v : null);
  };
  const wq = (): Float32Array => rows(valuesOf(l.wq), c.dim, qOrder);
  const wk = (): Float32Array => rows(valuesOf(l.wk), c.dim, kOrder);
  const bq = l.bq ? (): Float32Array => rows(l.bq!, 1, qOrder) : null;
  const bk = l.bk ? (): Float32Array => rows(l.bk!, 1, kOrder) : null;
  fields.set('wq', wq);
  fields.set('wk', wk);
  fields.set('bq', bq);
  fields.set('bk', bk);
  matrix('wv', l.wv);
  vector('bv', l.bv);
  fields.set('wqkv', () => concat([wq(), wk(), valuesOf(l.wv)]));
  const biases = [bq, bk, l.bv ? (): Float32Array => l.bv! : null];
  fields.set(
    'bqkv',
    biases.every((b) => b !== null) ? () => concat(biases.map((b) => b!())) : null,
  );
  matrix('wo', l.wo);
  vector('bo', l.bo);
  vector('attnNorm', l.attnNorm);
  vector('attnNormBias', l.attnNormBias);
  vector('mlpNorm', l.mlpNorm);
  vector('mlpNormBias', l.mlpNormBias);
  matrix('wGate', l.wGate);
  matrix('wUp', l.wUp);
  vector('bUp', l.bUp);
  matrix('wDown', l.wDown);
  vector('bDown', l.bDown);
  return fields;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** general.* and `{arch}.*` keys (llama.cpp's LLM_KV names). */
export function architectureKvs(arch: GgufArchitecture, c: ModelConfig): Kv[] {
  const p = arch.name;
  const u32 = (key: string, value: number): Kv => ({ key, type: ValueType.U32, value });
  const f32 = (key: string, value: number): Kv => ({ key, type: ValueType.F32, value });
  const kvs: Kv[] = [
    u32(`${p}.context_length`, c.seqLen),
    u32(`${p}.embedding_length`, c.dim),
    u32(`${p}.block_count`, c.nLayers),
    u32(`${p}.feed_forward_length`, c.hiddenDim),
  ];
  if (arch.positional === 'rope') kvs.push(u32(`${p}.rope.dimension_count`, c.ropeDim));
  kvs.push(
    u32(`${p}.attention.head_count`, c.nHeads),
    u32(`${p}.attention.head_count_kv`, c.nKvHeads),
    f32(
      arch.norm === 'rmsnorm'
        ? `${p}.attention.layer_norm_rms_epsilon`
        : `${p}.attention.layer_norm_epsilon`,
      c.normEps,
    ),
  );
  if (arch.positional === 'rope') kvs.push(f32(`${p}.rope.freq_base`, c.ropeTheta));
  kvs.push(u32(`${p}.vocab_size`, c.vocabSize));
  if (c.headDim * c.nHeads !== c.dim) {
    kvs.push(
      u32(`${p}.attention.key_length`, c.headDim),
      u32(`${p}.attention.value_length`, c.headDim),
    );
  }
  kvs.push(...(arch.extraKvs?.(c) ?? []));
  return kvs;
}
