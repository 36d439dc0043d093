/**
 * Token labels on the dashboard: a token that holds part of a UTF-8 character is shown as its
 * bytes, never as U+FFFD (a box). References: the UTF-8 bytes of the characters themselves
 * (Buffer.from), GPT-2's byte-level vocabulary (tiny-gpt2's tokenizer.json: `é` is the entry
 * `Ã©`, `—` is one token), and llama2.c's byte pieces <0x00>..<0xFF> at ids 3..258.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openModel } from '../../src/api.js';
import { bytesLabel, label, tokenBytes } from '../../src/server/incremental-text.js';
import { model } from '../helpers/paths.js';

test('bytesLabel: whole characters as text, the bytes of a cut one as <0xXX> (from Buffer’s UTF-8)', () => {
  const dash = Buffer.from('—', 'utf8'); // E2 80 94
  assert.equal(bytesLabel(dash), '—');
  assert.equal(bytesLabel(dash.subarray(0, 2)), '<0xE2><0x80>');
  assert.equal(bytesLabel(dash.subarray(1)), '<0x80><0x94>');
  assert.equal(bytesLabel(Buffer.concat([Buffer.from(' a'), dash.subarray(0, 1)])), ' a<0xE2>');
  assert.equal(bytesLabel(Buffer.from('é😀', 'utf8')), 'é😀');
  assert.equal(bytesLabel(Uint8Array.of(0xc0, 0x80)), '<0xC0><0x80>'); // overlong: never text
});

test('tokenBytes reads byte pieces and GPT-2 byte-level entries (bytes_to_unicode inverted)', () => {
  assert.deepEqual([...tokenBytes('<0xE2>')!], [0xe2]);
  assert.deepEqual([...tokenBytes('Ã©')!], [...Buffer.from('é', 'utf8')]);
  assert.deepEqual([...tokenBytes('Ġthe')!], [...Buffer.from(' the', 'utf8')]);
  assert.deepEqual([...tokenBytes('âĢĶ')!], [...Buffer.from('—', 'utf8')]);
  assert.equal(tokenBytes('▁the'), null); // a SentencePiece word: not bytes
});

test('label: no token of tiny-gpt2 or stories260K shows U+FFFD; partial tokens show their bytes', async () => {
  const gpt2 = (await openModel(model('tiny-gpt2'))).tokenizer;
  const [dashId] = gpt2.encode('—', { bos: false });
  assert.equal(label(gpt2, dashId), '—');
  let partial = 0;
  for (let id = 0; id < gpt2.vocabSize; id++) {
    const text = label(gpt2, id);
    assert.ok(!text.includes('\uFFFD'), `id ${id} ${JSON.stringify(gpt2.tokenText(id))}`);
    if (gpt2.decode([id]).includes('\uFFFD')) {
      partial++;
      // the label is the entry's bytes: reading it back gives them again
      const bytes = tokenBytes(gpt2.tokenText(id))!;
      assert.equal(text, bytesLabel(bytes));
      assert.match(text, /<0x[0-9A-F]{2}>/);
    }
  }
  assert.ok(partial > 100, `${partial} partial tokens in GPT-2's vocabulary`);
  const stories = (await openModel(model('stories260K', 'stories260K.bin'))).tokenizer;
  assert.equal(label(stories, 3 + 0xe2), '<0xE2>');
  assert.equal(label(stories, 3 + 0x41), 'A');
});
