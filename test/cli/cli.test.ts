import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { model, STORIES_GREEDY_64 } from '../helpers/paths.js';

const BIN = resolve('bin', 'lmdyn.js');
const STORIES = model('stories260K', 'stories260K.bin');

function lmdyn(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, LMDYN_MODEL: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: non-zero exit, exactly one line on stderr starting with "error:", no stack trace. */
function assertOneLineError(r: ReturnType<typeof lmdyn>, pattern: RegExp) {
  assert.notEqual(r.code, 0, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

test('generate --json: greedy ids from BOS are MANIFEST.md §1 and the JSON has the documented keys', () => {
  const r = lmdyn('generate', '--model', STORIES, '--temperature', '0', '--max-tokens', '64', '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  for (const k of ['model', 'prompt', 'prompt_ids', 'ids', 'text', 'tokens_per_second']) assert.ok(k in out, k);
  assert.deepEqual(out.prompt_ids, [1]);
  assert.deepEqual(out.ids, STORIES_GREEDY_64);
  assert.ok(out.text.startsWith('Once upon a time, there was a little girl named Lily.'));
});

test('generate streams text and prints tok/s; a seeded sampled run is reproducible', () => {
  const args = ['generate', '--model', STORIES, '--prompt', 'Once upon a time', '--max-tokens', '40', '--temperature', '0.9', '--top-p', '0.95', '--seed', '123'];
  const a = lmdyn(...args);
  const b = lmdyn(...args);
  assert.equal(a.code, 0, a.stderr);
  assert.ok(a.stdout.startsWith('Once upon a time'));
  assert.equal(a.stdout, b.stdout);
  assert.match(a.stderr, /achieved tok\/s: \d+/);
  const c = lmdyn(...args.slice(0, -1), '124');
  assert.notEqual(a.stdout, c.stdout);
});

test('info prints the shapes and parameter count (MANIFEST.md §1: 260,032 parameters)', () => {
  const r = lmdyn('info', '--model', STORIES, '--json');
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.parameters, 260032);
  assert.equal(info.dim, 64);
  assert.equal(info.layers, 5);
  assert.equal(info.kv_heads, 4);
  assert.equal(info.vocab_size, 512);
});

test('bad input gives one line and a non-zero exit, as a new user would meet it', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'lmdyn-cli-'));
  assertOneLineError(lmdyn('generate', '--model', join(tmp, 'nope.bin')), /no such file/);
  assertOneLineError(lmdyn('info', '--model', tmp), /config\.json/);
  // Truncated checkpoint (tokenizer beside it so only the weights are at fault).
  const trunc = join(tmp, 'trunc');
  mkdirSync(trunc);
  writeFileSync(join(trunc, 'model.bin'), readFileSync(STORIES).subarray(0, 5000));
  copyFileSync(model('stories260K', 'tok512.bin'), join(trunc, 'tok512.bin'));
  assertOneLineError(lmdyn('info', '--model', join(trunc, 'model.bin')), /trunc|short|size/i);
  // Wrong magic: a GGUF header with a bad version / garbage.
  const bad = join(tmp, 'bad.gguf');
  writeFileSync(bad, Buffer.concat([Buffer.from('GGUF'), Buffer.from([99, 0, 0, 0]), Buffer.alloc(64)]));
  assertOneLineError(lmdyn('info', '--model', bad), /version|GGUF/i);
  // Unknown architecture.
  const arch = join(tmp, 'arch');
  mkdirSync(arch);
  writeFileSync(join(arch, 'config.json'), JSON.stringify({ architectures: ['MambaForCausalLM'] }));
  assertOneLineError(lmdyn('info', '--model', arch), /architecture/i);
  // Prompt longer than the context (stories260K: 512 positions).
  assertOneLineError(lmdyn('generate', '--model', STORIES, '--prompt', 'Lily '.repeat(600)), /context/);
  // Bad flag values.
  assertOneLineError(lmdyn('generate', '--model', STORIES, '--temperature', '-1'), /--temperature/);
  assertOneLineError(lmdyn('generate', '--model', STORIES, '--top-p', 'abc'), /--top-p/);
  assertOneLineError(lmdyn('generate', '--model', STORIES, '--top-p', '0'), /--top-p must be a number in \(0, 1\]/);
  assertOneLineError(lmdyn('generate', '--model', STORIES, '--max-tokens', '2.5'), /--max-tokens/);
  assertOneLineError(lmdyn('generate', '--model', STORIES, '--top-k', '-3'), /--top-k/);
  const unknown = lmdyn('generate', '--model', STORIES, '--bogus');
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown option/);
});
