import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseQueueUrl } from '../../src/queue/connection.js';
import { model } from '../helpers/paths.js';
import { freePort, REDIS_MISSING, startRedis, stopChild } from '../helpers/redis.js';

// Reference: the same command run locally (`lmdyn sweep` / `lmdyn analyze coupling` without
// --queue) into another folder; the queued run must write the same files with the same bytes.

const STORIES = model('stories260K', 'stories260K.bin');
const SWEEP = [
  'sweep',
  '-m',
  STORIES,
  '-i',
  'Once upon a time',
  '--temperature',
  '0.7,1.3',
  '--top-p',
  '0.9,1',
  '--samples',
  '3',
  '-n',
  '20',
  '--seed',
  '7',
];

interface Run {
  child: ChildProcess;
  stderr: () => string;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function lmdyn(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['bin/lmdyn.js', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, stderr: () => stderr, done };
}

/** Resolves with the first match of `re` in the run's stderr (rejects after `ms`). */
function waitForStderr(run: Run, re: RegExp, ms = 60000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const check = () => {
      const m = re.exec(run.stderr());
      if (m) return resolve(m);
      if (run.child.exitCode !== null) return reject(new Error(`exited: ${run.stderr()}`));
      if (Date.now() - t0 > ms)
        return reject(new Error(`timed out waiting for ${re}: ${run.stderr()}`));
      setTimeout(check, 50);
    };
    check();
  });
}

async function startWorker(
  url: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Run> {
  const w = lmdyn(['worker', '--queue', url, '--threads', '1', ...args], env);
  await waitForStderr(w, /^worker: /m);
  return w;
}

/** Every file under `dir` by relative path, with its bytes. */
function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

function assertSameTree(actual: string, expected: string): void {
  const a = tree(actual);
  const e = tree(expected);
  assert.deepEqual([...a.keys()], [...e.keys()]);
  for (const [name, bytes] of e) assert.ok(bytes.equals(a.get(name)!), `${name} differs`);
}

test('lmdyn sweep --queue over 2 workers writes the local sweep’s folder byte for byte', async (t) => {
  const redis = await startRedis();
  if (!redis) return t.skip(REDIS_MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-queue-'));
  const workers: Run[] = [];
  try {
    // each job waits 300 ms first, so both workers take some of the 4 configurations
    const env = { LMDYN_QUEUE_JOB_DELAY_MS: '300' };
    workers.push(
      ...(await Promise.all([startWorker(redis.url, [], env), startWorker(redis.url, [], env)])),
    );
    const queued = await lmdyn([...SWEEP, '--queue', redis.url, '-o', join(dir, 'queued')]).done;
    assert.equal(queued.code, 0, queued.stderr);
    assert.match(queued.stderr, /queue: 4 jobs enqueued .*2 workers connected/);
    assert.match(queued.stderr, /sweep: 4\/4 configurations .*ETA/);
    const local = spawnSync(
      process.execPath,
      ['bin/lmdyn.js', ...SWEEP, '-o', join(dir, 'local'), '--workers', '1'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(local.status, 0, local.stderr);
    assertSameTree(join(dir, 'queued'), join(dir, 'local'));
    // sweep.json and sweep.manifest.json, then 4 configurations of 3 files and their manifest
    assert.equal(tree(join(dir, 'local')).size, 2 + 4 * 4);
    for (const w of workers) assert.match(w.stderr(), /^done {2}sweep /m);
    // re-running the finished sweep enqueues nothing and leaves the folder as it was
    const again = await lmdyn([...SWEEP, '--queue', redis.url, '-o', join(dir, 'queued')]).done;
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /sweep: 4\/4 configurations \(4 already done\)/);
    assert.doesNotMatch(again.stderr, /enqueued/);
    assertSameTree(join(dir, 'queued'), join(dir, 'local'));
  } finally {
    await Promise.all(workers.map((w) => stopChild(w.child)));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a worker killed (SIGKILL) in the middle of a job: another takes the job after the stall interval; the sweep equals the local one', async (t) => {
  const redis = await startRedis();
  if (!redis) return t.skip(REDIS_MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-queue-'));
  const workers: Run[] = [];
  try {
    // worker A holds its first job for a minute, then is killed with it
    const a = await startWorker(redis.url, ['--stall-seconds', '1'], {
      LMDYN_QUEUE_JOB_DELAY_MS: '60000',
    });
    workers.push(a);
    const out = join(dir, 'queued');
    const coordinator = lmdyn([...SWEEP, '--queue', redis.url, '-o', out]);
    const [, config] = await waitForStderr(a, /^start sweep (\S+)/m);
    // what a killed attempt may leave behind: a half-written file and no trace.json
    mkdirSync(join(out, config), { recursive: true });
    writeFileSync(join(out, config, 'trace.safetensors'), 'half a file');
    a.child.kill('SIGKILL');
    workers.push(await startWorker(redis.url, ['--stall-seconds', '1']));
    const r = await coordinator.done;
    assert.equal(r.code, 0, r.stderr);
    const local = spawnSync(
      process.execPath,
      ['bin/lmdyn.js', ...SWEEP, '-o', join(dir, 'local'), '--workers', '1'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(local.status, 0, local.stderr);
    assertSameTree(out, join(dir, 'local'));
    assert.match(
      workers[1].stderr(),
      new RegExp(`^start sweep ${config.replace(/\./g, '\\.')} `, 'm'),
    );
  } finally {
    await Promise.all(workers.map((w) => stopChild(w.child)));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lmdyn worker --max-memory: a configuration estimated over the limit fails at once (no retry) with the estimate, the limit and the worker; the local sweep gives the same estimate', async (t) => {
  const redis = await startRedis();
  if (!redis) return t.skip(REDIS_MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-queue-'));
  const workers: Run[] = [];
  try {
    const w = await startWorker(redis.url, ['--max-memory', '10kb']);
    workers.push(w);
    assert.match(w.stderr(), /--max-memory 10\.0 KB per thread/);
    const r = await lmdyn([...SWEEP, '--attempts', '3', '--queue', redis.url, '-o', join(dir, 'q')])
      .done;
    assert.equal(r.code, 1, r.stderr);
    const last = r.stderr.trim().split('\n').pop()!;
    const m =
      /^error: 4 of 4 jobs failed .*; \S+: worker \S+ \(pid \d+\): this trace needs about (\S+ \S+) of memory .* over --max-memory 10\.0 KB/.exec(
        last,
      );
    assert.ok(m, last);
    assert.doesNotMatch(w.stderr(), /\(attempt 2\)/);
    // the reference: a local sweep with the same limit refuses with the same estimate
    const local = spawnSync(
      process.execPath,
      ['bin/lmdyn.js', ...SWEEP, '--max-memory', '10kb', '--workers', '1', '-o', join(dir, 'l')],
      { encoding: 'utf8' },
    );
    assert.notEqual(local.status, 0);
    assert.match(
      local.stderr,
      new RegExp(`this trace needs about ${m[1].replace('.', '\\.')} of memory`),
    );
    // a worker with room runs the same sweep
    await stopChild(w.child);
    workers.push(await startWorker(redis.url, ['--max-memory', '1gb']));
    const ok = await lmdyn([...SWEEP, '--queue', redis.url, '-o', join(dir, 'q2')]).done;
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await Promise.all(workers.map((w) => stopChild(w.child)));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Redis unreachable or a wrong --queue URL: one line on stderr, non-zero exit, nothing written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-queue-'));
  try {
    const port = await freePort(); // nothing listens there
    const cases: [string[], number, RegExp][] = [
      [
        [...SWEEP, '--queue', `redis://127.0.0.1:${port}`],
        1,
        /^error: cannot use the Redis server at redis:\/\/127\.0\.0\.1:\d+\/0: .*ECONNREFUSED/,
      ],
      [
        [...SWEEP, '--queue', 'http://127.0.0.1:6379'],
        2,
        /^error: --queue must be redis:\/\/HOST\[:PORT\]\[\/DB\]/,
      ],
      [[...SWEEP, '--queue', 'redis://127.0.0.1:99999'], 2, /^error: --queue must be redis:\/\//],
      [[...SWEEP, '--queue', 'redis://127.0.0.1:6379/db0'], 2, /^error: --queue .*only \/DB/],
      [
        [
          'analyze',
          'coupling',
          '--models',
          STORIES,
          '--prompt',
          'Once',
          '--queue',
          `redis://127.0.0.1:${port}`,
        ],
        1,
        /^error: cannot use the Redis server/,
      ],
    ];
    // all at once: each is a CLI start-up, and none may write its own folder
    const runs = await Promise.all(
      cases.map(([args], i) => lmdyn([...args, '-o', join(dir, `out${i}`)]).done),
    );
    const worker = lmdyn(['worker', '--queue', `redis://127.0.0.1:${port}`]).done;
    runs.forEach((r, i) => {
      const [, code, message] = cases[i];
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(existsSync(join(dir, `out${i}`)), false);
    });
    const w = await worker;
    assert.equal(w.code, 1);
    assert.match(w.stderr, /^error: cannot use the Redis server .*ECONNREFUSED[^\n]*\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lmdyn analyze coupling --models / --checkpoints --queue: one job per model, the local study’s folder byte for byte; a job failing every attempt is reported with its error', async (t) => {
  const redis = await startRedis();
  if (!redis) return t.skip(REDIS_MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-queue-'));
  const workers: Run[] = [];
  try {
    workers.push(...(await Promise.all([startWorker(redis.url), startWorker(redis.url)])));
    const gguf = model('stories260K-gguf', 'stories260K.gguf');
    const study = [
      'analyze',
      'coupling',
      '--prompt',
      'Once upon a time there was',
      '--k',
      '4,8',
      '--no-interactions',
    ];
    const models = [...study, '--models', `${STORIES},${gguf}`];
    const queued = await lmdyn([...models, '--queue', redis.url, '-o', join(dir, 'q-models')]).done;
    assert.equal(queued.code, 0, queued.stderr);
    assert.match(queued.stderr, /coupling: 2\/2 models/);
    const local = spawnSync(
      process.execPath,
      ['bin/lmdyn.js', ...models, '-o', join(dir, 'l-models')],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(local.status, 0, local.stderr);
    assert.equal(queued.stdout, local.stdout.replace(join(dir, 'l-models'), join(dir, 'q-models')));
    assertSameTree(join(dir, 'q-models'), join(dir, 'l-models'));

    // a training run with three kept checkpoints (as test/lenses/coupling-training.test.ts)
    writeFileSync(
      join(dir, 'c.txt'),
      'Once upon a time there was a dog called Max. He liked to run.\n\n'.repeat(16),
    );
    const run = join(dir, 'run');
    const train = spawnSync(
      process.execPath,
      [
        'bin/lmdyn.js',
        'train',
        '--config',
        'dim=16,layers=2,heads=2,kv_heads=1',
        '-z',
        model('stories260K', 'tok512.bin'),
        '--corpus',
        join(dir, 'c.txt'),
        '--steps',
        '4',
        '--batch',
        '2',
        '--seq',
        '16',
        '--eval-every',
        '2',
        '--checkpoint-every',
        '2',
        '--threads',
        '1',
        '--sample-tokens',
        '0',
        '--out',
        run,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(train.status, 0, train.stderr);
    const ckpt = [...study, '--checkpoints', run];
    const qc = await lmdyn([...ckpt, '--queue', redis.url, '-o', join(dir, 'q-ckpt')]).done;
    assert.equal(qc.code, 0, qc.stderr);
    assert.match(qc.stderr, /coupling: 3\/3 checkpoints/);
    const lc = spawnSync(process.execPath, ['bin/lmdyn.js', ...ckpt, '-o', join(dir, 'l-ckpt')], {
      encoding: 'utf8',
    });
    assert.equal(lc.status, 0, lc.stderr);
    assertSameTree(join(dir, 'q-ckpt'), join(dir, 'l-ckpt'));

    // a model no worker can open fails each of its 2 attempts; the error names it
    const missing = join(dir, 'missing.bin');
    const bad = await lmdyn([
      ...study,
      '--models',
      `${STORIES},${missing}`,
      '--attempts',
      '2',
      '--queue',
      redis.url,
      '-o',
      join(dir, 'q-bad'),
    ]).done;
    assert.equal(bad.code, 1, bad.stderr);
    const lines = bad.stderr.trim().split('\n');
    assert.match(
      lines[lines.length - 1],
      /^error: 1 of 2 jobs failed \(up to 2 attempts each; re-run the same command to retry them\); .*missing\.bin: no such file or folder: /,
    );
    assert.match(
      workers.map((w) => w.stderr()).join(''),
      /start coupling .*missing\.bin \(attempt 2\)/,
    );
  } finally {
    await Promise.all(workers.map((w) => stopChild(w.child)));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parseQueueUrl: redis://[user:password@]HOST[:PORT][/DB] as the Redis URI scheme (IANA) defines it; the password never shown', () => {
  assert.deepEqual(parseQueueUrl('redis://queue-host'), {
    host: 'queue-host',
    port: 6379,
    db: 0,
    display: 'redis://queue-host/0',
  });
  assert.deepEqual(parseQueueUrl('redis://al%40b:s%3Acret@10.0.0.5:6380/3'), {
    host: '10.0.0.5',
    port: 6380,
    db: 3,
    username: 'al@b',
    password: 's:cret',
    display: 'redis://al%40b@10.0.0.5:6380/3',
  });
  assert.deepEqual(parseQueueUrl('redis://:pw@[::1]:7000'), {
    host: '::1',
    port: 7000,
    db: 0,
    password: 'pw',
    display: 'redis://[::1]:7000/0',
  });
  for (const bad of [
    'queue-host:6379',
    'rediss://h',
    'redis://h:0x10',
    'redis://h/1/2',
    'redis://h?db=1',
    'redis://',
  ]) {
    assert.throws(() => parseQueueUrl(bad), /--queue/, bad);
  }
});
