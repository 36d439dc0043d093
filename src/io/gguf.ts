/**
 * GGUF v2/v3 (ggml docs/gguf.md), little-endian: magic "GGUF", uint32 version, uint64
 * tensor_count, uint64 metadata_kv_count, the key/value pairs, the tensor infos (name,
 * n_dimensions, dimensions innermost first, ggml_type, offset relative to the data section),
 * padding to `general.alignment` (default 32), then the tensor data.
 *
 * Only the `llama` architecture is turned into a model. Tensors of the block formats in
 * gguf-quants.ts are read (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K). Q8_0
 * matrices stay Q8_0 (blocks of 32 along a row: the forward pass's Q8_0 matmul with group size
 * 32, f16 scales widened exactly to f32); the other formats are dequantized to f32 at load, or,
 * with `requantize: 'q8_0'`, requantized to Q8_0 one matrix at a time so the f32 copy of the
 * whole model never exists. Every count and length read from the file is checked against the
 * bytes that remain before anything is allocated, and tensor data may not overlap, so a corrupt
 * or hostile file costs at most a few times its own size in memory and time.
 */
import { closeSync, fstatSync } from 'node:fs';
import { LmdynError, check } from '../errors.js';
import type { LayerWeights, ModelConfig, ModelWeights } from '../model/types.js';
import type { Matrix } from '../tensor/matrix.js';
import { newMatrix } from '../tensor/matrix.js';
import { allocF32, allocI8, freeF32 } from '../tensor/memory.js';
import { newQ80Matrix, q80GroupSize, quantizeMatrixQ80 } from '../tensor/q80.js';
import { SentencePieceTokenizer } from '../tokenizer/sentencepiece.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { BLOCK_FORMATS, blockFormatOf, dequantize, halfTable } from './gguf-quants.js';
import { MAX_SEQ_LEN, openForReading, readExactly } from './llama2c.js';
import type { LoadedModel } from '../model/types.js';

export type GgufValue =
  | number
  | bigint
  | boolean
  | string
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | boolean[]
  | string[]
  | GgufValue[];

export interface GgufTensorInfo {
  name: string;
  /** As stored: innermost first, so a [rows, cols] matrix is listed as [cols, rows]. */
  dims: number[];
  type: number;
  typeName: string;
  /** Absolute byte offset of the data in the file. */
  offset: number;
  elements: number;
  /** Bytes of data, or null for a type this reader cannot size. */
  bytes: number | null;
}

export interface GgufHeader {
  version: number;
  /** Keys in file order; uint64/int64 values are numbers when exact, bigints otherwise. */
  metadata: Record<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataOffset: number;
  fileSize: number;
}

export interface GgufLoadOptions {
  /**
   * 'q8_0': matrices stored in a format other than F32 and Q8_0 (F16, BF16, Q4_0 … Q6_K) are
   * requantized to Q8_0 (group size `groupSize`, default 32) from their dequantized values.
   */
  requantize?: 'q8_0';
  groupSize?: number;
}

/** Loads a llama-architecture GGUF file: config, weights and the embedded tokenizer. */
export function loadGguf(path: string, options: GgufLoadOptions = {}): LoadedModel {
  const fd = openForReading(path);
  try {
    const header = parseHeader(fd, path);
    const meta = header.metadata;
    const arch = meta['general.architecture'];
    check(typeof arch === 'string', 'bad_format', `${path}: general.architecture is missing`);
    if (arch !== 'llama') {
      throw new LmdynError(
        'unsupported',
        `${path}: GGUF architecture '${arch}' (only 'llama' is supported)`,
      );
    }
    const byName = new Map(header.tensors.map((t) => [t.name, t]));
    const config = llamaConfig(meta, byName, path);
    const weights = llamaWeights(fd, path, config, byName, options);
    const tokenizer = llamaTokenizer(meta, path);
    const tensorTypes: Record<string, number> = {};
    for (const t of header.tensors) tensorTypes[t.typeName] = (tensorTypes[t.typeName] ?? 0) + 1;
    return {
      config,
      weights,
      tokenizer,
      source: {
        format: 'gguf',
        path,
        hubId: null,
        sha256: null,
        details: {
          version: header.version,
          alignment: header.alignment,
          dataOffset: header.dataOffset,
          tensorCount: header.tensors.length,
          tensorTypes,
          metadata: summariseMetadata(meta),
        },
      },
    };
  } finally {
    closeSync(fd);
  }
}

/** Metadata and tensor infos without reading any tensor data (for `lmdyn info`). */
export function readGgufHeader(path: string): GgufHeader {
  const fd = openForReading(path);
  try {
    return parseHeader(fd, path);
  } finally {
    closeSync(fd);
  }
}

/** One tensor of a parsed file, dequantized to f32 (any format of gguf-quants.ts). */
export function readGgufTensor(path: string, header: GgufHeader, name: string): Float32Array {
  const info = header.tensors.find((t) => t.name === name);
  check(info, 'not_found', `${path}: no tensor named ${name}`);
  const fd = openForReading(path);
  try {
    return readTensor(fd, path, info);
  } finally {
    closeSync(fd);
  }
}

const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian uint32
const DEFAULT_ALIGNMENT = 32;
const MAX_ARRAY_DEPTH = 8;
const MAX_DIMS = 4; // GGML_MAX_DIMS
const WINDOW = 1 << 20;
const GGML_Q8_0 = BLOCK_FORMATS.Q8_0.id;
const Q8_0_BLOCK = BLOCK_FORMATS.Q8_0.blockSize; // f16 scale d, then 32 int8 (value = d · q)
const Q8_0_BLOCK_BYTES = BLOCK_FORMATS.Q8_0.blockBytes;

/** ggml_type names (docs/gguf.md enum ggml_type). */
const GGML_TYPE_NAMES: Record<number, string> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  6: 'Q5_0',
  7: 'Q5_1',
  8: 'Q8_0',
  9: 'Q8_1',
  10: 'Q2_K',
  11: 'Q3_K',
  12: 'Q4_K',
  13: 'Q5_K',
  14: 'Q6_K',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  30: 'BF16',
  34: 'TQ1_0',
  35: 'TQ2_0',
  39: 'MXFP4',
};

/** gguf_metadata_value_type codes (the reader's and the writer's). */
export const enum ValueType {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
}

/** Fewest bytes one value of each type occupies (a string is at least its uint64 length). */
const MIN_VALUE_BYTES = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8];

/**
 * Sequential little-endian reads through a window of the file. Every read first checks that
 * the bytes exist, so a length field can never make the reader allocate past the file's end.
 */
class Cursor {
  pos = 0;
  private window = Buffer.alloc(0);
  private windowStart = 0;

  constructor(
    private readonly fd: number,
    readonly fileSize: number,
    readonly path: string,
  ) {}

  get remaining(): number {
    return this.fileSize - this.pos;
  }

  // Each read calls take() first: it may replace the window that `this.window` then reads.
  u8(): number {
    const at = this.take(1);
    return this.window.readUInt8(at);
  }
  i8(): number {
    const at = this.take(1);
    return this.window.readInt8(at);
  }
  u16(): number {
    const at = this.take(2);
    return this.window.readUInt16LE(at);
  }
  i16(): number {
    const at = this.take(2);
    return this.window.readInt16LE(at);
  }
  u32(): number {
    const at = this.take(4);
    return this.window.readUInt32LE(at);
  }
  i32(): number {
    const at = this.take(4);
    return this.window.readInt32LE(at);
  }
  f32(): number {
    const at = this.take(4);
    return this.window.readFloatLE(at);
  }
  f64(): number {
    const at = this.take(8);
    return this.window.readDoubleLE(at);
  }
  u64(): bigint {
    const at = this.take(8);
    return this.window.readBigUInt64LE(at);
  }
  i64(): bigint {
    const at = this.take(8);
    return this.window.readBigInt64LE(at);
  }

  /** A uint64 count or length, which must fit in the bytes left at `perItem` bytes each. */
  count(what: string, perItem: number): number {
    const n = this.u64();
    check(
      n * BigInt(perItem) <= BigInt(this.remaining),
      'truncated',
      `${this.path}: ${what} is ${n}, more than the ${this.remaining} bytes left at byte ${this.pos} can hold`,
    );
    return Number(n);
  }

  /** gguf_string_t: uint64 length, then UTF-8 bytes. */
  string(what: string): string {
    const len = this.count(`length of ${what}`, 1);
    const at = this.take(len);
    return this.window.toString('utf8', at, at + len);
  }

  /** `n` raw bytes copied out of the file. */
  bytes(n: number): Uint8Array {
    const at = this.take(n);
    const out = new Uint8Array(n);
    out.set(this.window.subarray(at, at + n));
    return out;
  }

  /** Advances past `n` bytes and returns their offset inside the (re)filled window. */
  private take(n: number): number {
    check(
      n <= this.remaining,
      'truncated',
      `${this.path}: unexpected end of file at byte ${this.pos} (need ${n} more bytes, ${this.remaining} left)`,
    );
    if (this.pos < this.windowStart || this.pos + n > this.windowStart + this.window.length) {
      const len = Math.min(Math.max(n, WINDOW), this.remaining);
      this.window = Buffer.alloc(len);
      this.windowStart = this.pos;
      readExactly(this.fd, this.window, this.pos, this.path);
    }
    const at = this.pos - this.windowStart;
    this.pos += n;
    return at;
  }
}

function parseHeader(fd: number, path: string): GgufHeader {
  const fileSize = fstatSync(fd).size;
  const c = new Cursor(fd, fileSize, path);
  check(
    fileSize >= 4 && c.u32() === GGUF_MAGIC,
    'bad_format',
    `${path}: not a GGUF file (no "GGUF" magic)`,
  );
  const version = c.u32();
  if (version !== 2 && version !== 3) {
    const hint = version > 0xffff ? ' (a big-endian file?)' : '';
    throw new LmdynError(
      'unsupported',
      `${path}: GGUF version ${version}${hint}; only 2 and 3 are read`,
    );
  }
  const tensorCount = c.count('tensor_count', 8 + 4 + 4 + 8); // name length, n_dims, type, offset
  const kvCount = c.count('metadata_kv_count', 8 + 4 + 1); // key length, type, smallest value
  const metadata: Record<string, GgufValue> = Object.create(null) as Record<string, GgufValue>;
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key ${i}`);
    check(!(key in metadata), 'bad_format', `${path}: metadata key ${key} appears twice`);
    metadata[key] = readValue(c, c.u32(), key, 0);
  }
  const alignment = metadata['general.alignment'] ?? DEFAULT_ALIGNMENT;
  check(
    typeof alignment === 'number' &&
      alignment > 0 &&
      Number.isInteger(alignment) &&
      (alignment & (alignment - 1)) === 0,
    'bad_format',
    `${path}: general.alignment ${String(alignment)} is not a power of two`,
  );
  const infos: { name: string; dims: number[]; type: number; relative: bigint }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`tensor name ${i}`);
    const nDims = c.u32();
    check(
      nDims <= MAX_DIMS,
      'bad_format',
      `${path}: tensor ${name} has ${nDims} dimensions (at most ${MAX_DIMS})`,
    );
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(Number(c.u64()));
    infos.push({ name, dims, type: c.u32(), relative: c.u64() });
  }
  const dataOffset = alignUp(c.pos, alignment);
  const tensors = infos.map((t) => tensorInfo(t, dataOffset, alignment, fileSize, path));
  checkTensorLayout(tensors, path);
  return { version, metadata, tensors, alignment, dataOffset, fileSize };
}

/** One metadata value of type `type`; arrays nest at most MAX_ARRAY_DEPTH deep. */
function readValue(c: Cursor, type: number, key: string, depth: number): GgufValue {
  switch (type) {
    case ValueType.U8:
      return c.u8();
    case ValueType.I8:
      return c.i8();
    case ValueType.U16:
      return c.u16();
    case ValueType.I16:
      return c.i16();
    case ValueType.U32:
      return c.u32();
    case ValueType.I32:
      return c.i32();
    case ValueType.F32:
      return shortestF32(c.f32());
    case ValueType.F64:
      return c.f64();
    case ValueType.U64:
      return exactNumber(c.u64());
    case ValueType.I64:
      return exactNumber(c.i64());
    case ValueType.Bool: {
      const b = c.u8();
      check(b <= 1, 'bad_format', `${c.path}: ${key} is a bool with byte value ${b}`);
      return b === 1;
    }
    case ValueType.String:
      return c.string(key);
    case ValueType.Array:
      check(
        depth < MAX_ARRAY_DEPTH,
        'bad_format',
        `${c.path}: ${key} nests arrays deeper than ${MAX_ARRAY_DEPTH}`,
      );
      return readArray(c, key, depth + 1);
    default:
      throw new LmdynError('bad_format', `${c.path}: ${key} has unknown value type ${type}`);
  }
}

function readArray(c: Cursor, key: string, depth: number): GgufValue {
  const type = c.u32();
  check(
    type < MIN_VALUE_BYTES.length,
    'bad_format',
    `${c.path}: ${key} is an array of unknown value type ${type}`,
  );
  const n = c.count(`length of ${key}`, MIN_VALUE_BYTES[type]!);
  const typed = <T>(make: (buf: ArrayBuffer) => T, width: number): T =>
    make(c.bytes(n * width).buffer as ArrayBuffer);
  switch (type) {
    case ValueType.U8:
      return typed((b) => new Uint8Array(b), 1);
    case ValueType.I8:
      return typed((b) => new Int8Array(b), 1);
    case ValueType.U16:
      return typed((b) => new Uint16Array(b), 2);
    case ValueType.I16:
      return typed((b) => new Int16Array(b), 2);
    case ValueType.U32:
      return typed((b) => new Uint32Array(b), 4);
    case ValueType.I32:
      return typed((b) => new Int32Array(b), 4);
    case ValueType.F32:
      return typed((b) => new Float32Array(b), 4);
    case ValueType.F64:
      return typed((b) => new Float64Array(b), 8);
    case ValueType.U64:
      return typed((b) => new BigUint64Array(b), 8);
    case ValueType.I64:
      return typed((b) => new BigInt64Array(b), 8);
    case ValueType.Bool:
      return Array.from({ length: n }, () => readValue(c, type, key, depth) as boolean);
    case ValueType.String:
      return Array.from({ length: n }, () => c.string(key));
    default:
      return Array.from({ length: n }, () => readValue(c, type, key, depth));
  }
}

/** The shortest decimal that rounds to the same float32 (1e-5, not 9.99999974e-6). */
function shortestF32(v: number): number {
  for (let digits = 1; digits < 9; digits++) {
    const d = Number(v.toPrecision(digits));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

function exactNumber(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v;
}

function alignUp(offset: number, alignment: number): number {
  return offset + ((alignment - (offset % alignment)) % alignment); // docs/gguf.md align_offset
}

function tensorInfo(
  t: { name: string; dims: number[]; type: number; relative: bigint },
  dataOffset: number,
  alignment: number,
  fileSize: number,
  path: string,
): GgufTensorInfo {
  const typeName = GGML_TYPE_NAMES[t.type] ?? `type ${t.type}`;
  const elements = t.dims.reduce((a, b) => a * b, 1);
  check(
    Number.isSafeInteger(elements),
    'bad_format',
    `${path}: tensor ${t.name} has impossible dimensions [${t.dims.join(', ')}]`,
  );
  check(
    t.relative < BigInt(fileSize),
    'truncated',
    `${path}: tensor ${t.name} starts at data offset ${t.relative}, past the end of the file (${fileSize} bytes)`,
  );
  const offset = dataOffset + Number(t.relative);
  check(
    Number(t.relative) % alignment === 0,
    'bad_format',
    `${path}: tensor ${t.name} starts at data offset ${t.relative}, not a multiple of ${alignment}`,
  );
  let bytes: number | null = null;
  const format = blockFormatOf(t.type);
  if (format) {
    check(
      (t.dims[0] ?? 1) % format.blockSize === 0,
      'bad_format',
      `${path}: ${format.name} tensor ${t.name} has a row of ${t.dims[0] ?? 1} values, not a multiple of ${format.blockSize}`,
    );
    bytes = (elements / format.blockSize) * format.blockBytes;
  }
  if (bytes !== null) {
    check(
      offset + bytes <= fileSize,
      'truncated',
      `${path}: tensor ${t.name} needs bytes ${offset}..${offset + bytes} but the file has ${fileSize}`,
    );
  }
  return { name: t.name, dims: t.dims, type: t.type, typeName, offset, elements, bytes };
}

/** Names are unique and the data of sized tensors does not overlap (bounds total work). */
function checkTensorLayout(tensors: GgufTensorInfo[], path: string): void {
  const names = new Set<string>();
  for (const t of tensors) {
    check(!names.has(t.name), 'bad_format', `${path}: tensor ${t.name} appears twice`);
    names.add(t.name);
  }
  const sized = tensors
    .filter((t) => t.bytes !== null && t.bytes > 0)
    .sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sized.length; i++) {
    const a = sized[i - 1]!;
    const b = sized[i]!;
    check(
      a.offset + a.bytes! <= b.offset,
      'bad_format',
      `${path}: the data of tensors ${a.name} and ${b.name} overlap`,
    );
  }
}

/** Reads one tensor and dequantizes it into an allocF32 buffer. */
function readTensor(fd: number, path: string, t: GgufTensorInfo): Float32Array {
  const format = blockFormatOf(t.type);
  if (!format) {
    const known = Object.keys(BLOCK_FORMATS).join(', ');
    throw new LmdynError(
      'unsupported',
      `${path}: tensor ${t.name} has type ${t.typeName}; the types read are ${known}`,
    );
  }
  const raw = Buffer.allocUnsafe(t.bytes!); // every byte is overwritten by the read
  readExactly(fd, raw, t.offset, path);
  const out = allocF32(t.elements);
  dequantize(format, raw, t.elements, out);
  return out;
}

/**
 * A Q8_0 tensor [rows, cols] (cols a multiple of 32, checked by tensorInfo) as a Q8_0 matrix with
 * group size 32: each block's f16 scale d becomes one f32 scale (exact), its 32 int8 the values.
 */
function readQ80Matrix(
  fd: number,
  path: string,
  t: GgufTensorInfo,
  rows: number,
  cols: number,
): Matrix {
  const raw = Buffer.allocUnsafe(t.bytes!); // every byte is overwritten by the read
  readExactly(fd, raw, t.offset, path);
  const blocks = t.elements / Q8_0_BLOCK;
  const q = allocI8(t.elements);
  const scales = allocF32(blocks);
  const src = new Int8Array(raw.buffer, raw.byteOffset, raw.length);
  const table = halfTable();
  for (let b = 0, o = 0; b < blocks; b++, o += Q8_0_BLOCK_BYTES) {
    scales[b] = table[raw[o]! | (raw[o + 1]! << 8)]!;
    q.set(src.subarray(o + 2, o + 2 + Q8_0_BLOCK), b * Q8_0_BLOCK);
  }
  return newQ80Matrix(rows, cols, Q8_0_BLOCK, q, scales);
}

function llamaConfig(
  meta: Record<string, GgufValue>,
  tensors: Map<string, GgufTensorInfo>,
  path: string,
): ModelConfig {
  const int = (key: string, fallback?: number): number => {
    const v = meta[key] ?? fallback;
    check(v !== undefined, 'bad_format', `${path}: metadata key ${key} is missing`);
    check(
      typeof v === 'number' && Number.isInteger(v) && v > 0,
      'bad_format',
      `${path}: ${key} is ${describe(v)}, not a positive integer`,
    );
    return v;
  };
  const float = (key: string, fallback?: number): number => {
    const v = meta[key] ?? fallback;
    check(v !== undefined, 'bad_format', `${path}: metadata key ${key} is missing`);
    check(
      typeof v === 'number' && v > 0 && Number.isFinite(v),
      'bad_format',
      `${path}: ${key} is ${describe(v)}`,
    );
    return v;
  };
  const scaling = meta['llama.rope.scaling.type'];
  const linearScale = meta['llama.rope.scale_linear'];
  const experts = meta['llama.expert_count'];
  if (
    (scaling !== undefined && scaling !== 'none') ||
    (linearScale !== undefined && linearScale !== 1)
  ) {
    throw new LmdynError(
      'unsupported',
      `${path}: RoPE scaling (${describe(scaling ?? linearScale)}) is not implemented`,
    );
  }
  if (typeof experts === 'number' && experts > 0) {
    throw new LmdynError('unsupported', `${path}: mixture-of-experts llama (${experts} experts)`);
  }
  const dim = int('llama.embedding_length');
  const nHeads = int('llama.attention.head_count');
  const nKvHeads = int('llama.attention.head_count_kv', nHeads);
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
  const keyLength = meta['llama.attention.key_length'];
  if (keyLength !== undefined && keyLength !== headDim) {
    throw new LmdynError(
      'unsupported',
      `${path}: attention.key_length ${describe(keyLength)} differs from ${headDim}`,
    );
  }
  const ropeDim = int('llama.rope.dimension_count', headDim);
  check(
    ropeDim % 2 === 0 && ropeDim <= headDim,
    'bad_format',
    `${path}: rope.dimension_count ${ropeDim} must be even and at most the head size ${headDim}`,
  );
  const seqLen = int('llama.context_length');
  check(
    seqLen <= MAX_SEQ_LEN,
    'bad_format',
    `${path}: context_length ${seqLen} is beyond any real model`,
  );
  const embedding = tensors.get('token_embd.weight');
  check(embedding, 'bad_format', `${path}: tensor token_embd.weight is missing`);
  const vocabSize = embedding.dims[1] ?? 0;
  check(
    vocabSize > 0,
    'bad_format',
    `${path}: token_embd.weight has shape [${embedding.dims.join(', ')}]`,
  );
  return {
    architecture: 'llama',
    sourceArchitecture: 'llama',
    dim,
    hiddenDim: int('llama.feed_forward_length'),
    nLayers: int('llama.block_count'),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    seqLen,
    norm: 'rmsnorm',
    normEps: float('llama.attention.layer_norm_rms_epsilon'),
    mlp: 'swiglu',
    positional: 'rope',
    ropeTheta: float('llama.rope.freq_base', 10000),
    ropeDim,
    tiedEmbeddings: !tensors.has('output.weight'),
    bosId: optionalId(meta, 'tokenizer.ggml.bos_token_id', vocabSize, path),
    eosId: optionalId(meta, 'tokenizer.ggml.eos_token_id', vocabSize, path),
  };
}

/** llama.cpp's tensor names; GGUF shapes are [cols, rows]. Unknown tensors are refused. */
function llamaWeights(
  fd: number,
  path: string,
  c: ModelConfig,
  tensors: Map<string, GgufTensorInfo>,
  options: GgufLoadOptions,
): ModelWeights {
  // block_count comes from metadata: bound it by the tensors present before looping over it
  check(
    c.nLayers * LAYER_TENSORS.length + 2 <= tensors.size,
    'bad_format',
    `${path}: block_count ${c.nLayers} needs ${c.nLayers * LAYER_TENSORS.length + 2} tensors; the file has ${tensors.size}`,
  );
  const expected = new Set(['token_embd.weight', 'output_norm.weight', 'output.weight']);
  for (let i = 0; i < c.nLayers; i++) {
    for (const n of LAYER_TENSORS) expected.add(`blk.${i}.${n}.weight`);
  }
  const unknown = [...tensors.keys()].filter((n) => !expected.has(n));
  if (unknown.length > 0) {
    throw new LmdynError(
      'unsupported',
      `${path}: unexpected llama tensors ${unknown.slice(0, 5).join(', ')}`,
    );
  }
  const info = (name: string, shape: number[]): GgufTensorInfo => {
    const t = tensors.get(name);
    check(t, 'bad_format', `${path}: tensor ${name} is missing`);
    const dims = trimOnes(t.dims);
    check(
      dims.length === shape.length && dims.every((d, i) => d === shape[i]),
      'bad_format',
      `${path}: tensor ${name} has shape [${t.dims.join(', ')}], expected [${shape.join(', ')}]`,
    );
    return t;
  };
  const load = (name: string, shape: number[]): Float32Array =>
    readTensor(fd, path, info(name, shape));
  const matrix = (name: string, rows: number, cols: number): Matrix => {
    const t = info(name, trimOnes([cols, rows]));
    if (t.type === GGML_Q8_0) return readQ80Matrix(fd, path, t, rows, cols);
    const f32 = newMatrix(rows, cols, readTensor(fd, path, t));
    const gs = q80GroupSize(cols, options.groupSize ?? Q8_0_BLOCK);
    if (options.requantize !== 'q8_0' || t.type === BLOCK_FORMATS.F32.id || gs === null) return f32;
    const q = quantizeMatrixQ80(f32, gs);
    freeF32(f32.data);
    return q;
  };
  const vector = (name: string): Float32Array => load(name, [c.dim]);
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  const layers: LayerWeights[] = [];
  for (let i = 0; i < c.nLayers; i++) {
    const p = `blk.${i}.`;
    layers.push({
      attnNorm: vector(`${p}attn_norm.weight`),
      attnNormBias: null,
      wq: matrix(`${p}attn_q.weight`, qDim, c.dim),
      wk: matrix(`${p}attn_k.weight`, kvDim, c.dim),
      wv: matrix(`${p}attn_v.weight`, kvDim, c.dim),
      wo: matrix(`${p}attn_output.weight`, c.dim, qDim),
      bq: null,
      bk: null,
      bv: null,
      bo: null,
      mlpNorm: vector(`${p}ffn_norm.weight`),
      mlpNormBias: null,
      wGate: matrix(`${p}ffn_gate.weight`, c.hiddenDim, c.dim), // w1
      wUp: matrix(`${p}ffn_up.weight`, c.hiddenDim, c.dim), // w3
      bUp: null,
      wDown: matrix(`${p}ffn_down.weight`, c.dim, c.hiddenDim), // w2
      bDown: null,
    });
  }
  const tokenEmbedding = matrix('token_embd.weight', c.vocabSize, c.dim);
  const finalNorm = vector('output_norm.weight');
  const unembedding = c.tiedEmbeddings
    ? tokenEmbedding
    : matrix('output.weight', c.vocabSize, c.dim);
  return {
    tokenEmbedding,
    positionEmbedding: null,
    layers,
    finalNorm,
    finalNormBias: null,
    unembedding,
    unembeddingBias: null,
  };
}

const LAYER_TENSORS = [
  'attn_norm',
  'attn_q',
  'attn_k',
  'attn_v',
  'attn_output',
  'ffn_norm',
  'ffn_gate',
  'ffn_up',
  'ffn_down',
];

/** SentencePiece token types (llama.cpp): 2 unknown, 3 control, 5 unused, 6 byte. */
const TOKEN_UNKNOWN = 2;
const TOKEN_CONTROL = 3;
const TOKEN_UNUSED = 5;
const TOKEN_BYTE = 6;

/** The embedded vocabulary when `tokenizer.ggml.model` is `llama`; otherwise none. */
function llamaTokenizer(meta: Record<string, GgufValue>, path: string): Tokenizer | null {
  if (meta['tokenizer.ggml.model'] !== 'llama') return null;
  const tokens = meta['tokenizer.ggml.tokens'];
  check(
    isStringArray(tokens),
    'bad_format',
    `${path}: tokenizer.ggml.tokens is not an array of strings`,
  );
  const n = tokens.length;
  const scores = meta['tokenizer.ggml.scores'];
  check(
    scores instanceof Float32Array && scores.length === n,
    'bad_format',
    `${path}: tokenizer.ggml.scores is not ${n} float32 values`,
  );
  const rawTypes = meta['tokenizer.ggml.token_type'];
  check(
    rawTypes === undefined || (rawTypes instanceof Int32Array && rawTypes.length === n),
    'bad_format',
    `${path}: tokenizer.ggml.token_type is not ${n} int32 values`,
  );
  const types = rawTypes ?? new Int32Array(n).fill(1);
  const byteIds = new Int32Array(256).fill(-1);
  const controlIds: number[] = [];
  tokens.forEach((piece, id) => {
    const type = types[id];
    const byte = /^<0x([0-9A-F]{2})>$/.exec(piece);
    if (byte && (type === TOKEN_BYTE || rawTypes === undefined)) {
      const b = parseInt(byte[1]!, 16);
      if (byteIds[b] === -1) byteIds[b] = id;
    }
    if (type === TOKEN_UNKNOWN || type === TOKEN_CONTROL || type === TOKEN_UNUSED)
      controlIds.push(id);
  });
  const addPrefix = meta['tokenizer.ggml.add_space_prefix'];
  return new SentencePieceTokenizer('gguf', {
    pieces: tokens.map((t) => t.replaceAll('\u2581', ' ')), // '▁' is SentencePiece's space
    scores,
    bosId: optionalId(meta, 'tokenizer.ggml.bos_token_id', n, path),
    eosId: optionalId(meta, 'tokenizer.ggml.eos_token_id', n, path),
    byteIds,
    unkId: optionalId(meta, 'tokenizer.ggml.unknown_token_id', n, path),
    controlIds,
    addDummyPrefix: addPrefix === undefined ? true : addPrefix === true,
  });
}

function optionalId(
  meta: Record<string, GgufValue>,
  key: string,
  vocabSize: number,
  path: string,
): number | null {
  const v = meta[key];
  if (v === undefined) return null;
  check(
    typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < vocabSize,
    'bad_format',
    `${path}: ${key} is ${describe(v)}, outside the vocabulary of ${vocabSize}`,
  );
  return v;
}

/** Metadata for `source.details`: arrays longer than 16 become a one-line summary, bigints strings. */
function summariseMetadata(meta: Record<string, GgufValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(meta)) {
    if (typeof v === 'bigint') out[key] = v.toString();
    else if (typeof v === 'object' && v.length > 16) out[key] = describe(v);
    else if (typeof v === 'object')
      out[key] = Array.from(v as ArrayLike<unknown>, (x) =>
        typeof x === 'bigint' ? x.toString() : x,
      );
    else out[key] = v;
  }
  return out;
}

function describe(v: GgufValue | undefined): string {
  if (v === undefined) return 'missing';
  if (typeof v !== 'object') return JSON.stringify(typeof v === 'bigint' ? v.toString() : v);
  const kind = Array.isArray(v)
    ? typeof v[0] === 'string'
      ? 'string'
      : 'value'
    : v.constructor.name;
  return `[${kind} array of ${v.length}]`;
}

function isStringArray(v: GgufValue | undefined): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function trimOnes(dims: number[]): number[] {
  const out = [...dims];
  while (out.length > 1 && out[out.length - 1] === 1) out.pop();
  return out;
}
