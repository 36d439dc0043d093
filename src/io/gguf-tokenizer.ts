/**
 * The vocabulary embedded in GGUF metadata (`tokenizer.ggml.*`, llama.cpp llama-vocab.cpp): read
 * into a lmdyn Tokenizer, and written from one.
 *
 * - `tokenizer.ggml.model` = `llama`: SentencePiece pieces ('▁' for a space), scores and token
 *   types (2 unknown, 3 control, 5 unused, 6 byte).
 * - `tokenizer.ggml.model` = `gpt2`: byte-level BPE (GPT-2's byte-to-unicode map): tokens, merges
 *   ("a b"), token types (1 normal, 3 control, 4 user-defined, 5 unused padding) and
 *   `tokenizer.ggml.pre`, llama.cpp's name of the pre-tokenizer regex. Read by turning them back
 *   into a tokenizer.json for the same library the HF loader uses (tokenizer/hf.ts); written from
 *   an HF tokenizer's tokenizer.json. llama.cpp applies no normalizer, so none is read or written
 *   (Pythia's NFC changes only text that is not already NFC).
 */
import { LmdynError, check } from '../errors.js';
import { hfTokenizerFromJson } from '../tokenizer/hf.js';
import { SentencePieceTokenizer } from '../tokenizer/sentencepiece.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { describe, isStringArray, type GgufMetadata, type Kv } from './gguf-metadata.js';
import { ValueType } from './gguf-reader.js';

/** llama.cpp's llama_token_type. */
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;
const BYTE = 6;

/** The embedded vocabulary when `tokenizer.ggml.model` is one lmdyn reads; otherwise none. */
export function ggufTokenizer(meta: GgufMetadata): Tokenizer | null {
  const model = meta.get('tokenizer.ggml.model');
  if (model === 'llama') return sentencePieceTokenizer(meta);
  if (model === 'gpt2') return bpeTokenizer(meta);
  return null;
}

function sentencePieceTokenizer(meta: GgufMetadata): Tokenizer {
  const path = meta.path;
  const tokens = meta.get('tokenizer.ggml.tokens');
  check(
    isStringArray(tokens),
    'bad_format',
    `${path}: tokenizer.ggml.tokens is not an array of strings`,
  );
  const n = tokens.length;
  const scores = meta.get('tokenizer.ggml.scores');
  check(
    scores instanceof Float32Array && scores.length === n,
    'bad_format',
    `${path}: tokenizer.ggml.scores is not ${n} float32 values`,
  );
  const rawTypes = meta.get('tokenizer.ggml.token_type');
  check(
    rawTypes === undefined || (rawTypes instanceof Int32Array && rawTypes.length === n),
    'bad_format',
    `${path}: tokenizer.ggml.token_type is not ${n} int32 values`,
  );
  const types = rawTypes ?? new Int32Array(n).fill(NORMAL);
  const byteIds = new Int32Array(256).fill(-1);
  const controlIds: number[] = [];
  tokens.forEach((piece, id) => {
    const type = types[id];
    const byte = /^<0x([0-9A-F]{2})>$/.exec(piece);
    if (byte && (type === BYTE || rawTypes === undefined)) {
      const b = parseInt(byte[1]!, 16);
      if (byteIds[b] === -1) byteIds[b] = id;
    }
    if (type === UNKNOWN || type === CONTROL || type === UNUSED) controlIds.push(id);
  });
  const addPrefix = meta.get('tokenizer.ggml.add_space_prefix');
  return new SentencePieceTokenizer('gguf', {
    pieces: tokens.map((t) => t.replaceAll('\u2581', ' ')), // '▁' is SentencePiece's space
    scores,
    bosId: meta.optionalId('tokenizer.ggml.bos_token_id', n),
    eosId: meta.optionalId('tokenizer.ggml.eos_token_id', n),
    byteIds,
    unkId: meta.optionalId('tokenizer.ggml.unknown_token_id', n),
    controlIds,
    addDummyPrefix: addPrefix === undefined ? true : addPrefix === true,
  });
}

/**
 * tokenizer.ggml.* for llama.cpp's SPM vocabulary: pieces with '▁' for a space (control pieces
 * trimmed), scores, token types; a model with more rows than tokens gets `[PAD{i}]` entries of type unused (as
 * llama.cpp's convert_hf_to_gguf.py writes them), since llama.cpp's vocabulary must match the
 * embedding's rows.
 */
export function sentencePieceKvs(tokenizer: SentencePieceTokenizer, vocabSize: number): Kv[] {
  const v = tokenizer.vocab;
  const n = vocabSize;
  const tokens: string[] = [];
  const scores = new Float32Array(n);
  const types = new Int32Array(n).fill(NORMAL);
  const control = new Set(v.controlIds);
  const bytes = new Set(Array.from(v.byteIds).filter((id) => id >= 0));
  for (let id = 0; id < n; id++) {
    if (id >= v.pieces.length) {
      tokens.push(`[PAD${id}]`);
      types[id] = UNUSED;
      continue;
    }
    const piece = v.pieces[id]!;
    scores[id] = v.scores[id]!;
    // control pieces are written trimmed: llama2.c's "\n<s>\n" is llama.cpp's "<s>"
    tokens.push(control.has(id) ? piece.trim() : piece.replaceAll(' ', '\u2581'));
    if (id === v.unkId) types[id] = UNKNOWN;
    else if (control.has(id)) types[id] = CONTROL;
    else if (bytes.has(id)) types[id] = BYTE;
  }
  const kvs: Kv[] = [
    { key: 'tokenizer.ggml.model', type: ValueType.String, value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: ValueType.Array, items: ValueType.String, value: tokens },
    { key: 'tokenizer.ggml.scores', type: ValueType.Array, items: ValueType.F32, value: scores },
    { key: 'tokenizer.ggml.token_type', type: ValueType.Array, items: ValueType.I32, value: types },
  ];
  const id = (key: string, value: number | null): void => {
    if (value !== null) kvs.push({ key: `tokenizer.ggml.${key}`, type: ValueType.U32, value });
  };
  id('bos_token_id', v.bosId);
  id('eos_token_id', v.eosId);
  id('unknown_token_id', v.unkId);
  kvs.push(
    { key: 'tokenizer.ggml.add_bos_token', type: ValueType.Bool, value: v.bosId !== null },
    { key: 'tokenizer.ggml.add_eos_token', type: ValueType.Bool, value: false },
    { key: 'tokenizer.ggml.add_space_prefix', type: ValueType.Bool, value: v.addDummyPrefix },
  );
  return kvs;
}

// --- byte-level BPE (tokenizer.ggml.model = gpt2) -------------------------------------------------

/** The pre-tokenizer regexes of llama.cpp's `tokenizer.ggml.pre` names (llama-vocab.cpp). */
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevel = (useRegex: boolean): Record<string, unknown> => ({
  type: 'ByteLevel',
  add_prefix_space: false,
  trim_offsets: true,
  use_regex: useRegex,
});
const splitThenBytes = (regex: string): Record<string, unknown> => ({
  type: 'Sequence',
  pretokenizers: [
    { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
    byteLevel(false),
  ],
});

/**
 * tokenizer.json pre_tokenizers by `tokenizer.ggml.pre`, with the names llama-vocab.cpp gives the
 * same regex (Pythia's and OLMo's GPT-NeoX-20B vocabulary is written as `olmo`).
 */
const PRE_TOKENIZERS: Record<string, () => Record<string, unknown>> = {
  'gpt-2': () => byteLevel(true),
  qwen2: () => splitThenBytes(QWEN2_REGEX),
  'llama-bpe': () => splitThenBytes(LLAMA3_REGEX),
};
const PRE_ALIASES: Record<string, string> = {
  mpt: 'gpt-2',
  olmo: 'gpt-2',
  jais: 'gpt-2',
  stablelm2: 'qwen2',
  llama3: 'llama-bpe',
  dbrx: 'llama-bpe',
  'smaug-bpe': 'llama-bpe',
};

/** The `tokenizer.ggml.pre` of a tokenizer.json's pre_tokenizer, or null for one llama.cpp lacks. */
function preName(preTokenizer: unknown): string | null {
  const p = preTokenizer as Record<string, unknown> | null;
  if (p?.type === 'ByteLevel' && p.use_regex !== false && p.add_prefix_space !== true)
    return 'gpt-2';
  if (p?.type === 'Sequence' && Array.isArray(p.pretokenizers) && p.pretokenizers.length === 2) {
    const [split, bytes] = p.pretokenizers as Record<string, unknown>[];
    const regex = (split?.pattern as Record<string, unknown> | undefined)?.Regex;
    if (split?.type !== 'Split' || bytes?.type !== 'ByteLevel' || bytes.use_regex !== false)
      return null;
    if (regex === QWEN2_REGEX) return 'qwen2';
    if (regex === LLAMA3_REGEX) return 'llama-bpe';
  }
  return null;
}

function bpeTokenizer(meta: GgufMetadata): Tokenizer {
  const path = meta.path;
  const tokens = meta.get('tokenizer.ggml.tokens');
  check(
    isStringArray(tokens),
    'bad_format',
    `${path}: tokenizer.ggml.tokens is not an array of strings`,
  );
  const n = tokens.length;
  const merges = meta.get('tokenizer.ggml.merges');
  check(
    isStringArray(merges),
    'bad_format',
    `${path}: tokenizer.ggml.merges is ${describe(merges)}, not an array of strings`,
  );
  const rawTypes = meta.get('tokenizer.ggml.token_type');
  check(
    rawTypes === undefined || (rawTypes instanceof Int32Array && rawTypes.length === n),
    'bad_format',
    `${path}: tokenizer.ggml.token_type is not ${n} int32 values`,
  );
  const pre = meta.string('tokenizer.ggml.pre') ?? 'gpt-2';
  const makePre = PRE_TOKENIZERS[PRE_ALIASES[pre] ?? pre];
  if (!makePre) {
    const known = [...Object.keys(PRE_TOKENIZERS), ...Object.keys(PRE_ALIASES)].join(', ');
    throw new LmdynError(
      'unsupported',
      `${path}: tokenizer.ggml.pre '${pre.slice(0, 40)}' (the BPE pre-tokenizers read are ${known})`,
    );
  }
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  const added: Record<string, unknown>[] = [];
  tokens.forEach((token, id) => {
    const type = rawTypes?.[id] ?? NORMAL;
    if (type === UNUSED) return; // padding rows beyond the tokenizer's own vocabulary
    if (!(token in vocab)) vocab[token] = id;
    if (type === CONTROL || type === USER_DEFINED) {
      added.push({
        id,
        content: token,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: type === USER_DEFINED,
        special: type === CONTROL,
      });
    }
  });
  const json: Record<string, unknown> = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: makePre(),
    post_processor: null,
    decoder: { ...byteLevel(true), add_prefix_space: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
  const bosId = meta.optionalId('tokenizer.ggml.bos_token_id', n);
  const eosId = meta.optionalId('tokenizer.ggml.eos_token_id', n);
  return hfTokenizerFromJson(json, `${path} (tokenizer.ggml.*)`, {
    kind: 'gguf',
    special: {
      bosId,
      eosId,
      addBos: meta.bool('tokenizer.ggml.add_bos_token', false),
      addEos: meta.bool('tokenizer.ggml.add_eos_token', false),
    },
  });
}

/**
 * tokenizer.ggml.* of llama.cpp's BPE vocabulary from an HF byte-level BPE tokenizer.json: every
 * id below `vocabSize` gets a token (`[PAD{id}]` of type unused for rows beyond the tokenizer's
 * vocabulary, as convert_hf_to_gguf.py writes them), added special tokens are control tokens.
 */
export function bpeKvs(
  tokenizer: Tokenizer,
  vocabSize: number,
  ids: { bosId: number | null; eosId: number | null },
): Kv[] {
  const json = tokenizer.tokenizerJson!;
  const model = json.model as Record<string, unknown>;
  const what = 'GGUF export embeds byte-level BPE vocabularies';
  if (model.type !== 'BPE' || model.byte_fallback === true) {
    throw new LmdynError(
      'unsupported',
      `${what}; this tokenizer.json has a ${String(model.type)} model${model.byte_fallback === true ? ' with byte fallback' : ''}`,
    );
  }
  const pre = preName(json.pre_tokenizer);
  if (pre === null) {
    throw new LmdynError(
      'unsupported',
      `${what} with the pre-tokenizers ${Object.keys(PRE_TOKENIZERS).join(', ')}; this tokenizer.json's is ${JSON.stringify(json.pre_tokenizer).slice(0, 120)}`,
    );
  }
  const tokens: (string | undefined)[] = new Array<string | undefined>(vocabSize);
  const types = new Int32Array(vocabSize).fill(NORMAL);
  for (const [token, id] of Object.entries(model.vocab as Record<string, number>)) {
    if (id < vocabSize) tokens[id] = token;
  }
  for (const t of (json.added_tokens ?? []) as {
    id: number;
    content: string;
    special?: boolean;
  }[]) {
    if (t.id >= vocabSize) continue;
    tokens[t.id] = t.content;
    types[t.id] = t.special === false ? USER_DEFINED : CONTROL;
  }
  const filled: string[] = [];
  for (let id = 0; id < vocabSize; id++) {
    if (tokens[id] === undefined) {
      filled.push(`[PAD${id}]`);
      types[id] = UNUSED;
    } else filled.push(tokens[id]!);
  }
  const merges = ((model.merges ?? []) as (string | string[])[]).map((m) =>
    typeof m === 'string' ? m : m.join(' '),
  );
  // whether encode adds BOS / EOS (HF: the post-processor with add_special_tokens)
  const plain = tokenizer.encode('a', { bos: false });
  const withBos = tokenizer.encode('a');
  const addBos = tokenizer.bosId !== null && withBos.length > plain.length;
  const kvs: Kv[] = [
    { key: 'tokenizer.ggml.model', type: ValueType.String, value: 'gpt2' },
    { key: 'tokenizer.ggml.pre', type: ValueType.String, value: pre },
    { key: 'tokenizer.ggml.tokens', type: ValueType.Array, items: ValueType.String, value: filled },
    { key: 'tokenizer.ggml.token_type', type: ValueType.Array, items: ValueType.I32, value: types },
    { key: 'tokenizer.ggml.merges', type: ValueType.Array, items: ValueType.String, value: merges },
  ];
  const id = (key: string, value: number | null): void => {
    if (value !== null && value < vocabSize)
      kvs.push({ key: `tokenizer.ggml.${key}`, type: ValueType.U32, value });
  };
  // the tokenizer's, else config.json's (convert_hf_to_gguf.py's SpecialVocab reads both)
  id('bos_token_id', tokenizer.bosId ?? ids.bosId);
  id('eos_token_id', tokenizer.eosId ?? ids.eosId);
  kvs.push(
    { key: 'tokenizer.ggml.add_bos_token', type: ValueType.Bool, value: addBos },
    { key: 'tokenizer.ggml.add_eos_token', type: ValueType.Bool, value: false },
  );
  return kvs;
}
