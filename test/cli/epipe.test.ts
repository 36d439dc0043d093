/**
 * `lmdyn generate … | head -1` and `lmdyn info | head -1`: the reader closes the pipe after one
 * line; lmdyn stops quietly with exit 0 (as Unix tools do), no EPIPE stack trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { model } from '../helpers/paths.js';

const STORIES = model('stories260K', 'stories260K.bin');
const BIN = resolve('bin', 'lmdyn.js');

for (const args of [
  ['generate', '-m', STORIES, '-i', 'Once', '-n', '400'],
  ['info', '-m', STORIES],
]) {
  test(`lmdyn ${args[0]} | head -1 ends with exit 0 and no stack trace`, () => {
    // the shell's own pipe to head, as a user types it; PIPESTATUS gives lmdyn's exit code
    const cmd = `"${process.execPath}" "${BIN}" ${args.map((a) => `'${a}'`).join(' ')} | head -1 >/dev/null; echo "\${PIPESTATUS[0]}"`;
    const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8' });
    assert.equal(r.stdout.trim(), '0', r.stderr);
    assert.doesNotMatch(r.stderr, /EPIPE|Error|at /);
  });
}
