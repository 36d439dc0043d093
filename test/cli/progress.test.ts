/**
 * Progress on stderr: the ETA by hand (a quarter done in 2 s leaves 6 s), silence when stderr is
 * not a terminal and --progress was not given, and `lmdyn trace --progress` on a pipe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { progress } from '../../src/cli/progress.js';
import { duration } from '../../src/report/format.js';
import { model } from '../helpers/paths.js';

function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const stream = {
    isTTY,
    write: (s: string) => {
      out += s;
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { stream, text: () => out };
}

test('progress: rate and ETA by hand; lines every 2 s on a pipe with --progress; nothing without it', () => {
  let t = 0;
  const pipe = fakeStream(false);
  const p = progress({
    label: 'trace',
    unit: 'steps',
    force: true,
    stream: pipe.stream,
    now: () => t,
  });
  t = 2000;
  p.update(25, 100); // a quarter in 2 s: 12.5 steps/s (printed whole above 10), 6 s to go
  t = 3000;
  p.update(30, 100); // within 2 s of the last line: not printed
  t = 4500;
  p.update(50, 100);
  t = 9000;
  p.update(100, 100); // the end: said by finish
  p.finish();
  assert.equal(
    pipe.text(),
    'trace: 25/100 steps  13 steps/s  ETA 6s\n' +
      'trace: 50/100 steps  11 steps/s  ETA 5s\n' +
      'trace: 100/100 steps in 9s\n',
  );
  const quiet = fakeStream(false);
  const q = progress({ label: 'trace', unit: 'steps', stream: quiet.stream });
  q.update(1, 2);
  q.finish();
  assert.equal(quiet.text(), '');
  // a terminal: one line redrawn in place with a bar
  const tty = fakeStream(true);
  t = 0;
  const b = progress({ label: 'distill', unit: 'samples', stream: tty.stream, now: () => t });
  t = 1000;
  b.update(12, 48);
  assert.match(
    tty.text(),
    /^\r\[#{6}-{18}\] distill: 12\/48 samples {2}12 samples\/s {2}ETA 3s {3}$/,
  );
  assert.equal(duration(185), '3m05s');
  assert.equal(duration(3720), '1h02m');
});

test('lmdyn trace --progress prints steps with ETA on stderr; without it stderr stays quiet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-trace-progress-'));
  try {
    const run = (extra: string[]) =>
      spawnSync(
        process.execPath,
        [
          resolve('bin', 'lmdyn.js'),
          'trace',
          '-m',
          model('stories260K', 'stories260K.bin'),
          '-i',
          'Once upon a time',
          '-n',
          '40',
          '--samples',
          '2',
          '-o',
          join(dir, 'out'),
          '--force',
          ...extra,
        ],
        { encoding: 'utf8' },
      );
    const r = run(['--progress']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^trace: 1\/40 steps .* ETA \d+s$/m);
    assert.match(r.stderr, /^trace: 40\/40 steps in \d+s$/m);
    const quiet = run([]);
    assert.equal(quiet.status, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stderr, /steps/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
