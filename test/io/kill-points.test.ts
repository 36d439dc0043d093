/**
 * Nothing half-written ever looks whole (io/commit.ts). The CLI is run with a fault-injection
 * preload (test/helpers/fs-faults.ts) that kills it with SIGKILL at its N-th file-system mutation
 * (a write half done), for kill points spread over the run and every step of the commit at its
 * end, or that fails every write with ENOSPC past byte B, as a full disk does. Afterwards each
 * folder is either complete and equal to an uninterrupted run's (the reference: same manifest,
 * every file matching it) or refused by every reader (readTrace, the lens sources, the sweep
 * index, the report/server scan); a re-run cleans the killed run's temporaries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LmdynError } from '../../src/errors.js';
import { requireCommitted } from '../../src/io/commit.js';
import { openDmetSource } from '../../src/report/lenses/dmet.js';
import { scanResults } from '../../src/report/scan.js';
import { readTrace } from '../../src/trace/io.js';
import { readSweepIndex } from '../../src/trace/sweep.js';
import { model } from '../helpers/paths.js';

const STORIES = model('stories260K', 'stories260K.bin');
const BIN = resolve('bin', 'lmdyn.js');
const FAULTS = pathToFileURL(resolve('dist', 'test', 'helpers', 'fs-faults.js')).href;
const root = mkdtempSync(join(tmpdir(), 'lmdyn-kill-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function lmdyn(args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync(process.execPath, ['--import', FAULTS, BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return { status: r.status, signal: r.signal, stderr: r.stderr };
}

/** The number of file-system mutations an uninterrupted run makes. */
function countOps(args: string[], before: () => void): number {
  before();
  const ops = join(root, `ops-${Math.random().toString(36).slice(2)}`);
  const r = lmdyn(args, { LMDYN_FAULT_OPS: ops });
  assert.equal(r.status, 0, r.stderr);
  return statSync(ops).size;
}

/** About `n` kill points: every one of the last `tail` mutations (the commit) and a spread before. */
function killPoints(total: number, n: number, tail: number): number[] {
  const points = new Set<number>();
  for (let i = Math.max(1, total - tail + 1); i <= total; i++) points.add(i);
  const spread = n - points.size;
  for (let i = 1; i <= spread; i++)
    points.add(Math.max(1, Math.round((i * (total - tail)) / (spread + 1))));
  return [...points].sort((a, b) => a - b);
}

function killAt(args: string[], op: number): Run {
  const ops = join(root, `ops-${Math.random().toString(36).slice(2)}`);
  const r = lmdyn(args, { LMDYN_FAULT_OPS: ops, LMDYN_KILL_AT_OP: String(op) });
  assert.equal(r.signal, 'SIGKILL', `op ${op}: not killed (status ${r.status}): ${r.stderr}`);
  return r;
}

const manifestOf = (dir: string, kind: string): string =>
  readFileSync(join(dir, `${kind}.manifest.json`), 'utf8');

/** 'ref' when `dir` holds the committed unit equal to a reference manifest, 'refused' otherwise. */
function stateOf(
  dir: string,
  kind: string,
  refs: Record<string, string>,
  readers: ((dir: string) => unknown)[],
): string {
  let committed = true;
  try {
    requireCommitted(dir, kind, 'full');
  } catch (err) {
    assert.ok(err instanceof LmdynError, String(err));
    assert.equal(err.message.split('\n').length, 1);
    committed = false;
  }
  if (committed) {
    const m = manifestOf(dir, kind);
    const name = Object.keys(refs).find((k) => refs[k] === m);
    assert.ok(name, `${dir}: a committed ${kind} equal to no reference run`);
    for (const read of readers) read(dir); // every reader accepts it
    return name;
  }
  for (const read of readers) {
    assert.throws(() => read(dir), LmdynError, `${dir}: a reader accepted an uncommitted ${kind}`);
  }
  if (existsSync(dir)) {
    const listed = scanResults(dir, { maxDepth: 0 }).filter((f) => f.kind === kind);
    for (const f of listed) assert.ok(f.refused, `${dir}: the scan shows an uncommitted ${kind}`);
  }
  return 'refused';
}

/**
 * Removes `dir` and the temporaries a killed run left beside it, so that every run under test
 * makes the same mutations in the same order (the next run would first clean them up: tested
 * by the re-runs).
 */
function reset(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  const name = basename(dir);
  for (const n of readdirSync(dirname(dir)))
    if (n.startsWith(`.${name}.`)) rmSync(join(dirname(dir), n), { recursive: true, force: true });
}

const leftovers = (dir: string): string[] =>
  existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('.') || n.includes('.tmp')) : [];

const traceReaders = [(d: string) => readTrace(d), (d: string) => openDmetSource(d)];

test('trace and trace --force killed at any moment: the folder is the old run, the new run, or refused', () => {
  const args = (out: string, seed: string) => [
    'trace',
    '-m',
    STORIES,
    '-i',
    'Once',
    '--samples',
    '2',
    '-n',
    '12',
    '-s',
    seed,
    '-o',
    out,
    '--force',
  ];
  const refs: Record<string, string> = {};
  for (const seed of ['1', '2']) {
    const dir = join(root, `trace-ref-${seed}`);
    assert.equal(lmdyn(args(dir, seed)).status, 0);
    refs[`seed ${seed}`] = manifestOf(dir, 'trace');
  }
  const target = join(root, 'trace-killed');
  const seedOld = () => {
    reset(target);
    cpSync(join(root, 'trace-ref-1'), target, { recursive: true });
  };
  const fresh = () => reset(target);
  for (const [label, before, allowed] of [
    ['fresh', fresh, ['refused', 'seed 2']],
    ['--force over seed 1', seedOld, ['seed 1', 'refused', 'seed 2']],
  ] as const) {
    const total = countOps(args(target, '2'), before);
    const seen = new Set<string>();
    for (const op of killPoints(total, 5, 4)) {
      before();
      killAt(args(target, '2'), op);
      const state = stateOf(target, 'trace', refs, traceReaders);
      assert.ok(
        (allowed as readonly string[]).includes(state),
        `${label}, op ${op}/${total}: ${state}`,
      );
      seen.add(state);
    }
    // fresh: the rename that commits is the last mutation, so a kill before it leaves nothing
    const expected = label === 'fresh' ? 1 : 3;
    assert.ok(
      seen.has('refused') && seen.size === expected,
      `${label}: ${[...seen].join(', ')} seen`,
    );
    // the next run cleans the killed run's temporaries and writes the trace whole
    const r = lmdyn(args(target, '2'));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(stateOf(target, 'trace', refs, traceReaders), 'seed 2');
    assert.deepEqual(
      leftovers(root).filter((n) => n.includes('trace-killed')),
      [],
    );
  }
});

test('sweep killed at any moment: refused until finished; each configuration whole; the resumed sweep is bit-exact', () => {
  const args = (out: string) => [
    'sweep',
    '-m',
    STORIES,
    '-i',
    'Once',
    '--temperature',
    '0.5,1',
    '--samples',
    '2',
    '-n',
    '10',
    '--workers',
    '1',
    '-o',
    out,
  ];
  const ref = join(root, 'sweep-ref');
  assert.equal(lmdyn(args(ref)).status, 0);
  const refs = { ref: manifestOf(ref, 'sweep') };
  const configs = readSweepIndex(ref).configs.map((c) => c.dir);
  const target = join(root, 'sweep-killed');
  const fresh = () => reset(target);
  const total = countOps(args(target), fresh);
  const seen = new Set<string>();
  for (const op of killPoints(total, 4, 2)) {
    fresh();
    killAt(args(target), op);
    const state = stateOf(target, 'sweep', refs, [
      (d) => readSweepIndex(d),
      (d) => openDmetSource(d),
    ]);
    seen.add(state);
    for (const c of configs) {
      const dir = join(target, c);
      if (!existsSync(dir)) continue;
      assert.equal(manifestOf(dir, 'trace'), manifestOf(join(ref, c), 'trace'), `op ${op}: ${c}`);
      requireCommitted(dir, 'trace', 'full');
    }
    // resuming finishes it into exactly the uninterrupted sweep
    const r = lmdyn(args(target));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(stateOf(target, 'sweep', refs, [(d) => readSweepIndex(d)]), 'ref', `op ${op}`);
    assert.deepEqual(leftovers(target), [], `op ${op}`);
  }
  assert.ok(seen.has('refused'), [...seen].join(', '));
});

test('analyze dmet and analyze coupling killed at any moment over an earlier result: old, new, or refused', () => {
  const trace = join(root, 'dmet-trace');
  assert.equal(
    lmdyn(['trace', '-m', STORIES, '-i', 'Once', '--samples', '3', '-n', '16', '-o', trace]).status,
    0,
  );
  const traceManifest = manifestOf(trace, 'trace');
  const dmet = (k: string, out: string) => [
    'analyze',
    'dmet',
    '--trace',
    out,
    '--no-text-model',
    '--clusters',
    k,
  ];
  const coupling = (prompt: string, out: string) => [
    'analyze',
    'coupling',
    '-m',
    STORIES,
    '-i',
    prompt,
    '--save-jacobians',
    '-o',
    out,
    '--force',
  ];
  const cases = [
    {
      kind: 'dmet',
      old: (o: string) => dmet('2', o),
      fresh: (o: string) => dmet('3', o),
      input: trace,
    },
    {
      kind: 'coupling',
      old: (o: string) => coupling('Once upon', o),
      fresh: (o: string) => coupling('The cat', o),
      input: null,
    },
  ];
  for (const c of cases) {
    // the references are made in the target folder itself (reports name their folders)
    const refs: Record<string, string> = {};
    const target = join(root, `${c.kind}-killed`);
    const snapshot = join(root, `${c.kind}-old`);
    if (c.input) cpSync(c.input, target, { recursive: true });
    for (const [name, make] of [
      ['old', c.old],
      ['new', c.fresh],
    ] as const) {
      const r = lmdyn(make(target));
      assert.equal(r.status, 0, r.stderr);
      refs[name] = manifestOf(target, c.kind);
      if (name === 'old') cpSync(target, snapshot, { recursive: true });
    }
    const before = () => {
      reset(target);
      cpSync(snapshot, target, { recursive: true });
    };
    const total = countOps(c.fresh(target), before);
    const seen = new Set<string>();
    for (const op of killPoints(total, 5, 4)) {
      before();
      killAt(c.fresh(target), op);
      seen.add(stateOf(target, c.kind, refs, []));
      if (c.input) assert.equal(manifestOf(target, 'trace'), traceManifest);
    }
    assert.ok(seen.has('refused') && seen.size >= 2, `${c.kind}: ${[...seen].join(', ')}`);
    const r = lmdyn(c.fresh(target));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(stateOf(target, c.kind, refs, []), 'new');
    assert.deepEqual(leftovers(target), []);
  }
});

test('a full disk (ENOSPC at byte B): one line naming the file, exit 1, and nothing that looks whole', () => {
  const trace = join(root, 'nospace-trace');
  const traceArgs = [
    'trace',
    '-m',
    STORIES,
    '-i',
    'Once',
    '--samples',
    '2',
    '-n',
    '12',
    '-o',
    trace,
    '--force',
  ];
  const dmetArgs = ['analyze', 'dmet', '--trace', trace, '--no-text-model'];
  const sweepDir = join(root, 'nospace-sweep');
  const sweepArgs = [
    'sweep',
    '-m',
    STORIES,
    '-i',
    'Once',
    '--temperature',
    '0.5,1',
    '--samples',
    '2',
    '-n',
    '8',
    '--workers',
    '1',
    '-o',
    sweepDir,
  ];
  const couplingDir = join(root, 'nospace-coupling');
  const couplingArgs = [
    'analyze',
    'coupling',
    '-m',
    STORIES,
    '-i',
    'Once upon a time',
    '--save-jacobians',
    '-o',
    couplingDir,
    '--force',
  ];
  assert.equal(lmdyn(traceArgs).status, 0);
  for (const [kind, dir, args] of [
    ['trace', trace, traceArgs],
    ['dmet', trace, dmetArgs],
    ['sweep', sweepDir, sweepArgs],
    ['coupling', couplingDir, couplingArgs],
  ] as const) {
    for (const bytes of [3000, 60000]) {
      if (kind === 'sweep') rmSync(sweepDir, { recursive: true, force: true });
      const r = lmdyn([...args], { LMDYN_ENOSPC_AT: String(bytes) });
      assert.equal(r.status, 1, `${kind} at ${bytes}: ${r.stderr}`);
      const lines = r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('error'));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^error: cannot write \/.+: no space left on the device \(ENOSPC\)$/);
      if (kind === 'trace') requireCommitted(dir, 'trace', 'full'); // the earlier trace is untouched
      if (kind === 'dmet') {
        assert.throws(() => requireCommitted(dir, 'dmet'), LmdynError);
        requireCommitted(dir, 'trace', 'full');
      }
      if (kind === 'sweep') assert.throws(() => readSweepIndex(dir), LmdynError);
      if (kind === 'coupling') assert.throws(() => requireCommitted(dir, 'coupling'), LmdynError);
      assert.deepEqual(leftovers(dir), [], `${kind} at ${bytes}`);
    }
  }
});
