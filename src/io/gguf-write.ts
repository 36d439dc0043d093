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
import { widenH16 } from '../tensor/half.js';
import { dequantizeQ80 } from '../tensor/q80.js';
import { SentencePieceTokenizer } from '../tokenizer/sentencepiece.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { modelChatTemplate } from '../tokenizer/chat.js';
import { loadModel } from './load.js';
import {
  architectureForWriting,
  architectureKvs,
  tensorsForWriting,
  type GgufArchitecture,
} from './gguf-archs.js';
import type { Kv } from './gguf-metadata.js';
import { BLOCK_FORMATS, quantize, type GgmlBlockFormat, type GgmlTypeName } from './gguf-quants.js';
import { ValueType } from './gguf-reader.js';
import { bpeKvs, sentencePieceKvs } from './gguf-tokenizer.js';

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
  /** Jinja chat template, written as tokenizer.chat_template. */
  chatTemplate?: string | null;
}

/** Writes `model` to `path` as GGUF (see the file comment). */
export function writeGgufModel(
  path: string,
  model: GgufWritable,
  options: GgufWriteOptions = {},
): GgufWriteResult {
  const requested = BLOCK_FORMATS[options.type ?? 'F32'];
  const arch = checkWritable(model);
  const name = options.name ?? basename(path).replace(/\.gguf$/i, '');
  const tensors = planTensors(arch, model.config, model.weights, requested, {
    'token_embd.weight': options.embeddingType,
    'output.weight': options.outputType,
  });
  const kvs = [
    ...generalKvs(arch, name, requested),
    ...architectureKvs(arch, model.config),
    ...vocabularyKvs(model),
  ];
  if (model.chatTemplate) {
    kvs.push({ key: 'tokenizer.chat_template', type: ValueType.String, value: model.chatTemplate });
  }

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

/** The table entry the model is written as; refuses, in one line, what no entry can hold. */
function checkWritable(model: GgufWritable): GgufArchitecture {
  const c = model.config;
  const arch = architectureForWriting(c);
  const what = `${c.sourceArchitecture} (${c.architecture})`;
  const unsupported = (why: string): never => {
    throw new LmdynError('unsupported', `GGUF ${arch.name} export: ${what} ${why}`);
  };
  if (c.positional !== arch.positional || c.norm !== arch.norm || c.mlp !== arch.mlp) {
    unsupported(
      `has ${c.norm}, ${c.mlp}, ${c.positional} positions (GGUF ${arch.name}: ${arch.norm}, ${arch.mlp}, ${arch.positional})`,
    );
  }
  if (
    c.qkNorm ||
    c.attnScale !== undefined ||
    c.attnWindow?.some((x) => x !== null) ||
    c.ropeScaling !== undefined
  ) {
    unsupported('has q/k norms, a non-default attention scale, local attention or scaled RoPE');
  }
  if (c.residual === 'parallel' && !arch.parallelResidual) unsupported('has a parallel residual');
  const w = model.weights;
  if (w.unembeddingBias) unsupported('has a classifier bias');
  if (!(model.tokenizer instanceof SentencePieceTokenizer) && !model.tokenizer?.tokenizerJson) {
    const kind = model.tokenizer ? `a ${model.tokenizer.kind} tokenizer` : 'no tokenizer';
    throw new LmdynError(
      'unsupported',
      `GGUF export embeds SentencePiece vocabularies (llama2.c tokenizer.bin, a GGUF llama vocabulary) and byte-level BPE ones (HF tokenizer.json, a GGUF gpt2 vocabulary); this model has ${kind} (pass --tokenizer)`,
    );
  }
  return arch;
}

interface PlannedTensor {
  name: string;
  dims: number[]; // innermost first
  format: GgmlBlockFormat;
  values: () => Float32Array;
}

/** The table's tensors (gguf-archs.ts) with their storage types: vectors F32, matrices as asked. */
function planTensors(
  arch: GgufArchitecture,
  c: ModelConfig,
  w: ModelWeights,
  requested: GgmlBlockFormat,
  overrides: Record<string, GgmlTypeName | undefined>,
): PlannedTensor[] {
  return tensorsForWriting(arch, c, w, valuesOf).map((t) => ({
    name: t.name,
    dims: t.dims,
    format: t.matrix
      ? matrixFormat(BLOCK_FORMATS[overrides[t.name] ?? requested.name], t.dims[0]!)
      : BLOCK_FORMATS.F32,
    values: t.values,
  }));
}

/** A matrix's values as f32; a Q8_0 matrix into a buffer of its own, not its cached `data`. */
function valuesOf(m: Matrix): Float32Array {
  if (m.format === 'f32') return m.data;
  const out = new Float32Array(m.rows * m.cols);
  if (m.format === 'q8_0') dequantizeQ80(m.q, m.scales, m.groupSize, 0, out.length, out, 0);
  else widenH16(m.format, m.bits, 0, out.length, out, 0);
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

/** general.* keys. */
function generalKvs(arch: GgufArchitecture, name: string, requested: GgmlBlockFormat): Kv[] {
  const kvs: Kv[] = [
    { key: 'general.architecture', type: ValueType.String, value: arch.name },
    { key: 'general.name', type: ValueType.String, value: name },
    { key: 'general.file_type', type: ValueType.U32, value: FILE_TYPE[requested.name] },
  ];
  if (requested.blockSize > 1)
    kvs.push({ key: 'general.quantization_version', type: ValueType.U32, value: 2 });
  return kvs;
}

/** tokenizer.ggml.* (gguf-tokenizer.ts). */
function vocabularyKvs(model: GgufWritable): Kv[] {
  return model.tokenizer instanceof SentencePieceTokenizer
    ? sentencePieceKvs(model.tokenizer, model.config.vocabSize)
    : bpeKvs(model.tokenizer!, model.config.vocabSize, model.config);
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
  // the chat template of the folder's tokenizer_config.json (or of a GGUF), as convert_hf_to_gguf.py copies it
  const chatTemplate =
    model.tokenizer && !options.tokenizer
      ? (modelChatTemplate({ source: model.source, tokenizer: model.tokenizer })?.template ?? null)
      : null;
  return writeGgufModel(out, { ...model, chatTemplate }, options);
}
