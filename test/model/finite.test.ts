/**
 * Non-finite weights and states are refused by every lens as generation refuses them (a NaN
 * weight once read as m_K = 0, "perfectly coupled"). The NaN is put at a known place of a copy of
 * stories260K.bin (llama2.c layout: 7-int header, token embedding [512, 64], attention norms
 * [5, 64], then wq [5, 64, 64]), so the error must name blocks.0.wq, index 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openModel } from '../../src/api.js';
import { LmdynError } from '../../src/errors.js';
import { openDmetSource } from '../../src/report/lenses/dmet.js';
import { readTrace, writeTrace } from '../../src/trace/io.js';
import { recordTrace } from '../../src/trace/record.js';
import { model } from '../helpers/paths.js';

const STORIES = model('stories260K', 'stories260K.bin');
const TOKENIZER = model('stories260K', 'tok512.bin');
const BIN = resolve('bin', 'lmdyn.js');

function poisoned(dir: string, value: number): string {
  const bytes = readFileSync(STORIES);
  const wq0 = 28 + 4 * (512 * 64 + 5 * 64);
  bytes.writeFloatLE(value, wq0);
  const path = join(dir, `poisoned-${value}.bin`);
  writeFileSync(path, bytes);
  copyFileSync(TOKENIZER, join(dir, 'tok512.bin'));
  return path;
}

test('a NaN or ∞ weight: the model is refused at load, naming the tensor; analyze coupling exits 1 in one line (no m_K = 0)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-finite-'));
  try {
    for (const value of [NaN, Infinity]) {
      const path = poisoned(dir, value);
      await assert.rejects(
        openModel(path, { tokenizer: join(dir, 'tok512.bin') }),
        (e: unknown) =>
          e instanceof LmdynError &&
          e.message.includes(`weight blocks.0.wq holds a non-finite value (${value} at index 0)`),
      );
    }
    const r = spawnSync(
      process.execPath,
      [
        BIN,
        'analyze',
        'coupling',
        '-m',
        poisoned(dir, NaN),
        '-z',
        join(dir, 'tok512.bin'),
        '-i',
        'Once upon a time',
        '-o',
        join(dir, 'c'),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^error: .*non-finite value \(NaN at index 0\).*\n$/);
    assert.equal(r.stdout, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a non-finite state inside a sample is refused by the trace readers (readTrace, the DMET source); NaN padding past a sample is not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-finite-'));
  try {
    const m = await openModel(STORIES);
    const trace = recordTrace(m, {
      prompt: 'Once',
      samples: 2,
      maxTokens: 6,
      sampling: { temperature: 1 },
      seed: 3,
    });
    writeTrace(join(dir, 'ok'), trace);
    readTrace(join(dir, 'ok'));
    const hook = 'blocks.2.hook_resid_post';
    const { width, data } = trace.states.get(hook)!;
    data[(1 * trace.positions + 2) * width + 5] = Infinity; // sample 1, position 2
    writeTrace(join(dir, 'bad'), trace);
    const refused = (e: unknown) =>
      e instanceof LmdynError &&
      e.message.includes(`${hook} holds a non-finite state (Infinity) at sample 1, position 2`);
    assert.throws(() => readTrace(join(dir, 'bad')), refused);
    const source = openDmetSource(join(dir, 'bad'));
    assert.throws(() => source.load(source.configurations[0], hook), refused);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
