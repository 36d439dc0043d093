/**
 * Tokenizer files are checked before the tokenizer library sees them (tokenizer/validate.ts):
 * hostile copies of tiny-gpt2's real tokenizer.json (an id of 10^9, a catastrophic Split regex,
 * mistyped merges and added tokens) are refused in one line within seconds (the 10^9 id took minutes), while real
 * pre-tokenizer patterns (GPT-2, Llama 3, Qwen 2) pass; a llama2.c tokenizer that does not cover
 * the model's vocabulary is refused at load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openModel } from '../../src/api.js';
import { LmdynError } from '../../src/errors.js';
import { loadHfTokenizer } from '../../src/tokenizer/hf.js';
import { checkPattern } from '../../src/tokenizer/validate.js';
import { model } from '../helpers/paths.js';

const GPT2 = model('tiny-gpt2', 'tokenizer.json');

interface TokenizerJson {
  model: { vocab: Record<string, number>; merges: unknown[] };
  added_tokens: { id: number }[];
  pre_tokenizer: unknown;
}

test('hostile tokenizer.json copies are refused in one line within seconds (not minutes), before the library runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-tokval-'));
  try {
    loadHfTokenizer(GPT2); // the real file passes
    const base = () => JSON.parse(readFileSync(GPT2, 'utf8')) as TokenizerJson;
    const cases: [string, (j: TokenizerJson) => void, RegExp][] = [
      [
        'huge id',
        (j) => (j.model.vocab['!'] = 1e9),
        /token "!" has id 1000000000; ids must be whole numbers in \[0, 4194304\)/,
      ],
      ['fractional id', (j) => (j.model.vocab['!'] = 2.5), /has id 2\.5/],
      [
        'ReDoS split',
        (j) =>
          (j.pre_tokenizer = {
            type: 'Sequence',
            pretokenizers: [
              { type: 'Split', pattern: { Regex: '(a+)+$' }, behavior: 'Isolated', invert: false },
              j.pre_tokenizer,
            ],
          }),
        /pre_tokenizer\.pretokenizers\[0\]\.pattern: the regex "\(a\+\)\+\$" repeats a group that itself repeats/,
      ],
      [
        'numeric merge',
        (j) => (j.model.merges[3] = 7),
        /model\.merges\[3\] is neither "a b" nor \["a", "b"\]/,
      ],
      ['added token id', (j) => (j.added_tokens[0].id = -1), /added_tokens\[0\] has id -1/],
    ];
    for (const [name, change, message] of cases) {
      const j = base();
      change(j);
      const path = join(dir, `${name.replace(/ /g, '-')}.json`);
      writeFileSync(path, JSON.stringify(j));
      const t0 = performance.now();
      assert.throws(
        () => loadHfTokenizer(path),
        (e: unknown) =>
          e instanceof LmdynError && message.test(e.message) && !e.message.includes('\n'),
        name,
      );
      assert.ok(performance.now() - t0 < 5000, `${name}: ${performance.now() - t0} ms`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('real pre-tokenizer patterns pass the backtracking checks; nested repeats are refused', () => {
  const real = [
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", // GPT-2
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", // Llama 3
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", // Qwen 2
    ' ?[^(\\s|[.,!?…。，、।۔،])]+', // Bloom
  ];
  for (const p of real) checkPattern(p, 'test');
  for (const p of [
    '(a+)+$',
    '(a*)*b',
    '(\\s*x?)+y',
    '((ab)+)+',
    '(?:a|aa)+$x'.replace('(?:a|aa)+$x', '(a|a+)*$'),
  ]) {
    assert.throws(() => checkPattern(p, 'test'), LmdynError, p);
  }
});

test('a llama2.c tokenizer with fewer tokens than the model is refused at load, not mid-generation', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-tokval-'));
  try {
    // the first 300 of tok512.bin's 512 tokens: max_token_length, then (score, len, bytes) each
    const bytes = readFileSync(model('stories260K', 'tok512.bin'));
    let pos = 4;
    for (let i = 0; i < 300; i++) pos += 8 + bytes.readInt32LE(pos + 4);
    writeFileSync(join(dir, 'tok300.bin'), bytes.subarray(0, pos));
    copyFileSync(model('stories260K', 'stories260K.bin'), join(dir, 'm.bin'));
    await assert.rejects(
      openModel(join(dir, 'm.bin'), { tokenizer: join(dir, 'tok300.bin') }),
      /the llama2\.c tokenizer has 300 tokens but the model 512; it must cover the model's vocabulary/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
