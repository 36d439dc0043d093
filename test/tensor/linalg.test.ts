import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  matrixOperator,
  pca,
  singularValues,
  svd,
  symEig,
  topSvd,
  type Svd,
} from '../../src/tensor/linalg.js';
import { createRng } from '../../src/tensor/rng.js';

// References: the defining identities (A = U S Vᵀ, orthonormal U and V), closed forms (diagonal,
// rank-1, rotation, a matrix built from a known spectrum), and numpy.linalg.svd when python3
// with numpy is on the machine.

function randomMatrix(m: number, n: number, seed: number): Float64Array {
  const rng = createRng(seed);
  return Float64Array.from({ length: m * n }, () => rng.normal());
}

function reconstructionError(a: ArrayLike<number>, f: Svd): number {
  let err = 0;
  let norm = 0;
  for (let i = 0; i < f.m; i++) {
    for (let j = 0; j < f.n; j++) {
      let s = 0;
      for (let k = 0; k < f.k; k++) s += f.u[k * f.m + i] * f.s[k] * f.v[k * f.n + j];
      err += (s - a[i * f.n + j]) ** 2;
      norm += a[i * f.n + j] ** 2;
    }
  }
  return Math.sqrt(err / Math.max(norm, 1e-300));
}

/** max |R Rᵀ − I| over the first k rows of r [k, len]. */
function orthonormalityError(r: Float64Array, k: number, len: number): number {
  let worst = 0;
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      let s = 0;
      for (let i = 0; i < len; i++) s += r[a * len + i] * r[b * len + i];
      worst = Math.max(worst, Math.abs(s - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

/** Q [n, n] orthogonal, from the SVD of a random matrix (its U). */
function randomOrthogonal(n: number, seed: number): Float64Array {
  return svd(randomMatrix(n, n, seed), n, n).u;
}

test('svd: U S Vᵀ reconstructs square, tall and wide matrices, with orthonormal U and V and sorted s', () => {
  for (const [m, n] of [
    [1, 1],
    [6, 6],
    [9, 4],
    [4, 9],
    [40, 40],
  ]) {
    const a = randomMatrix(m, n, m * 100 + n);
    const f = svd(a, m, n);
    assert.equal(f.k, Math.min(m, n));
    assert.ok(reconstructionError(a, f) < 1e-12, `${m}×${n} reconstruction`);
    assert.ok(orthonormalityError(f.u, f.k, m) < 1e-12, `${m}×${n} U`);
    assert.ok(orthonormalityError(f.v, f.k, n) < 1e-12, `${m}×${n} V`);
    for (let i = 1; i < f.k; i++) assert.ok(f.s[i] <= f.s[i - 1]);
  }
});

test('svd: closed forms — a diagonal, a rank-1 outer product, a rotation', () => {
  // diag(3, −1, 2): s = (3, 2, 1), vectors ±e_i with u_i·v_i carrying the sign of the entry
  const diag = svd([3, 0, 0, 0, -1, 0, 0, 0, 2], 3, 3);
  assert.deepEqual(
    Array.from(diag.s, (x) => Math.round(x * 1e12) / 1e12),
    [3, 2, 1],
  );
  const axis = [0, 2, 1];
  const sign = [1, 1, -1];
  for (let k = 0; k < 3; k++) {
    assert.ok(Math.abs(Math.abs(diag.u[k * 3 + axis[k]]) - 1) < 1e-12);
    assert.ok(Math.abs(diag.u[k * 3 + axis[k]] * diag.v[k * 3 + axis[k]] - sign[k]) < 1e-12);
  }
  // x yᵀ: s_1 = ‖x‖‖y‖, the rest 0; u_1 = ±x/‖x‖, v_1 = ±y/‖y‖; U still orthonormal
  const x = [1, 2, 2];
  const y = [3, 0, 4, 0];
  const outer = x.flatMap((xi) => y.map((yj) => xi * yj));
  const r1 = svd(outer, 3, 4);
  assert.ok(Math.abs(r1.s[0] - 15) < 1e-12);
  for (let k = 1; k < 3; k++) assert.ok(r1.s[k] < 1e-12);
  const su = Math.sign(r1.u[0]);
  x.forEach((xi, i) => assert.ok(Math.abs(r1.u[i] - (su * xi) / 3) < 1e-12));
  y.forEach((yj, j) => assert.ok(Math.abs(r1.v[j] - (su * yj) / 5) < 1e-12));
  assert.ok(orthonormalityError(r1.u, 3, 3) < 1e-12);
  // a rotation by θ: both singular values 1
  const th = 0.7;
  const rot = svd([Math.cos(th), -Math.sin(th), Math.sin(th), Math.cos(th)], 2, 2);
  assert.ok(Math.abs(rot.s[0] - 1) < 1e-12 && Math.abs(rot.s[1] - 1) < 1e-12);
  assert.ok(
    reconstructionError([Math.cos(th), -Math.sin(th), Math.sin(th), Math.cos(th)], rot) < 1e-12,
  );
});

test('svd: singular values agree with numpy.linalg.svd (skipped without python3 + numpy)', (t) => {
  const m = 7;
  const n = 5;
  const a = randomMatrix(m, n, 11);
  const script = `import json,sys,numpy as np\na=np.array(json.loads(sys.stdin.read())).reshape(${m},${n})\nprint(json.dumps(np.linalg.svd(a,compute_uv=False).tolist()))`;
  const r = spawnSync('python3', ['-c', script], {
    input: JSON.stringify(Array.from(a)),
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    t.skip('python3 with numpy is not available');
    return;
  }
  const ref = JSON.parse(r.stdout) as number[];
  const f = svd(a, m, n);
  const values = singularValues(a, m, n);
  ref.forEach((s, i) => assert.ok(Math.abs(values[i] - s) < 1e-12 * ref[0], `singularValues ${i}`));
  ref.forEach((s, i) =>
    assert.ok(Math.abs(f.s[i] - s) < 1e-12 * ref[0], `s_${i}: ${f.s[i]} vs numpy ${s}`),
  );
});

test('singularValues (bidiagonalisation + tridiagonal QL) agree with the Jacobi SVD, also for rank-deficient matrices', () => {
  assert.deepEqual(
    Array.from(
      singularValues([3, 0, 0, 0, -1, 0, 0, 0, 2], 3, 3),
      (x) => Math.round(x * 1e12) / 1e12,
    ),
    [3, 2, 1],
  );
  for (const [m, n] of [
    [1, 1],
    [7, 7],
    [9, 4],
    [4, 9],
    [50, 50],
  ]) {
    const a = randomMatrix(m, n, m + 7 * n);
    const ref = svd(a, m, n).s;
    const got = singularValues(a, m, n);
    ref.forEach((s, i) => assert.ok(Math.abs(got[i] - s) < 1e-12 * ref[0], `${m}×${n} s_${i}`));
  }
  // rank 3 of 30 (a product of 30×3 and 3×30 factors): three values, then zeros
  const left = randomMatrix(30, 3, 1);
  const right = randomMatrix(3, 30, 2);
  const low = new Float64Array(900);
  for (let i = 0; i < 30; i++)
    for (let j = 0; j < 30; j++)
      for (let k = 0; k < 3; k++) low[i * 30 + j] += left[i * 3 + k] * right[k * 30 + j];
  const ref = svd(low, 30, 30).s;
  const got = singularValues(low, 30, 30);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(got[i] - ref[i]) < 1e-12 * ref[0]);
  for (let i = 3; i < 30; i++) assert.ok(got[i] < 1e-7 * ref[0], `s_${i} = ${got[i]}`);
});

test('topSvd: the top 10 of a 120×100 matrix with a known spectrum match the full SVD', () => {
  const m = 120;
  const n = 100;
  const r = Math.min(m, n);
  const spectrum = Array.from({ length: r }, (_, i) => 5 * 0.8 ** i);
  // A = Q1[:, :r] diag(s) Q2ᵀ from two random orthogonal matrices
  const q1 = randomOrthogonal(m, 1);
  const q2 = randomOrthogonal(n, 2);
  const a = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += q1[k * m + i] * spectrum[k] * q2[k * n + j];
      a[i * n + j] = s;
    }
  }
  const op = matrixOperator(a, m, n);
  const top = topSvd(op, 10, 7);
  op.free();
  const full = svd(a, m, n);
  assert.equal(top.k, 10);
  for (let i = 0; i < 10; i++) {
    assert.ok(
      Math.abs(top.s[i] - spectrum[i]) < 1e-5 * spectrum[0],
      `s_${i}: ${top.s[i]} vs ${spectrum[i]}`,
    );
    assert.ok(Math.abs(top.s[i] - full.s[i]) < 1e-5 * spectrum[0]);
    let cu = 0;
    let cv = 0;
    for (let j = 0; j < m; j++) cu += top.u[i * m + j] * full.u[i * m + j];
    for (let j = 0; j < n; j++) cv += top.v[i * n + j] * full.v[i * n + j];
    assert.ok(
      Math.abs(Math.abs(cu) - 1) < 1e-4 && Math.abs(Math.abs(cv) - 1) < 1e-4,
      `vector ${i}: |cos| ${cu}, ${cv}`,
    );
  }
  assert.ok(orthonormalityError(top.u, 10, m) < 1e-6);
  assert.ok(orthonormalityError(top.v, 10, n) < 1e-6);
});

test('topSvd: the same seed gives the same result', () => {
  const a = Float32Array.from(randomMatrix(30, 30, 3));
  const op = matrixOperator(a, 30, 30);
  const x = topSvd(op, 5, 9);
  const y = topSvd(op, 5, 9);
  op.free();
  assert.deepEqual(x.s, y.s);
  assert.deepEqual(x.u, y.u);
});

test('symEig: closed form of [[2,1],[1,2]] and A v = λ v on a random symmetric matrix', () => {
  const e2 = symEig([2, 1, 1, 2], 2);
  assert.ok(Math.abs(e2.values[0] - 3) < 1e-14 && Math.abs(e2.values[1] - 1) < 1e-14);
  assert.ok(Math.abs(Math.abs(e2.vectors[0]) - Math.SQRT1_2) < 1e-14);
  const n = 12;
  const b = randomMatrix(n, n, 5);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) a[i * n + j] = b[i * n + j] + b[j * n + i];
  const e = symEig(a, n);
  for (let k = 0; k < n; k++) {
    for (let i = 0; i < n; i++) {
      let av = 0;
      for (let j = 0; j < n; j++) av += a[i * n + j] * e.vectors[k * n + j];
      assert.ok(Math.abs(av - e.values[k] * e.vectors[k * n + i]) < 1e-10);
    }
    if (k > 0) assert.ok(e.values[k] <= e.values[k - 1]);
  }
  assert.ok(orthonormalityError(e.vectors, n, n) < 1e-12);
});

test('pca: points on a line give that line as the first component with all the variance', () => {
  const dir = [2 / 3, -1 / 3, 2 / 3];
  const centre = [1, 5, -2];
  const ts = [-2, -1, 0, 0.5, 3, 4.5];
  const x = ts.flatMap((t) => dir.map((v, j) => centre[j] + t * v));
  const p = pca(x, ts.length, 3, 2);
  const tMean = ts.reduce((a, b) => a + b, 0) / ts.length;
  const variance = ts.reduce((a, t) => a + (t - tMean) ** 2, 0) / (ts.length - 1);
  assert.ok(Math.abs(p.explainedVariance[0] - variance) < 1e-10);
  assert.ok(Math.abs(p.explainedVarianceRatio[0] - 1) < 1e-10);
  const sign = Math.sign(p.components[0]);
  dir.forEach((v, j) => assert.ok(Math.abs(p.components[j] - sign * v) < 1e-10));
  centre.forEach((c, j) => assert.ok(Math.abs(p.mean[j] - (c + tMean * dir[j])) < 1e-10));
  ts.forEach((t, i) => assert.ok(Math.abs(p.scores[i * 2] - sign * (t - tMean)) < 1e-10));
});
