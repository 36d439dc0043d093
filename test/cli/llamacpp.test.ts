import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { applyAliases } from '../../src/cli/main.js';
import { model, STORIES_GREEDY_64 } from '../helpers/paths.js';

// References: MANIFEST.md §1's greedy ids for stories260K, the files each command writes (the
// --json output must be what is on disk), and llama.cpp's option names (common/arg.cpp).

const BIN = resolve('bin', 'lmdyn.js');
const STORIES = model('stories260K', 'stories260K.bin');

function lmdyn(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LMDYN_MODEL: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('llama.cpp aliases: --temp, --n-predict, --repeat-penalty (both spellings), -c/--ctx-size; greedy ids stay MANIFEST.md §1', () => {
  assert.deepEqual(
    applyAliases([
      'generate',
      '--temp',
      '0',
      '--n-predict=8',
      '--repeat-penalty',
      '1.1',
      '--',
      '--temp',
    ]),
    [
      'generate',
      '--temperature',
      '0',
      '--max-tokens=8',
      '--repetition-penalty',
      '1.1',
      '--',
      '--temp',
    ],
  );
  const r = lmdyn(
    'generate',
    '-m',
    STORIES,
    '--temp',
    '0',
    '--n-predict',
    '16',
    '--threads',
    '1',
    '--top-p',
    '1',
    '--json',
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).ids, STORIES_GREEDY_64.slice(0, 16));
  // --ctx-size 9 with BOS only: 8 tokens, the first 8 greedy ids
  const c = lmdyn('generate', '-m', STORIES, '--temp=0', '--ctx-size', '9', '--json');
  assert.equal(c.code, 0, c.stderr);
  assert.deepEqual(JSON.parse(c.stdout).ids, STORIES_GREEDY_64.slice(0, 8));
  const over = lmdyn('generate', '-m', STORIES, '-c', '513');
  assert.notEqual(over.code, 0);
  assert.match(over.stderr.trim(), /^error: --ctx-size 513 is beyond the model's context \(512\)$/);
  assert.match(lmdyn('generate', '--help').stdout, /--temp\b/);
});

test('--json on trace, analyze and report prints one object that matches what the command wrote', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-json-'));
  try {
    const t = lmdyn(
      'trace',
      '-m',
      STORIES,
      '-i',
      'Once',
      '-n',
      '4',
      '--samples',
      '2',
      '--temp',
      '0',
      '-o',
      join(dir, 't'),
      '--json',
    );
    assert.equal(t.code, 0, t.stderr);
    const trace = JSON.parse(t.stdout);
    assert.deepEqual(trace.samples[0].ids, STORIES_GREEDY_64.slice(1, 5)); // "Once" is greedy id 403
    const onDisk = JSON.parse(readFileSync(join(dir, 't', 'trace.json'), 'utf8'));
    assert.equal(onDisk.samples.length, trace.samples.length);
    const c = lmdyn(
      'analyze',
      'coupling',
      '-m',
      STORIES,
      '-i',
      'Once upon a time',
      '-o',
      join(dir, 'c'),
      '--json',
    );
    assert.equal(c.code, 0, c.stderr);
    const coupling = JSON.parse(c.stdout);
    assert.deepEqual(
      coupling.report,
      JSON.parse(readFileSync(join(dir, 'c', 'coupling.json'), 'utf8')),
    );
    assert.match(coupling.report.spec, /arXiv:2407\.07810/);
    const rep = lmdyn('report', dir, '-q', '--json');
    assert.equal(rep.code, 0, rep.stderr);
    const r = JSON.parse(rep.stdout);
    assert.equal(r.path, join(dir, 'report.html'));
    assert.ok(r.sections >= 2 && r.plots > 0, rep.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('-m /etc/passwd says it is not a llama2.c checkpoint and names the formats expected', () => {
  const r = lmdyn('info', '-m', '/etc/passwd');
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr.trim(),
    /^error: \/etc\/passwd is a text file, not a llama2\.c checkpoint \(expected a llama2\.c \.bin checkpoint, a \.gguf file, a Hugging Face folder with config\.json, or a hub id/,
  );
  const piped = spawnSync(
    'sh',
    ['-c', `"${process.execPath}" "${BIN}" info -m "${STORIES}" | head -1`],
    { encoding: 'utf8' },
  );
  assert.equal(piped.stderr, ''); // no EPIPE stack when the reader stops early
});
