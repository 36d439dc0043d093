/**
 * nn/adam against Kingma & Ba's Algorithm 1 computed by hand for two steps, and convergence on
 * a quadratic whose minimiser is known.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAdam } from '../../src/nn/adam.js';

test('two Adam steps equal Algorithm 1 by hand (β = 0.9, 0.999, ε = 1e-8)', () => {
  const lr = 0.1;
  const adam = createAdam(2, { lr });
  const p = Float64Array.of(1, -2);
  const g1 = [0.5, -3];
  const g2 = [-1, 2];
  adam.step(p, Float64Array.from(g1));
  // step 1: m̂ = g, v̂ = g² → θ −= lr·g/(|g| + ε)
  const after1 = [1 - (lr * 0.5) / (0.5 + 1e-8), -2 + (lr * 3) / (3 + 1e-8)];
  assert.ok(Math.abs(p[0] - after1[0]) < 1e-15 && Math.abs(p[1] - after1[1]) < 1e-15);
  adam.step(p, Float64Array.from(g2));
  for (let i = 0; i < 2; i++) {
    const m = 0.9 * (0.1 * g1[i]) + 0.1 * g2[i];
    const v = 0.999 * (0.001 * g1[i] ** 2) + 0.001 * g2[i] ** 2;
    const mhat = m / (1 - 0.9 ** 2);
    const vhat = v / (1 - 0.999 ** 2);
    const expected = after1[i] - (lr * mhat) / (Math.sqrt(vhat) + 1e-8);
    assert.ok(Math.abs(p[i] - expected) < 1e-14, `${p[i]} vs ${expected}`);
  }
  assert.equal(adam.t, 2);
});

test('Adam minimises ½‖θ − θ*‖² to within 1e-4 (θ* known)', () => {
  const target = [3, -1, 0.25];
  const adam = createAdam(3, { lr: 0.05 });
  const p = new Float64Array(3);
  for (let t = 0; t < 3000; t++) {
    adam.step(
      p,
      p.map((v, i) => v - target[i]),
    );
    if (t === 2000) adam.lr = 0.005;
  }
  p.forEach((v, i) => assert.ok(Math.abs(v - target[i]) < 1e-4, `${v} vs ${target[i]}`));
});

test('Adam refuses vectors of the wrong size', () => {
  assert.throws(() => createAdam(3).step(new Float64Array(2), new Float64Array(2)));
});
