/**
 * Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) through `@huggingface/tokenizers`,
 * behind lmdyn's Tokenizer interface.
 *
 * - BOS/EOS are the tokens `tokenizer_config.json` (then `special_tokens_map.json`) names, else
 *   config.json's `bos_token_id` / `eos_token_id`. An explicit `null` means "none".
 * - `encode` keeps HF's behaviour: BOS (or EOS) is added only where the tokenizer's
 *   post-processor adds it with `add_special_tokens=True` (Llama does, GPT-2 does not).
 *   `{ bos: false }` drops it; `{ eos: true }` appends EOS.
 * - `decode` skips special tokens (`skip_special_tokens=True`) and, like the Rust tokenizers,
 *   ids without a vocabulary entry (a model's padded rows beyond the tokenizer's vocabulary).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { LmdynError } from '../errors.js';
import type { Tokenizer } from './types.js';
import { validateTokenizerJson } from './validate.js';

/** Loads `tokenizer.json` from a folder, or a tokenizer.json file with its sibling configs. */
export function loadHfTokenizer(path: string): Tokenizer {
  const isDir = existsSync(path) && statSync(path).isDirectory();
  const file = isDir ? join(path, 'tokenizer.json') : path;
  const dir = dirname(file);
  if (!existsSync(file)) throw new LmdynError('not_found', `no tokenizer.json at ${path}`);
  const tokenizerJson = readJsonObject(file);
  const tokenizerConfig = readOptionalJson(join(dir, 'tokenizer_config.json')) ?? {};
  const specialMap = readOptionalJson(join(dir, 'special_tokens_map.json')) ?? {};
  const modelConfig = readOptionalJson(join(dir, 'config.json')) ?? {};
  return hfTokenizerFromJson(tokenizerJson, file, { tokenizerConfig, specialMap, modelConfig });
}

export interface HfTokenizerOptions {
  tokenizerConfig?: Record<string, unknown>;
  specialMap?: Record<string, unknown>;
  modelConfig?: Record<string, unknown>;
  /** BOS / EOS ids and whether `encode` adds them, instead of reading them from the configs. */
  special?: { bosId: number | null; eosId: number | null; addBos: boolean; addEos: boolean };
  kind?: 'hf' | 'gguf';
}

/**
 * A tokenizer.json object (already read; `file` names it in errors) behind lmdyn's Tokenizer
 * interface: the HF folder's, or one GGUF's embedded BPE vocabulary was turned into.
 */
export function hfTokenizerFromJson(
  tokenizerJson: Record<string, unknown>,
  file: string,
  options: HfTokenizerOptions = {},
): Tokenizer {
  validateTokenizerJson(tokenizerJson, file);
  const tokenizerConfig = options.tokenizerConfig ?? {};
  const specialMap = options.specialMap ?? {};
  const modelConfig = options.modelConfig ?? {};
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(tokenizerJson, tokenizerConfig);
  } catch (err) {
    throw new LmdynError('unsupported', `${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  const special = (key: 'bos' | 'eos'): number | null => {
    for (const source of [tokenizerConfig, specialMap]) {
      const entry = source[`${key}_token`];
      if (entry === null) return null;
      const content = isRecord(entry) ? entry.content : entry;
      if (typeof content === 'string') return hf.token_to_id(content) ?? null;
    }
    const id = modelConfig[`${key}_token_id`];
    const first = Array.isArray(id) ? id[0] : id;
    return Number.isInteger(first) ? (first as number) : null;
  };
  const bosId = options.special ? options.special.bosId : special('bos');
  const eosId = options.special ? options.special.eosId : special('eos');

  // What the post-processor adds with add_special_tokens=True, seen on a probe string.
  const plain = hf.encode('a', { add_special_tokens: false }).ids;
  const full = hf.encode('a', { add_special_tokens: true }).ids;
  const addsBos = options.special
    ? options.special.addBos && bosId !== null
    : bosId !== null && full.length > plain.length && full[0] === bosId;
  const addsEos = options.special
    ? options.special.addEos && eosId !== null
    : eosId !== null && full.length > plain.length && full[full.length - 1] === eosId;

  let vocabSize = 0;
  for (const id of hf.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);

  return {
    kind: options.kind ?? 'hf',
    vocabSize,
    tokenizerJson,
    bosId,
    eosId,
    encode(text: string, options: { bos?: boolean; eos?: boolean } = {}): number[] {
      const ids = hf.encode(text, { add_special_tokens: false }).ids;
      if ((options.bos ?? true) && addsBos && bosId !== null) ids.unshift(bosId);
      if ((options.eos ?? addsEos) && eosId !== null) ids.push(eosId);
      return ids;
    },
    decode(ids: readonly number[]): string {
      const known = ids.filter((id) => hf.id_to_token(id) !== undefined);
      return known.length === 0 ? '' : hf.decode(known, { skip_special_tokens: true });
    },
    tokenText(id: number): string {
      return hf.id_to_token(id) ?? '';
    },
  };
}

function readJsonObject(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new LmdynError('bad_format', `${path}: not valid JSON (${(err as Error).message})`);
  }
  if (!isRecord(parsed)) throw new LmdynError('bad_format', `${path}: not a JSON object`);
  return parsed;
}

function readOptionalJson(path: string): Record<string, unknown> | null {
  return existsSync(path) ? readJsonObject(path) : null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
