/**
 * One entry point for every model source: a llama2.c .bin, a .gguf file, a Hugging Face
 * folder, or a hub id `hf:owner/name[@revision][/file]` — also written bare (`Qwen/Qwen2.5-0.5B`,
 * `gpt2`) when no such path exists. The format is detected from the file's leading bytes, not
 * its name.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { LmdynError } from '../errors.js';
import { loadHfTokenizer } from '../tokenizer/hf.js';
import { loadLlama2cTokenizer } from './llama2c-tokenizer.js';
import { castWeightsH16, quantizeWeightsQ80, type WeightFormat } from '../model/quantize.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { loadGguf, type GgufLoadOptions } from './gguf.js';
import { loadHfFolder } from './hf.js';
import { resolveHubModel, type HubOptions } from './hub.js';
import { loadLlama2cCheckpoint } from './llama2c.js';
import {
  chooseWeights,
  defaultWeightsBudget,
  residentSizes,
  WEIGHTS_CHOICES,
  type ResidentSizes,
  type WeightsChoice,
  type WeightsDecision,
} from './resident.js';
import type { LoadedModel } from '../model/types.js';

export interface LoadOptions {
  /** A tokenizer file or folder that replaces the model's own (or supplies one). */
  tokenizer?: string;
  hub?: HubOptions;
  /**
   * How the weight matrices stay in memory (io/resident.ts): 'f32'; 'f16' / 'bf16' (16-bit,
   * widened to f32 by the matmul as it reads: half the bytes); 'q8_0' (quantized, groups of
   * `groupSize`, default 32, along rows; see quantizeWeightsQ80); default 'auto': f32 when its
   * size fits `weightsBudget`, else the file's own 16-bit type (see chooseWeights). Matrices a
   * file stores as Q8_0 stay Q8_0 under every choice. The choice is in source.details.weights.
   */
  weights?: WeightsChoice;
  /** The bytes 'auto' lets f32 weights take; default half of this machine's memory. */
  weightsBudget?: number;
  /** The older name of `weights` for 'f32' and 'q8_0' (`--quantize q8_0`). */
  quantize?: WeightFormat;
  groupSize?: number;
}

/** What a model can be, for error messages. */
export const EXPECTED_FORMATS =
  'expected a llama2.c .bin checkpoint, a .gguf file, a Hugging Face folder with config.json, or a hub id (hf:owner/name, or bare: Qwen/Qwen2.5-0.5B, gpt2)';

/**
 * Short names users of Hugging Face, TransformerLens and transformers.js type without an
 * owner, and the hub repositories they stand for (the hub's own redirects).
 */
export const SHORT_MODEL_NAMES: Readonly<Record<string, string>> = {
  gpt2: 'openai-community/gpt2',
  'gpt2-small': 'openai-community/gpt2',
  'gpt2-medium': 'openai-community/gpt2-medium',
  'gpt2-large': 'openai-community/gpt2-large',
  'gpt2-xl': 'openai-community/gpt2-xl',
  distilgpt2: 'distilbert/distilgpt2',
};

/**
 * The hub id a bare model name stands for (`owner/name[@revision]` or a short name), or null
 * when `spec` is an existing path or does not look like a hub id. Model-file names
 * (`x/y.gguf`, `x/y.bin`) are never hub ids.
 */
export function bareHubId(spec: string): string | null {
  if (spec.startsWith('hf:') || existsSync(spec)) return null;
  if (Object.hasOwn(SHORT_MODEL_NAMES, spec)) return `hf:${SHORT_MODEL_NAMES[spec]}`;
  if (!/^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*(@[\w./-]+)?$/.test(spec)) return null;
  if (/\.(bin|gguf|safetensors|json|pt|pth)$/i.test(spec.split('@')[0])) return null;
  return `hf:${spec}`;
}

/** Loads a model and its tokenizer; the tokenizer is required. */
export async function loadModel(spec: string, options: LoadOptions = {}): Promise<LoadedModel> {
  if (spec.trim() === '') throw new LmdynError('bad_argument', 'the model path is empty');
  let path = spec;
  let hubId: string | null = null;
  const bare = bareHubId(spec);
  if (spec.startsWith('hf:') || bare) {
    hubId = bare ?? spec;
    try {
      path = await resolveHubModel(hubId, options.hub ?? {});
    } catch (err) {
      if (!bare || !(err instanceof LmdynError)) throw err;
      const why = err.message.startsWith(`${bare}: `) ? err.message.slice(bare.length + 2) : err.message;
      throw new LmdynError(err.code, `${spec} is not a file or folder here, and as the hub id ${bare}: ${why}`);
    }
  }
  path = resolve(path);
  if (!existsSync(path)) {
    throw new LmdynError('not_found', `no such file or folder: ${spec} (${EXPECTED_FORMATS})`);
  }
  const groupSize = options.groupSize ?? 32;
  const decision = decideWeights(path, options);
  if (decision.format === 'q8_0') {
    if (!(Number.isInteger(groupSize) && groupSize >= 16 && groupSize % 16 === 0)) {
      throw new LmdynError(
        'bad_argument',
        `Q8_0 group size must be a multiple of 16, got ${groupSize}`,
      );
    }
  }
  // A GGUF file requantizes its 4-6 bit and 16-bit matrices to Q8_0 one at a time while loading.
  // 16-bit matrices stay 16-bit as they are read, one matrix at a time.
  const format = decision.format;
  const loaderOptions =
    format === 'q8_0'
      ? ({ requantize: 'q8_0', groupSize } as const)
      : format === 'f16' || format === 'bf16'
        ? { keep16: format }
        : {};
  const model = loadLocal(path, loaderOptions);
  model.source.hubId = hubId;
  if (format === 'q8_0') {
    model.weights = quantizeWeightsQ80(model.weights, groupSize);
    model.source.details = {
      ...model.source.details,
      quantizedAtLoad: { format: 'q8_0', groupSize },
    };
  } else if (format === 'f16' || format === 'bf16') {
    // the matrices a loader rearranged in f32 (rotary permutations, fused q|k|v splits)
    model.weights = castWeightsH16(model.weights, format);
  }
  model.source.details = { ...model.source.details, weights: decision };
  if (options.tokenizer) {
    model.tokenizer = loadTokenizer(resolve(options.tokenizer));
  } else if (!model.tokenizer) {
    model.tokenizer = findTokenizerBeside(path, model.config.vocabSize);
  }
  const tok = model.tokenizer;
  if (tok.vocabSize > model.config.vocabSize) {
    throw new LmdynError(
      'bad_format',
      `the tokenizer has ${tok.vocabSize} tokens but the model only ${model.config.vocabSize}`,
    );
  }
  if (tok.kind === 'llama2c' && tok.vocabSize < model.config.vocabSize) {
    // a llama2.c tokenizer has no padding convention: ids past its end could not be decoded
    throw new LmdynError(
      'bad_format',
      `the llama2.c tokenizer has ${tok.vocabSize} tokens but the model ${model.config.vocabSize}; it must cover the model's vocabulary (is it the model's own tokenizer?)`,
    );
  }
  return model;
}

export type DetectedFormat = 'llama2c' | 'gguf' | 'hf-folder';

/**
 * Which loader a path needs: folders with config.json are HF; files are told by magic (GGUF,
 * llama2.c's ak42) or, for legacy llama2.c checkpoints that have none, by not being text.
 */
export function detectFormat(path: string): DetectedFormat {
  const st = statSync(path);
  if (st.isDirectory()) {
    if (existsSync(join(path, 'config.json'))) return 'hf-folder';
    throw new LmdynError('not_found', `${path} is a folder without config.json or one model file (${EXPECTED_FORMATS})`);
  }
  if (!st.isFile()) {
    // a FIFO or a device would block the read or never end
    throw new LmdynError('bad_argument', `${path} is not a regular file or folder`);
  }
  const head = readHead(path, LEGACY_HEADER_BYTES);
  if (head.length >= 4 && head.toString('latin1', 0, 4) === 'GGUF') return 'gguf';
  if (/^[\t\n\r ]*[{[][\x20-\x7e\t\n\r]*$/.test(head.toString('latin1'))) {
    throw new LmdynError(
      'bad_format',
      `${path} is a JSON file, not model weights; give a llama2.c .bin, a .gguf file, or a Hugging Face folder (config.json + *.safetensors)`,
    );
  }
  if (head.length >= 4 && head.readUInt32LE(0) !== LLAMA2C_MAGIC && isText(head)) {
    throw new LmdynError('bad_format', `${path} is a text file, not a llama2.c checkpoint (${EXPECTED_FORMATS})`);
  }
  return 'llama2c';
}

/** Bytes of llama2.c's legacy header (7 × int32). */
const LEGACY_HEADER_BYTES = 28;

/** llama2.c's versioned checkpoints start with uint32 0x616b3432 ("ak42"), little-endian. */
const LLAMA2C_MAGIC = 0x616b3432;

function hasLlama2cMagic(path: string): boolean {
  const head = readHead(path, 4);
  return head.length === 4 && head.readUInt32LE(0) === LLAMA2C_MAGIC;
}

/** Printable ASCII, tabs and newlines only (a legacy llama2.c header is 7 small int32s: zeros). */
function isText(head: Buffer): boolean {
  for (const b of head) if (!((b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d)) return false;
  return true;
}

/**
 * The weights' storage for `path` (a resolved local path): the request checked, the sizes read
 * from the file's header, 'auto' decided, and the result bounded by this machine's memory before
 * anything is allocated.
 */
export function decideWeights(path: string, options: LoadOptions): WeightsDecision {
  return planWeights(path, options).decision;
}

/** decideWeights with the header sizes it decided from (for `lmdyn info`, before loading). */
export function planWeights(
  path: string,
  options: LoadOptions,
): { sizes: ResidentSizes; decision: WeightsDecision } {
  const { weights, quantize } = options;
  if (weights !== undefined && !WEIGHTS_CHOICES.includes(weights)) {
    throw new LmdynError('bad_argument', `unknown weight format '${String(weights)}' (${WEIGHTS_CHOICES.join(', ')})`);
  }
  if (quantize !== undefined && quantize !== 'f32' && quantize !== 'q8_0') {
    throw new LmdynError('bad_argument', `unknown weight format '${String(quantize)}' (f32 or q8_0)`);
  }
  if (weights !== undefined && quantize !== undefined && weights !== quantize) {
    throw new LmdynError('bad_argument', `--weights ${weights} and --quantize ${quantize} disagree; give one`);
  }
  const budget = options.weightsBudget ?? defaultWeightsBudget();
  if (!(Number.isFinite(budget) && budget > 0)) {
    throw new LmdynError('bad_argument', `the weights budget must be a positive number of bytes, got ${budget}`);
  }
  const sizes = headerSizes(path);
  const decision = chooseWeights(sizes, weights ?? quantize ?? 'auto', budget);
  const total = totalmem();
  if (decision.bytes > total) {
    throw new LmdynError(
      'bad_argument',
      `the weights need ${(decision.bytes / 1e9).toFixed(2)} GB resident as ${decision.format}, more than this machine's ${(total / 1e9).toFixed(2)} GB (try --weights bf16 or q8_0)`,
    );
  }
  return { sizes, decision };
}

/**
 * residentSizes of a local model. When the header cannot be read, the loader's own message is
 * the one to show (it checks in its own order: an unknown architecture before missing weights,
 * a legacy llama2.c file that is something else), so the loader runs to throw it.
 */
function headerSizes(path: string): ResidentSizes {
  try {
    return residentSizes(modelFile(path));
  } catch (err) {
    if (err instanceof LmdynError) loadLocal(path, {});
    throw err;
  }
}

/** The file a local model path stands for (a folder's one .gguf / .bin, or the folder). */
function modelFile(path: string): string {
  return statSync(path).isDirectory() ? (modelFileIn(path) ?? path) : path;
}

function loadLocal(
  path: string,
  options: GgufLoadOptions,
): LoadedModel & { tokenizer: Tokenizer | null } {
  const file = modelFile(path);
  switch (detectFormat(file)) {
    case 'hf-folder':
      return loadHfFolder(file, { keep16: options.keep16 });
    case 'gguf':
      return loadGguf(file, options);
    case 'llama2c':
      try {
        return loadLlama2cCheckpoint(file);
      } catch (err) {
        // Legacy llama2.c files have no magic number: a header that fails the checks means the
        // file is something else.
        if (!(err instanceof LmdynError) || err.code !== 'bad_format' || hasLlama2cMagic(file)) throw err;
        const why = err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message;
        throw new LmdynError('bad_format', `${file} is not a llama2.c checkpoint (${why}; ${EXPECTED_FORMATS})`);
      }
  }
}

/**
 * The one model file of a folder without config.json (a llama2.c .bin beside its tokenizer, or a
 * .gguf), or null when there is none or more than one.
 */
function modelFileIn(dir: string): string | null {
  if (existsSync(join(dir, 'config.json'))) return null;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.gguf') || (f.endsWith('.bin') && !/^tok(enizer|\d+)/.test(f)))
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).isFile());
  return files.length === 1 ? files[0] : null;
}

/** A tokenizer from a llama2.c tokenizer.bin, a tokenizer.json, or a folder holding either. */
export function loadTokenizer(path: string): Tokenizer {
  if (!existsSync(path)) throw new LmdynError('not_found', `no such tokenizer: ${path}`);
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, 'tokenizer.json'))) return loadHfTokenizer(path);
    const bin = ['tokenizer.bin'].map((f) => join(path, f)).find(existsSync);
    if (bin) return loadLlama2cTokenizer(bin);
    throw new LmdynError('not_found', `no tokenizer.json or tokenizer.bin in ${path}`);
  }
  if (path.endsWith('.json')) return loadHfTokenizer(path);
  if (path.endsWith('.gguf')) {
    const tok = loadGguf(path).tokenizer;
    if (!tok) throw new LmdynError('bad_format', `${path} has no embedded tokenizer`);
    return tok;
  }
  return loadLlama2cTokenizer(path);
}

/**
 * llama2.c checkpoints carry no vocabulary: look beside the file for tokenizer.bin, tok{V}.bin
 * (llama2.c's naming for custom vocabularies) or a tokenizer.json.
 */
function findTokenizerBeside(path: string, vocabSize: number): Tokenizer {
  const dir = statSync(path).isDirectory() ? path : dirname(path);
  const candidates = [`tok${vocabSize}.bin`, 'tokenizer.bin', 'tokenizer.json'].map((f) =>
    join(dir, f),
  );
  const found = candidates.find(existsSync);
  if (!found) {
    throw new LmdynError(
      'not_found',
      `no tokenizer found beside ${basename(path)} (looked for ${candidates.map((c) => basename(c)).join(', ')}); pass --tokenizer`,
    );
  }
  return loadTokenizer(found);
}

function readHead(path: string, n: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
