/**
 * NumPy `.npy` files (format versions 1–3): 2-D float32/float64 arrays, little-endian, C order —
 * what `np.save('x.npy', points)` writes for a point cloud. Spec:
 * numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 *
 * Layout: magic "\x93NUMPY", major and minor version bytes, header length (uint16 LE in v1,
 * uint32 LE in v2/v3), then an ASCII (v3: UTF-8) Python dict literal such as
 * `{'descr': '<f8', 'fortran_order': False, 'shape': (100, 2), }` padded with spaces and a
 * newline, then the raw data.
 */
import { readFileSync } from 'node:fs';
import { LmdynError } from '../errors.js';

export interface NpyMatrix {
  rows: number;
  cols: number;
  dtype: 'float32' | 'float64';
  /** Row-major [rows, cols]. */
  data: Float32Array | Float64Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function readNpy(path: string): NpyMatrix {
  return parseNpy(readFileSync(path), path);
}

/** Parses the bytes of a .npy file; `name` is used in error messages. */
export function parseNpy(bytes: Uint8Array, name = 'npy'): NpyMatrix {
  const fail = (code: 'bad_format' | 'truncated' | 'unsupported', msg: string): never => {
    throw new LmdynError(code, `${name}: ${msg}`);
  };
  if (bytes.length < 10) fail('truncated', `too short for a .npy file (${bytes.length} bytes)`);
  for (let i = 0; i < MAGIC.length; i++)
    if (bytes[i] !== MAGIC[i]) fail('bad_format', 'not a .npy file (bad magic)');
  const major = bytes[6];
  if (major < 1 || major > 3)
    fail('unsupported', `unsupported .npy format version ${major}.${bytes[7]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const prefix = major === 1 ? 10 : 12;
  if (bytes.length < prefix) fail('truncated', 'truncated header length');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = prefix + headerLength;
  if (dataStart > bytes.length)
    fail('truncated', `header says ${headerLength} bytes but the file ends first`);
  const headerText = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    bytes.subarray(prefix, dataStart),
  );
  const header = parseHeader(headerText, (msg) => fail('bad_format', `bad header (${msg})`));

  const descr = header.get('descr');
  const fortran = header.get('fortran_order');
  const shape = header.get('shape');
  if (typeof descr !== 'string') fail('bad_format', "bad header (no 'descr' string)");
  if (typeof fortran !== 'boolean') fail('bad_format', "bad header (no 'fortran_order' boolean)");
  if (!Array.isArray(shape)) fail('bad_format', "bad header (no 'shape' tuple)");
  const dims = shape as number[];
  const dtype = descr === '<f8' ? 'float64' : descr === '<f4' ? 'float32' : null;
  if (dtype === null)
    fail(
      'unsupported',
      `dtype ${JSON.stringify(descr)} is not supported (want little-endian float32 '<f4' or float64 '<f8')`,
    );
  if (fortran)
    fail(
      'unsupported',
      'Fortran-order arrays are not supported (save a C-order array: np.ascontiguousarray)',
    );
  if (dims.length !== 2)
    fail('unsupported', `want a 2-D array [points, dims], got shape (${dims.join(', ')})`);
  const [rows, cols] = dims;
  const width = dtype === 'float64' ? 8 : 4;
  const need = rows * cols * width;
  if (bytes.length - dataStart < need)
    fail(
      'truncated',
      `data truncated: shape (${rows}, ${cols}) needs ${need} bytes, file has ${bytes.length - dataStart}`,
    );
  // copy: the data start need not be aligned for a typed-array view (and a Buffer's slice is a view)
  const raw = new Uint8Array(need);
  raw.set(bytes.subarray(dataStart, dataStart + need));
  const data =
    dtype === 'float64'
      ? new Float64Array(raw.buffer, 0, rows * cols)
      : new Float32Array(raw.buffer, 0, rows * cols);
  return { rows, cols, dtype: dtype as 'float32' | 'float64', data };
}

/** Encodes a row-major 2-D float array as a version-1 .npy file. */
export function encodeNpy(
  data: Float32Array | Float64Array,
  rows: number,
  cols: number,
): Uint8Array {
  if (data.length !== rows * cols)
    throw new LmdynError(
      'bad_argument',
      `npy: ${rows}×${cols} needs ${rows * cols} values, got ${data.length}`,
    );
  const descr = data instanceof Float64Array ? '<f8' : '<f4';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const total = Math.ceil((10 + header.length + 1) / 64) * 64; // data aligned to 64 bytes
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

type HeaderValue = string | boolean | number[];

/** Parses the Python dict literal of a .npy header: string keys; string, bool or int-tuple values. */
function parseHeader(text: string, fail: (msg: string) => never): Map<string, HeaderValue> {
  let p = 0;
  const ws = (): void => {
    while (p < text.length && /\s/.test(text[p])) p++;
  };
  const expect = (c: string): void => {
    ws();
    if (text[p] !== c) fail(`expected '${c}' at ${p}`);
    p++;
  };
  const str = (): string => {
    ws();
    const q = text[p];
    if (q !== "'" && q !== '"') fail(`expected a string at ${p}`);
    const end = text.indexOf(q, p + 1);
    if (end < 0) fail('unterminated string');
    const s = text.slice(p + 1, end);
    p = end + 1;
    return s;
  };
  const value = (): HeaderValue => {
    ws();
    const c = text[p];
    if (c === "'" || c === '"') return str();
    if (text.startsWith('True', p)) {
      p += 4;
      return true;
    }
    if (text.startsWith('False', p)) {
      p += 5;
      return false;
    }
    if (c === '(') {
      p++;
      const items: number[] = [];
      for (;;) {
        ws();
        if (text[p] === ')') {
          p++;
          return items;
        }
        const m = /^\d+/.exec(text.slice(p));
        if (!m) fail(`expected a dimension at ${p}`);
        const v = Number((m as RegExpExecArray)[0]);
        if (!Number.isSafeInteger(v)) fail(`dimension ${(m as RegExpExecArray)[0]} too large`);
        items.push(v);
        p += (m as RegExpExecArray)[0].length;
        ws();
        if (text[p] === ',') p++;
        else if (text[p] !== ')') fail(`expected ',' or ')' at ${p}`);
      }
    }
    return fail(`unexpected value at ${p}`);
  };
  const out = new Map<string, HeaderValue>();
  expect('{');
  for (;;) {
    ws();
    if (text[p] === '}') break;
    const key = str();
    expect(':');
    out.set(key, value());
    ws();
    if (text[p] === ',') p++;
    else if (text[p] !== '}') fail(`expected ',' or '}' at ${p}`);
  }
  return out;
}
