import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { erfc } from '../../src/tensor/special.js';
import { fixture } from '../helpers/paths.js';

// Reference values: scipy.special.erfc in float64, by test/fixtures/stats/make_special.py.
const ref = JSON.parse(readFileSync(fixture('stats', 'special.json'), 'utf8')) as {
  erfc: [number, number][];
};

test('erfc matches scipy.special.erfc to 1e-14 relative for |x| ≤ 6 (and underflows like it beyond)', () => {
  for (const [x, v] of ref.erfc) {
    const tol = Math.abs(x) <= 6 ? 1e-14 * Math.abs(v) : 1e-13 * Math.abs(v) + 1e-300;
    assert.ok(Math.abs(erfc(x) - v) <= tol, `erfc(${x}) = ${erfc(x)} vs ${v}`);
  }
});

test('erfc closed forms: erfc(0) = 1, erfc(±∞) = 0 / 2, erfc(−x) = 2 − erfc(x)', () => {
  assert.equal(erfc(0), 1);
  assert.equal(erfc(Infinity), 0);
  assert.equal(erfc(-Infinity), 2);
  for (const x of [0.3, 1.7, 4.2]) assert.ok(Math.abs(erfc(-x) - (2 - erfc(x))) < 1e-15);
});
