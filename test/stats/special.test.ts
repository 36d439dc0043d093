import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { correlate } from '../../src/stats/correlate.js';
import {
  cosine,
  entropy,
  linearFit,
  mean,
  meanSd,
  meanFinite,
  median,
  pearson,
  quantileSorted,
  ranks,
} from '../../src/stats/describe.js';
import {
  chiSquareSurvival,
  gammaQ,
  logGamma,
  normalCdf,
  normalQuantile,
  regularizedBeta,
} from '../../src/stats/special.js';
import { studentTwoSided } from '../../src/stats/regression.js';
import { fixture } from '../helpers/paths.js';

// Reference values: scipy.special / scipy.stats / numpy in float64, by test/fixtures/stats/make_special.py.
interface Ref {
  logGamma: [number, number][];
  gammaQ: [number, number, number][];
  regularizedBeta: [number, number, number, number][];
  normalCdf: [number, number][];
  normalQuantile: [number, number][];
  chiSquareSurvival: [number, number, number][];
  studentTwoSided: [number, number, number][];
  correlations: {
    x: number[];
    y: number[];
    pearson: [number, number];
    spearman: [number, number];
    ranks: number[];
    cosine: number;
  }[];
  describe: {
    x: number[];
    mean: number;
    sd: number;
    median: number;
    quantiles: [number, number][];
  }[];
}
const ref = JSON.parse(readFileSync(fixture('stats', 'special.json'), 'utf8')) as Ref;

/** |a − b| ≤ rel·|b| + abs. */
const close = (a: number, b: number, rel: number, abs = 0, what = '') =>
  assert.ok(Math.abs(a - b) <= rel * Math.abs(b) + abs, `${what}: ${a} vs ${b}`);

test('logGamma matches scipy.special.gammaln to 1e-13 (relative, or absolute near its zeros)', () => {
  for (const [x, v] of ref.logGamma) close(logGamma(x), v, 1e-13, 1e-13, `lnΓ(${x})`);
});

test('gammaQ matches scipy.special.gammaincc to 1e-12', () => {
  for (const [a, x, v] of ref.gammaQ) close(gammaQ(a, x), v, 1e-12, 1e-300, `Q(${a}, ${x})`);
});

test('regularizedBeta matches scipy.special.betainc to 1e-12', () => {
  for (const [x, a, b, v] of ref.regularizedBeta)
    close(regularizedBeta(x, a, b), v, 1e-12, 1e-300, `I_${x}(${a}, ${b})`);
});

test('normal CDF and quantile match scipy.special.ndtr / ndtri (1e-13; Acklam 1.2e-9)', () => {
  for (const [z, v] of ref.normalCdf) close(normalCdf(z), v, 1e-13, 1e-300, `Φ(${z})`);
  for (const [p, v] of ref.normalQuantile) close(normalQuantile(p), v, 1.2e-9, 0, `Φ⁻¹(${p})`);
});

test('χ² and Student-t tails match scipy.stats.chi2.sf and 2·t.sf to 1e-12', () => {
  for (const [x, k, v] of ref.chiSquareSurvival)
    close(chiSquareSurvival(x, k), v, 1e-12, 1e-300, `χ²(${x}; ${k})`);
  for (const [t, nu, v] of ref.studentTwoSided)
    close(studentTwoSided(t, nu), v, 1e-12, 1e-300, `t(${t}; ${nu})`);
});

test('pearson, ranks, correlate and cosine match scipy.stats.pearsonr / spearmanr / rankdata', () => {
  for (const c of ref.correlations) {
    close(pearson(c.x, c.y)!, c.pearson[0], 1e-13, 0, 'r');
    assert.deepEqual(ranks(c.x), c.ranks);
    const k = correlate(c.x, c.y);
    close(k.pearsonR!, c.pearson[0], 1e-13, 0, 'r');
    close(k.pearsonP!, c.pearson[1], 1e-10, 0, 'p(r)');
    close(k.spearmanRho!, c.spearman[0], 1e-13, 0, 'ρ');
    close(k.spearmanP!, c.spearman[1], 1e-10, 0, 'p(ρ)');
    close(cosine(c.x, c.y), c.cosine, 1e-13, 0, 'cos');
  }
});

test('mean, sample sd, median and quantiles match numpy (ddof = 1; np.quantile linear)', () => {
  for (const d of ref.describe) {
    close(mean(d.x), d.mean, 1e-14, 1e-15, 'mean');
    close(meanSd(d.x).sd, d.sd, 1e-13, 1e-15, 'sd');
    close(median(d.x), d.median, 1e-15, 0, 'median');
    const sorted = [...d.x].sort((a, b) => a - b);
    for (const [q, v] of d.quantiles) close(quantileSorted(sorted, q), v, 1e-14, 1e-15, `q${q}`);
  }
});

test('degenerate inputs: no values, a constant variable, a zero vector', () => {
  assert.ok(Number.isNaN(mean([])));
  assert.ok(Number.isNaN(median([])));
  assert.equal(pearson([1, 1, 1], [1, 2, 3]), null);
  assert.equal(pearson([1, 1 + 1e-15, 1], [1, 2, 3]), null); // constant to rounding
  assert.ok(Number.isNaN(cosine([0, 0], [1, 2])));
  // closed form: y = 2 + 3x exactly
  const fit = linearFit([0, 1, 2, 3], [2, 5, 8, 11]);
  close(fit.slope, 3, 1e-15, 0, 'slope');
  close(fit.intercept, 2, 1e-15, 0, 'intercept');
  assert.equal(fit.r2, 1);
});

test('entropy and the mean of finite values by closed forms: ln n for a uniform law, NaN and ±∞ skipped', () => {
  close(entropy(new Array(7).fill(1 / 7)), Math.log(7), 1e-15, 0, 'H(uniform 7)');
  assert.equal(entropy([0, 1, 0]), 0);
  close(
    entropy([0.25, 0.75]),
    -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75)),
    1e-15,
    0,
    'H(¼, ¾)',
  );
  assert.equal(meanFinite([1, NaN, 3, Infinity]), 2);
  assert.equal(meanFinite([NaN]), null);
});
