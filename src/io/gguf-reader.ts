/**
 * The GGUF container (ggml docs/gguf.md), v2/v3, little-endian: magic "GGUF", uint32 version,
 * uint64 tensor_count, uint64 metadata_kv_count, the key/value pairs, the tensor infos (name,
 * n_dimensions, dimensions innermost first, ggml_type, offset relative to the data section),
 * padding to `general.alignment` (default 32), then the tensor data.
 *
 * This file reads the header only: metadata values and tensor infos, with every count and length
 * checked against the bytes that remain before anything is allocated, and tensor data that may
 * not overlap, so a corrupt or hostile file costs at most a few times its own size. What the
 * metadata means is gguf-metadata.ts / gguf-archs.ts / gguf-tokenizer.ts; tensor data is
 * gguf-tensors.ts.
 */
import { closeSync, fstatSync } from 'node:fs';
import { LmdynError, check } from '../errors.js';
import { blockFormatOf } from './gguf-quants.js';
import { openForReading, readExactly } from './llama2c.js';

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

/**
 * Metadata and tensor infos without reading any tensor data (for `lmdyn info`); with
 * `dataPresent: false` the data need not be in the file at all (a partial download).
 */
export function readGgufHeader(path: string, options: { dataPresent?: boolean } = {}): GgufHeader {
  const fd = openForReading(path);
  try {
    return parseHeader(fd, path, options.dataPresent ?? true);
  } finally {
    closeSync(fd);
  }
}

const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian uint32
const DEFAULT_ALIGNMENT = 32;
const MAX_ARRAY_DEPTH = 8;
const MAX_DIMS = 4; // GGML_MAX_DIMS
const GGML_MAX_NAME = 64; // ggml.h: names are shorter (gguf.cpp refuses longer ones)
const MAX_KEY = 256; // keys are dotted lower_snake_case names; real ones are under 64
const WINDOW = 1 << 20;

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

export function parseHeader(fd: number, path: string, dataPresent = true): GgufHeader {
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
    check(
      key.length <= MAX_KEY && !hasControl(key),
      'bad_format',
      `${path}: metadata key ${i} is not a key (${JSON.stringify(key.slice(0, 40))}…)`,
    );
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
    check(
      name.length < GGML_MAX_NAME && !hasControl(name),
      'bad_format',
      `${path}: tensor name ${i} is not a ggml tensor name (${JSON.stringify(name.slice(0, 40))}…; at most ${GGML_MAX_NAME - 1} printable characters)`,
    );
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
  const dataEnd = dataPresent ? fileSize : Number.MAX_SAFE_INTEGER;
  const tensors = infos.map((t) => tensorInfo(t, dataOffset, alignment, dataEnd, path));
  checkTensorLayout(tensors, path);
  return { version, metadata, tensors, alignment, dataOffset, fileSize };
}

/** Whether `s` holds a C0 control character or DEL (no real key or tensor name does). */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch < 0x20 || ch === 0x7f) return true;
  }
  return false;
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
