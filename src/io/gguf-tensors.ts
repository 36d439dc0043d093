/**
 * GGUF tensor data (the infos come from gguf-reader.ts): one tensor dequantized to f32 (any
 * format of gguf-quants.ts), a Q8_0 tensor kept as a Q8_0 matrix (blocks of 32 along a row: the
 * forward pass's Q8_0 matmul with group size 32, f16 scales widened exactly to f32), and the
 * other formats dequantized, or with `requantize: 'q8_0'` requantized one matrix at a time so the
 * f32 copy of the whole model never exists. Shapes are checked against what the architecture
 * expects (GGUF lists a [rows, cols] matrix as [cols, rows]).
 */
import { closeSync } from 'node:fs';
import { LmdynError, check } from '../errors.js';
import type { Matrix } from '../tensor/matrix.js';
import { newMatrix } from '../tensor/matrix.js';
import { castMatrixH16, newH16Matrix, type H16Format } from '../tensor/half.js';
import { allocF32, allocI8, allocU16, freeF32, freeI8, freeU16 } from '../tensor/memory.js';
import { newQ80Matrix, q80GroupSize, quantizeMatrixQ80 } from '../tensor/q80.js';
import { BLOCK_FORMATS, blockFormatOf, dequantize, halfTable } from './gguf-quants.js';
import type { GgufHeader, GgufTensorInfo } from './gguf-reader.js';
import { openForReading, readExactly } from './llama2c.js';

export interface GgufLoadOptions {
  /**
   * 'q8_0': matrices stored in a format other than F32 and Q8_0 (F16, BF16, Q4_0 … Q6_K) are
   * requantized to Q8_0 (group size `groupSize`, default 32) from their dequantized values.
   */
  requantize?: 'q8_0';
  groupSize?: number;
  /**
   * Keep matrices resident as this 16-bit format: F16 / BF16 tensors of that type as they are,
   * other types (Q8_0 excepted, kept as Q8_0) dequantized and rounded one matrix at a time.
   */
  keep16?: H16Format;
}

const GGML_Q8_0 = BLOCK_FORMATS.Q8_0.id;
const Q8_0_BLOCK = BLOCK_FORMATS.Q8_0.blockSize; // f16 scale d, then 32 int8 (value = d · q)
const Q8_0_BLOCK_BYTES = BLOCK_FORMATS.Q8_0.blockBytes;

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

/** The tensors of one open file, read by name with their expected shapes. */
export class GgufTensors {
  readonly byName: Map<string, GgufTensorInfo>;

  constructor(
    private readonly fd: number,
    readonly path: string,
    tensors: GgufTensorInfo[],
    private readonly options: GgufLoadOptions = {},
  ) {
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The info of `name`, whose dimensions (trailing 1s dropped) must be `shape`. */
  info(name: string, shape: number[]): GgufTensorInfo {
    const t = this.byName.get(name);
    check(t, 'bad_format', `${this.path}: tensor ${name} is missing`);
    const dims = trimOnes(t.dims);
    const want = trimOnes(shape);
    check(
      dims.length === want.length && dims.every((d, i) => d === want[i]),
      'bad_format',
      `${this.path}: tensor ${name} has shape [${t.dims.join(', ')}], expected [${want.join(', ')}]`,
    );
    return t;
  }

  /** A 1-d tensor of `n` values as f32. */
  vector(name: string, n: number): Float32Array {
    return readTensor(this.fd, this.path, this.info(name, [n]));
  }

  /** A [rows, cols] matrix: Q8_0 kept, F32 as is, other formats dequantized (or requantized). */
  matrix(name: string, rows: number, cols: number): Matrix {
    const t = this.info(name, [cols, rows]);
    if (t.type === GGML_Q8_0) return readQ80Matrix(this.fd, this.path, t, rows, cols);
    if (this.options.keep16) {
      return readMatrix16(this.fd, this.path, t, rows, cols, this.options.keep16);
    }
    const f32 = newMatrix(rows, cols, readTensor(this.fd, this.path, t));
    const gs = q80GroupSize(cols, this.options.groupSize ?? Q8_0_BLOCK);
    if (this.options.requantize !== 'q8_0' || t.type === BLOCK_FORMATS.F32.id || gs === null) {
      return f32;
    }
    const q = quantizeMatrixQ80(f32, gs);
    freeF32(f32.data);
    return q;
  }

  /** Whether two tensors hold the same type, shape and bytes (a tied copy written twice). */
  sameData(a: string, b: string): boolean {
    const x = this.byName.get(a);
    const y = this.byName.get(b);
    if (!x || !y || x.type !== y.type || x.bytes === null || x.bytes !== y.bytes) return false;
    if (x.dims.join() !== y.dims.join()) return false;
    const chunk = 1 << 20;
    const bx = Buffer.allocUnsafe(Math.min(chunk, x.bytes));
    const by = Buffer.allocUnsafe(bx.length);
    for (let at = 0; at < x.bytes; at += chunk) {
      const n = Math.min(chunk, x.bytes - at);
      readExactly(this.fd, bx.subarray(0, n), x.offset + at, this.path);
      readExactly(this.fd, by.subarray(0, n), y.offset + at, this.path);
      if (!bx.subarray(0, n).equals(by.subarray(0, n))) return false;
    }
    return true;
  }
}

/** Rows `order[0], order[1], …` of `m` as a new matrix of the same format (Q8_0 rows move with their scales). */
export function selectRows(m: Matrix, order: ArrayLike<number>): Matrix {
  const n = order.length;
  if (m.format === 'q8_0') {
    const perRow = m.cols / m.groupSize;
    const q = allocI8(n * m.cols);
    const scales = allocF32(n * perRow);
    for (let r = 0; r < n; r++) {
      const from = order[r]!;
      q.set(m.q.subarray(from * m.cols, (from + 1) * m.cols), r * m.cols);
      scales.set(m.scales.subarray(from * perRow, (from + 1) * perRow), r * perRow);
    }
    return newQ80Matrix(n, m.cols, m.groupSize, q, scales);
  }
  if (m.format === 'f16' || m.format === 'bf16') {
    const bits = allocU16(n * m.cols);
    for (let r = 0; r < n; r++) {
      const from = order[r]!;
      bits.set(m.bits.subarray(from * m.cols, (from + 1) * m.cols), r * m.cols);
    }
    return newH16Matrix(m.format, n, m.cols, bits);
  }
  const data = allocF32(n * m.cols);
  const src = m.data;
  for (let r = 0; r < n; r++) {
    const from = order[r]!;
    data.set(src.subarray(from * m.cols, (from + 1) * m.cols), r * m.cols);
  }
  return newMatrix(n, m.cols, data);
}

/** Releases a matrix read by GgufTensors that nothing refers to any more. */
export function freeMatrix(m: Matrix): void {
  if (m.format === 'q8_0') {
    freeI8(m.q);
    freeF32(m.scales);
  } else if (m.format === 'f32') freeF32(m.data);
  else freeU16(m.bits);
}

/**
 * A tensor [rows, cols] as a resident 16-bit matrix: the bits as stored when the file has that
 * type, else dequantized to f32 and rounded (the f32 copy freed at once).
 */
function readMatrix16(
  fd: number,
  path: string,
  t: GgufTensorInfo,
  rows: number,
  cols: number,
  format: H16Format,
): Matrix {
  if (t.type === BLOCK_FORMATS[format === 'f16' ? 'F16' : 'BF16'].id) {
    const bits = allocU16(t.elements);
    readExactly(fd, new Uint8Array(bits.buffer, bits.byteOffset, 2 * t.elements), t.offset, path);
    return newH16Matrix(format, rows, cols, bits);
  }
  const f32 = readTensor(fd, path, t);
  const m = castMatrixH16(newMatrix(rows, cols, f32), format);
  freeF32(f32);
  return m;
}

/** Entries `order[0], order[1], …` of `v` (a bias, in the row order of its matrix). */
export function selectEntries(v: Float32Array, order: ArrayLike<number>): Float32Array {
  const out = allocF32(order.length);
  for (let i = 0; i < order.length; i++) out[i] = v[order[i]!]!;
  return out;
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
 * A Q8_0 tensor [rows, cols] (cols a multiple of 32, checked by the reader) as a Q8_0 matrix with
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

function trimOnes(dims: number[]): number[] {
  const out = [...dims];
  while (out.length > 1 && out[out.length - 1] === 1) out.pop();
  return out;
}
