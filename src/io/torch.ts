/**
 * PyTorch checkpoints (`pytorch_model.bin`: torch.save's zip format, torch ≥ 1.6), read as a state
 * dict of tensors without Python and without running anything the pickle names.
 *
 * The zip (torch/serialization.py `_save`, written by PyTorchFileWriter, every entry stored
 * uncompressed) holds `{archive}/data.pkl`, a pickle (protocol 2) of the state dict, and one entry
 * `{archive}/data/{key}` per storage with its raw little-endian bytes. In the pickle, a tensor is
 * `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks)`
 * and a storage is the persistent id `('storage', torch.FloatStorage, key, location, numel)`.
 *
 * The pickle is interpreted by a small stack machine that knows the opcodes torch.save emits and
 * builds plain data; the only callables it accepts are OrderedDict, _rebuild_tensor_v2,
 * _rebuild_parameter and the storage classes, each turned into data, never run. Anything else is
 * refused with a one-line error. A contiguous tensor is then a byte range of the file, so the
 * result is a SafetensorsFile (same fd, absolute ranges) and readTensorF32 reads it unchanged.
 */
import { closeSync, fstatSync } from 'node:fs';
import { LmdynError, check } from '../errors.js';
import { openForReading, readExactly } from './llama2c.js';
import type { SafetensorsDtype, SafetensorsFile, SafetensorsTensorInfo } from './safetensors.js';

/** Opens a torch.save zip checkpoint; close it with closeSafetensors (it only closes the fd). */
export function openTorchCheckpoint(path: string): SafetensorsFile {
  const fd = openForReading(path);
  try {
    const entries = zipEntries(fd, path);
    const pkl = [...entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkl === undefined) {
      throw new LmdynError(
        'unsupported',
        `${path}: not a torch.save zip checkpoint (no data.pkl; the pre-1.6 legacy format is not read)`,
      );
    }
    const archive = pkl.slice(0, -'/data.pkl'.length);
    const order = entries.get(`${archive}/byteorder`);
    if (order) {
      const text = new TextDecoder().decode(readEntry(fd, order, path));
      check(text === 'little', 'unsupported', `${path}: byteorder ${text} (only little-endian)`);
    }
    const root = unpickle(readEntry(fd, entries.get(pkl) as ZipEntry, path), path);
    const dict = stateDict(root, path);
    const tensors: SafetensorsTensorInfo[] = [];
    for (const [name, value] of dict) {
      if (!isTensor(value)) continue;
      tensors.push(tensorRange(name, value, entries, archive, path));
    }
    tensors.sort((a, b) => a.begin - b.begin);
    return {
      path,
      fd,
      headerLength: 0,
      dataStart: 0,
      metadata: { format: 'pt' },
      tensors,
      byName: new Map(tensors.map((t) => [t.name, t])),
    };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

// ---- tensors ------------------------------------------------------------------------------------

interface Storage {
  kind: 'storage';
  dtype: SafetensorsDtype;
  key: string;
  numel: number;
}

interface Tensor {
  kind: 'tensor';
  storage: Storage;
  offset: number; // in elements
  size: number[];
  stride: number[];
}

/** torch's storage classes and their element types (torch/storage.py _LegacyStorage names). */
const STORAGE_DTYPES: Record<string, SafetensorsDtype> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};
const DTYPE_BYTES: Partial<Record<SafetensorsDtype, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

function isTensor(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && (v as Tensor).kind === 'tensor';
}

/** The state dict itself, or the one a training script wrapped in {state_dict} / {model}. */
function stateDict(root: unknown, path: string): Map<unknown, unknown> {
  if (root instanceof Map) {
    for (const key of ['state_dict', 'model']) {
      const inner = root.get(key);
      if (inner instanceof Map && ![...root.values()].some(isTensor)) return inner;
    }
    return root;
  }
  throw new LmdynError('bad_format', `${path}: the checkpoint is not a dict of tensors`);
}

/** A tensor's absolute byte range; it must be contiguous (row-major) inside its storage. */
function tensorRange(
  name: unknown,
  t: Tensor,
  entries: Map<string, ZipEntry>,
  archive: string,
  path: string,
): SafetensorsTensorInfo {
  check(typeof name === 'string', 'bad_format', `${path}: a state-dict key is not a string`);
  const entry = entries.get(`${archive}/data/${t.storage.key}`);
  check(entry, 'bad_format', `${path}: storage ${t.storage.key} of ${name} is missing`);
  const width = DTYPE_BYTES[t.storage.dtype] as number;
  let expected = 1;
  for (let i = t.size.length - 1; i >= 0; i--) {
    check(
      t.size[i] === 1 || t.stride[i] === expected,
      'unsupported',
      `${path}: tensor ${name} is not contiguous (stride [${t.stride.join(', ')}] for size [${t.size.join(', ')}])`,
    );
    expected *= t.size[i];
  }
  const begin = entry.dataOffset + t.offset * width;
  const end = begin + expected * width;
  check(
    t.offset >= 0 && end <= entry.dataOffset + entry.size,
    'bad_format',
    `${path}: tensor ${name} reaches beyond its storage`,
  );
  return { name, dtype: t.storage.dtype, shape: [...t.size], begin, end };
}

// ---- zip ----------------------------------------------------------------------------------------

interface ZipEntry {
  dataOffset: number; // absolute offset of the stored bytes
  size: number;
}

/** The stored entries of a zip file by name, from its central directory (zip64 included). */
function zipEntries(fd: number, path: string): Map<string, ZipEntry> {
  const fileSize = fstatSync(fd).size;
  const tailLen = Math.min(fileSize, 22 + 0xffff);
  const tail = Buffer.alloc(tailLen);
  readExactly(fd, tail, fileSize - tailLen, path);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    throw new LmdynError(
      'unsupported',
      `${path}: not a zip file (pytorch_model.bin from torch < 1.6, the legacy format, is not read)`,
    );
  }
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  // zip64 (PyTorchFileWriter always writes it): a locator just before the EOCD points to the
  // zip64 end record, whose 64-bit fields are the ones to use.
  const loc = eocd - 20;
  if (loc >= 0 && tail.readUInt32LE(loc) === 0x07064b50) {
    const rec = Buffer.alloc(56);
    readExactly(fd, rec, Number(tail.readBigUInt64LE(loc + 8)), path);
    check(rec.readUInt32LE(0) === 0x06064b50, 'bad_format', `${path}: bad zip64 end record`);
    count = Number(rec.readBigUInt64LE(32));
    cdSize = Number(rec.readBigUInt64LE(40));
    cdOffset = Number(rec.readBigUInt64LE(48));
  } else {
    check(cdOffset !== 0xffffffff, 'bad_format', `${path}: zip64 locator missing`);
  }
  check(cdOffset + cdSize <= fileSize, 'truncated', `${path}: zip directory beyond end of file`);
  const cd = Buffer.alloc(cdSize);
  readExactly(fd, cd, cdOffset, path);
  const out = new Map<string, ZipEntry>();
  let p = 0;
  for (let e = 0; e < count; e++) {
    check(
      p + 46 <= cdSize && cd.readUInt32LE(p) === 0x02014b50,
      'bad_format',
      `${path}: bad zip directory`,
    );
    const method = cd.readUInt16LE(p + 10);
    let size = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let local = cd.readUInt32LE(p + 42);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    // zip64 extra field (id 1): the 64-bit values of the fields that read 0xffffffff, in order.
    for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen;) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (id === 1) {
        let f = x + 4;
        if (size === 0xffffffff) {
          size = Number(cd.readBigUInt64LE(f));
          f += 8;
        }
        if (cd.readUInt32LE(p + 20) === 0xffffffff) f += 8; // compressed size
        if (local === 0xffffffff) local = Number(cd.readBigUInt64LE(f));
      }
      x += 4 + len;
    }
    p += 46 + nameLen + extraLen + commentLen;
    if (method !== 0) {
      throw new LmdynError(
        'unsupported',
        `${path}: zip entry ${name} is compressed (method ${method})`,
      );
    }
    const header = Buffer.alloc(30);
    readExactly(fd, header, local, path);
    check(header.readUInt32LE(0) === 0x04034b50, 'bad_format', `${path}: bad zip entry ${name}`);
    const dataOffset = local + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
    check(dataOffset + size <= fileSize, 'truncated', `${path}: zip entry ${name} is truncated`);
    out.set(name, { dataOffset, size });
  }
  return out;
}

function readEntry(fd: number, e: ZipEntry, path: string): Buffer {
  check(e.size <= 1 << 30, 'unsupported', `${path}: a pickle of ${e.size} bytes is too large`);
  const b = Buffer.alloc(e.size);
  readExactly(fd, b, e.dataOffset, path);
  return b;
}

// ---- pickle -------------------------------------------------------------------------------------

/** A callable the pickle names (GLOBAL); applied by REDUCE only if it is one we accept. */
interface Global {
  kind: 'global';
  name: string; // "module.qualname"
}

const MARK = Symbol('mark');

/**
 * Runs the pickle's opcodes (pickletools names; the subset torch.save's protocol 2 uses, plus
 * protocol 4's framing) and returns the object it builds. Dicts and OrderedDicts become Maps,
 * tuples and lists arrays.
 */
function unpickle(b: Buffer, path: string): unknown {
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const bad = (what: string): never => {
    throw new LmdynError('bad_format', `${path}: data.pkl: ${what}`);
  };
  const need = (n: number): void => {
    if (p + n > b.length) bad('truncated');
  };
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) bad('no mark');
    const items = stack.splice(i);
    return items.slice(1);
  };
  const pop = (): unknown => (stack.length === 0 ? bad('stack underflow') : stack.pop());
  const top = (): unknown =>
    stack.length === 0 ? bad('stack underflow') : stack[stack.length - 1];
  const line = (): string => {
    const end = b.indexOf(0x0a, p);
    if (end < 0) bad('unterminated line');
    const s = b.toString('latin1', p, end);
    p = end + 1;
    return s;
  };
  const str = (n: number): string => {
    need(n);
    const s = b.toString('utf8', p, p + n);
    p += n;
    return s;
  };
  const setItems = (dict: unknown, items: unknown[]): void => {
    if (!(dict instanceof Map)) bad('SETITEM on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2)
      (dict as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  for (;;) {
    need(1);
    const op = b[p++];
    switch (op) {
      case 0x80: // PROTO
        need(1);
        p += 1;
        break;
      case 0x95: // FRAME
        need(8);
        p += 8;
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        stack.push({ kind: 'global', name: `${module}.${line()}` } satisfies Global);
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        stack.push({ kind: 'global', name: `${String(module)}.${String(name)}` } satisfies Global);
        break;
      }
      case 0x71: // BINPUT
        need(1);
        memo.set(b[p++], top());
        break;
      case 0x72: // LONG_BINPUT
        need(4);
        memo.set(b.readUInt32LE(p), top());
        p += 4;
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        need(1);
        stack.push(memo.has(b[p]) ? memo.get(b[p]) : bad('BINGET of an unknown memo'));
        p += 1;
        break;
      case 0x6a: // LONG_BINGET
        need(4);
        stack.push(
          memo.has(b.readUInt32LE(p))
            ? memo.get(b.readUInt32LE(p))
            : bad('LONG_BINGET of an unknown memo'),
        );
        p += 4;
        break;
      case 0x29: // EMPTY_TUPLE
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x74: // TUPLE
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const y = pop();
        stack.push([pop(), y]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const z = pop();
        const y = pop();
        stack.push([pop(), y, z]);
        break;
      }
      case 0x64: {
        // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) bad('APPEND to a non-list');
        (list as unknown[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) bad('APPENDS to a non-list');
        (list as unknown[]).push(...items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: // SETITEMS
        setItems(stack[stack.lastIndexOf(MARK) - 1], popMark());
        break;
      case 0x58: // BINUNICODE
        need(4);
        p += 4;
        stack.push(str(b.readUInt32LE(p - 4)));
        break;
      case 0x8c: // SHORT_BINUNICODE
      case 0x55: // SHORT_BINSTRING
        need(1);
        p += 1;
        stack.push(str(b[p - 1]));
        break;
      case 0x54: // BINSTRING
        need(4);
        p += 4;
        stack.push(str(b.readUInt32LE(p - 4)));
        break;
      case 0x4b: // BININT1
        need(1);
        stack.push(b[p++]);
        break;
      case 0x4d: // BININT2
        need(2);
        stack.push(b.readUInt16LE(p));
        p += 2;
        break;
      case 0x4a: // BININT
        need(4);
        stack.push(b.readInt32LE(p));
        p += 4;
        break;
      case 0x8a: {
        // LONG1: n-byte little-endian two's complement
        need(1);
        const n = b[p++];
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[p + i]);
        if (n > 0 && b[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER))
          bad('integer too large');
        stack.push(Number(v));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(b.readDoubleBE(p));
        p += 8;
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x51: {
        // BINPERSID: ('storage', storage class, key, location, numel)
        const id = pop();
        if (!Array.isArray(id) || id[0] !== 'storage' || id.length < 5)
          bad('unknown persistent id');
        const [, cls, key, , numel] = id as [string, Global, unknown, unknown, unknown];
        const dtype =
          cls?.kind === 'global' ? STORAGE_DTYPES[cls.name.replace(/^torch\./, '')] : undefined;
        if (dtype === undefined) {
          throw new LmdynError('unsupported', `${path}: storage type ${cls?.name ?? String(cls)}`);
        }
        if (typeof key !== 'string' || !Number.isSafeInteger(numel)) bad('bad storage id');
        stack.push({ kind: 'storage', dtype, key: key as string, numel: numel as number });
        break;
      }
      case 0x52: {
        // REDUCE: callable(*args)
        const args = pop();
        const fn = pop() as Global;
        if (!Array.isArray(args)) bad('REDUCE without an argument tuple');
        stack.push(call(fn, args as unknown[], path));
        break;
      }
      case 0x62: // BUILD: state for the object below (an OrderedDict's _metadata): dropped
        pop();
        break;
      default:
        throw new LmdynError(
          'unsupported',
          `${path}: data.pkl uses pickle opcode 0x${op.toString(16)} at byte ${p - 1}, which lmdyn does not read`,
        );
    }
  }
}

/** The callables a state dict needs, as data. */
function call(fn: Global, args: unknown[], path: string): unknown {
  const name = fn?.kind === 'global' ? fn.name : String(fn);
  switch (name) {
    case 'collections.OrderedDict':
    case 'builtins.dict':
      return new Map();
    case 'torch._utils._rebuild_tensor_v2': {
      const [storage, offset, size, stride] = args as [Storage, number, number[], number[]];
      if (
        storage?.kind !== 'storage' ||
        !Number.isSafeInteger(offset) ||
        !Array.isArray(size) ||
        !Array.isArray(stride) ||
        size.length !== stride.length ||
        ![...size, ...stride].every((v) => Number.isSafeInteger(v) && v >= 0)
      ) {
        throw new LmdynError('bad_format', `${path}: data.pkl: bad _rebuild_tensor_v2 arguments`);
      }
      return { kind: 'tensor', storage, offset, size, stride } satisfies Tensor;
    }
    case 'torch._utils._rebuild_parameter':
      return args[0]; // (data, requires_grad, backward_hooks): the tensor itself
    default:
      throw new LmdynError(
        'unsupported',
        `${path}: data.pkl calls ${name}, which lmdyn does not run (only plain state dicts of tensors are read)`,
      );
  }
}
