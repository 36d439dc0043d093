import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { correlationPValue } from '../../src/stats/correlate.js';
import { benjaminiHochberg } from '../../src/stats/multiple.js';
import {
  erfc,
  fixedEffectsRegression,
  isConstant,
  normalTwoSided,
  ols,
  randomInterceptModel,
  studentTwoSided,
} from '../../src/stats/regression.js';
import { createRng } from '../../src/tensor/rng.js';
import { fixture } from '../helpers/paths.js';

const close = (a: number, b: number, tol: number) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

function numpy(code: string, input: unknown): unknown {
  const out = spawnSync('python3', ['-c', code], {
    input: JSON.stringify(input),
    encoding: 'utf8',
  });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout);
}

// ---- Benjamini–Hochberg: hand-computed q-values ---------------------------------------------

test('BH q-values by hand: p = (0.01, 0.04, 0.03, 0.005) → q = (0.02, 0.04, 0.04, 0.02)', () => {
  // sorted 0.005, 0.01, 0.03, 0.04 → m·p/rank = 0.02, 0.02, 0.04, 0.04; running minimum from the top
  const q = benjaminiHochberg([0.01, 0.04, 0.03, 0.005]);
  [0.02, 0.04, 0.04, 0.02].forEach((v, i) => close(q[i]!, v, 1e-15));
});

test('BH: nulls are left out of m; the running minimum and the cap at 1 apply', () => {
  // m = 2: 0.01 → 0.02, 0.5 → 0.5
  assert.deepEqual(benjaminiHochberg([null, 0.5, 0.01]), [null, 0.5, 0.02]);
  // sorted 0.01, 0.02, 0.9: 0.03, 0.03, 0.9; the 0.9 stays 0.9
  const q = benjaminiHochberg([0.9, 0.02, 0.01]);
  [0.9, 0.03, 0.03].forEach((v, i) => close(q[i]!, v, 1e-15));
  assert.deepEqual(benjaminiHochberg([0.8, 0.9]), [0.9, 0.9]);
});

// ---- p-values: closed forms of Student t with 1 and 2 degrees of freedom ----------------------

test('Pearson p-values: n = 3 gives 1 − (2/π)·asin|r|, n = 4 gives 1 − |r| (closed forms)', () => {
  // ν = 1: t = r/√(1−r²), F is Cauchy, p = 1 − (2/π)·atan|t| = 1 − (2/π)·asin|r|.
  // ν = 2: t² = 2r²/(1−r²), p = 1 − |t|/√(2 + t²) = 1 − |r|.
  for (const r of [0.1, -0.35, 0.6, 0.93, -0.999]) {
    close(correlationPValue(r, 3)!, 1 - (2 / Math.PI) * Math.asin(Math.abs(r)), 1e-12);
    close(correlationPValue(r, 4)!, 1 - Math.abs(r), 1e-12);
  }
});

test('Student t and normal two-sided p-values against closed forms and erfc(1)', () => {
  for (const t of [0.2, 1, 3.5, -7]) {
    close(studentTwoSided(t, 1), 1 - (2 / Math.PI) * Math.atan(Math.abs(t)), 1e-12);
    close(studentTwoSided(t, 2), 1 - Math.abs(t) / Math.sqrt(2 + t * t), 1e-12);
  }
  close(erfc(1), 0.157299207050285, 1e-13); // Abramowitz & Stegun table value
  close(erfc(-0.5), 1 + 0.520499877813047, 1e-13);
  close(normalTwoSided(1.959963984540054), 0.05, 1e-13);
});

// ---- regressions: closed forms and numpy ----------------------------------------------------

test('random-intercept REML on a balanced one-way layout equals the ANOVA estimates (closed form)', () => {
  // G groups of n: σ̂² = MSW, τ̂² = (MSB − MSW)/n when positive, β̂ = grand mean, SE² = MSB/(G·n).
  const G = 5;
  const n = 4;
  const rng = createRng(5);
  const y: number[] = [];
  const groups: number[] = [];
  for (let g = 0; g < G; g++) {
    const u = 2 * rng.normal();
    for (let i = 0; i < n; i++) {
      y.push(10 + u + rng.normal());
      groups.push(g);
    }
  }
  const grand = y.reduce((a, b) => a + b, 0) / y.length;
  const means = Array.from(
    { length: G },
    (_, g) => y.slice(g * n, (g + 1) * n).reduce((a, b) => a + b, 0) / n,
  );
  const msb = (n * means.reduce((a, m) => a + (m - grand) ** 2, 0)) / (G - 1);
  const msw = y.reduce((a, v, i) => a + (v - means[groups[i]]) ** 2, 0) / (G * (n - 1));
  assert.ok(msb > msw);
  const fit = randomInterceptModel(y, [], groups, [])!;
  close(fit.sigma2, msw, 1e-7);
  close(fit.groupVariance, (msb - msw) / n, 1e-7);
  close(fit.coefficients[0].estimate, grand, 1e-12);
  close(fit.coefficients[0].se, Math.sqrt(msb / (G * n)), 1e-7);
});

test('random-intercept REML with covariates and unequal groups matches a dense-matrix numpy fit', () => {
  const rng = createRng(9);
  const sizes = [3, 5, 4, 6, 2, 5, 7];
  const y: number[] = [];
  const x1: number[] = [];
  const x2: number[] = [];
  const groups: number[] = [];
  sizes.forEach((s, g) => {
    const u = 0.8 * rng.normal();
    for (let i = 0; i < s; i++) {
      const a = rng.normal();
      const b = rng.normal() + g * 0.1;
      x1.push(a);
      x2.push(b);
      y.push(1 + 0.5 * a - 0.3 * b + u + 0.6 * rng.normal());
      groups.push(g);
    }
  });
  // Reference: V = I + λ·(block of ones), GLS by np.linalg.solve, REML profile
  // −½[(N−p)·log(RSS/(N−p)) + log|V| + log|XᵀV⁻¹X|] maximised over log10 λ by grid + golden section.
  const py = `
import json, sys, numpy as np
d = json.load(sys.stdin); y = np.array(d['y']); g = np.array(d['g'])
X = np.column_stack([np.ones(len(y)), d['x1'], d['x2']]); N, p = X.shape
B = (g[:, None] == g[None, :]).astype(float)
def fit(lam):
    V = np.eye(N) + lam * B
    Vi = np.linalg.inv(V)
    A = X.T @ Vi @ X
    beta = np.linalg.solve(A, X.T @ Vi @ y)
    r = y - X @ beta
    rss = r @ Vi @ r
    ll = -0.5 * ((N - p) * np.log(rss / (N - p)) + np.linalg.slogdet(V)[1] + np.linalg.slogdet(A)[1])
    return ll, beta, rss, A
us = np.linspace(-8, 8, 641); lls = [fit(10 ** u)[0] for u in us]; k = int(np.argmax(lls))
lo, hi = us[max(k - 1, 0)], us[min(k + 1, len(us) - 1)]; r = (5 ** 0.5 - 1) / 2
for _ in range(200):
    a = hi - r * (hi - lo); b = lo + r * (hi - lo)
    if fit(10 ** a)[0] > fit(10 ** b)[0]: hi = b
    else: lo = a
lam = 10 ** ((lo + hi) / 2); ll, beta, rss, A = fit(lam); s2 = rss / (N - p)
se = np.sqrt(np.diag(np.linalg.inv(A)) * s2)
print(json.dumps({'beta': beta.tolist(), 'se': se.tolist(), 's2': s2, 'tau2': lam * s2}))`;
  const ref = numpy(py, { y, g: groups, x1, x2 }) as {
    beta: number[];
    se: number[];
    s2: number;
    tau2: number;
  };
  const fit = randomInterceptModel(y, [x1, x2], groups, ['x1', 'x2'])!;
  assert.deepEqual(
    fit.coefficients.map((c) => c.name),
    ['Intercept', 'x1', 'x2'],
  );
  fit.coefficients.forEach((c, j) => {
    close(c.estimate, ref.beta[j], 1e-6);
    close(c.seGls!, ref.se[j], 1e-6);
    close(c.p, normalTwoSided(c.estimate / c.se), 1e-12);
  });
  close(fit.sigma2, ref.s2, 1e-6);
  close(fit.groupVariance, ref.tau2, 1e-5);
});

test('fixed-effects regression equals OLS with one dummy per group (numpy lstsq), incl. SEs and df', () => {
  const rng = createRng(21);
  const groups = Array.from({ length: 30 }, (_, i) => ['a', 'b', 'c', 'd'][i % 4]);
  const x1 = groups.map(() => rng.normal());
  const x2 = groups.map((g) => rng.normal() + (g === 'b' ? 1 : 0));
  const y = groups.map((g, i) => 2 * x1[i] - x2[i] + (g === 'c' ? 3 : 0) + 0.5 * rng.normal());
  const py = `
import json, sys, numpy as np
d = json.load(sys.stdin); y = np.array(d['y']); gs = sorted(set(d['g']))
D = np.array([[1.0 if g == h else 0.0 for h in gs] for g in d['g']])
X = np.column_stack([d['x1'], d['x2'], D]); N, p = X.shape
beta, *_ = np.linalg.lstsq(X, y, rcond=None); r = y - X @ beta; s2 = r @ r / (N - p)
se = np.sqrt(np.diag(np.linalg.inv(X.T @ X)) * s2)
print(json.dumps({'beta': beta[:2].tolist(), 'se': se[:2].tolist(), 'df': N - p}))`;
  const ref = numpy(py, { y, g: groups, x1, x2 }) as { beta: number[]; se: number[]; df: number };
  const fit = fixedEffectsRegression(y, [x1, x2], groups, ['x1', 'x2'])!;
  assert.equal(fit.df, ref.df);
  assert.equal(fit.groups, 4);
  fit.coefficients.forEach((c, j) => {
    close(c.estimate, ref.beta[j], 1e-10);
    close(c.se, ref.se[j], 1e-10);
    close(c.p, studentTwoSided(c.statistic, ref.df), 1e-14);
  });
});

test('OLS on five points gives the closed-form line; a constant column is refused as singular', () => {
  const x = [0, 1, 2, 3, 4];
  const y = [1, 3.1, 4.9, 7.2, 8.8];
  const fit = ols(y, [x.map(() => 1), x], ['Intercept', 'x'])!;
  // closed form: x̄ = 2, ȳ = 5, Sxy = 8 + 1.9 + 0 + 2.2 + 7.6 = 19.7, Sxx = 10:
  // slope = 1.97, intercept = ȳ − slope·x̄ = 1.06
  close(fit.coefficients[1].estimate, 1.97, 1e-12);
  close(fit.coefficients[0].estimate, 1.06, 1e-12);
  assert.equal(fit.df, 3);
  assert.equal(ols(y, [x.map(() => 1), x.map(() => 2)], ['a', 'b']), null);
});

// ---- statsmodels MixedLM: committed reference fits (test/fixtures/stats/make_mixedlm.py) ------

interface MixedReference {
  cases: {
    name: string;
    y: number[];
    groups: number[];
    columns: number[][];
    names: string[];
    statsmodels: {
      params: number[];
      bse: number[];
      p: number[];
      scale: number;
      cov_re: number;
    };
  }[];
  constant_target: { converged: boolean; bse: (number | null)[] };
}
const mixedReference = JSON.parse(
  readFileSync(fixture('stats', 'mixedlm.json'), 'utf8'),
) as MixedReference;

for (const c of mixedReference.cases) {
  test(`random-intercept SEs equal statsmodels MixedLM bse_fe (${c.name}; fixture by statsmodels 0.13.5)`, () => {
    const fit = randomInterceptModel(c.y, c.columns, c.groups, c.names)!;
    assert.equal(fit.covariance, 'statsmodels observed information');
    const sm = c.statsmodels;
    fit.coefficients.forEach((co, j) => {
      close(co.estimate, sm.params[j], 1e-5);
      close(co.se, sm.bse[j], 1e-4);
      close(co.p, sm.p[j], 1e-4);
      // The GLS covariance ignores the uncertainty in λ: never larger than statsmodels'.
      assert.ok(co.seGls! <= co.se * (1 + 1e-12), `${co.name}: GLS ${co.seGls} vs ${co.se}`);
    });
    close(fit.sigma2, sm.scale, 1e-5);
    close(fit.groupVariance, sm.cov_re, 1e-4);
  });
}

test('a constant target: statsmodels does not converge (NaN SEs) and the DMET summary refuses the fit', () => {
  assert.equal(mixedReference.constant_target.converged, false);
  assert.deepEqual(mixedReference.constant_target.bse, [null, null]);
  assert.equal(isConstant([1, 1, 1 + 1e-15, 1 - 2e-16]), true);
  assert.equal(isConstant([1e-20, 3e-20, 2e-20]), false);
  assert.equal(isConstant([0, 0, 0]), true);
  assert.equal(isConstant([0.5, 0.5000001]), false);
});

test('p-values stay in [0, 1] at a zero statistic', () => {
  assert.equal(erfc(0), 1);
  assert.equal(normalTwoSided(0), 1);
  close(normalTwoSided(1e-9), 1 - 1e-9 * Math.sqrt(2 / Math.PI), 1e-15); // erfc(ε) ≈ 1 − 2ε/√π
  assert.ok(studentTwoSided(0, 7) <= 1);
  assert.ok(correlationPValue(1e-12, 30)! <= 1);
});
