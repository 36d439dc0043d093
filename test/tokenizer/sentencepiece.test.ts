import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import llamaTokenizer from 'llama-tokenizer-js';
import { LmdynError } from '../../src/errors.js';
import { loadLlama2cTokenizer } from '../../src/io/llama2c-tokenizer.js';
import { model, STORIES_GREEDY_64 } from '../helpers/paths.js';

const TOK512 = model('stories260K', 'tok512.bin');
const TOK32K = model('llama2c-tokenizer-32k', 'tokenizer.bin');
/** MANIFEST.md §1: the text stories260K generates greedily from BOS. */
const STORY =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily';

test('tok512.bin: 512 tokens, max_token_length 7, <unk>/BOS/EOS and byte pieces (MANIFEST.md §1)', () => {
  const tok = loadLlama2cTokenizer(TOK512);
  assert.equal(tok.kind, 'llama2c');
  assert.equal(tok.vocabSize, 512);
  assert.equal(readFileSync(TOK512).readInt32LE(0), 7);
  const lengths = Array.from({ length: 512 }, (_, i) => Buffer.byteLength(tok.tokenText(i)));
  assert.equal(Math.max(...lengths), 7);
  assert.deepEqual(
    [0, 1, 2].map((i) => tok.tokenText(i)),
    ['<unk>', '\n<s>\n', '\n</s>\n'],
  );
  assert.equal(tok.tokenText(3), '<0x00>');
  assert.equal(tok.tokenText(258), '<0xFF>');
  assert.deepEqual([tok.bosId, tok.eosId], [1, 2]);
});

test('tok512.bin: the greedy ids of MANIFEST.md §1 decode to its text, and the text encodes back', () => {
  const tok = loadLlama2cTokenizer(TOK512);
  const text = tok.decode([1, ...STORIES_GREEDY_64]);
  assert.ok(text.length > 100 && STORY.startsWith(text), text);
  assert.ok(!text.startsWith(' '), 'the leading space after BOS is stripped (run.c decode)');
  const ids = tok.encode(STORY);
  assert.equal(ids[0], 1);
  assert.equal(tok.decode(ids), STORY);
  // Greedy generation happened to produce the canonical segmentation, so encode gives the same ids.
  assert.deepEqual(ids, [1, ...STORIES_GREEDY_64]);
  assert.deepEqual(tok.encode(STORY, { bos: false, eos: true }), [...STORIES_GREEDY_64, 2]);
  assert.equal(tok.decode(STORIES_GREEDY_64.slice(0, 2)), ' Once upon', 'no BOS: the space stays');
  assert.deepEqual(tok.encode(''), [1], 'empty text: BOS only, no dummy prefix (run.c)');
});

test('32k Llama 2 vocabulary: encode agrees id for id with llama-tokenizer-js, decode inverts it', () => {
  // llama-tokenizer-js is an independent implementation of the Llama 2 tokenizer; its
  // encode(text) adds BOS (1) and the preceding space, as run.c's encode(text, bos=1, eos=0).
  const tok = loadLlama2cTokenizer(TOK32K);
  assert.equal(tok.vocabSize, 32000);
  const sentences = [
    'Hello world',
    'The quick brown fox jumps over the lazy dog.',
    'grabbed',
    ' grabbed',
    '           grabbed',
    '  leading spaces and   runs of spaces   ',
    'Numbers: 3.14159, 2024-06-01, $1,000,000! (approx. 42%)',
    'Punctuation?! "Quotes", \'apostrophes\'; colons: dashes - and -- ellipses...',
    'Café naïve résumé façade — “curly quotes” über Straße',
    'Emoji 😀🚀🦙 and CJK 你好世界 日本語のテキスト 한국어',
    'tabs\tand\nnewlines\r\n and a trailing newline\n',
    'Special-looking text <s> </s> <unk> <0x41> is just text',
    'ü𝔘𐍈 ሰላም Привет мир مرحبا',
  ];
  for (const s of sentences) {
    const ids = tok.encode(s);
    assert.deepEqual(ids, llamaTokenizer.encode(s), JSON.stringify(s));
    assert.equal(tok.decode(ids), s, JSON.stringify(s));
  }
});

test('byte fallback: characters outside the vocabulary become <0xXX> pieces (id = byte + 3) and decode whole', () => {
  const tok = loadLlama2cTokenizer(TOK32K);
  const ids = tok.encode('🦙', { bos: false });
  // UTF-8 of U+1F999 is F0 9F A6 99; after the dummy-prefix space "▁" (29871).
  assert.deepEqual(ids, [29871, 0xf0 + 3, 0x9f + 3, 0xa6 + 3, 0x99 + 3]);
  assert.equal(tok.decode([1, ...ids.slice(1)]), '🦙', 'bytes are assembled before UTF-8 decoding');
  assert.equal(tok.decode([1, 2]), '', 'BOS and EOS are dropped');
  assert.throws(
    () => tok.decode([32000]),
    (e: unknown) => e instanceof LmdynError && e.code === 'bad_argument',
  );
});

test('corrupt tokenizer files are LmdynErrors (truncated, bad lengths, missing)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-tok-'));
  try {
    const full = readFileSync(TOK512);
    const cut = join(dir, 'tok.bin');
    // tokenizer.bin has no token count, so a cut on a token boundary (e.g. at byte 100 = 4 +
    // 13 + 13 + 14 + 4·14) is a valid smaller vocabulary; these lengths fall inside a token.
    for (const len of [0, 2, 6, 10, 101, full.length - 1]) {
      writeFileSync(cut, full.subarray(0, len));
      assert.throws(
        () => loadLlama2cTokenizer(cut),
        (e: unknown) => e instanceof LmdynError && e.code === 'truncated',
        `cut at ${len}`,
      );
    }
    const longPiece = Buffer.from(full);
    longPiece.writeInt32LE(1000, 4 + 4); // token 0's length beyond max_token_length
    writeFileSync(cut, longPiece);
    assert.throws(
      () => loadLlama2cTokenizer(cut),
      (e: unknown) => e instanceof LmdynError && e.code === 'bad_format',
    );
    assert.throws(
      () => loadLlama2cTokenizer(join(dir, 'missing.bin')),
      (e: unknown) => e instanceof LmdynError && e.code === 'not_found',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
