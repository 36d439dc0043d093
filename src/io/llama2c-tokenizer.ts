/**
 * llama2.c's tokenizer.bin (run.c build_tokenizer): int32 max_token_length, then per token
 * f32 score, int32 len and len bytes of UTF-8, up to the end of the file (there is no count).
 * Ids 0, 1, 2 are <unk>, "\n<s>\n", "\n</s>\n"; ids 3..258 are the byte pieces <0x00>..<0xFF>,
 * which run.c addresses as byte + 3.
 */
import { closeSync, fstatSync } from 'node:fs';
import { check } from '../errors.js';
import { openForReading, readExactly } from './llama2c.js';
import { SentencePieceTokenizer } from '../tokenizer/sentencepiece.js';
import type { Tokenizer } from '../tokenizer/types.js';

export function loadLlama2cTokenizer(path: string): Tokenizer {
  const buf = readSmallFile(path);
  check(
    buf.length >= 4,
    'truncated',
    `${path}: ${buf.length} bytes is too short for a llama2.c tokenizer`,
  );
  const maxLen = buf.readInt32LE(0);
  check(
    maxLen > 0,
    'bad_format',
    `${path}: max_token_length is ${maxLen}; not a llama2.c tokenizer`,
  );
  const utf8 = new TextDecoder();
  const pieces: string[] = [];
  const scores: number[] = [];
  let pos = 4;
  while (pos < buf.length) {
    check(
      pos + 8 <= buf.length,
      'truncated',
      `${path}: token ${pieces.length} is cut off at byte ${pos}`,
    );
    const score = buf.readFloatLE(pos);
    const len = buf.readInt32LE(pos + 4);
    check(!Number.isNaN(score), 'bad_format', `${path}: token ${pieces.length} has a NaN score`);
    check(
      len >= 0 && len <= maxLen,
      'bad_format',
      `${path}: token ${pieces.length} has length ${len} (max_token_length is ${maxLen})`,
    );
    pos += 8;
    check(
      pos + len <= buf.length,
      'truncated',
      `${path}: token ${pieces.length} is cut off at byte ${pos}`,
    );
    pieces.push(utf8.decode(buf.subarray(pos, pos + len)));
    scores.push(score);
    pos += len;
  }
  check(
    pieces.length > 2,
    'bad_format',
    `${path}: ${pieces.length} tokens; BOS (1) and EOS (2) are missing`,
  );
  const byteIds = new Int32Array(256).fill(-1);
  for (let b = 0; b < 256; b++) {
    if (pieces[b + 3] === `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)
      byteIds[b] = b + 3;
  }
  return new SentencePieceTokenizer('llama2c', {
    pieces,
    scores: Float32Array.from(scores),
    bosId: 1,
    eosId: 2,
    byteIds,
    unkId: 0,
    controlIds: [0, 1, 2],
    addDummyPrefix: true,
  });
}

/** Tokenizer files are small; anything over this is some other file passed by mistake. */
const MAX_TOKENIZER_BYTES = 64 << 20;

function readSmallFile(path: string): Buffer {
  const fd = openForReading(path);
  try {
    const size = fstatSync(fd).size;
    check(
      size <= MAX_TOKENIZER_BYTES,
      'bad_format',
      `${path}: ${size} bytes is far too large for a llama2.c tokenizer`,
    );
    const buf = Buffer.alloc(size);
    readExactly(fd, buf, 0, path);
    return buf;
  } finally {
    closeSync(fd);
  }
}
