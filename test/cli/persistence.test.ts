import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseCsvPoints } from '../../src/cli/persistence.js';
import { encodeNpy } from '../../src/io/npy.js';

const BIN = resolve('bin', 'lmdyn.js');
const dir = mkdtempSync(join(tmpdir(), 'lmdyn-persistence-'));

function lmdyn(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, LMDYN_MODEL: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: the given exit code, exactly one line on stderr starting with "error:", no stack trace. */
function assertOneLineError(r: ReturnType<typeof lmdyn>, code: number, pattern: RegExp) {
  assert.equal(r.code, code, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

// The unit square (hand diagram: H0 three [0,1) + essential, H1 [1, √2)).
const SQUARE_CSV = 'x,y\n0,0\n1,0\n\n1,1\n0,1\n';

test('--json: {"pairs":[{dim,birth,death}], threshold, ...} with the square’s hand diagram; .csv and .npy agree', () => {
  const csv = join(dir, 'square.csv');
  const npy = join(dir, 'square.npy');
  writeFileSync(csv, SQUARE_CSV);
  writeFileSync(npy, encodeNpy(Float32Array.from([0, 0, 1, 0, 1, 1, 0, 1]), 4, 2));
  const r = lmdyn('persistence', '--points', csv, '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out).sort(), ['dim', 'maxdim', 'pairs', 'points', 'threshold']);
  assert.equal(out.threshold, Math.SQRT2);
  assert.deepEqual(out.pairs, [
    { dim: 0, birth: 0, death: 1 },
    { dim: 0, birth: 0, death: 1 },
    { dim: 0, birth: 0, death: 1 },
    { dim: 0, birth: 0, death: null },
    { dim: 1, birth: 1, death: Math.SQRT2 },
  ]);
  const fromNpy = lmdyn('persistence', '--points', npy, '--json');
  assert.equal(fromNpy.code, 0, fromNpy.stderr);
  assert.deepEqual(JSON.parse(fromNpy.stdout), out);
  const h0 = JSON.parse(lmdyn('persistence', '--points', csv, '--json', '--maxdim', '0').stdout);
  assert.equal(h0.pairs.filter((p: { dim: number }) => p.dim === 1).length, 0);
  const cut = JSON.parse(lmdyn('persistence', '--points', csv, '--json', '--threshold', '1.2').stdout);
  assert.equal(cut.threshold, 1.2);
  assert.deepEqual(cut.pairs.at(-1), { dim: 1, birth: 1, death: null });
});

test('without --json: a readable summary naming P', () => {
  const csv = join(dir, 'square2.csv');
  writeFileSync(csv, SQUARE_CSV);
  const r = lmdyn('persistence', '--points', csv);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /4 points in R\^2, Z\/2, threshold 1\.41421 \(enclosing radius\)/);
  assert.match(r.stdout, /H0: 4 intervals \(1 essential\), longest finite lifetime 1\n/);
  assert.match(r.stdout, /H1: 1 interval \(0 essential\), longest finite lifetime 0\.414214 {2}\(= DMET P/);
});

test('bad files and flags: one line, non-zero exit, no stack trace', () => {
  const ragged = join(dir, 'ragged.csv');
  writeFileSync(ragged, '0,0\n1,0,2\n');
  const words = join(dir, 'words.csv');
  writeFileSync(words, 'x,y\n0,0\n1,zero\n');
  const empty = join(dir, 'empty.csv');
  writeFileSync(empty, 'x,y\n');
  const broken = join(dir, 'broken.npy');
  writeFileSync(broken, encodeNpy(new Float64Array(8), 4, 2).subarray(0, 140));
  assertOneLineError(lmdyn('persistence', '--points', join(dir, 'missing.csv')), 1, /missing\.csv: no such file/);
  assertOneLineError(lmdyn('persistence', '--points', ragged), 1, /ragged\.csv:2: 3 values, the rows above have 2/);
  assertOneLineError(lmdyn('persistence', '--points', words), 1, /words\.csv:3: 'zero' is not a number/);
  assertOneLineError(lmdyn('persistence', '--points', empty), 1, /no numeric rows/);
  assertOneLineError(lmdyn('persistence', '--points', broken), 1, /broken\.npy: data truncated/);
  assertOneLineError(lmdyn('persistence', '--points', dir), 2, /is a folder/);
  assertOneLineError(lmdyn('persistence', '--points', ragged, '--maxdim', '-1'), 2, /--maxdim must be a whole number/);
  assertOneLineError(lmdyn('persistence', '--points', ragged, '--threshold', 'abc'), 2, /--threshold must be a number/);
  const noFlag = lmdyn('persistence');
  assert.equal(noFlag.code, 2);
  assert.match(noFlag.stderr, /required option '-p, --points <FILE>'/);
});

test('CSV reader: header line, whitespace or semicolons, blank lines', () => {
  assert.deepEqual(parseCsvPoints('a b\n1 2\n3\t4\n\n5;6\n'), { rows: 3, cols: 2, data: Float64Array.from([1, 2, 3, 4, 5, 6]) });
  assert.throws(() => parseCsvPoints('1,2,\n3,4\n', 't.csv'), /t\.csv:1: '' is not a number/);
  assert.throws(() => parseCsvPoints('1,2\n3,inf\n', 't.csv'), /t\.csv:2/);
});
