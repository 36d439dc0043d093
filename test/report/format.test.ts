import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cell,
  compact,
  duration,
  fixed,
  percent,
  precise,
  rounded,
  tableNumber,
} from '../../src/report/format.js';

test('number forms by hand: fixed, precise, rounded, compact, percent', () => {
  assert.equal(fixed(0.12345, 3), '0.123');
  assert.equal(fixed(2, 2), '2.00');
  assert.equal(precise(0.5, 3), '0.500');
  assert.equal(precise(123456, 4), '1.235e+5');
  assert.equal(rounded(0.5, 3), '0.5');
  assert.equal(rounded(1234567, 4), '1235000');
  assert.equal(compact(0), '0');
  assert.equal(compact(0.0005), '5.00e-4');
  assert.equal(compact(12345), '1.23e+4');
  assert.equal(compact(3.14159), '3.142');
  assert.equal(percent(0.256), '26%');
  assert.equal(percent(0.256, 1), '25.6%');
});

test('missing, NaN and infinite values print –, – and ∞ / −∞ in every form', () => {
  for (const f of [
    (v: number | null) => fixed(v, 2),
    (v: number | null) => precise(v, 3),
    (v: number | null) => rounded(v, 4),
    compact,
    tableNumber,
    (v: number | null) => percent(v),
  ]) {
    assert.equal(f(null), '–');
    assert.equal(f(Number.NaN), '–');
    assert.equal(f(Infinity), '∞');
    assert.equal(f(-Infinity), '−∞');
  }
});

test('table numbers and cells: integers as they are, 4 significant digits, exponent below 1e-3 and from 1e6', () => {
  assert.equal(tableNumber(42), '42');
  assert.equal(tableNumber(0.123456), '0.1235');
  assert.equal(tableNumber(0.0001234), '1.234e-4');
  assert.equal(tableNumber(1234567.5), '1.235e+6');
  assert.equal(cell('a<b'), 'a<b'); // not escaped: html.ts num escapes
  assert.equal(cell(0.5), '0.5');
});

test('durations: seconds, minutes and seconds, hours and minutes; ? when unknown', () => {
  assert.equal(duration(42.4), '42s');
  assert.equal(duration(185), '3m05s');
  assert.equal(duration(3720), '1h02m');
  assert.equal(duration(Number.NaN), '?');
});
