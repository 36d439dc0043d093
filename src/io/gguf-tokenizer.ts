/**
 * The vocabulary embedded in GGUF metadata (`tokenizer.ggml.*`, llama.cpp llama-vocab.cpp): read
 * into a lmdyn Tokenizer, and written from one.
 *
 * - `tokenizer.ggml.model` = `llama`: SentencePiece pieces ('▁' for a space), scores and token
 *   types (2 unknown, 3 control, 5 unused, 6 byte).
 */
import { check } from '../errors.js';
import { SentencePieceTokenizer } from '../tokenizer/sentencepiece.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { isStringArray, type GgufMetadata, type Kv } from './gguf-metadata.js';
import { ValueType } from './gguf-reader.js';

/** llama.cpp's llama_token_type. */
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const UNUSED = 5;
const BYTE = 6;

/** The embedded vocabulary when `tokenizer.ggml.model` is one lmdyn reads; otherwise none. */
export function ggufTokenizer(meta: GgufMetadata): Tokenizer | null {
  if (meta.get('tokenizer.ggml.model') === 'llama') return sentencePieceTokenizer(meta);
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
