/**
 * safetensors (huggingface/safetensors README, "Format"):
 *
 * - 8 bytes: N, a little-endian u64, the length of the header;
 * - N bytes: a UTF-8 JSON object `{name: {dtype, shape, data_offsets: [begin, end]}, ...}` with an
 *   optional `__metadata__` map of strings to strings; offsets are relative to the byte buffer
 *   that follows the header, `end` one past the last byte. The reference writer pads the header
 *   with spaces so that the buffer starts on an 8-byte boundary;
 * - the byte buffer: each tensor little-endian and C-ordered. The buffer must be entirely indexed,
 *   without holes or overlaps (only empty tensors share an offset), and the reference reader
 *   refuses headers above 100 MB.
 *
 * Reading opens the file, parses and validates the header, then reads each tensor on demand by
 * its offset straight into its destination buffer: a multi-GB file is never held in memory.
 * Writing streams: the header first, then the caller's tensor data in order, to a temporary file
 * that is renamed into place when complete.
 */
import { closeSync, fstatSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { LmdynError, check } from '../errors.js';
import { newMatrix, type H16Matrix } from '../tensor/matrix.js';
import { castMatrixH16, newH16Matrix, type H16Format } from '../tensor/half.js';
import { allocF32, allocU16, freeF32 } from '../tensor/memory.js';
import { ioError } from './atomic.js';
import { openForReading, readExactly } from './llama2c.js';

/** Every dtype of the reference implementation, with its size in bits. */
const DTYPE_BITS = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  F64: 64,
  I64: 64,
  U64: 64,
  C64: 64,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_BITS;

/** The dtypes lmdyn reads as typed arrays and writes. F16 and BF16 travel as raw bits. */
export type WritableDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'U64'
  | 'I32'
  | 'U32'
  | 'I16'
  | 'U16'
  | 'I8'
  | 'U8'
  | 'BOOL';

export type TensorData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range in the file (absolute, `end` exclusive). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  readonly path: string;
  readonly fd: number;
  /** N, the JSON header's length in bytes (padding included). */
  readonly headerLength: number;
  /** 8 + N: where the byte buffer starts. */
  readonly dataStart: number;
  readonly metadata: Record<string, string>;
  /** In file order (by offset). */
  readonly tensors: readonly SafetensorsTensorInfo[];
  readonly byName: ReadonlyMap<string, SafetensorsTensorInfo>;
}

export interface TensorSpec {
  name: string;
  dtype: WritableDtype;
  shape: readonly number[];
}

export interface TensorToWrite extends TensorSpec {
  data: TensorData;
}

/** Opens a safetensors file and validates its header; close it with `closeSafetensors`. */
export function openSafetensors(path: string): SafetensorsFile {
  const fd = openForReading(path);
  try {
    return parseHeader(fd, path);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * A safetensors file's metadata and tensor table from its header alone: the data after the
 * header is neither read nor required to be there (for `lmdyn info` on a partial download).
 */
export function readSafetensorsHeader(path: string): Omit<SafetensorsFile, 'fd'> {
  const fd = openForReading(path);
  try {
    const { path: p, headerLength, dataStart, metadata, tensors, byName } = parseHeader(fd, path, false);
    return { path: p, headerLength, dataStart, metadata, tensors, byName };
  } finally {
    closeSync(fd);
  }
}

/** A 16-bit (F16 / BF16) tensor's raw bits, read into `out`. */
export function readTensorBits(file: SafetensorsFile, name: string, out: Uint16Array): void {
  const t = tensorInfo(file, name);
  check(t.dtype === 'F16' || t.dtype === 'BF16', 'bad_argument', `${name}: dtype ${t.dtype} is not 16-bit`);
  check(out.length * 2 === t.end - t.begin, 'bad_argument', `${name}: output has ${out.length} values, tensor ${(t.end - t.begin) / 2}`);
  readExactly(file.fd, new Uint8Array(out.buffer, out.byteOffset, out.length * 2), t.begin, file.path);
}

/**
 * A [rows, cols] tensor as a resident 16-bit matrix of `format` (bits in the arena): read as it is
 * when the file stores that type, else read as f32 and rounded (the f32 copy freed at once, so
 * loading holds one matrix's f32 at a time).
 */
export function readMatrix16(
  file: SafetensorsFile,
  name: string,
  rows: number,
  cols: number,
  format: H16Format,
): H16Matrix {
  const t = tensorInfo(file, name);
  if (t.dtype === (format === 'f16' ? 'F16' : 'BF16')) {
    const bits = allocU16(rows * cols);
    readTensorBits(file, name, bits);
    return newH16Matrix(format, rows, cols, bits);
  }
  const f32 = readTensorF32(file, name);
  const m = castMatrixH16(newMatrix(rows, cols, f32), format);
  freeF32(f32);
  return m;
}

export function closeSafetensors(file: SafetensorsFile): void {
  closeSync(file.fd);
}

/**
 * One tensor as f32 (F32 read in one bulk copy; F16, BF16 and F64 converted chunk by chunk),
 * into `out` or a fresh `allocF32` buffer. Other dtypes are `unsupported`.
 */
export function readTensorF32(
  file: SafetensorsFile,
  name: string,
  out?: Float32Array,
): Float32Array {
  const t = tensorInfo(file, name);
  const n = elementCount(t.shape);
  const dst = out ?? allocF32(n);
  check(dst.length === n, 'bad_argument', `${name}: output has ${dst.length} values, tensor ${n}`);
  switch (t.dtype) {
    case 'F32':
      readExactly(file.fd, new Uint8Array(dst.buffer, dst.byteOffset, n * 4), t.begin, file.path);
      return dst;
    case 'F16':
    case 'BF16':
    case 'F64':
      convertInChunks(file, t, dst);
      return dst;
    default:
      throw new LmdynError(
        'unsupported',
        `${file.path}: tensor ${name} has dtype ${t.dtype}; lmdyn reads F32, F16, BF16 and F64 weights`,
      );
  }
}

/** One tensor's values in the typed array of its dtype (F16/BF16 as raw bits in a Uint16Array). */
export function readTensorData(file: SafetensorsFile, name: string): TensorData {
  const t = tensorInfo(file, name);
  if (!(t.dtype in TYPED_ARRAYS)) {
    throw new LmdynError(
      'unsupported',
      `${file.path}: tensor ${name} has dtype ${t.dtype}, which lmdyn cannot read`,
    );
  }
  const Ctor = TYPED_ARRAYS[t.dtype as WritableDtype];
  const bytes = new Uint8Array(t.end - t.begin);
  readExactly(file.fd, bytes, t.begin, file.path);
  return new Ctor(bytes.buffer, 0, (t.end - t.begin) / Ctor.BYTES_PER_ELEMENT);
}

/** A whole (small) file at once: metadata and every tensor in its own dtype. */
export function readSafetensors(path: string): {
  metadata: Record<string, string>;
  tensors: Map<string, TensorToWrite>;
} {
  const file = openSafetensors(path);
  try {
    const tensors = new Map<string, TensorToWrite>();
    for (const t of file.tensors) {
      const data = readTensorData(file, t.name);
      tensors.set(t.name, { name: t.name, dtype: t.dtype as WritableDtype, shape: t.shape, data });
    }
    return { metadata: file.metadata, tensors };
  } finally {
    closeSafetensors(file);
  }
}

/**
 * Writes a safetensors file as the reference writer lays it out: tensors ordered by decreasing
 * element size then by name (so every tensor is naturally aligned), `__metadata__` first, the
 * header space-padded to a multiple of 8. Same input, same bytes.
 */
export function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata: Record<string, string> = {},
): void {
  const ordered = [...tensors].sort(
    (a, b) =>
      DTYPE_BITS[b.dtype] - DTYPE_BITS[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  for (const t of ordered) {
    const n = elementCount(t.shape);
    check(
      t.data.length === n,
      'bad_argument',
      `tensor ${t.name}: ${t.data.length} values for shape [${t.shape.join(', ')}]`,
    );
  }
  const writer = createSafetensorsWriter(path, ordered, metadata);
  try {
    for (const t of ordered) writer.append(t.data);
    writer.close();
  } catch (err) {
    writer.abort();
    throw ioError(err, path);
  }
}

export interface SafetensorsWriter {
  readonly path: string;
  /** Appends the next values, in the order of the specs; a chunk stays within one tensor. */
  append(chunk: TensorData): void;
  /** Checks every tensor is complete, then moves the file into place. */
  close(): void;
  /** Drops the temporary file. */
  abort(): void;
}

/**
 * The streaming writer: the header (from `specs`, in their order) is written at once, then the
 * caller appends each tensor's data in order, in as many chunks as it likes, without holding the
 * tensors in memory. Data is naturally aligned when specs come in decreasing element size.
 */
export function createSafetensorsWriter(
  path: string,
  specs: readonly TensorSpec[],
  metadata: Record<string, string> = {},
): SafetensorsWriter {
  const layout = encodeHeader(specs, metadata);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (err) {
    throw ioError(err, path);
  }
  const staging = new Uint8Array(STAGING_BYTES);
  let staged = 0;
  let index = 0; // the tensor being appended to
  let filled = 0; // its bytes written so far
  let open = true;

  const flush = (): void => {
    writeAll(fd, staging.subarray(0, staged));
    staged = 0;
  };
  const put = (bytes: Uint8Array): void => {
    if (staged + bytes.length > staging.length) flush();
    if (bytes.length >= staging.length) writeAll(fd, bytes);
    else {
      staging.set(bytes, staged);
      staged += bytes.length;
    }
  };
  const abort = (): void => {
    if (!open) return;
    open = false;
    closeSync(fd);
    rmSync(tmp, { force: true });
  };

  try {
    put(layout.prefix);
  } catch (err) {
    abort();
    throw ioError(err, path);
  }
  return {
    path,
    append(chunk: TensorData): void {
      check(open, 'bad_argument', `${path}: append after close`);
      if (chunk.byteLength === 0) return;
      while (index < specs.length && layout.sizes[index] === filled) {
        index++;
        filled = 0;
      }
      check(index < specs.length, 'bad_argument', `${path}: more data than the header declares`);
      const spec = specs[index];
      check(
        chunk instanceof TYPED_ARRAYS[spec.dtype],
        'bad_argument',
        `${path}: tensor ${spec.name} (${spec.dtype}) needs a ${TYPED_ARRAYS[spec.dtype].name}, got ${chunk.constructor.name}`,
      );
      check(
        filled + chunk.byteLength <= layout.sizes[index],
        'bad_argument',
        `${path}: chunk overruns tensor ${spec.name} (${layout.sizes[index]} bytes)`,
      );
      try {
        put(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch (err) {
        abort();
        throw ioError(err, path);
      }
      filled += chunk.byteLength;
    },
    close(): void {
      check(open, 'bad_argument', `${path}: closed twice`);
      while (index < specs.length && layout.sizes[index] === filled) {
        index++;
        filled = 0;
      }
      if (index < specs.length) {
        const missing = specs[index].name;
        abort();
        throw new LmdynError('bad_argument', `${path}: tensor ${missing} was not fully written`);
      }
      try {
        flush();
        fsyncSync(fd);
        closeSync(fd);
        open = false;
        renameSync(tmp, path);
      } catch (err) {
        if (open) closeSync(fd);
        open = false;
        rmSync(tmp, { force: true });
        throw ioError(err, path);
      }
    },
    abort,
  };
}

// ---- reading ----------------------------------------------------------------------------------

/** The reference reader's limit on N (safetensors `MAX_HEADER_SIZE`). */
const MAX_HEADER_BYTES = 100_000_000;
const CONVERT_CHUNK_BYTES = 1 << 23;
const STAGING_BYTES = 1 << 22;

const TYPED_ARRAYS: Record<
  WritableDtype,
  {
    new (buffer: ArrayBufferLike, byteOffset: number, length: number): TensorData;
    readonly BYTES_PER_ELEMENT: number;
    readonly name: string;
  }
> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
  I32: Int32Array,
  U32: Uint32Array,
  I16: Int16Array,
  U16: Uint16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

function parseHeader(fd: number, path: string, dataPresent = true): SafetensorsFile {
  const fileSize = fstatSync(fd).size;
  check(
    fileSize >= 8,
    'truncated',
    `${path}: safetensors file is truncated (${fileSize} bytes, no header length)`,
  );
  const head = new Uint8Array(8);
  readExactly(fd, head, 0, path);
  const view = new DataView(head.buffer);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  check(
    hi === 0 && n <= MAX_HEADER_BYTES,
    'bad_format',
    `${path}: safetensors header length ${n} exceeds the format's 100 MB limit`,
  );
  check(
    n >= 2,
    'bad_format',
    `${path}: safetensors header length ${n} is too small for a JSON object`,
  );
  check(
    8 + n <= fileSize,
    'truncated',
    `${path}: safetensors file is truncated (header of ${n} bytes, file of ${fileSize})`,
  );
  const raw = new Uint8Array(n);
  readExactly(fd, raw, 8, path);
  const json = parseJsonObject(raw, path);
  const dataStart = 8 + n;
  const dataSize = fileSize - dataStart;

  let metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') metadata = parseMetadata(value, path);
    else tensors.push(parseTensorEntry(name, value, dataStart, path));
  }

  // The buffer must be covered exactly once: sorted by offset, each tensor starts where the
  // previous one ended (empty tensors may share an offset), and the last ends at end of file.
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = dataStart;
  for (const t of tensors) {
    check(
      t.begin === cursor,
      'bad_format',
      t.begin < cursor
        ? `${path}: tensor ${t.name} overlaps the previous tensor`
        : `${path}: ${t.begin - cursor} unindexed bytes before tensor ${t.name}`,
    );
    cursor = t.end;
  }
  check(
    cursor <= fileSize || !dataPresent,
    'truncated',
    `${path}: safetensors file is truncated (tensors need ${cursor - dataStart} data bytes, file has ${dataSize})`,
  );
  check(
    cursor === fileSize || !dataPresent,
    'bad_format',
    `${path}: ${fileSize - cursor} trailing bytes after the last tensor`,
  );
  return {
    path,
    fd,
    headerLength: n,
    dataStart,
    metadata,
    tensors,
    byName: new Map(tensors.map((t) => [t.name, t])),
  };
}

function parseJsonObject(raw: Uint8Array, path: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new LmdynError('bad_format', `${path}: safetensors header is not valid UTF-8`);
  }
  check(text.startsWith('{'), 'bad_format', `${path}: safetensors header does not start with '{'`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new LmdynError(
      'bad_format',
      `${path}: safetensors header is not valid JSON (${(err as Error).message})`,
    );
  }
  check(isRecord(parsed), 'bad_format', `${path}: safetensors header is not a JSON object`);
  return parsed;
}

function parseMetadata(value: unknown, path: string): Record<string, string> {
  if (value === null) return {};
  check(isRecord(value), 'bad_format', `${path}: __metadata__ is not an object`);
  for (const [k, v] of Object.entries(value)) {
    check(typeof v === 'string', 'bad_format', `${path}: __metadata__.${k} is not a string`);
  }
  return value as Record<string, string>;
}

function parseTensorEntry(
  name: string,
  value: unknown,
  dataStart: number,
  path: string,
): SafetensorsTensorInfo {
  const where = `${path}: tensor ${name}`;
  check(isRecord(value), 'bad_format', `${where}: entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = value;
  check(typeof dtype === 'string', 'bad_format', `${where}: dtype is missing`);
  if (!Object.hasOwn(DTYPE_BITS, dtype)) {
    throw new LmdynError('unsupported', `${where}: unknown dtype ${dtype}`);
  }
  check(
    Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0),
    'bad_format',
    `${where}: shape is not a list of non-negative integers`,
  );
  check(
    Array.isArray(offsets) &&
      offsets.length === 2 &&
      offsets.every((o) => Number.isSafeInteger(o) && o >= 0) &&
      offsets[0] <= offsets[1],
    'bad_format',
    `${where}: data_offsets is not [begin, end] with 0 <= begin <= end`,
  );
  const [begin, end] = offsets as [number, number];
  const dims = shape as number[];
  const bits = DTYPE_BITS[dtype as SafetensorsDtype];
  const count = dims.reduce((a, d) => a * d, 1);
  check(
    Number.isSafeInteger(count * bits) &&
      (count * bits) % 8 === 0 &&
      (count * bits) / 8 === end - begin,
    'bad_format',
    `${where}: shape [${dims.join(', ')}] of ${dtype} needs ${(count * bits) / 8} bytes, data_offsets give ${end - begin}`,
  );
  return {
    name,
    dtype: dtype as SafetensorsDtype,
    shape: dims,
    begin: dataStart + begin,
    end: dataStart + end,
  };
}

function tensorInfo(file: SafetensorsFile, name: string): SafetensorsTensorInfo {
  const t = file.byName.get(name);
  if (!t) throw new LmdynError('bad_format', `${file.path}: no tensor named ${name}`);
  return t;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/** F16 / BF16 / F64 to f32 through a bounded scratch buffer (aligned, unlike the file offsets). */
function convertInChunks(file: SafetensorsFile, t: SafetensorsTensorInfo, dst: Float32Array): void {
  const width = DTYPE_BITS[t.dtype] / 8;
  const perChunk = CONVERT_CHUNK_BYTES / width;
  const scratch = new Uint8Array(Math.min(CONVERT_CHUNK_BYTES, t.end - t.begin));
  const dstBits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  const half = t.dtype === 'F16' ? halfTable() : null;
  for (let start = 0; start < dst.length; start += perChunk) {
    const count = Math.min(perChunk, dst.length - start);
    const bytes = scratch.subarray(0, count * width);
    readExactly(file.fd, bytes, t.begin + start * width, file.path);
    if (t.dtype === 'F64') {
      dst.set(new Float64Array(scratch.buffer, 0, count), start);
    } else {
      const h = new Uint16Array(scratch.buffer, 0, count);
      if (half) {
        for (let i = 0; i < count; i++) dst[start + i] = half[h[i]];
      } else {
        // bfloat16 is the top half of an IEEE binary32.
        for (let i = 0; i < count; i++) dstBits[start + i] = h[i] << 16;
      }
    }
  }
}

let HALF_TABLE: Float32Array | null = null;

/**
 * All 65,536 IEEE binary16 values as f32 (256 KB, built once): sign, 5-bit exponent (bias 15),
 * 10-bit mantissa; exponent 0 is subnormal (mantissa × 2^−24), 31 is Inf/NaN (payload kept).
 */
export function halfTable(): Float32Array {
  if (HALF_TABLE) return HALF_TABLE;
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) table[h] = (sign ? -1 : 1) * mant * 2 ** -24;
    else if (exp === 31) bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    else bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  }
  HALF_TABLE = table;
  return table;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- writing ----------------------------------------------------------------------------------

/** The 8-byte length and the padded JSON header; `sizes` are the tensors' byte counts. */
function encodeHeader(
  specs: readonly TensorSpec[],
  metadata: Record<string, string>,
): { prefix: Uint8Array; sizes: number[] } {
  const entries: string[] = [];
  const keys = Object.keys(metadata).sort();
  if (keys.length > 0) {
    for (const k of keys) {
      check(typeof metadata[k] === 'string', 'bad_argument', `__metadata__.${k} must be a string`);
    }
    const body = keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`);
    entries.push(`"__metadata__":{${body.join(',')}}`);
  }
  const seen = new Set<string>();
  const sizes: number[] = [];
  let offset = 0;
  for (const s of specs) {
    check(
      s.name !== '__metadata__' && !seen.has(s.name),
      'bad_argument',
      `tensor name ${s.name} is reserved or repeated`,
    );
    seen.add(s.name);
    check(
      s.shape.every((d) => Number.isSafeInteger(d) && d >= 0),
      'bad_argument',
      `tensor ${s.name}: shape [${s.shape.join(', ')}] is not a list of non-negative integers`,
    );
    const size = elementCount(s.shape) * TYPED_ARRAYS[s.dtype].BYTES_PER_ELEMENT;
    sizes.push(size);
    // Keys are written one by one: an object would move integer-like names to the front.
    const info = `{"dtype":"${s.dtype}","shape":[${s.shape.join(',')}],"data_offsets":[${offset},${offset + size}]}`;
    entries.push(`${JSON.stringify(s.name)}:${info}`);
    offset += size;
  }
  const json = new TextEncoder().encode(`{${entries.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  const prefix = new Uint8Array(8 + n).fill(0x20, 8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(n), true);
  prefix.set(json, 8);
  return { prefix, sizes };
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
  }
}
