/**
 * Smaller input cases of issue 26, each one line and a non-zero exit, never a hang: a FIFO as the
 * model, an empty model path (not the default model), a JSON file as the model (says which
 * formats are read), and write errors that name the file (read-only, full disk).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ioError } from '../../src/io/atomic.js';
import { LmdynError } from '../../src/errors.js';
import { model } from '../helpers/paths.js';

const BIN = resolve('bin', 'lmdyn.js');

test('a FIFO, an empty path or a JSON file as -m: one line, no hang, no default model', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-inputs-'));
  try {
    const fifo = join(dir, 'fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    writeFileSync(join(dir, 'x.json'), '{"dim": 64}\n');
    const cases: [string[], RegExp][] = [
      [['generate', '-m', fifo, '-i', 'hi'], /is not a regular file or folder/],
      [['generate', '-m', '', '-i', 'hi'], /^error: the model path is empty\n$/],
      [['sweep', '-m', '', '-o', join(dir, 's')], /^error: the model path is empty\n$/],
      [
        ['info', '-m', join(dir, 'x.json')],
        /x\.json is a JSON file, not model weights; give a llama2\.c \.bin, a \.gguf file, or a Hugging Face folder/,
      ],
      [
        ['info', '-m', model('tiny-gpt2', 'config.json')],
        /config\.json is a JSON file, not model weights/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.signal, null, `${args.join(' ')}: hung`);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /^error: [^\n]+\n$/);
      assert.match(r.stderr, message);
    }
    assert.ok(!existsSync(join(dir, 's')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('write errors name the file: read-only file system, permission, full disk', () => {
  const errno = (code: string) =>
    Object.assign(new Error(`${code}: x`), { code, syscall: 'mkdir' });
  const cases: [string, RegExp][] = [
    ['EROFS', /^cannot write \/runs\/t: the file system is read-only \(EROFS\)$/],
    ['EACCES', /^cannot write \/runs\/t: permission denied \(EACCES\)$/],
    ['ENOSPC', /^cannot write \/runs\/t: no space left on the device \(ENOSPC\)$/],
  ];
  for (const [code, message] of cases) {
    const e = ioError(errno(code), '/runs/t');
    assert.ok(e instanceof LmdynError);
    assert.match(e.message, message);
  }
});
