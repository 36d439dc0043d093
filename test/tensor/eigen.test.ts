import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { eigenvalues, solve } from '../../src/tensor/eigen.js';
import { fixture } from '../helpers/paths.js';

// Reference values: numpy.linalg.eigvals / solve (LAPACK) in float64, by test/fixtures/stats/make_special.py.
const ref = JSON.parse(readFileSync(fixture('stats', 'special.json'), 'utf8')) as {
  eigenvalues: { a: number[]; n: number; w: [number, number][] }[];
  solve: { a: number[]; b: number[]; x: number[] }[];
};

test('eigenvalues of general matrices match numpy.linalg.eigvals (rotation, Jordan block, badly scaled)', () => {
  for (const { a, n, w } of ref.eigenvalues) {
    const got = eigenvalues(a, n);
    const want = [...w].sort((p, q) => q[0] - p[0] || q[1] - p[1]);
    let scale = 0;
    for (const v of a) scale = Math.max(scale, Math.abs(v));
    // a Jordan block of size 3 moves its eigenvalue by ε^(1/3): allow that there
    const tol = n === 3 ? 1e-4 : 1e-10 * scale;
    assert.equal(got.length, n);
    got.forEach((e, i) => {
      assert.ok(
        Math.hypot(e.re - want[i][0], e.im - want[i][1]) <= tol,
        `λ${i} = ${e.re}${e.im >= 0 ? '+' : ''}${e.im}i vs ${want[i][0]}+${want[i][1]}i`,
      );
    });
  }
});

test('solve matches numpy.linalg.solve and reports a singular system as null', () => {
  for (const s of ref.solve) {
    const x = solve(s.a, s.b, s.b.length)!;
    s.x.forEach((v, i) => assert.ok(Math.abs(x[i] - v) <= 1e-12 * Math.max(1, Math.abs(v))));
  }
  assert.equal(solve([1, 2, 2, 4], [1, 1], 2), null);
});
