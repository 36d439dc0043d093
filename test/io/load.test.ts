import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdynError } from '../../src/errors.js';
import { loadModel } from '../../src/io/load.js';
import { model } from '../helpers/paths.js';

// References: the format each file really is (text, ELF, random bytes, llama2.c with its
// tokenizer), and MANIFEST.md §1's config for stories260K.

const oneLine = (code: string, text: RegExp) => (e: unknown) =>
  e instanceof LmdynError && e.code === code && text.test(e.message) && !e.message.includes('\n');

test('format detection errors name the file and the formats expected: a text file, a binary that is not a checkpoint, an empty folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-load-'));
  try {
    const text = join(dir, 'passwd');
    writeFileSync(text, 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin\n');
    await assert.rejects(
      loadModel(text),
      oneLine(
        'bad_format',
        /passwd is a text file, not a llama2\.c checkpoint \(expected a llama2\.c \.bin checkpoint, a \.gguf file, a Hugging Face folder/,
      ),
    );
    // 7 int32 header values whose dim (1000) is not a multiple of n_heads (7)
    const junk = join(dir, 'junk.bin');
    const header = Buffer.alloc(64);
    [1000, 3, 2, 7, 7, 32, 16].forEach((v, i) => header.writeInt32LE(v, 4 * i));
    header[30] = 0xff; // binary, not text
    writeFileSync(join(dir, 'junk.bin'), header);
    await assert.rejects(
      loadModel(junk),
      oneLine(
        'bad_format',
        /junk\.bin is not a llama2\.c checkpoint \(dim 1000 is not a multiple of n_heads 7; expected a llama2\.c/,
      ),
    );
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'README.md'), 'no model here\n');
    await assert.rejects(
      loadModel(empty),
      oneLine('not_found', /folder without config\.json or one model file \(expected/),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a folder holding one llama2.c checkpoint and its tokenizer loads as that checkpoint (MANIFEST.md §1 config)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-load-'));
  try {
    copyFileSync(model('stories260K', 'stories260K.bin'), join(dir, 'model.bin'));
    copyFileSync(model('stories260K', 'tok512.bin'), join(dir, 'tokenizer.bin'));
    const m = await loadModel(dir);
    assert.equal(m.source.format, 'llama2c');
    assert.equal(m.source.path, join(dir, 'model.bin'));
    assert.equal(m.config.dim, 64);
    assert.equal(m.config.nLayers, 5);
    assert.equal(m.tokenizer?.vocabSize, 512);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
