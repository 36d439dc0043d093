/**
 * Writes a llama-architecture model as GGUF v3 (ggml docs/gguf.md) with llama.cpp's tensor names
 * and metadata keys and the SentencePiece vocabulary embedded, so that llama.cpp and lmdyn's own
 * loader (gguf.ts) read it. Layout: magic "GGUF", version 3, tensor and key counts, the
 * key/value pairs, the tensor infos (dimensions innermost first: a [rows, cols] matrix is
 * [cols, rows]), padding to 32 bytes, then each tensor's data at a 32-byte-aligned offset.
 *
 * Norm weights are F32 (as llama.cpp's converters write them); every weight matrix is stored as
 * the requested type when its rows are whole blocks, otherwise by llama-quantize's fallback
 * (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, then F16), and the result lists what each tensor got.
 * The file is written beside its destination and renamed into place.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { LmdynError } from '../errors.js';
import type { ModelConfig, ModelWeights } from '../model/types.js';
import type { Matrix } from '../tensor/matrix.js';
import { dequantizeQ80 } from '../tensor/q80.js';
import { SentencePieceTokenizer } from '../tokenizer/sentencepiece.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { loadModel } from './load.js';
import { ValueType } from './gguf.js';
import { BLOCK_FORMATS, quantize, type GgmlBlockFormat, type GgmlTypeName } from './gguf-quants.js';

export interface GgufWriteOptions {
  /** Storage type of the weight matrices (default F32). */
  type?: GgmlTypeName;
  /** token_embd.weight's type instead (llama-quantize --token-embedding-type). */
  embeddingType?: GgmlTypeName;
  /** output.weight's type instead (llama-quantize --output-tensor-type). */
  outputType?: GgmlTypeName;
  /** general.name (default: the output file's name without .gguf). */
  name?: string;
}

export interface GgufWriteResult {
  path: string;
  bytes: number;
  /** The requested matrix type. */
  type: GgmlTypeName;
  /** Every tensor in file order with the type it was stored as. */
  tensors: { name: string; type: GgmlTypeName; dims: number[] }[];
  /** How many tensors each type holds. */
  typeCounts: Record<string, number>;
}

export interface GgufWritable {
  config: ModelConfig;
  weights: ModelWeights;
  tokenizer: Tokenizer | null;
}

/** Writes `model` to `path` as GGUF (see the file comment). */
export function writeGgufModel(
  path: string,
  model: GgufWritable,
  options: GgufWriteOptions = {},
): GgufWriteResult {
  const requested = BLOCK_FORMATS[options.type ?? 'F32'];
  checkWritable(model);
  const name = options.name ?? basename(path).replace(/\.gguf$/i, '');
  const tensors = planTensors(model.config, model.weights, requested, {
    'token_embd.weight': options.embeddingType,
    'output.weight': options.outputType,
  });
  const kvs = [...llamaMetadata(model.config, name, requested), ...vocabularyMetadata(model)];

  const header = new ByteWriter();
  header.raw(Buffer.from('GGUF', 'latin1'));
  header.u32(3);
  header.u64(tensors.length);
  header.u64(kvs.length);
  for (const kv of kvs) writeKv(header, kv);
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(offset);
    header.string(t.name);
    header.u32(t.dims.length);
    for (const d of t.dims) header.u64(d);
    header.u32(t.format.id);
    header.u64(offset);
    offset = alignUp(offset + tensorBytes(t), ALIGNMENT);
  }
  const head = header.finish();
  const dataStart = alignUp(head.length, ALIGNMENT);

  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, head, 0);
    writeAll(fd, new Uint8Array(dataStart - head.length), head.length);
    tensors.forEach((t, i) => {
      const data = quantize(t.format, t.values());
      writeAll(fd, data, dataStart + offsets[i]!);
    });
    const end = dataStart + offset;
    const last = tensors.length ? dataStart + offsets.at(-1)! + tensorBytes(tensors.at(-1)!) : end;
    if (end > last) writeAll(fd, new Uint8Array(end - last), last); // pad the file to the alignment
    closeSync(fd);
    renameSync(tmp, path);
    const typeCounts: Record<string, number> = {};
    for (const t of tensors) typeCounts[t.format.name] = (typeCounts[t.format.name] ?? 0) + 1;
    return {
      path,
      bytes: end,
      type: requested.name,
      tensors: tensors.map((t) => ({ name: t.name, type: t.format.name, dims: t.dims })),
      typeCounts,
    };
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    throw err;
  }
}

const ALIGNMENT = 32; // general.alignment's default; not written

/** llama.cpp's general.file_type (llama_ftype) of a file whose matrices are `type`. */
const FILE_TYPE: Record<GgmlTypeName, number> = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q8_0: 7,
  Q5_0: 8,
  Q5_1: 9,
  Q4_K: 14, // MOSTLY_Q4_K_S: every matrix Q4_K
  Q5_K: 16, // MOSTLY_Q5_K_S
  Q6_K: 18,
  BF16: 32,
};

/** llama-quantize's fallback when a row is not whole blocks of the requested type. */
const FALLBACK: Partial<Record<GgmlTypeName, GgmlTypeName>> = {
  Q4_K: 'Q5_0',
  Q5_K: 'Q5_1',
  Q6_K: 'Q8_0',
};

/** Refuses, in one line, what the llama GGUF architecture cannot hold. */
function checkWritable(model: GgufWritable): void {
  const c = model.config;
  const w = model.weights;
  const what = `${c.sourceArchitecture} (${c.architecture})`;
  const unsupported = (why: string): never => {
    throw new LmdynError(
      'unsupported',
      `GGUF export writes the llama architecture; ${what} ${why}`,
    );
  };
  if (
    c.architecture !== 'llama' ||
    c.positional !== 'rope' ||
    c.norm !== 'rmsnorm' ||
    c.mlp !== 'swiglu'
  ) {
    unsupported(`has ${c.norm}, ${c.mlp}, ${c.positional} positions`);
  }
  if (
    c.residual === 'parallel' ||
    c.attnScale !== undefined ||
    c.attnWindow?.some((x) => x !== null)
  ) {
    unsupported('has a parallel residual, a non-default attention scale or local attention');
  }
  const biased = w.layers.some((l) => l.bq || l.bk || l.bv || l.bo || l.bUp || l.bDown);
  if (biased || w.unembeddingBias || w.finalNormBias) unsupported('has linear biases');
  if (!(model.tokenizer instanceof SentencePieceTokenizer)) {
    const kind = model.tokenizer ? `a ${model.tokenizer.kind} tokenizer` : 'no tokenizer';
    throw new LmdynError(
      'unsupported',
      `GGUF export embeds SentencePiece vocabularies (llama2.c tokenizer.bin or a GGUF llama vocabulary); this model has ${kind} (pass --tokenizer)`,
    );
  }
}

interface PlannedTensor {
  name: string;
  dims: number[]; // innermost first
  format: GgmlBlockFormat;
  values: () => Float32Array;
}

/** llama.cpp's tensor order and names: token_embd, output_norm, output, then the blocks. */
function planTensors(
  c: ModelConfig,
  w: ModelWeights,
  requested: GgmlBlockFormat,
  overrides: Record<string, GgmlTypeName | undefined>,
): PlannedTensor[] {
  const out: PlannedTensor[] = [];
  const vector = (name: string, v: Float32Array): void => {
    out.push({ name, dims: [v.length], format: BLOCK_FORMATS.F32, values: () => v });
  };
  const matrix = (name: string, m: Matrix): void => {
    out.push({
      name,
      dims: [m.cols, m.rows],
      format: matrixFormat(BLOCK_FORMATS[overrides[name] ?? requested.name], m.cols),
      values: () => valuesOf(m),
    });
  };
  matrix('token_embd.weight', w.tokenEmbedding);
  vector('output_norm.weight', w.finalNorm);
  if (!c.tiedEmbeddings && w.unembedding !== w.tokenEmbedding)
    matrix('output.weight', w.unembedding);
  w.layers.forEach((l, i) => {
    const p = `blk.${i}.`;
    vector(`${p}attn_norm.weight`, l.attnNorm);
    matrix(`${p}attn_q.weight`, l.wq);
    matrix(`${p}attn_k.weight`, l.wk);
    matrix(`${p}attn_v.weight`, l.wv);
    matrix(`${p}attn_output.weight`, l.wo);
    vector(`${p}ffn_norm.weight`, l.mlpNorm);
    matrix(`${p}ffn_gate.weight`, l.wGate!);
    matrix(`${p}ffn_up.weight`, l.wUp);
    matrix(`${p}ffn_down.weight`, l.wDown);
  });
  return out;
}

/** A matrix's values as f32; a Q8_0 matrix into a buffer of its own, not its cached `data`. */
function valuesOf(m: Matrix): Float32Array {
  if (m.format === 'f32') return m.data;
  const out = new Float32Array(m.rows * m.cols);
  dequantizeQ80(m.q, m.scales, m.groupSize, 0, out.length, out, 0);
  return out;
}

/** The requested type, or llama-quantize's fallback when rows of `cols` are not whole blocks. */
export function matrixFormat(requested: GgmlBlockFormat, cols: number): GgmlBlockFormat {
  let f = requested;
  const fallback = FALLBACK[f.name];
  if (cols % f.blockSize !== 0 && fallback) f = BLOCK_FORMATS[fallback];
  return cols % f.blockSize === 0 ? f : BLOCK_FORMATS.F16;
}

function tensorBytes(t: PlannedTensor): number {
  const elements = t.dims.reduce((a, b) => a * b, 1);
  return (elements / t.format.blockSize) * t.format.blockBytes;
}

// --- metadata --------------------------------------------------------------------------------

type Kv =
  | { key: string; type: ValueType.U32 | ValueType.F32; value: number }
  | { key: string; type: ValueType.Bool; value: boolean }
  | { key: string; type: ValueType.String; value: string }
  | { key: string; type: ValueType.Array; items: ValueType.String; value: string[] }
  | { key: string; type: ValueType.Array; items: ValueType.F32; value: Float32Array }
  | { key: string; type: ValueType.Array; items: ValueType.I32; value: Int32Array };

/** general.* and llama.* keys (llama.cpp's LLM_KV names for LLM_ARCH_LLAMA). */
function llamaMetadata(c: ModelConfig, name: string, requested: GgmlBlockFormat): Kv[] {
  const u32 = (key: string, value: number): Kv => ({ key, type: ValueType.U32, value });
  const f32 = (key: string, value: number): Kv => ({ key, type: ValueType.F32, value });
  const kvs: Kv[] = [
    { key: 'general.architecture', type: ValueType.String, value: 'llama' },
    { key: 'general.name', type: ValueType.String, value: name },
    u32('general.file_type', FILE_TYPE[requested.name]),
  ];
  if (requested.blockSize > 1) kvs.push(u32('general.quantization_version', 2));
  kvs.push(
    u32('llama.context_length', c.seqLen),
    u32('llama.embedding_length', c.dim),
    u32('llama.block_count', c.nLayers),
    u32('llama.feed_forward_length', c.hiddenDim),
    u32('llama.rope.dimension_count', c.ropeDim),
    u32('llama.attention.head_count', c.nHeads),
    u32('llama.attention.head_count_kv', c.nKvHeads),
    f32('llama.attention.layer_norm_rms_epsilon', c.normEps),
    f32('llama.rope.freq_base', c.ropeTheta),
    u32('llama.vocab_size', c.vocabSize),
  );
  if (c.headDim * c.nHeads !== c.dim) {
    kvs.push(
      u32('llama.attention.key_length', c.headDim),
      u32('llama.attention.value_length', c.headDim),
    );
  }
  return kvs;
}

/** SentencePiece token types (llama.cpp llama_token_type). */
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const UNUSED = 5;
const BYTE = 6;

/**
 * tokenizer.ggml.* for llama.cpp's SPM vocabulary: pieces with '▁' for a space (control pieces
 * trimmed), scores, token types; a model with more rows than tokens gets `[PAD{i}]` entries of type unused (as
 * llama.cpp's convert_hf_to_gguf.py writes them), since llama.cpp's vocabulary must match the
 * embedding's rows.
 */
function vocabularyMetadata(model: GgufWritable): Kv[] {
  const v = (model.tokenizer as SentencePieceTokenizer).vocab;
  const n = model.config.vocabSize;
  const tokens: string[] = [];
  const scores = new Float32Array(n);
  const types = new Int32Array(n).fill(NORMAL);
  const control = new Set(v.controlIds);
  const bytes = new Set(Array.from(v.byteIds).filter((id) => id >= 0));
  for (let id = 0; id < n; id++) {
    if (id >= v.pieces.length) {
      tokens.push(`[PAD${id}]`);
      types[id] = UNUSED;
      continue;
    }
    const piece = v.pieces[id]!;
    scores[id] = v.scores[id]!;
    // control pieces are written trimmed: llama2.c's "\n<s>\n" is llama.cpp's "<s>"
    tokens.push(control.has(id) ? piece.trim() : piece.replaceAll(' ', '\u2581'));
    if (id === v.unkId) types[id] = UNKNOWN;
    else if (control.has(id)) types[id] = CONTROL;
    else if (bytes.has(id)) types[id] = BYTE;
  }
  const kvs: Kv[] = [
    { key: 'tokenizer.ggml.model', type: ValueType.String, value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: ValueType.Array, items: ValueType.String, value: tokens },
    { key: 'tokenizer.ggml.scores', type: ValueType.Array, items: ValueType.F32, value: scores },
    { key: 'tokenizer.ggml.token_type', type: ValueType.Array, items: ValueType.I32, value: types },
  ];
  const id = (key: string, value: number | null): void => {
    if (value !== null) kvs.push({ key: `tokenizer.ggml.${key}`, type: ValueType.U32, value });
  };
  id('bos_token_id', v.bosId);
  id('eos_token_id', v.eosId);
  id('unknown_token_id', v.unkId);
  kvs.push(
    { key: 'tokenizer.ggml.add_bos_token', type: ValueType.Bool, value: v.bosId !== null },
    { key: 'tokenizer.ggml.add_eos_token', type: ValueType.Bool, value: false },
    { key: 'tokenizer.ggml.add_space_prefix', type: ValueType.Bool, value: v.addDummyPrefix },
  );
  return kvs;
}

function writeKv(w: ByteWriter, kv: Kv): void {
  w.string(kv.key);
  w.u32(kv.type);
  switch (kv.type) {
    case ValueType.U32:
      w.u32(kv.value);
      return;
    case ValueType.F32:
      w.f32(kv.value);
      return;
    case ValueType.Bool:
      w.raw(Uint8Array.of(kv.value ? 1 : 0));
      return;
    case ValueType.String:
      w.string(kv.value);
      return;
    case ValueType.Array:
      w.u32(kv.items);
      w.u64(kv.value.length);
      if (kv.items === ValueType.String) for (const s of kv.value as string[]) w.string(s);
      else {
        const a = kv.value as Float32Array | Int32Array;
        w.raw(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)); // little-endian hosts
      }
  }
}

/** Little-endian bytes appended to a growing list. */
class ByteWriter {
  private readonly parts: Uint8Array[] = [];

  raw(b: Uint8Array): void {
    this.parts.push(Uint8Array.from(b));
  }
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.parts.push(b);
  }
  u64(n: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    this.parts.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.parts.push(b);
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.parts.push(b);
  }
  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) {
    done += writeSync(fd, data, done, data.length - done, position + done);
  }
}

export interface ConvertOptions extends GgufWriteOptions {
  /** A tokenizer that replaces or supplies the model's own (as loadModel's). */
  tokenizer?: string;
}

/** Loads any model lmdyn reads (llama2.c, HF folder, GGUF, hub id) and writes it as GGUF. */
export async function convertToGguf(
  spec: string,
  out: string,
  options: ConvertOptions = {},
): Promise<GgufWriteResult> {
  const model = await loadModel(spec, { tokenizer: options.tokenizer });
  return writeGgufModel(out, model, options);
}
