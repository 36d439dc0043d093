/**
 * nn/mlp: reverse-mode gradients and forward-mode input Jacobians against central finite
 * differences, the float64 matmul against the plain triple loop, and the initialisation bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createMlp,
  matmulABt,
  mlpBackward,
  mlpForward,
  mlpInputJacobian,
  mlpLayout,
} from '../../src/nn/mlp.js';
import { createRng } from '../../src/tensor/rng.js';

/** L(params, x) = Σ w ⊙ out with fixed random weights w: ∂L/∂out = w. */
function weightedOutput(
  mlp: ReturnType<typeof createMlp>,
  x: Float64Array,
  n: number,
  w: Float64Array,
): number {
  const { out } = mlpForward(mlp, x, n);
  let s = 0;
  for (let i = 0; i < out.length; i++) s += w[i] * out[i];
  return s;
}

test('mlpBackward matches central finite differences for every parameter and input (relative error < 1e-7)', () => {
  const rng = createRng(3);
  const mlp = createMlp([3, 5, 4, 2], rng);
  const n = 6;
  const x = Float64Array.from({ length: n * 3 }, () => rng.normal());
  const w = Float64Array.from({ length: n * 2 }, () => rng.normal());
  const { tape } = mlpForward(mlp, x, n);
  const grad = new Float64Array(mlp.params.length);
  const gIn = new Float64Array(n * 3);
  mlpBackward(mlp, tape, w, grad, gIn);
  const h = 1e-5;
  let worst = 0;
  for (let p = 0; p < mlp.params.length; p++) {
    const keep = mlp.params[p];
    mlp.params[p] = keep + h;
    const up = weightedOutput(mlp, x, n, w);
    mlp.params[p] = keep - h;
    const down = weightedOutput(mlp, x, n, w);
    mlp.params[p] = keep;
    const fd = (up - down) / (2 * h);
    worst = Math.max(worst, Math.abs(fd - grad[p]) / Math.max(1, Math.abs(fd)));
  }
  for (let i = 0; i < x.length; i++) {
    const keep = x[i];
    x[i] = keep + h;
    const up = weightedOutput(mlp, x, n, w);
    x[i] = keep - h;
    const down = weightedOutput(mlp, x, n, w);
    x[i] = keep;
    const fd = (up - down) / (2 * h);
    worst = Math.max(worst, Math.abs(fd - gIn[i]) / Math.max(1, Math.abs(fd)));
  }
  assert.ok(worst < 1e-7, `worst relative error ${worst}`);
});

test('mlpBackward adds into grad (two calls give twice the gradient)', () => {
  const rng = createRng(4);
  const mlp = createMlp([2, 3, 1], rng);
  const x = Float64Array.of(0.3, -0.7, 1.1, 0.2);
  const { tape } = mlpForward(mlp, x, 2);
  const g1 = new Float64Array(mlp.params.length);
  mlpBackward(mlp, tape, Float64Array.of(1, -2), g1);
  const g2 = new Float64Array(mlp.params.length);
  mlpBackward(mlp, tape, Float64Array.of(1, -2), g2);
  mlpBackward(mlp, tape, Float64Array.of(1, -2), g2);
  g1.forEach((v, i) => assert.ok(Math.abs(2 * v - g2[i]) < 1e-14));
});

test('mlpInputJacobian matches central finite differences of the outputs (< 1e-8)', () => {
  const rng = createRng(5);
  const mlp = createMlp([4, 7, 6, 3], rng, 2);
  const x = Float64Array.from({ length: 4 }, () => rng.normal());
  const jac = mlpInputJacobian(mlp, x);
  const h = 1e-5;
  for (let j = 0; j < 4; j++) {
    const up = Float64Array.from(x);
    const down = Float64Array.from(x);
    up[j] += h;
    down[j] -= h;
    const fu = mlpForward(mlp, up, 1).out;
    const fdn = mlpForward(mlp, down, 1).out;
    for (let i = 0; i < 3; i++) {
      const fd = (fu[i] - fdn[i]) / (2 * h);
      assert.ok(Math.abs(fd - jac[i * 4 + j]) < 1e-8, `J[${i},${j}] ${jac[i * 4 + j]} vs ${fd}`);
    }
  }
});

test('a one-layer network is the affine map W·x + b (hand-computed)', () => {
  const mlp = createMlp([2, 2], createRng(1));
  // W = [[1, 2], [3, 4]], b = [0.5, −1]
  mlp.params.set([1, 2, 3, 4, 0.5, -1]);
  const { out } = mlpForward(mlp, Float64Array.of(1, -1, 2, 0.5), 2);
  assert.deepEqual(Array.from(out), [-0.5, -2, 3.5, 7]);
  assert.deepEqual(Array.from(mlpInputJacobian(mlp, [0, 0])), [1, 2, 3, 4]);
});

test('matmulABt equals the triple loop, with remainders in every blocked dimension and accumulation', () => {
  const rng = createRng(6);
  for (const [n, m, k] of [
    [7, 5, 3],
    [4, 2, 9],
    [1, 1, 1],
    [9, 8, 17],
  ]) {
    const a = Float64Array.from({ length: n * k }, () => rng.normal());
    const b = Float64Array.from({ length: m * k }, () => rng.normal());
    const out = Float64Array.from({ length: n * m }, () => 1);
    matmulABt(out, a, b, n, m, k, true);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < m; c++) {
        let s = 1;
        for (let i = 0; i < k; i++) s += a[r * k + i] * b[c * k + i];
        assert.ok(Math.abs(s - out[r * m + c]) < 1e-12);
      }
    }
  }
});

test('createMlp: PyTorch nn.Linear bounds |W|, |b| ≤ 1/√fan_in; the layout counts every weight', () => {
  const sizes = [9, 128, 128, 8];
  const mlp = createMlp(sizes, createRng(7));
  const layout = mlpLayout(sizes);
  assert.equal(mlp.params.length, 9 * 128 + 128 + 128 * 128 + 128 + 128 * 8 + 8);
  assert.equal(layout.total, mlp.params.length);
  for (let l = 0; l < 3; l++) {
    const bound = 1 / Math.sqrt(sizes[l]);
    const end = layout.b[l] + sizes[l + 1];
    for (let i = layout.w[l]; i < end; i++) assert.ok(Math.abs(mlp.params[i]) <= bound);
  }
});
