/**
 * How much memory a model's weights take resident, per storage choice, from the file's header
 * alone (the safetensors / GGUF tensor table, the llama2.c config): no tensor data is read, so
 * `lmdyn info` can say it before loading, and the loader can choose the format before allocating.
 *
 * Matrices (tensors with two dimensions > 1) are what the choice changes; vectors (norms, biases)
 * stay f32 in every case. Sizes per choice:
 *   f32        4 B per value
 *   f16, bf16  2 B per matrix value (the matmul widens them to f32 as it reads)
 *   q8_0       1 B per matrix value + one f32 scale per 32 (lmdyn keeps GGUF's f16 scales as f32)
 * Matrices a file stores as Q8_0 (GGUF, llama2.c version 2) stay Q8_0 under every choice.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { LmdynError } from '../errors.js';
import type { H16Format } from '../tensor/half.js';
import { readGgufHeader } from './gguf.js';
import { llama2cTensorTable } from './llama2c.js';
import { detectFormat } from './load.js';
import { closeSafetensors, readSafetensorsHeader } from './safetensors.js';
import { openTorchCheckpoint } from './torch.js';

/** How the weight matrices are kept in memory: 'auto' picks one of the others (chooseWeights). */
export type WeightsChoice = 'auto' | 'f32' | 'f16' | 'bf16' | 'q8_0';
export const WEIGHTS_CHOICES: readonly WeightsChoice[] = ['auto', 'f32', 'f16', 'bf16', 'q8_0'];

export interface ResidentSizes {
  /** Values in weight matrices and in vectors (norms, biases), as the file stores them. */
  matrixValues: number;
  vectorValues: number;
  /** The 16-bit dtype most matrix values are stored in, or null (f32 or block-quantized file). */
  file16: H16Format | null;
  /** Stored types of the tensors, e.g. { BF16: 290, F32: 1 }, counting every tensor. */
  storedTypes: Record<string, number>;
  /** Resident bytes of the weights per choice. */
  bytes: { f32: number; '16-bit': number; q8_0: number };
}

/** Resident sizes of the model at `path` (a file, or a Hugging Face folder) from its header. */
export function residentSizes(path: string): ResidentSizes {
  const tensors: { dims: number[]; type: string; count: number }[] = [];
  const format = detectFormat(path);
  if (format === 'hf-folder') {
    for (const t of hfTensorTable(path)) tensors.push({ ...t, count: 1 });
  } else if (format === 'gguf') {
    for (const t of readGgufHeader(path, { dataPresent: false }).tensors) {
      tensors.push({ dims: t.dims, type: t.typeName, count: 1 });
    }
  } else {
    for (const t of llama2cTensorTable(path)) {
      tensors.push({ dims: [t.rows, t.cols], type: t.stored, count: t.count });
    }
  }
  let matrixValues = 0;
  let vectorValues = 0;
  let q80Values = 0; // GGUF / llama2.c Q8_0 matrices: loaded as they are under every choice
  const storedTypes: Record<string, number> = {};
  const matrixByType: Record<string, number> = {};
  for (const t of tensors) {
    const n = t.dims.reduce((a, b) => a * b, 1) * t.count;
    storedTypes[t.type] = (storedTypes[t.type] ?? 0) + t.count;
    if (t.dims.filter((d) => d > 1).length >= 2) {
      matrixValues += n;
      matrixByType[t.type] = (matrixByType[t.type] ?? 0) + n;
      if (t.type === 'Q8_0') q80Values += n;
    } else {
      vectorValues += n;
    }
  }
  const major = Object.entries(matrixByType).sort((a, b) => b[1] - a[1])[0]?.[0];
  const file16 = major === 'F16' ? 'f16' : major === 'BF16' ? 'bf16' : null;
  const vectorBytes = 4 * vectorValues;
  const q80 = q80Values * (1 + 4 / 32);
  const other = matrixValues - q80Values;
  return {
    matrixValues,
    vectorValues,
    file16,
    storedTypes,
    bytes: {
      f32: 4 * other + q80 + vectorBytes,
      '16-bit': 2 * other + q80 + vectorBytes,
      q8_0: matrixValues + (matrixValues / 32) * 4 + vectorBytes,
    },
  };
}

export interface WeightsDecision {
  /** What the matrices are kept as. */
  format: 'f32' | 'f16' | 'bf16' | 'q8_0';
  /** Asked for: 'auto' or the explicit choice. */
  requested: WeightsChoice;
  /** Resident bytes of that choice. */
  bytes: number;
  /** The budget 'auto' compared with (bytes). */
  budget: number;
  /** One line: why this format. */
  why: string;
}

/**
 * The format to keep the weights in. An explicit choice is kept. 'auto' keeps f32 when its size
 * fits `budget`, else the file's own 16-bit type (F16 / BF16 files), else Q8_0 for a GGUF of
 * block-quantized types (requantized one matrix at a time); an f32 file stays f32 (converting it
 * would first need its f32 copy), with a warning in `why`.
 */
export function chooseWeights(
  sizes: ResidentSizes,
  requested: WeightsChoice,
  budget: number,
): WeightsDecision {
  const gb = formatBytes;
  const bytesOf = (f: WeightsDecision['format']): number =>
    f === 'f32' ? sizes.bytes.f32 : f === 'q8_0' ? sizes.bytes.q8_0 : sizes.bytes['16-bit'];
  if (requested !== 'auto') {
    return { format: requested, requested, bytes: bytesOf(requested), budget, why: 'asked for' };
  }
  const f32 = sizes.bytes.f32;
  if (f32 <= budget) {
    return { format: 'f32', requested, bytes: f32, budget, why: `f32 (${gb(f32)}) fits the budget of ${gb(budget)}` };
  }
  const over = `f32 would need ${gb(f32)} > the budget of ${gb(budget)}`;
  if (sizes.file16) {
    return { format: sizes.file16, requested, bytes: bytesOf(sizes.file16), budget, why: `${over}; the file's own ${sizes.file16} kept` };
  }
  const quantized = Object.keys(sizes.storedTypes).some((t) => /^(Q\d|IQ)/.test(t));
  if (quantized) {
    return { format: 'q8_0', requested, bytes: sizes.bytes.q8_0, budget, why: `${over}; the file's quantized matrices requantized to q8_0` };
  }
  return { format: 'f32', requested, bytes: f32, budget, why: `${over}, but the file is f32: kept f32 (try --weights bf16 or q8_0)` };
}

/** A byte count for people: 1.23 GB, 45.6 MB, 7.8 kB. */
export function formatBytes(b: number): string {
  if (b >= 1e9) return `${(b / 1e9).toFixed(2)} GB`;
  return b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`;
}

/** The default budget of 'auto': half of this machine's memory. */
export function defaultWeightsBudget(): number {
  return Math.floor(totalmem() / 2);
}

/** The tensor tables of a Hugging Face folder's weight files (safetensors or PyTorch), headers only. */
function hfTensorTable(dir: string): { dims: number[]; type: string }[] {
  const single = ['model.safetensors', 'pytorch_model.bin'].find((f) => existsSync(join(dir, f)));
  const index = ['model.safetensors.index.json', 'pytorch_model.bin.index.json'].find((f) =>
    existsSync(join(dir, f)),
  );
  const files: string[] = [];
  if (single) files.push(join(dir, single));
  else if (index) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(join(dir, index), 'utf8'));
    } catch (err) {
      throw new LmdynError('bad_format', `${join(dir, index)}: not valid JSON (${(err as Error).message})`);
    }
    const map = (parsed as { weight_map?: unknown }).weight_map;
    if (typeof map !== 'object' || map === null) {
      throw new LmdynError('bad_format', `${join(dir, index)}: weight_map is missing`);
    }
    for (const shard of new Set(Object.values(map as Record<string, unknown>))) {
      if (typeof shard !== 'string') throw new LmdynError('bad_format', `${join(dir, index)}: a shard is not a file name`);
      files.push(resolve(dir, shard));
    }
  } else {
    throw new LmdynError('not_found', `${dir} has no model.safetensors, index or pytorch_model.bin`);
  }
  const out: { dims: number[]; type: string }[] = [];
  for (const f of files) {
    if (!existsSync(f) || !statSync(f).isFile()) throw new LmdynError('not_found', `no such weight file: ${f}`);
    if (f.endsWith('.bin')) {
      const file = openTorchCheckpoint(f);
      try {
        for (const t of file.tensors) out.push({ dims: t.shape, type: t.dtype });
      } finally {
        closeSafetensors(file);
      }
    } else {
      for (const t of readSafetensorsHeader(f).tensors) out.push({ dims: t.shape, type: t.dtype });
    }
  }
  return out;
}
