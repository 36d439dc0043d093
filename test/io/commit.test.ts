/**
 * The commit protocol (io/commit.ts) on small folders: manifests checked against Node's own
 * sha256 of each file, whole-folder replacement, a unit beside others, the reader's refusals and
 * the clean-up of a killed run's temporaries. The kill-point and full-disk tests of the CLI are
 * in kill-points.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LmdynError } from '../../src/errors.js';
import {
  cleanStale,
  commitBeside,
  commitFolder,
  isCommitted,
  requireCommitted,
} from '../../src/io/commit.js';
import { readTrace } from '../../src/trace/store.js';
import { model } from '../helpers/paths.js';

const STORIES = model('stories260K', 'stories260K.bin');
const BIN = resolve('bin', 'lmdyn.js');

const tmp = () => mkdtempSync(join(tmpdir(), 'lmdyn-commit-'));
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

test('commitFolder: the manifest lists every file with its size and sha256, renamed in last; --force replaces the folder whole', async () => {
  const root = tmp();
  const dir = join(root, 'out');
  await commitFolder(dir, 'demo', (t) => {
    writeFileSync(join(t, 'a.txt'), 'alpha');
    mkdirSync(join(t, 'sub'));
    writeFileSync(join(t, 'sub', 'b.bin'), Buffer.alloc(3000, 7));
  });
  const m = JSON.parse(readFileSync(join(dir, 'demo.manifest.json'), 'utf8'));
  assert.equal(m.complete, true);
  assert.deepEqual(
    m.files.map((f: { path: string; bytes: number; sha256: string }) => [
      f.path,
      f.bytes,
      f.sha256,
    ]),
    [
      ['a.txt', 5, sha(join(dir, 'a.txt'))],
      ['sub/b.bin', 3000, sha(join(dir, 'sub', 'b.bin'))],
    ],
  );
  assert.deepEqual(readdirSync(root), ['out']); // no temporary left
  await assert.rejects(
    commitFolder(dir, 'demo', () => {}),
    (e: unknown) => e instanceof LmdynError && /not empty; use --force/.test(e.message),
  );
  writeFileSync(join(dir, 'stale.txt'), 'from before');
  await commitFolder(dir, 'demo', (t) => writeFileSync(join(t, 'a.txt'), 'beta'), { force: true });
  assert.deepEqual(readdirSync(dir).sort(), ['a.txt', 'demo.manifest.json']);
  assert.deepEqual(readdirSync(root), ['out']);
  // a failing writer leaves the old folder as it was and no temporary
  await assert.rejects(
    commitFolder(
      dir,
      'demo',
      () => {
        throw new LmdynError('bad_argument', 'boom');
      },
      { force: true },
    ),
    /boom/,
  );
  assert.equal(readFileSync(join(dir, 'a.txt'), 'utf8'), 'beta');
  assert.deepEqual(readdirSync(root), ['out']);
  rmSync(root, { recursive: true, force: true });
});

test('commitBeside: a unit replaces its earlier self whole and leaves the other units of the folder alone', async () => {
  const dir = tmp();
  await commitFolder(join(dir, 't'), 'trace', (t) => writeFileSync(join(t, 'trace.json'), '{}'));
  const t = join(dir, 't');
  await commitBeside(t, 'lens', (s) => {
    writeFileSync(join(s, 'lens.json'), '{"v":1}');
    mkdirSync(join(s, 'lens-plots'));
    writeFileSync(join(s, 'lens-plots', 'old.svg'), '<svg/>');
  });
  requireCommitted(t, 'lens');
  const written = await commitBeside(t, 'lens', (s) =>
    writeFileSync(join(s, 'lens.json'), '{"v":2}'),
  );
  assert.deepEqual(written, [join(t, 'lens.json')]);
  assert.ok(!existsSync(join(t, 'lens-plots')), 'the earlier run’s figure folder is removed');
  assert.deepEqual(readdirSync(t).sort(), [
    'lens.json',
    'lens.manifest.json',
    'trace.json',
    'trace.manifest.json',
  ]);
  requireCommitted(t, 'trace');
  requireCommitted(t, 'lens');
  rmSync(dir, { recursive: true, force: true });
});

test('readers refuse, in one line naming the folder: no manifest (older lmdyn or killed), a size or a sha256 that does not match', async () => {
  const dir = tmp();
  const u = join(dir, 'u');
  await commitFolder(u, 'demo', (t) => writeFileSync(join(t, 'x.json'), '{"a":1}'));
  assert.ok(isCommitted(u, 'demo', 'full'));
  writeFileSync(join(u, 'x.json'), '{"a":2}'); // same size, other bytes
  assert.ok(isCommitted(u, 'demo', 'size'));
  assert.throws(
    () => requireCommitted(u, 'demo', 'full'),
    (e: unknown) =>
      e instanceof LmdynError &&
      e.message.startsWith(u) &&
      /sha256/.test(e.message) &&
      !e.message.includes('\n'),
  );
  writeFileSync(join(u, 'x.json'), '{"a":22}');
  assert.throws(() => requireCommitted(u, 'demo', 'size'), /8 bytes, its manifest says 7/);
  // a trace folder from before manifests: refused with how to make it again
  const old = join(dir, 'old-trace');
  mkdirSync(old);
  for (const f of ['trace.json', 'trace.safetensors', 'steps.parquet'])
    writeFileSync(join(old, f), '');
  assert.throws(
    () => readTrace(old),
    (e: unknown) =>
      e instanceof LmdynError &&
      e.message.includes(old) &&
      /no trace\.manifest\.json: an unfinished or interrupted write, or a folder from an older lmdyn\); record it again with lmdyn trace/.test(
        e.message,
      ),
  );
  rmSync(dir, { recursive: true, force: true });
});

test('cleanStale removes the temporaries of dead processes only', async () => {
  const dir = tmp();
  // a process that has ended: its pid is free
  const child = spawn(process.execPath, ['-e', '0']);
  const dead = await new Promise<number>((done) => child.on('exit', () => done(child.pid!)));
  const alive = process.ppid;
  for (const name of [
    `.out.tmp-${dead}-0a1b2c3d`,
    `.out.old-${dead}-0a1b2c3d`,
    `.out.tmp-${alive}-0a1b2c3d`,
  ])
    mkdirSync(join(dir, name));
  writeFileSync(join(dir, `dmet.json.tmp-${dead}-1733600000000`), 'half');
  writeFileSync(join(dir, `trace.safetensors.${dead}.0a1b2c3d.tmp`), 'half');
  writeFileSync(join(dir, 'keep.json'), '{}');
  cleanStale(dir);
  assert.deepEqual(readdirSync(dir).sort(), [`.out.tmp-${alive}-0a1b2c3d`, 'keep.json']);
  rmSync(dir, { recursive: true, force: true });
});

test('sweep --force with a smaller grid replaces the folder whole (no configuration or lens output of the old sweep stays); a missing model writes nothing', () => {
  const dir = tmp();
  const out = join(dir, 's');
  const sweep = (...extra: string[]) =>
    spawnSync(
      process.execPath,
      [
        BIN,
        'sweep',
        '-m',
        STORIES,
        '-i',
        'Once',
        '--samples',
        '1',
        '-n',
        '4',
        '--workers',
        '1',
        '-o',
        out,
        ...extra,
      ],
      { encoding: 'utf8' },
    );
  assert.equal(sweep('--temperature', '0.5,1').status, 0);
  writeFileSync(join(out, 'dmet.json'), '{}'); // an earlier lens output in the folder
  assert.equal(sweep('--temperature', '0.7', '--force').status, 0);
  assert.deepEqual(readdirSync(out).sort(), [
    '000_t0.7_p1_k0_r1',
    'sweep.json',
    'sweep.manifest.json',
  ]);
  const missing = join(dir, 'm');
  const r = spawnSync(
    process.execPath,
    [BIN, 'sweep', '-m', join(dir, 'nope.bin'), '-o', missing],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^error: model .*nope\.bin does not exist\n$/);
  assert.ok(!existsSync(missing), 'nothing written');
  rmSync(dir, { recursive: true, force: true });
});
