import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { LmdynError } from '../../src/errors.js';
import {
  bettiCurve,
  enclosingRadius,
  euclideanDistances,
  largestLifetime,
  ripsPersistence,
  ripsPersistenceFromDistances,
  type PersistencePair,
} from '../../src/stats/rips.js';
import { createRng } from '../../src/tensor/rng.js';

const RIPSER = '/usr/bin/ripser';
const EPS = 1e-12;

function finite(pairs: PersistencePair[], dim: number): PersistencePair[] {
  return pairs.filter((p) => p.dim === dim && p.death !== null);
}
function essential(pairs: PersistencePair[], dim: number): number {
  return pairs.filter((p) => p.dim === dim && p.death === null).length;
}
function near(a: number, b: number, msg: string, tol = EPS): void {
  assert.ok(Math.abs(a - b) <= tol, `${msg}: ${a} vs ${b}`);
}

/** Distances of n evenly spaced points on the unit circle, each chord computed once from its step count. */
function circleDistances(n: number): Float64Array {
  const d = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const k = Math.min(Math.abs(i - j), n - Math.abs(i - j));
      d[i * n + j] = 2 * Math.sin((Math.PI * k) / n);
    }
  }
  return d;
}

// ---- hand-made diagrams ---------------------------------------------------------------------

test('unit square: H0 = three [0,1) + one essential, H1 = [1, √2) (the diagonals fill the 4-cycle)', () => {
  const r = ripsPersistence([0, 0, 1, 0, 1, 1, 0, 1], 4, 2);
  near(r.threshold, Math.SQRT2, 'enclosing radius = the diagonal');
  assert.deepEqual(
    finite(r.pairs, 0).map((p) => [p.birth, p.death]),
    [
      [0, 1],
      [0, 1],
      [0, 1],
    ],
  );
  assert.equal(essential(r.pairs, 0), 1);
  const h1 = finite(r.pairs, 1);
  assert.equal(h1.length, 1);
  assert.equal(h1[0].birth, 1);
  near(h1[0].death as number, Math.SQRT2, 'H1 death');
  near(largestLifetime(r.pairs, 1), Math.SQRT2 - 1, 'P');
  assert.equal(essential(r.pairs, 1), 0);
});

test('regular hexagon: H1 = [1, √3); H2 = [√3, 2) (at √3 the complex is the octahedron surface)', () => {
  const r = ripsPersistenceFromDistances(circleDistances(6), 6, { maxDim: 2 });
  near(r.threshold, 2, 'enclosing radius = the long diagonal');
  assert.equal(finite(r.pairs, 0).length, 5);
  for (const p of finite(r.pairs, 0)) near(p.death as number, 1, 'H0 death = side');
  const h1 = finite(r.pairs, 1);
  assert.equal(h1.length, 1);
  near(h1[0].birth, 1, 'H1 birth');
  near(h1[0].death as number, Math.sqrt(3), 'H1 death');
  const h2 = finite(r.pairs, 2);
  assert.equal(h2.length, 1);
  near(h2[0].birth, Math.sqrt(3), 'H2 birth');
  near(h2[0].death as number, 2, 'H2 death');
});

test('n points on a circle: one H1 bar [chord 1, chord ⌈n/3⌉) (Adamaszek–Adams: VR(C_n) ≃ S¹ while k/n < 1/3)', () => {
  for (const n of [5, 7, 8, 10, 12, 20, 31]) {
    const r = ripsPersistenceFromDistances(circleDistances(n), n);
    const chord = (k: number) => 2 * Math.sin((Math.PI * k) / n);
    const h1 = finite(r.pairs, 1);
    assert.equal(h1.length, 1, `n=${n}: ${JSON.stringify(h1)}`);
    near(h1[0].birth, chord(1), `n=${n} birth`);
    near(h1[0].death as number, chord(Math.ceil(n / 3)), `n=${n} death`);
    assert.equal(finite(r.pairs, 0).length, n - 1);
  }
});

test('two clusters: the last H0 death is the gap between them, the others the in-cluster spacing', () => {
  // two unit right triangles 9 apart: (1,0) to (10,0) is the closest cross pair
  const a = [0, 0, 1, 0, 0, 1];
  const pts = [...a, ...a.map((v, i) => (i % 2 === 0 ? v + 10 : v))];
  const r = ripsPersistence(pts, 6, 2);
  const deaths = finite(r.pairs, 0).map((p) => p.death as number);
  assert.deepEqual(deaths, [1, 1, 1, 1, 9]);
  assert.equal(essential(r.pairs, 0), 1);
});

test('a threshold below the enclosing radius truncates: survivors are essential, as ripser', () => {
  const sq = [0, 0, 1, 0, 1, 1, 0, 1];
  const r = ripsPersistence(sq, 4, 2, { threshold: 1.2 });
  assert.equal(r.threshold, 1.2);
  assert.deepEqual(
    r.pairs.filter((p) => p.dim === 1),
    [{ dim: 1, birth: 1, death: null }],
  );
  const low = ripsPersistence(sq, 4, 2, { threshold: 0.5 });
  assert.equal(essential(low.pairs, 0), 4);
  assert.equal(low.pairs.length, 4);
  // a threshold above the enclosing radius changes nothing and is capped
  assert.deepEqual(ripsPersistence(sq, 4, 2, { threshold: 10 }), ripsPersistence(sq, 4, 2));
});

test('duplicate points give no zero-length pairs; tiny inputs', () => {
  const r = ripsPersistence([0, 0, 0, 0, 3, 4], 3, 2);
  assert.deepEqual(r.pairs, [
    { dim: 0, birth: 0, death: 5 },
    { dim: 0, birth: 0, death: null },
  ]);
  assert.deepEqual(ripsPersistence([], 0, 3).pairs, []);
  assert.deepEqual(ripsPersistence([1, 2], 1, 2).pairs, [{ dim: 0, birth: 0, death: null }]);
});

test('bettiCurve counts birth ≤ t < death; largestLifetime is 0 without finite pairs', () => {
  const pairs: PersistencePair[] = [
    { dim: 0, birth: 0, death: 1 },
    { dim: 0, birth: 0, death: null },
    { dim: 1, birth: 1, death: 3 },
    { dim: 1, birth: 2, death: 2.5 },
  ];
  assert.deepEqual(bettiCurve(pairs, 0, [0, 0.5, 1, 100]), [2, 2, 1, 1]);
  assert.deepEqual(bettiCurve(pairs, 1, [0.5, 1, 2, 2.5, 3]), [0, 1, 2, 1, 0]);
  assert.equal(largestLifetime(pairs, 1), 2);
  assert.equal(largestLifetime(pairs, 2), 0);
  assert.equal(largestLifetime([{ dim: 1, birth: 1, death: null }], 1), 0);
});

test('bad input is a one-line LmdynError', () => {
  assert.throws(() => ripsPersistence([0, NaN], 1, 2), LmdynError);
  assert.throws(() => ripsPersistence([0, 1], 2, 2), /need 4 numbers/);
  assert.throws(() => ripsPersistence([0, 1], 1, 2, { maxDim: -1 }), /maxDim/);
  assert.throws(() => ripsPersistence([0, 1], 1, 2, { threshold: -1 }), /threshold/);
  assert.throws(
    () => ripsPersistenceFromDistances(new Float64Array([0, -1, -1, 0]), 2),
    /non-negative/,
  );
  assert.throws(() => ripsPersistence(new Float64Array(3000), 1000, 3, { maxDim: 7 }), /overflows/);
});

test('enclosing radius = min over points of the largest distance (hand value)', () => {
  const pts = [0, 0, 2, 0, 5, 0]; // radii 5, 3, 5
  assert.equal(enclosingRadius(euclideanDistances(pts, 3, 2), 3), 3);
});

// ---- against Debian's ripser -----------------------------------------------------------------

interface Cloud {
  n: number;
  dim: number;
  seed: number;
  maxDim: number;
  threshold?: number;
}

/** Parses ripser's output: "persistence intervals in dim k:" then " [b,d)" or " [b, )" lines. */
function parseRipser(out: string): PersistencePair[] {
  const pairs: PersistencePair[] = [];
  let dim = -1;
  for (const line of out.split('\n')) {
    const head = /persistence intervals in dim (\d+):/.exec(line);
    if (head) {
      dim = Number(head[1]);
      continue;
    }
    const m = /^\s*\[([^,]+),\s*([^)]*)\)\s*$/.exec(line);
    if (m && dim >= 0)
      pairs.push({ dim, birth: Number(m[1]), death: m[2].trim() === '' ? null : Number(m[2]) });
  }
  return pairs;
}

/**
 * Matches two diagrams pair by pair within tol (ripser prints 6 significant digits and computes
 * in float32; coordinates are scaled so all distances are < 1). A pair may go unmatched only if
 * its lifetime is below 2·tol (float32 can round a tiny interval away). Returns the worst error.
 */
function matchDiagrams(
  ours: PersistencePair[],
  theirs: PersistencePair[],
  tol: number,
  label: string,
): number {
  const used = new Uint8Array(theirs.length);
  let worst = 0;
  const life = (p: PersistencePair) => (p.death === null ? Infinity : p.death - p.birth);
  for (const p of ours) {
    let best = -1;
    let bestErr = Infinity;
    for (let i = 0; i < theirs.length; i++) {
      const q = theirs[i];
      if (used[i] || q.dim !== p.dim || (q.death === null) !== (p.death === null)) continue;
      const err = Math.max(
        Math.abs(q.birth - p.birth),
        p.death === null ? 0 : Math.abs((q.death as number) - p.death),
      );
      if (err < bestErr) {
        bestErr = err;
        best = i;
      }
    }
    if (best >= 0 && bestErr <= tol) {
      used[best] = 1;
      worst = Math.max(worst, bestErr);
    } else {
      assert.ok(
        life(p) < 2 * tol,
        `${label}: our ${JSON.stringify(p)} has no match in ripser's diagram`,
      );
    }
  }
  theirs.forEach((q, i) =>
    assert.ok(
      used[i] || life(q) < 2 * tol,
      `${label}: ripser's ${JSON.stringify(q)} has no match in ours`,
    ),
  );
  return worst;
}

const CLOUDS: Cloud[] = [];
{
  const dims = [2, 3, 8, 64];
  const sizes = [30, 60, 120, 200, 90, 150];
  let seed = 1;
  for (const n of sizes) for (const dim of dims) CLOUDS.push({ n, dim, seed: seed++, maxDim: 1 });
  CLOUDS.push({ n: 40, dim: 3, seed: 101, maxDim: 2 }, { n: 30, dim: 8, seed: 102, maxDim: 2 });
  CLOUDS.push(
    { n: 150, dim: 2, seed: 103, maxDim: 1, threshold: 0.15 },
    { n: 100, dim: 8, seed: 104, maxDim: 1, threshold: 0.4 },
  );
}

test(`matches /usr/bin/ripser (point-cloud format) on ${CLOUDS.length} seeded clouds, dims 2–64, 30–200 points, to 1e-6`, (t) => {
  if (!existsSync(RIPSER)) {
    t.skip(`${RIPSER} not installed (apt-get install ripser): comparison skipped`);
    return;
  }
  let worst = 0;
  let intervals = 0;
  for (const c of CLOUDS) {
    // uniform in a cube of side 1/√dim (diameter < 1, so 6 printed digits resolve 1e-6),
    // coordinates rounded to float32 so ripser reads exactly the same points
    const rng = createRng(c.seed);
    const pts = new Float64Array(c.n * c.dim);
    for (let i = 0; i < pts.length; i++) pts[i] = Math.fround(rng.next() / Math.sqrt(c.dim));
    let csv = '';
    for (let i = 0; i < c.n; i++)
      csv +=
        Array.from(pts.subarray(i * c.dim, (i + 1) * c.dim), (v) => v.toPrecision(9)).join(',') +
        '\n';
    const args = ['--format', 'point-cloud', '--dim', String(c.maxDim)];
    if (c.threshold !== undefined) args.push('--threshold', String(c.threshold));
    const run = spawnSync(RIPSER, args, { input: csv, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const theirs = parseRipser(run.stdout);
    const ours = ripsPersistence(pts, c.n, c.dim, {
      maxDim: c.maxDim,
      threshold: c.threshold,
    }).pairs;
    const label = `n=${c.n} dim=${c.dim} seed=${c.seed} maxDim=${c.maxDim}${c.threshold ? ` threshold=${c.threshold}` : ''}`;
    for (let k = 0; k <= c.maxDim; k++)
      assert.equal(essential(ours, k), essential(theirs, k), `${label}: essential H${k}`);
    worst = Math.max(worst, matchDiagrams(ours, theirs, 1e-6, label));
    intervals += theirs.length;
    if (c.threshold === undefined)
      assert.ok(finite(ours, 1).length > 0, `${label}: expected some H1`);
  }
  t.diagnostic(`${intervals} ripser intervals matched, worst difference ${worst.toExponential(2)}`);
});

test('matches /usr/bin/ripser exactly on 120 small integer distance matrices full of ties (H1, H2, thresholds)', (t) => {
  if (!existsSync(RIPSER)) {
    t.skip(`${RIPSER} not installed (apt-get install ripser): comparison skipped`);
    return;
  }
  // ties exercise the tie-breaking of the filtration order and the apparent/emergent pair
  // shortcuts; integer lengths print exactly, so the diagrams must be identical
  const key = (p: PersistencePair) => `${p.dim}:${p.birth}:${p.death}`;
  for (let seed = 1; seed <= 120; seed++) {
    const rng = createRng(1000 + seed);
    const n = 5 + Math.floor(rng.next() * 25);
    const levels = 1 + Math.floor(rng.next() * 5);
    const maxDim = seed % 3 === 0 ? 2 : 1;
    const threshold = seed % 5 === 0 ? 1 : undefined;
    const d = new Float64Array(n * n);
    let text = '';
    for (let i = 1; i < n; i++) {
      const row: number[] = [];
      for (let j = 0; j < i; j++) {
        const v = Math.floor(rng.next() * levels) + (rng.next() < 0.1 ? 0 : 1); // some zero lengths too
        d[i * n + j] = v;
        d[j * n + i] = v;
        row.push(v);
      }
      text += row.join(',') + '\n';
    }
    const args = ['--format', 'lower-distance', '--dim', String(maxDim)];
    if (threshold !== undefined) args.push('--threshold', String(threshold));
    const run = spawnSync(RIPSER, args, { input: text, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const theirs = parseRipser(run.stdout).map(key).sort();
    const ours = ripsPersistenceFromDistances(d, n, { maxDim, threshold }).pairs.map(key).sort();
    assert.deepEqual(
      ours,
      theirs,
      `seed ${1000 + seed}: n=${n}, ${levels} levels, maxDim ${maxDim}`,
    );
  }
});
