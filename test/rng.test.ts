import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../src/tensor/rng.js';

test('seeded rng: same seed, same stream; uniform mean and normal moments', () => {
  const a = createRng(42);
  const b = createRng(42);
  for (let i = 0; i < 100; i++) assert.equal(a.next(), b.next());
  const r = createRng(7);
  const n = 200000;
  let mean = 0;
  let m1 = 0;
  let m2 = 0;
  for (let i = 0; i < n; i++) {
    mean += r.next();
    const z = r.normal();
    m1 += z;
    m2 += z * z;
  }
  // Closed forms: E[U] = 1/2; E[Z] = 0, E[Z²] = 1. Tolerances are ~5 standard errors.
  assert.ok(Math.abs(mean / n - 0.5) < 5 * Math.sqrt(1 / 12 / n));
  assert.ok(Math.abs(m1 / n) < 5 / Math.sqrt(n));
  assert.ok(Math.abs(m2 / n - 1) < 5 * Math.sqrt(2 / n));
});
