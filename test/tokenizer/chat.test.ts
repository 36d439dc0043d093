import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openModel } from '../../src/api.js';
import { LmdynError } from '../../src/errors.js';
import { recordTrace } from '../../src/trace/record.js';
import { applyChatTemplate, loadChatTemplate, renderChat } from '../../src/tokenizer/chat.js';
import { model } from '../helpers/paths.js';

// References: strings written out by hand from the templates in test/fixtures/chat (ChatML and
// Llama 2's [INST] format), and the tokenizer's own encoding of those strings.

const CHATML = resolve('test', 'fixtures', 'chat', 'chatml');
const LLAMA2 = resolve('test', 'fixtures', 'chat', 'llama2');

test('ChatML fixture: a default system turn, each message in <|im_start|>…<|im_end|>, the assistant turn opened', () => {
  const t = loadChatTemplate(CHATML);
  assert.ok(t);
  assert.equal(t.eosToken, '<|im_end|>');
  const user = [{ role: 'user', content: 'Tell me a story.' }];
  assert.equal(
    renderChat(t, user),
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nTell me a story.<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.equal(
    renderChat(
      t,
      [{ role: 'system', content: 'Be brief.' }, ...user, { role: 'assistant', content: 'Once.' }],
      {
        addGenerationPrompt: false,
      },
    ),
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nTell me a story.<|im_end|>\n<|im_start|>assistant\nOnce.<|im_end|>\n',
  );
});

test('Llama 2 fixture: the "default" of a template list, bos_token from an AddedToken, the system folded in, raise_exception as a one-line error', () => {
  const t = loadChatTemplate(join(LLAMA2, 'tokenizer.json')); // a file's folder works too
  assert.ok(t);
  assert.equal(t.bosToken, '<s>');
  assert.equal(
    renderChat(t, [
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: ' Hi! ' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: 'A story?' },
    ]),
    // strip() applies to system + content, so the user's leading space stays after the block
    '<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\n Hi! [/INST] Hello. </s><s>[INST] A story? [/INST]',
  );
  assert.throws(
    () => renderChat(t, [{ role: 'assistant', content: 'x' }]),
    (e: unknown) =>
      e instanceof LmdynError &&
      /refused the messages: Conversation roles must alternate/.test(e.message) &&
      !e.message.includes('\n'),
  );
  assert.throws(() => renderChat(t, []), LmdynError);
  assert.equal(loadChatTemplate(model('stories260K')), null);
});

function gpt2WithTemplate(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-chat-'));
  for (const f of readdirSync(model('tiny-gpt2'))) {
    if (f !== 'tokenizer_config.json') copyFileSync(model('tiny-gpt2', f), join(dir, f));
  }
  copyFileSync(join(CHATML, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  return dir;
}

test('applyChatTemplate on a model: the ids are the tokenizer’s encoding of the hand-rendered text, without an added BOS; recordTrace takes them', async () => {
  const dir = gpt2WithTemplate();
  try {
    const m = await openModel(dir);
    const text =
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n';
    const out = applyChatTemplate(m, [{ role: 'user', content: 'Hi' }]);
    assert.equal(out.text, text);
    assert.deepEqual(out.ids, m.tokenizer.encode(text, { bos: false }));
    const trace = recordTrace(m, {
      prompt: out.text,
      promptIds: out.ids,
      maxTokens: 2,
      hooks: ['logits'],
    });
    assert.deepEqual(trace.samples[0].promptIds, out.ids);
    const stories = await openModel(model('stories260K', 'stories260K.bin'));
    assert.throws(
      () => applyChatTemplate(stories, [{ role: 'user', content: 'Hi' }]),
      /has no chat template/,
    );
    // a template given as text works for any model
    const own = applyChatTemplate(stories, [{ role: 'user', content: 'Hi' }], {
      template: '{{ bos_token }}Q: {{ messages[0].content }}\nA:',
    });
    assert.equal(own.text, '<s>Q: Hi\nA:');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lmdyn generate --chat and trace --chat use the template; --system adds a system turn', () => {
  const dir = gpt2WithTemplate();
  try {
    const bin = resolve('bin', 'lmdyn.js');
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
    const g = run(
      'generate',
      '-m',
      dir,
      '--chat',
      '--system',
      'Be brief.',
      '-i',
      'Hi',
      '-n',
      '3',
      '--temp',
      '0',
      '--json',
    );
    assert.equal(g.status, 0, g.stderr);
    const out = JSON.parse(g.stdout) as { prompt: string; prompt_ids: number[] };
    assert.equal(
      out.prompt,
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    const t = run(
      'trace',
      '-m',
      dir,
      '--chat',
      '-i',
      'Hi',
      '-n',
      '2',
      '-o',
      join(dir, 'trace'),
      '--json',
    );
    assert.equal(t.status, 0, t.stderr);
    assert.ok(
      (JSON.parse(t.stdout) as { samples: { text: string }[] }).samples[0].text.startsWith(
        '<|im_start|>system\nYou are a helpful assistant.',
      ),
    );
    const bad = run('generate', '-m', dir, '--system', 'x');
    assert.match(bad.stderr.trim(), /^error: --system and --chat-template need --chat$/);
    writeFileSync(join(dir, 'broken.jinja'), '{% if %}');
    const broken = run(
      'generate',
      '-m',
      dir,
      '--chat',
      '--chat-template',
      join(dir, 'broken.jinja'),
      '-i',
      'Hi',
    );
    assert.match(broken.stderr.trim(), /^error: .*broken\.jinja: the chat template does not parse/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
