import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { kmeans, silhouetteSamples, silhouetteScore } from '../../src/stats/cluster.js';
import { createRng } from '../../src/tensor/rng.js';

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

// ---- k-means: references are hand-computed optima -------------------------------------------

test('k-means on three separated pairs finds the pairs: centres 0.5, 10.5, 20.5, inertia 1.5 (every seed)', () => {
  const xs = [0, 1, 10, 11, 20, 21];
  const pts = xs.flatMap((x) => [x, 0]);
  for (let seed = 0; seed < 20; seed++) {
    const r = kmeans(pts, 6, 2, { k: 3, seed });
    close(r.inertia, 1.5);
    const centres = [0, 1, 2].map((c) => r.centers[c * 2]).sort((a, b) => a - b);
    assert.deepEqual(centres, [0.5, 10.5, 20.5]);
    assert.equal(r.labels[0], r.labels[1]);
    assert.equal(r.labels[2], r.labels[3]);
    assert.equal(r.labels[4], r.labels[5]);
    assert.equal(new Set(r.labels).size, 3);
    assert.equal(r.seed, seed);
  }
});

test('k-means, unequal clusters: centres (0, 1) and (16/3, 1), inertia 2 + 8/3 (hand-computed)', () => {
  // A = {(0,0), (0,2)}: centre (0,1), Σd² = 1 + 1.
  // B = {(5,0), (5,2), (6,1)}: centre (16/3, 1), Σd² = (1/9 + 1)·2 + 4/9 = 8/3.
  const pts = [0, 0, 0, 2, 5, 0, 5, 2, 6, 1];
  const r = kmeans(pts, 5, 2, { k: 2, seed: 7, nInit: 3 });
  close(r.inertia, 2 + 8 / 3, 1e-12);
  const a = r.labels[0];
  assert.deepEqual(
    [...r.labels].map((l) => l === a),
    [true, true, false, false, false],
  );
  close(r.centers[a * 2], 0);
  close(r.centers[a * 2 + 1], 1);
  close(r.centers[(1 - a) * 2], 16 / 3);
  close(r.centers[(1 - a) * 2 + 1], 1);
});

test('k-means reaches the brute-force optimum on 9 points in 3 noisy blobs, and a seed reproduces it', () => {
  const rng = createRng(3);
  const blobs = [
    [0, 0],
    [6, 1],
    [2, 7],
  ];
  const pts: number[] = [];
  for (let i = 0; i < 9; i++)
    pts.push(blobs[i % 3][0] + rng.normal(), blobs[i % 3][1] + rng.normal());
  // Reference: the minimum of Σ‖x − mean(cluster)‖² over all 3^9 labelings.
  let best = Infinity;
  for (let code = 0; code < 3 ** 9; code++) {
    const lab: number[] = [];
    for (let i = 0, c = code; i < 9; i++, c = Math.floor(c / 3)) lab.push(c % 3);
    if (new Set(lab).size < 3) continue;
    let cost = 0;
    for (let k = 0; k < 3; k++) {
      const mine = lab.flatMap((l, i) => (l === k ? [i] : []));
      for (const dim of [0, 1]) {
        const m = mine.reduce((s, i) => s + pts[i * 2 + dim], 0) / mine.length;
        cost += mine.reduce((s, i) => s + (pts[i * 2 + dim] - m) ** 2, 0);
      }
    }
    best = Math.min(best, cost);
  }
  const r = kmeans(pts, 9, 2, { k: 3, seed: 42, nInit: 10 });
  close(r.inertia, best, 1e-9);
  const again = kmeans(pts, 9, 2, { k: 3, seed: 42, nInit: 10 });
  assert.deepEqual([...again.labels], [...r.labels]);
});

test('k-means clips k to the number of points', () => {
  const r = kmeans([0, 0, 1, 1], 2, 2, { k: 3, seed: 1 });
  assert.equal(r.k, 2);
  close(r.inertia, 0);
});

// ---- silhouette: hand-computed values and a numpy brute force -------------------------------

test('silhouette of the three pairs: (2·9.5/10.5 + 4·8.5/9.5)/6 (hand-computed)', () => {
  // Points 0 and 21: a = 1, b = 10.5 → 9.5/10.5; the other four: a = 1, b = 9.5 → 8.5/9.5.
  const pts = [0, 1, 10, 11, 20, 21];
  const s = silhouetteScore(pts, 6, 1, [0, 0, 1, 1, 2, 2]);
  close(s!, (2 * (9.5 / 10.5) + 4 * (8.5 / 9.5)) / 6, 1e-15);
});

test('silhouette with a singleton cluster: s = (0.8, 0.75, 0), mean 0.51666…', () => {
  // 0 and 1 together, 5 alone: s(0) = (5 − 1)/5, s(1) = (4 − 1)/4, s(5) = 0 (cluster of one).
  const s = silhouetteSamples([0, 1, 5], 3, 1, [0, 0, 1])!;
  close(s[0], 0.8);
  close(s[1], 0.75);
  close(s[2], 0);
  close(silhouetteScore([0, 1, 5], 3, 1, [3, 3, 9])!, 1.55 / 3, 1e-15);
});

test('silhouette is undefined (null) for one cluster or one cluster per point', () => {
  assert.equal(silhouetteScore([0, 1, 2], 3, 1, [0, 0, 0]), null);
  assert.equal(silhouetteScore([0, 1, 2], 3, 1, [0, 1, 2]), null);
});

test('silhouette matches a numpy brute force on 40 random points in R^3 with 4 labels', () => {
  const rng = createRng(11);
  const n = 40;
  const dim = 3;
  const pts = Array.from({ length: n * dim }, () => rng.normal());
  const labels = Array.from({ length: n }, (_, i) => (i * 7) % 4);
  const py = `
import json, sys, numpy as np
d = json.load(sys.stdin); X = np.array(d['x']).reshape(-1, 3); L = np.array(d['l'])
D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
s = []
for i in range(len(X)):
    own = L == L[i]
    if own.sum() == 1: s.append(0.0); continue
    a = D[i, own].sum() / (own.sum() - 1)
    b = min(D[i, L == c].mean() for c in set(L.tolist()) if c != L[i])
    s.append((b - a) / max(a, b))
print(json.dumps(s))`;
  const out = spawnSync('python3', ['-c', py], {
    input: JSON.stringify({ x: pts, l: labels }),
    encoding: 'utf8',
  });
  assert.equal(out.status, 0, out.stderr);
  const ref = JSON.parse(out.stdout) as number[];
  const mine = silhouetteSamples(pts, n, dim, labels)!;
  ref.forEach((v, i) => close(mine[i], v, 1e-12));
});
