/**
 * Resumable distillation: a run stopped after some batches keeps them in `out.partial`, and the
 * next run with the same settings continues from there. The reference is the corpus an
 * uninterrupted run writes (same teacher, seeds, temperature): the resumed corpus must be that
 * file byte for byte, also when the kill cut the last line of the partial file, and a partial
 * file written with other settings must not be reused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { distillBatch, distillCorpus } from '../../src/train/data.js';
import { model } from '../helpers/paths.js';

const TEACHER = model('stories260K', 'stories260K.bin');
const TOK = model('stories260K', 'tok512.bin');

class Killed extends Error {}

test('distillation resumes after a stop: the corpus equals the uninterrupted one, byte for byte', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-distill-resume-'));
  try {
    const base = { teacher: TEACHER, samples: 10, seed: 5, temperature: 1, maxTokens: 24 };
    assert.equal(distillBatch(10), 4); // batches of 4, 4, 2
    const whole = join(dir, 'whole.jsonl');
    const ref = await distillCorpus({ ...base, out: whole });
    assert.equal(ref.resumedSamples, 0);

    // stopped after the first batch (as a kill would): 4 samples on disk, no corpus yet
    const out = join(dir, 'resumed.jsonl');
    await assert.rejects(
      distillCorpus({
        ...base,
        out,
        onProgress: (done) => {
          if (done >= 4) throw new Killed('killed');
        },
      }),
      Killed,
    );
    assert.ok(!existsSync(out));
    assert.equal(readFileSync(`${out}.partial`, 'utf8').split('\n').length - 1, 4);
    // the kill cut a line of the next batch half-way
    appendFileSync(`${out}.partial`, '{"text":"Once upon a ti');
    const seen: number[] = [];
    const again = await distillCorpus({ ...base, out, onProgress: (done) => seen.push(done) });
    assert.equal(again.resumedSamples, 4);
    assert.deepEqual(seen, [4, 8, 10]);
    assert.equal(readFileSync(out, 'utf8'), readFileSync(whole, 'utf8'));
    assert.deepEqual(again.meta, ref.meta);
    assert.ok(!existsSync(`${out}.partial`) && !existsSync(`${out}.partial.meta.json`));

    // a partial file of other settings (another seed) is not reused
    const other = join(dir, 'other.jsonl');
    await assert.rejects(
      distillCorpus({
        ...base,
        seed: 6,
        out: other,
        onProgress: () => {
          throw new Killed('killed');
        },
      }),
      Killed,
    );
    const fresh = await distillCorpus({ ...base, out: other });
    assert.equal(fresh.resumedSamples, 0);
    assert.equal(readFileSync(other, 'utf8'), readFileSync(whole, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'lmdyn train --distill killed with SIGKILL keeps its samples; the rerun finishes the same corpus',
  { timeout: 240_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lmdyn-distill-kill-'));
    const args = (out: string, extra: string[] = []) => [
      resolve('bin', 'lmdyn.js'),
      'train',
      '--distill',
      TEACHER,
      '--samples',
      '48',
      '-z',
      TOK,
      '--config',
      'dim=16,layers=1,heads=2,kv_heads=1',
      '--seq',
      '16',
      '--steps',
      '1',
      '--batch',
      '2',
      '--threads',
      '1',
      '--seed',
      '3',
      '--out',
      out,
      ...extra,
    ];
    const run = (a: string[], onLine?: (line: string, kill: () => void) => void) =>
      new Promise<{ code: number | null; signal: string | null; stderr: string }>((done) => {
        const child = spawn(process.execPath, a, { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (b: Buffer) => {
          stderr += b.toString();
          for (const line of b.toString().split('\n')) onLine?.(line, () => child.kill('SIGKILL'));
        });
        child.on('close', (code, signal) => done({ code, signal, stderr }));
      });
    try {
      const whole = await run(args(join(dir, 'whole')));
      assert.equal(whole.code, 0, whole.stderr);
      // --progress prints a line per batch (stderr is a pipe): kill after the second batch
      let killed = false;
      const first = await run(args(join(dir, 'cut'), ['--progress']), (line, kill) => {
        const m = /^distill: (\d+)\/48 samples/.exec(line);
        if (m && Number(m[1]) >= 6 && !killed) {
          killed = true;
          kill();
        }
      });
      assert.equal(first.signal, 'SIGKILL', first.stderr);
      assert.match(first.stderr, /^distill: \d+\/48 samples .*ETA (?:\d+h\d\dm|(?:\d+m)?\d+s)$/m); // report/format duration()
      const partial = join(dir, 'cut', 'distill.jsonl.partial');
      assert.ok(existsSync(partial), 'the samples drawn before the kill are on disk');
      const again = await run(args(join(dir, 'cut')));
      assert.equal(again.code, 0, again.stderr);
      assert.match(
        again.stderr,
        /distill: wrote .* \(48 samples, \d+ tokens; \d+ kept from an interrupted run\)/,
      );
      assert.equal(
        readFileSync(join(dir, 'cut', 'distill.jsonl'), 'utf8'),
        readFileSync(join(dir, 'whole', 'distill.jsonl'), 'utf8'),
      );
      // without --progress and with stderr a pipe: no distillation progress lines
      assert.doesNotMatch(whole.stderr, /^distill: \d+\/48 samples .*ETA/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
