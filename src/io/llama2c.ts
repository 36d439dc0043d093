/**
 * llama2.c checkpoints (karpathy/llama2.c, export.py and run.c / runq.c):
 *
 * - version 0 ("legacy_export"): 7 × int32 header (dim, hidden_dim, n_layers, n_heads,
 *   n_kv_heads, vocab_size, seq_len; a negative vocab_size means an unshared classifier), then
 *   fp32 tensors in run.c's order, including the freq_cis_real/imag tables [seq_len, head/2].
 * - version 1 ("version1_export"): uint32 magic "ak42" (0x616b3432), int32 version, the same
 *   7 × int32, a uint8 shared_classifier flag, zero padding to 256 bytes; then fp32 tensors with
 *   the norms first.
 * - version 2 ("version2_export", read by runq.c): as version 1 plus an int32 group_size after
 *   the flag; the norms stay fp32, every matrix is Q8_0: per tensor, int8 values then one fp32
 *   scale per group (value = q · scale). Kept as Q8_0 matrices (the forward pass multiplies them
 *   as runq.c does) where the groups fall within rows and are a multiple of 16 values (the
 *   kernel's step); any other matrix (e.g. stories260K's w2, 172 columns) is dequantized to f32.
 *
 * Every tensor is read straight from the file into an allocF32 buffer (little-endian host), so
 * loading a large checkpoint is one bulk read per tensor and no second copy of the file.
 */
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { LmdynError, check } from '../errors.js';
import type { LayerWeights, ModelConfig, ModelWeights } from '../model/types.js';
import type { Matrix } from '../tensor/matrix.js';
import { newMatrix } from '../tensor/matrix.js';
import { allocF32, allocI8, freeF32, freeI8 } from '../tensor/memory.js';
import { dequantizeQ80, newQ80Matrix } from '../tensor/q80.js';
import type { LoadedModel } from '../model/types.js';

export type Llama2cVersion = 0 | 1 | 2;

export interface Llama2cWriteOptions {
  version: Llama2cVersion;
  /** Q8_0 group size for version 2; default 64, halved until it divides dim (as export.py). */
  groupSize?: number;
}

/** Reads a llama2.c checkpoint of version 0, 1 or 2. The file carries no tokenizer. */
export function loadLlama2cCheckpoint(path: string): LoadedModel & { tokenizer: null } {
  const fd = openForReading(path);
  try {
    const fileSize = fstatSync(fd).size;
    const header = readHeader(fd, fileSize, path);
    const shapes = checkedShapes(header, path);
    const plan = tensorPlan(header.version, shapes, header.shared);
    const expected = header.dataOffset + planBytes(plan, header.groupSize);
    check(
      expected <= fileSize,
      'truncated',
      `${path}: llama2.c checkpoint (version ${header.version}) is truncated: its header implies ${expected} bytes but the file has ${fileSize}`,
    );
    check(
      expected === fileSize,
      'bad_format',
      `${path}: llama2.c checkpoint (version ${header.version}) has ${fileSize - expected} bytes more than its header implies (${expected})`,
    );
    const tensors = readPlannedTensors(fd, path, header, plan);
    const weights = assembleWeights(tensors, shapes, header.shared);
    const config = llama2cConfig(shapes, header.shared);
    const details: Record<string, unknown> = {
      version: header.version,
      sharedClassifier: header.shared,
    };
    if (header.version === 2) details.groupSize = header.groupSize;
    return {
      config,
      weights,
      tokenizer: null,
      source: { format: 'llama2c', path, hubId: null, sha256: null, details },
    };
  } finally {
    closeSync(fd);
  }
}

/**
 * The tensors a checkpoint's header promises, without reading them (for `lmdyn info`'s resident
 * sizes): each as count × [rows, cols], stored as f32 or (version 2) Q8_0. The rotary tables of
 * version 0 are left out: lmdyn recomputes them.
 */
export function llama2cTensorTable(
  path: string,
): { name: string; count: number; rows: number; cols: number; stored: 'F32' | 'Q8_0' }[] {
  const fd = openForReading(path);
  try {
    const header = readHeader(fd, fstatSync(fd).size, path);
    const plan = tensorPlan(header.version, checkedShapes(header, path), header.shared);
    return plan
      .filter((t) => !t.kind.startsWith('freqCis'))
      .map((t) => ({
        name: t.kind,
        count: t.count,
        rows: t.rows,
        cols: t.cols,
        stored: t.quantized ? 'Q8_0' : 'F32',
      }));
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `weights` as a llama2.c checkpoint of the given version, byte for byte as export.py
 * does (version 0 recomputes the freq_cis tables as model.py's precompute_freqs_cis). The file
 * is written beside `path` under a temporary name and renamed into place.
 */
export function writeLlama2cCheckpoint(
  path: string,
  config: ModelConfig,
  weights: ModelWeights,
  options: Llama2cWriteOptions,
): void {
  const shapes = writableShapes(config, weights);
  const shared = config.tiedEmbeddings;
  const groupSize = options.version === 2 ? chooseGroupSize(shapes.dim, options.groupSize) : 0;
  const plan = tensorPlan(options.version, shapes, shared);
  const header = encodeHeader(options.version, shapes, shared, groupSize);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeAll(fd, header);
      for (const t of plan) {
        for (let layer = 0; layer < t.count; layer++) {
          const data = plannedData(t, layer, weights, shapes);
          if (t.quantized) {
            const { q, scales } = quantizeQ80(data, groupSize);
            writeAll(fd, new Uint8Array(q.buffer, q.byteOffset, q.byteLength));
            writeAll(fd, f32Bytes(scales));
          } else {
            writeAll(fd, f32Bytes(data));
          }
        }
      }
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    if (err instanceof LmdynError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new LmdynError('io', `${path}: cannot write the checkpoint (${code ?? String(err)})`);
  }
}

/**
 * Reads exactly `target.length` bytes at `position`, in chunks below readSync's 2 GiB limit.
 * Shared with the GGUF reader.
 */
export function readExactly(fd: number, target: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < target.length) {
    const n = readSync(
      fd,
      target,
      done,
      Math.min(target.length - done, READ_CHUNK),
      position + done,
    );
    check(n > 0, 'truncated', `${path}: unexpected end of file at byte ${position + done}`);
    done += n;
  }
}

/** Reads `n` little-endian f32 values at `position` into a fresh allocF32 buffer. */
export function readF32(fd: number, position: number, n: number, path: string): Float32Array {
  const out = allocF32(n);
  readExactly(fd, new Uint8Array(out.buffer, out.byteOffset, n * 4), position, path);
  return out;
}

/**
 * Longest context accepted from a file (2^24, beyond any released model): a KV cache is sized
 * by it, so a corrupt header must not be able to ask for more. Shared with the GGUF reader.
 */
export const MAX_SEQ_LEN = 1 << 24;

/** Opens a model file read-only, turning a missing file into `not_found`. */
export function openForReading(path: string): number {
  if (endianness() !== 'LE') {
    throw new LmdynError(
      'unsupported',
      `${path}: model files are read on little-endian hosts only`,
    );
  }
  try {
    return openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new LmdynError('not_found', `no such file: ${path}`);
    throw new LmdynError('io', `${path}: cannot open (${code ?? String(err)})`);
  }
}

const MAGIC = 0x616b3432; // "ak42"
const VERSIONED_HEADER_BYTES = 256;
const LEGACY_HEADER_BYTES = 28;
const READ_CHUNK = 1 << 30;

interface Header {
  version: Llama2cVersion;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number; // absolute value
  seqLen: number;
  shared: boolean;
  groupSize: number; // version 2 only, else 0
  dataOffset: number;
}

interface Shapes {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  kvDim: number;
  vocabSize: number;
  seqLen: number;
}

type TensorKind =
  | 'tokenEmbedding'
  | 'attnNorm'
  | 'wq'
  | 'wk'
  | 'wv'
  | 'wo'
  | 'mlpNorm'
  | 'wGate'
  | 'wDown'
  | 'wUp'
  | 'finalNorm'
  | 'freqCisReal'
  | 'freqCisImag'
  | 'unembedding';

/**
 * One kind of tensor in file order: `count` consecutive tensors (one per layer, or just one),
 * each [rows, cols] (vectors have rows = 1). The plan has O(1) entries whatever n_layers says.
 */
interface PlannedTensor {
  kind: TensorKind;
  count: number;
  rows: number;
  cols: number;
  quantized: boolean;
}

function readHeader(fd: number, fileSize: number, path: string): Header {
  const head = Buffer.alloc(Math.min(fileSize, VERSIONED_HEADER_BYTES));
  readExactly(fd, head, 0, path);
  check(
    fileSize >= 4,
    'truncated',
    `${path}: ${fileSize} bytes is too short for a llama2.c checkpoint`,
  );
  if (head.readUInt32LE(0) === MAGIC) {
    check(
      fileSize >= VERSIONED_HEADER_BYTES,
      'truncated',
      `${path}: llama2.c checkpoint header is truncated (${fileSize} of ${VERSIONED_HEADER_BYTES} bytes)`,
    );
    const version = head.readInt32LE(4);
    if (version !== 1 && version !== 2) {
      throw new LmdynError(
        'unsupported',
        `${path}: llama2.c checkpoint version ${version} (only 0, 1 and 2 exist)`,
      );
    }
    const flag = head.readUInt8(36);
    check(
      flag === 0 || flag === 1,
      'bad_format',
      `${path}: shared_classifier byte is ${flag}, not 0 or 1`,
    );
    const vocab = head.readInt32LE(28);
    check(
      vocab > 0,
      'bad_format',
      `${path}: vocab_size ${vocab} must be positive in version ${version}`,
    );
    return {
      version,
      ...headerInts(head, 8),
      vocabSize: vocab,
      shared: flag === 1,
      groupSize: version === 2 ? head.readInt32LE(37) : 0,
      dataOffset: VERSIONED_HEADER_BYTES,
    };
  }
  check(
    fileSize >= LEGACY_HEADER_BYTES,
    'truncated',
    `${path}: llama2.c checkpoint header is truncated (${fileSize} of ${LEGACY_HEADER_BYTES} bytes)`,
  );
  const vocab = head.readInt32LE(20);
  return {
    version: 0,
    ...headerInts(head, 0),
    vocabSize: Math.abs(vocab),
    shared: vocab > 0,
    groupSize: 0,
    dataOffset: LEGACY_HEADER_BYTES,
  };
}

/** run.c's Config struct (7 × int32) from byte `at`, but vocab_size, which the caller reads. */
function headerInts(
  head: Buffer,
  at: number,
): Pick<Header, 'dim' | 'hiddenDim' | 'nLayers' | 'nHeads' | 'nKvHeads' | 'seqLen'> {
  return {
    dim: head.readInt32LE(at),
    hiddenDim: head.readInt32LE(at + 4),
    nLayers: head.readInt32LE(at + 8),
    nHeads: head.readInt32LE(at + 12),
    nKvHeads: head.readInt32LE(at + 16),
    seqLen: head.readInt32LE(at + 24),
  };
}

function checkedShapes(h: Header, path: string): Shapes {
  const fields: [string, number][] = [
    ['dim', h.dim],
    ['hidden_dim', h.hiddenDim],
    ['n_layers', h.nLayers],
    ['n_heads', h.nHeads],
    ['n_kv_heads', h.nKvHeads],
    ['vocab_size', h.vocabSize],
    ['seq_len', h.seqLen],
  ];
  for (const [name, v] of fields) {
    check(
      v > 0,
      'bad_format',
      `${path}: ${name} is ${v} in the llama2.c header; it must be positive`,
    );
  }
  check(
    h.dim % h.nHeads === 0,
    'bad_format',
    `${path}: dim ${h.dim} is not a multiple of n_heads ${h.nHeads}`,
  );
  check(
    h.nHeads % h.nKvHeads === 0,
    'bad_format',
    `${path}: n_heads ${h.nHeads} is not a multiple of n_kv_heads ${h.nKvHeads}`,
  );
  const headDim = h.dim / h.nHeads;
  check(
    headDim % 2 === 0,
    'bad_format',
    `${path}: head size ${headDim} is odd; RoPE rotates pairs`,
  );
  check(
    h.seqLen <= MAX_SEQ_LEN,
    'bad_format',
    `${path}: seq_len ${h.seqLen} is beyond any real model`,
  );
  if (h.version === 2) {
    const gs = h.groupSize;
    check(
      gs > 0 && h.dim % gs === 0,
      'bad_format',
      `${path}: group_size ${gs} does not divide dim ${h.dim}`,
    );
  }
  return {
    dim: h.dim,
    hiddenDim: h.hiddenDim,
    nLayers: h.nLayers,
    nHeads: h.nHeads,
    nKvHeads: h.nKvHeads,
    headDim,
    kvDim: h.nKvHeads * headDim,
    vocabSize: h.vocabSize,
    seqLen: h.seqLen,
  };
}

/** The tensors of a checkpoint in file order (export.py's legacy/version1/version2_export). */
function tensorPlan(version: Llama2cVersion, s: Shapes, shared: boolean): PlannedTensor[] {
  const q = version === 2; // version 2 quantizes every matrix, never the norms
  const tensor = (
    kind: TensorKind,
    count: number,
    rows: number,
    cols: number,
    quantized: boolean,
  ) => ({ kind, count, rows, cols, quantized }) satisfies PlannedTensor;
  const L = s.nLayers;
  const qDim = s.nHeads * s.headDim;
  const embedding = tensor('tokenEmbedding', 1, s.vocabSize, s.dim, q);
  const attnNorm = tensor('attnNorm', L, 1, s.dim, false);
  const mlpNorm = tensor('mlpNorm', L, 1, s.dim, false);
  const finalNorm = tensor('finalNorm', 1, 1, s.dim, false);
  const attention = [
    tensor('wq', L, qDim, s.dim, q),
    tensor('wk', L, s.kvDim, s.dim, q),
    tensor('wv', L, s.kvDim, s.dim, q),
    tensor('wo', L, s.dim, qDim, q),
  ];
  const ffn = [
    tensor('wGate', L, s.hiddenDim, s.dim, q), // w1
    tensor('wDown', L, s.dim, s.hiddenDim, q), // w2
    tensor('wUp', L, s.hiddenDim, s.dim, q), // w3
  ];
  const classifier = shared ? [] : [tensor('unembedding', 1, s.vocabSize, s.dim, q)];
  if (version === 0) {
    return [
      embedding,
      attnNorm,
      ...attention,
      mlpNorm,
      ...ffn,
      finalNorm,
      tensor('freqCisReal', 1, s.seqLen, s.headDim / 2, false),
      tensor('freqCisImag', 1, s.seqLen, s.headDim / 2, false),
      ...classifier,
    ];
  }
  return [attnNorm, mlpNorm, finalNorm, embedding, ...attention, ...ffn, ...classifier];
}

/** Bytes the planned tensors occupy: 4 per f32; Q8_0 is 1 per value plus 4 per group. */
function planBytes(plan: PlannedTensor[], groupSize: number): number {
  let total = 0;
  for (const t of plan) {
    const n = t.rows * t.cols;
    total += t.count * (t.quantized ? n + (n / groupSize) * 4 : n * 4);
  }
  return total;
}

function readPlannedTensors(
  fd: number,
  path: string,
  header: Header,
  plan: PlannedTensor[],
): Map<string, StoredTensor> {
  const out = new Map<string, StoredTensor>();
  let pos = header.dataOffset;
  for (const t of plan) {
    const n = t.rows * t.cols;
    for (let layer = 0; layer < t.count; layer++) {
      if (t.kind === 'freqCisReal' || t.kind === 'freqCisImag') {
        pos += n * 4; // RoPE is recomputed from ropeTheta; the legacy tables are skipped
      } else if (t.quantized) {
        out.set(tensorKey(t.kind, layer), readQ80(fd, pos, n, header.groupSize, path));
        pos += n + (n / header.groupSize) * 4;
      } else {
        out.set(tensorKey(t.kind, layer), readF32(fd, pos, n, path));
        pos += n * 4;
      }
    }
  }
  return out;
}

/** A tensor as read: f32 values, or Q8_0 values and scales in groups over the flat tensor. */
type StoredTensor = Float32Array | { q: Int8Array; scales: Float32Array; groupSize: number };

/** One Q8_0 tensor as runq.c's init_quantized_tensors: n int8 values, then n/gs f32 scales. */
function readQ80(
  fd: number,
  pos: number,
  n: number,
  groupSize: number,
  path: string,
): StoredTensor {
  const q = allocI8(n);
  readExactly(fd, new Uint8Array(q.buffer, q.byteOffset, n), pos, path);
  const scales = allocF32(n / groupSize);
  readExactly(
    fd,
    new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength),
    pos + n,
    path,
  );
  return { q, scales, groupSize };
}

/**
 * A [rows, cols] matrix from a stored tensor: Q8_0 stays Q8_0 when its groups fit the kernel
 * (within rows, a multiple of 16), else it is dequantized as runq.c's dequantize() does.
 */
function storedMatrix(t: StoredTensor, rows: number, cols: number): Matrix {
  if (t instanceof Float32Array) return newMatrix(rows, cols, t);
  const { q, scales, groupSize } = t;
  if (groupSize % 16 === 0 && cols % groupSize === 0) {
    return newQ80Matrix(rows, cols, groupSize, q, scales);
  }
  const out = allocF32(rows * cols);
  dequantizeQ80(q, scales, groupSize, 0, rows * cols, out, 0);
  freeI8(q);
  freeF32(scales);
  return newMatrix(rows, cols, out);
}

function tensorKey(kind: TensorKind, layer: number): string {
  return `${kind}.${layer}`;
}

function assembleWeights(
  tensors: Map<string, StoredTensor>,
  s: Shapes,
  shared: boolean,
): ModelWeights {
  const stored = (kind: TensorKind, layer: number): StoredTensor => {
    const t = tensors.get(tensorKey(kind, layer));
    if (!t) throw new Error(`llama2c: tensor ${kind}.${layer} missing from the plan`);
    return t;
  };
  const get = (kind: TensorKind, layer = 0): Float32Array => {
    const t = stored(kind, layer);
    if (!(t instanceof Float32Array)) throw new Error(`llama2c: tensor ${kind} is not f32`);
    return t;
  };
  const mat = (kind: TensorKind, rows: number, cols: number, layer = 0): Matrix =>
    storedMatrix(stored(kind, layer), rows, cols);
  const qDim = s.nHeads * s.headDim;
  const layers: LayerWeights[] = Array.from({ length: s.nLayers }, (_, l) => ({
    attnNorm: get('attnNorm', l),
    attnNormBias: null,
    wq: mat('wq', qDim, s.dim, l),
    wk: mat('wk', s.kvDim, s.dim, l),
    wv: mat('wv', s.kvDim, s.dim, l),
    wo: mat('wo', s.dim, qDim, l),
    bq: null,
    bk: null,
    bv: null,
    bo: null,
    mlpNorm: get('mlpNorm', l),
    mlpNormBias: null,
    wGate: mat('wGate', s.hiddenDim, s.dim, l),
    wUp: mat('wUp', s.hiddenDim, s.dim, l),
    bUp: null,
    wDown: mat('wDown', s.dim, s.hiddenDim, l),
    bDown: null,
  }));
  const tokenEmbedding = mat('tokenEmbedding', s.vocabSize, s.dim);
  return {
    tokenEmbedding,
    positionEmbedding: null,
    layers,
    finalNorm: get('finalNorm'),
    finalNormBias: null,
    unembedding: shared ? tokenEmbedding : mat('unembedding', s.vocabSize, s.dim),
    unembeddingBias: null,
  };
}

function llama2cConfig(s: Shapes, shared: boolean): ModelConfig {
  return {
    architecture: 'llama',
    sourceArchitecture: 'llama2.c',
    dim: s.dim,
    hiddenDim: s.hiddenDim,
    nLayers: s.nLayers,
    nHeads: s.nHeads,
    nKvHeads: s.nKvHeads,
    headDim: s.headDim,
    vocabSize: s.vocabSize,
    seqLen: s.seqLen,
    norm: 'rmsnorm',
    normEps: 1e-5, // run.c's rmsnorm
    mlp: 'swiglu',
    positional: 'rope',
    ropeTheta: 10000,
    ropeDim: s.headDim,
    tiedEmbeddings: shared,
    bosId: 1,
    eosId: 2,
  };
}

/** The shapes of a model llama2.c can represent exactly; anything else is `unsupported`. */
function writableShapes(c: ModelConfig, w: ModelWeights): Shapes {
  const hasBias = w.layers.some(
    (l) => l.bq || l.bk || l.bv || l.bo || l.bUp || l.bDown || l.attnNormBias,
  );
  const unrepresentable: [boolean, string][] = [
    [c.architecture !== 'llama', `architecture ${c.architecture}`],
    [c.norm !== 'rmsnorm' || c.normEps !== 1e-5, `${c.norm} eps ${c.normEps} (needs rmsnorm 1e-5)`],
    [c.mlp !== 'swiglu', `mlp ${c.mlp}`],
    [!!c.qkNorm, 'q/k norms (Qwen3)'],
    [
      c.positional !== 'rope' || c.ropeTheta !== 10000 || c.ropeDim !== c.headDim,
      `${c.positional} theta ${c.ropeTheta} over ${c.ropeDim} dims (needs RoPE, theta 10000, all dims)`,
    ],
    [c.headDim * c.nHeads !== c.dim, `headDim ${c.headDim} × nHeads ${c.nHeads} ≠ dim ${c.dim}`],
    [
      hasBias || !!w.finalNormBias || !!w.unembeddingBias || !!w.positionEmbedding,
      'biases or learned positions',
    ],
    [
      c.tiedEmbeddings !== (w.unembedding === w.tokenEmbedding),
      'tiedEmbeddings disagrees with the weights',
    ],
  ];
  const why = unrepresentable.filter(([bad]) => bad).map(([, reason]) => reason);
  if (why.length > 0) {
    throw new LmdynError(
      'unsupported',
      `a llama2.c checkpoint cannot hold this model: ${why.join('; ')}`,
    );
  }
  check(
    w.layers.length === c.nLayers,
    'bad_argument',
    `${w.layers.length} layers but config.nLayers ${c.nLayers}`,
  );
  return {
    dim: c.dim,
    hiddenDim: c.hiddenDim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    kvDim: c.nKvHeads * c.headDim,
    vocabSize: c.vocabSize,
    seqLen: c.seqLen,
  };
}

function chooseGroupSize(dim: number, requested: number | undefined): number {
  if (requested !== undefined) {
    check(
      Number.isInteger(requested) && requested > 0 && dim % requested === 0,
      'bad_argument',
      `Q8_0 group size ${requested} must be a positive divisor of dim ${dim}`,
    );
    return requested;
  }
  let gs = 64;
  while (dim % gs !== 0) gs /= 2; // export.py's BACKOFF
  return gs;
}

function encodeHeader(
  version: Llama2cVersion,
  s: Shapes,
  shared: boolean,
  groupSize: number,
): Uint8Array {
  const ints = [s.dim, s.hiddenDim, s.nLayers, s.nHeads, s.nKvHeads, s.vocabSize, s.seqLen];
  if (version === 0) {
    if (!shared) ints[5] = -s.vocabSize; // legacy flag for an unshared classifier
    return new Uint8Array(Int32Array.from(ints).buffer);
  }
  const head = Buffer.alloc(VERSIONED_HEADER_BYTES);
  head.writeUInt32LE(MAGIC, 0);
  head.writeInt32LE(version, 4);
  ints.forEach((v, i) => head.writeInt32LE(v, 8 + 4 * i));
  head.writeUInt8(shared ? 1 : 0, 36);
  if (version === 2) head.writeInt32LE(groupSize, 37);
  return head;
}

function plannedData(t: PlannedTensor, l: number, w: ModelWeights, s: Shapes): Float32Array {
  const matrix = (m: Matrix): Float32Array => {
    check(
      m.rows === t.rows && m.cols === t.cols,
      'bad_argument',
      `${t.kind} of layer ${l} is ${m.rows}×${m.cols}, expected ${t.rows}×${t.cols}`,
    );
    return m.data;
  };
  const vector = (v: Float32Array): Float32Array => {
    check(
      v.length === t.cols,
      'bad_argument',
      `${t.kind} of layer ${l} has ${v.length} values, expected ${t.cols}`,
    );
    return v;
  };
  const layer = w.layers[l]!;
  switch (t.kind) {
    case 'tokenEmbedding':
      return matrix(w.tokenEmbedding);
    case 'unembedding':
      return matrix(w.unembedding);
    case 'finalNorm':
      return vector(w.finalNorm);
    case 'attnNorm':
      return vector(layer.attnNorm);
    case 'mlpNorm':
      return vector(layer.mlpNorm);
    case 'wq':
      return matrix(layer.wq);
    case 'wk':
      return matrix(layer.wk);
    case 'wv':
      return matrix(layer.wv);
    case 'wo':
      return matrix(layer.wo);
    case 'wGate':
      if (!layer.wGate) throw new LmdynError('unsupported', `layer ${l} has no SwiGLU gate`);
      return matrix(layer.wGate);
    case 'wUp':
      return matrix(layer.wUp);
    case 'wDown':
      return matrix(layer.wDown);
    case 'freqCisReal':
    case 'freqCisImag':
      return freqCis(s.headDim, s.seqLen, t.kind === 'freqCisReal');
  }
}

/**
 * llama2.c model.py precompute_freqs_cis(head_dim, seq_len) in float32:
 * freqs[i] = 1 / 10000^(2i / head_dim), table[t, i] = cos (real) or sin (imag) of t · freqs[i].
 */
function freqCis(headDim: number, seqLen: number, real: boolean): Float32Array {
  const half = headDim / 2;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround(Math.fround(2 * i) / headDim);
    freqs[i] = Math.fround(1 / Math.fround(Math.pow(10000, exponent)));
  }
  const out = new Float32Array(seqLen * half); // [seq_len, head_dim/2]
  for (let t = 0; t < seqLen; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(t * freqs[i]!);
      out[t * half + i] = real ? Math.cos(angle) : Math.sin(angle);
    }
  }
  return out;
}

/**
 * Q8_0 as export.py's quantize_q80: per group, scale = max|w| / 127 and q = round(w / scale)
 * (torch.round: half to even), all in float32. A group of zeros gets scale 0 and q = 0.
 */
function quantizeQ80(w: Float32Array, groupSize: number): { q: Int8Array; scales: Float32Array } {
  const groups = w.length / groupSize;
  const q = new Int8Array(w.length);
  const scales = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    const start = g * groupSize;
    let wmax = 0;
    for (let i = start; i < start + groupSize; i++) wmax = Math.max(wmax, Math.abs(w[i]!));
    const scale = Math.fround(wmax / 127);
    scales[g] = scale;
    if (scale === 0) continue;
    for (let i = start; i < start + groupSize; i++) {
      const r = roundHalfEven(Math.fround(w[i]! / scale));
      q[i] = Math.max(-127, Math.min(127, r));
    }
  }
  return { q, scales };
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    done += writeSync(fd, bytes, done, Math.min(bytes.length - done, READ_CHUNK));
  }
}
