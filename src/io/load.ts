/**
 * One entry point for every model source: a llama2.c .bin, a .gguf file, a Hugging Face
 * folder, or a hub id `hf:owner/name[@revision][/file]`. The format is detected from the
 * file's leading bytes, not its name.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { LmdynError } from '../errors.js';
import { loadHfTokenizer } from '../tokenizer/hf.js';
import { loadLlama2cTokenizer } from '../tokenizer/llama2c.js';
import { quantizeWeightsQ80, type WeightFormat } from '../tensor/q80.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { loadGguf, type GgufLoadOptions } from './gguf.js';
import { loadHfFolder } from './hf.js';
import { resolveHubModel, type HubOptions } from './hub.js';
import { loadLlama2cCheckpoint } from './llama2c.js';
import type { LoadedModel } from './types.js';

export interface LoadOptions {
  /** A tokenizer file or folder that replaces the model's own (or supplies one). */
  tokenizer?: string;
  hub?: HubOptions;
  /**
   * Convert the f32 weight matrices at load: 'q8_0' quantizes them (groups of `groupSize`,
   * default 32, along rows; see quantizeWeightsQ80); 'f32' or absent keeps the file's formats.
   */
  quantize?: WeightFormat;
  groupSize?: number;
}

/** Loads a model and its tokenizer; the tokenizer is required. */
export async function loadModel(spec: string, options: LoadOptions = {}): Promise<LoadedModel> {
  if (spec.trim() === '') throw new LmdynError('bad_argument', 'the model path is empty');
  let path = spec;
  let hubId: string | null = null;
  if (spec.startsWith('hf:')) {
    hubId = spec;
    path = await resolveHubModel(spec, options.hub ?? {});
  }
  path = resolve(path);
  if (!existsSync(path)) throw new LmdynError('not_found', `no such file or folder: ${spec}`);
  const groupSize = options.groupSize ?? 32;
  if (options.quantize === 'q8_0') {
    if (!(Number.isInteger(groupSize) && groupSize >= 16 && groupSize % 16 === 0)) {
      throw new LmdynError(
        'bad_argument',
        `Q8_0 group size must be a multiple of 16, got ${groupSize}`,
      );
    }
  }
  // A GGUF file requantizes its 4-6 bit and 16-bit matrices to Q8_0 one at a time while loading.
  const requantize =
    options.quantize === 'q8_0' ? ({ requantize: 'q8_0', groupSize } as const) : {};
  const model = loadLocal(path, requantize);
  model.source.hubId = hubId;
  if (options.quantize === 'q8_0') {
    model.weights = quantizeWeightsQ80(model.weights, groupSize);
    model.source.details = {
      ...model.source.details,
      quantizedAtLoad: { format: 'q8_0', groupSize },
    };
  } else if (options.quantize !== undefined && options.quantize !== 'f32') {
    throw new LmdynError(
      'bad_argument',
      `unknown weight format '${String(options.quantize)}' (f32 or q8_0)`,
    );
  }
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

/** Which loader a path needs: folders with config.json are HF; files are told by magic. */
export function detectFormat(path: string): DetectedFormat {
  const st = statSync(path);
  if (st.isDirectory()) {
    if (existsSync(join(path, 'config.json'))) return 'hf-folder';
    throw new LmdynError(
      'not_found',
      `${path} is a folder without config.json (a Hugging Face model folder needs one)`,
    );
  }
  if (!st.isFile()) {
    // a FIFO or a device would block the read or never end
    throw new LmdynError('bad_argument', `${path} is not a regular file or folder`);
  }
  const head = readHead(path, 16);
  if (head.length >= 4 && head.toString('latin1', 0, 4) === 'GGUF') return 'gguf';
  if (/^[\t\n\r ]*[{[][\x20-\x7e\t\n\r]*$/.test(head.toString('latin1'))) {
    throw new LmdynError(
      'bad_format',
      `${path} is a JSON file, not model weights; give a llama2.c .bin, a .gguf file, or a Hugging Face folder (config.json + *.safetensors)`,
    );
  }
  return 'llama2c';
}

function loadLocal(
  path: string,
  ggufOptions: GgufLoadOptions,
): LoadedModel & { tokenizer: Tokenizer | null } {
  switch (detectFormat(path)) {
    case 'hf-folder':
      return loadHfFolder(path);
    case 'gguf':
      return loadGguf(path, ggufOptions);
    case 'llama2c':
      return loadLlama2cCheckpoint(path);
  }
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
