/**
 * The SDE lens (papers.md §2). References, by test:
 *   recovery    — Ornstein–Uhlenbeck with known θ, m, s (the exact transition gives the
 *                 finite-Δt targets of the Euler–Maruyama likelihood in closed form) and a 2-D
 *                 double well (targets E[Δx | x]/Δt by an independent fine-step Monte Carlo;
 *                 fixed points (±1, 0) stable, (0, 0) saddle by hand);
 *   gradients   — the EM NLL and the two losses, written out again here, by central differences;
 *   simulation  — the exact mean and variance recursions of Euler–Maruyama on an OU process;
 *   statistics  — numpy (python3), Python's math.erf / statistics.NormalDist, tabulated
 *                 Kolmogorov and χ² quantiles, hand-computed values;
 *   states/CLI  — a stories260K trace read back position by position; the files written.
 * Tolerances are stated in each test; fits use small networks, fixed seeds and few epochs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { openModel } from '../../src/api.js';
import { registerAnalyze } from '../../src/cli/analyze.js';
import { registerSdeLens } from '../../src/cli/analyze-sde.js';
import { LmdynError } from '../../src/errors.js';
import { analyzeDataset, linearBaseline, linearNll } from '../../src/lenses/sde/analyses.js';
import type { SdeModelFile, SdeReport } from '../../src/lenses/sde/analyze.js';
import { eigenvalues, solve } from '../../src/tensor/eigen.js';
import { kmLookup, kramersMoyal } from '../../src/lenses/sde/km.js';
import {
  driftJacobian,
  evaluateSde,
  fitSde,
  gaussianNll,
  nllLossAndGrad,
  twoLossAndGrad,
  type SdeGradients,
  type SdeNetwork,
} from '../../src/lenses/sde/model.js';
import {
  incrementsOf,
  planSplit,
  splitIncrements,
  type IncrementSet,
} from '../../src/lenses/sde/paths.js';
import { eulerMaruyama } from '../../src/lenses/sde/simulate.js';
import { fitStatePca, projectPaths, traceTrajectories } from '../../src/lenses/sde/states.js';
import {
  autocorrelation,
  kolmogorovSurvival,
  ksNormal,
  ksTwoSample,
  mmd,
  moments,
} from '../../src/lenses/sde/stats.js';
import { chiSquareSurvival, erfc, normalCdf, normalQuantile } from '../../src/stats/special.js';
import {
  doubleWellSde,
  ouSde,
  simulateDoubleWell,
  simulateOu,
} from '../../src/lenses/sde/synthetic.js';
import { writeTrace } from '../../src/trace/store.js';
import { recordTrace } from '../../src/trace/record.js';
import { runSweep } from '../../src/trace/sweep.js';
import { createRng } from '../../src/tensor/rng.js';
import { model } from '../helpers/paths.js';

const STORIES = model('stories260K', 'stories260K.bin');

function python(code: string, input: unknown): unknown {
  const r = spawnSync('python3', ['-c', code], { input: JSON.stringify(input), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// ---- recovery of known SDEs (the "done when") -------------------------------------------

test('OU (θ = 2, m = 1, s = 0.5, Δt = 0.05): the fitted drift and diffusion recover the truth; Kramers–Moyal agrees', (t) => {
  const theta = 2;
  const m = 1;
  const s = 0.5;
  const dt = 0.05;
  const paths = simulateOu(
    { theta: [theta], mean: [m], sigma: [s] },
    { dt, steps: 100, paths: 100, seed: 3 },
  );
  const split = splitIncrements(paths, 1, dt, createRng(1));
  assert.equal(split.mode, 'paths');
  const fit = fitSde(split.train, split.validation, {
    hidden: [16, 16],
    timeInput: false,
    lr: 3e-3,
    maxEpochs: 120,
    patience: 15,
    seed: 1,
  });
  // The EM likelihood's population optimum at finite Δt, from the exact transition:
  //   E[Δx | x]/Δt = θ_Δ (m − x), θ_Δ = (1 − e^{−θΔt})/Δt;  Var[Δx | x]/Δt = s_Δ², s_Δ² = s²(1 − e^{−2θΔt})/(2θΔt)
  const thetaDt = (1 - Math.exp(-theta * dt)) / dt;
  const sDt = s * Math.sqrt((1 - Math.exp(-2 * theta * dt)) / (2 * theta * dt));
  const sd = s / Math.sqrt(2 * theta); // stationary spread
  const xs = Array.from({ length: 9 }, (_, i) => m - 1.5 * sd + (3 * sd * i) / 8);
  const r = evaluateSde(fit.network, Float64Array.from(xs), new Float64Array(xs.length), xs.length);
  const line = linear(xs, Array.from(r.mu));
  const thetaHat = -line.slope;
  const mHat = line.intercept / thetaHat;
  const sigmaHat = Array.from(r.sigma);
  t.diagnostic(
    `θ̂ ${thetaHat.toFixed(3)} (truth ${theta}, EM target ${thetaDt.toFixed(3)}), m̂ ${mHat.toFixed(3)}, ` +
      `σ̂ ${Math.min(...sigmaHat).toFixed(4)}–${Math.max(...sigmaHat).toFixed(4)} (truth ${s}, EM target ${sDt.toFixed(4)}), ${fit.epochs} epochs`,
  );
  // tolerances: θ within 10% of the EM target and 12% of the truth; m within 0.05; σ within 3% / 6%
  assert.ok(Math.abs(thetaHat - thetaDt) < 0.1 * thetaDt, `θ̂ ${thetaHat}`);
  assert.ok(Math.abs(thetaHat - theta) < 0.12 * theta);
  assert.ok(Math.abs(mHat - m) < 0.05, `m̂ ${mHat}`);
  for (const v of sigmaHat) {
    assert.ok(Math.abs(v - sDt) < 0.03 * sDt, `σ̂ ${v}`);
    assert.ok(Math.abs(v - s) < 0.06 * s);
  }
  // Kramers–Moyal bins on the same training increments: slope and σ against the same targets
  const km = kramersMoyal(split.train, { bins: 20, minCount: 50 });
  const kmLine = linear(
    km.cells.map((c) => c.meanState[0]),
    km.cells.map((c) => c.drift[0]),
    km.cells.map((c) => c.count),
  );
  const kmSigma =
    km.cells.reduce((a, c) => a + c.count * c.diffusion[0], 0) /
    km.cells.reduce((a, c) => a + c.count, 0);
  t.diagnostic(
    `Kramers–Moyal: θ̂ ${(-kmLine.slope).toFixed(3)}, σ̂ ${kmSigma.toFixed(4)} over ${km.cells.length} bins`,
  );
  assert.ok(Math.abs(-kmLine.slope - thetaDt) < 0.1 * thetaDt);
  assert.ok(Math.abs(kmSigma - sDt) < 0.03 * sDt);
  // and the two estimators agree bin by bin (count-weighted relative RMS of the drift < 0.25)
  const a = analyzeDataset(fit.network, paths, split, fit.nll, {
    seed: 1,
    replicas: 2,
    km: { bins: 20, minCount: 50 },
  });
  const agree = a.kramers_moyal.agreement;
  t.diagnostic(
    `network vs Kramers–Moyal: drift within 2 SE ${agree.drift.within_2se.toFixed(3)}, relative RMS ${agree.drift.relative_rms.toFixed(3)}; σ relative RMS ${agree.diffusion.relative_rms.toFixed(3)}`,
  );
  assert.ok(agree.drift.within_2se >= 0.85 && agree.drift.relative_rms < 0.25);
  assert.ok(agree.diffusion.relative_rms < 0.05);
  // held-out NLL beats the constant (Brownian-with-drift) baseline
  assert.ok(a.nll.model.test < a.nll.constant_test);
  // residuals of a well-specified fit are white and close to N(0, 1)
  const res = a.residuals.per_component[0];
  assert.ok(res.ks.d < 0.05 && Math.abs(res.acf[0]) < 0.05, `KS ${res.ks.d}, r1 ${res.acf[0]}`);
});

test('OU: the two-loss variant recovers θ and σ too (θ within 12% of the EM target, σ within 3%)', () => {
  const dt = 0.05;
  const paths = simulateOu(
    { theta: [2], mean: [1], sigma: [0.5] },
    { dt, steps: 100, paths: 100, seed: 3 },
  );
  const split = splitIncrements(paths, 1, dt, createRng(1));
  const fit = fitSde(split.train, split.validation, {
    loss: 'two-loss',
    hidden: [16, 16],
    timeInput: false,
    lr: 3e-3,
    maxEpochs: 120,
    patience: 15,
    seed: 1,
  });
  const xs = [0.8, 0.9, 1, 1.1, 1.2];
  const r = evaluateSde(fit.network, Float64Array.from(xs), new Float64Array(5), 5);
  const thetaDt = (1 - Math.exp(-0.1)) / dt;
  const sDt = 0.5 * Math.sqrt((1 - Math.exp(-0.2)) / 0.2);
  assert.ok(Math.abs(-linear(xs, Array.from(r.mu)).slope - thetaDt) < 0.12 * thetaDt);
  for (const v of r.sigma) assert.ok(Math.abs(v - sDt) < 0.03 * sDt, `σ̂ ${v}`);
});

test('double well dX = (X − X³)dt + s dW₁, dY = −Y dt + s dW₂ (s = 0.7, Δt = 0.1): drift, diffusion, fixed points', (t) => {
  const s = 0.7;
  const dt = 0.1;
  const paths = simulateDoubleWell(s, { dt, steps: 150, paths: 80, seed: 5 });
  const split = splitIncrements(paths, 2, dt, createRng(2));
  const fit = fitSde(split.train, split.validation, {
    hidden: [24, 24],
    timeInput: false,
    lr: 3e-3,
    maxEpochs: 80,
    patience: 15,
    seed: 2,
  });
  const xs = [-1.2, -0.8, -0.4, 0, 0.4, 0.8, 1.2];
  const x = new Float64Array(xs.length * 2);
  xs.forEach((v, i) => (x[2 * i] = v));
  const r = evaluateSde(fit.network, x, new Float64Array(xs.length), xs.length);
  // independent reference: E[X_Δt − x | X_0 = (x, 0)]/Δt and sd(X_Δt)/√Δt by Monte Carlo on
  // 50 Euler substeps per Δt (the finite-Δt quantities the EM likelihood estimates)
  const ref = xs.map((v, i) => conditionalMoments([v, 0], s, dt, 20000, 50, 100 + i));
  let worstRef = 0;
  let worstTrue = 0;
  let worstSigma = 0;
  xs.forEach((v, i) => {
    worstRef = Math.max(worstRef, Math.abs(r.mu[2 * i] - ref[i].drift));
    worstTrue = Math.max(worstTrue, Math.abs(r.mu[2 * i] - (v - v ** 3)));
    worstSigma = Math.max(worstSigma, Math.abs(r.sigma[2 * i] - ref[i].sd) / ref[i].sd);
  });
  t.diagnostic(
    `drift: max |μ̂₁ − MC target| ${worstRef.toFixed(3)}, max |μ̂₁ − (x − x³)| ${worstTrue.toFixed(3)} on x ∈ [−1.2, 1.2]; ` +
      `σ̂₁ max relative error vs MC ${worstSigma.toFixed(3)}; ${fit.epochs} epochs, ${split.train.n} increments`,
  );
  // tolerances: drift within 0.25 of the finite-Δt target and 0.35 of x − x³; σ within 8% of the target
  assert.ok(worstRef < 0.25);
  assert.ok(worstTrue < 0.35);
  assert.ok(worstSigma < 0.08);
  // fixed points: (±1, 0) stable nodes, (0, 0) a saddle. Eigenvalues of ∂μ/∂x: −2, −1 at the
  // wells and +1, −1 at the saddle; at Δt = 0.1 the EM targets are (e^{λΔt} − 1)/Δt = −1.81,
  // −0.95 and +1.05, −0.95. Tolerances: 0.3 on the well/stable values; the saddle's unstable
  // value only in (0.3, 2.5), as few increments cross the barrier
  const a = analyzeDataset(fit.network, paths, split, fit.nll, { seed: 2, replicas: 2 });
  const found = a.fixed_points.found;
  t.diagnostic(
    found
      .map(
        (f) =>
          `(${f.x.map((v) => v.toFixed(2)).join(', ')}) ${f.kind} λ = ${f.eigenvalues.map((e) => e.re.toFixed(2)).join(', ')}`,
      )
      .join('; '),
  );
  assert.equal(found.length, 3, JSON.stringify(found.map((f) => f.x)));
  const [left, mid, right] = found;
  for (const [f, x1, kind] of [
    [left, -1, 'stable node'],
    [mid, 0, 'saddle'],
    [right, 1, 'stable node'],
  ] as const) {
    assert.ok(Math.abs(f.x[0] - x1) < 0.15 && Math.abs(f.x[1]) < 0.15, `fixed point ${f.x}`);
    assert.equal(f.kind, kind);
  }
  const lambda = (f: (typeof found)[number]) => f.eigenvalues.map((e) => e.re); // descending
  for (const well of [left, right]) {
    const [l1, l2] = lambda(well);
    assert.ok(
      Math.abs(l1 - -0.95) < 0.3 && Math.abs(l2 - -1.81) < 0.3,
      `well eigenvalues ${l1}, ${l2}`,
    );
  }
  const [u, st] = lambda(mid);
  assert.ok(u > 0.3 && u < 2.5 && Math.abs(st - -0.95) < 0.3, `saddle eigenvalues ${u}, ${st}`);
  // Kramers–Moyal (12 × 12 bins on (x, y), ~50 increments a bin, so each bin's drift has a
  // standard error ≈ s/√(nΔt) ≈ 0.3): the network lies within 2 SE in ≥ 85% of bins × components
  const agree = a.kramers_moyal.agreement;
  t.diagnostic(
    `network vs Kramers–Moyal: drift within 2 SE ${agree.drift.within_2se.toFixed(3)}, r ${agree.drift.correlation?.toFixed(3)}, relative RMS ${agree.drift.relative_rms.toFixed(3)}; ` +
      `σ within 2 SE ${agree.diffusion.within_2se.toFixed(3)}, relative RMS ${agree.diffusion.relative_rms.toFixed(3)}`,
  );
  assert.ok(agree.drift.within_2se >= 0.85 && (agree.drift.correlation ?? 0) > 0.85);
  assert.ok(agree.diffusion.relative_rms < 0.1);
});

/** Fine-step Monte Carlo of the double well over one observation interval. */
function conditionalMoments(
  x0: number[],
  s: number,
  dt: number,
  n: number,
  sub: number,
  seed: number,
): { drift: number; sd: number } {
  const rng = createRng(seed);
  const h = dt / sub;
  const sq = Math.sqrt(h);
  let sum = 0;
  let sumSq = 0;
  for (let r = 0; r < n; r++) {
    let x = x0[0];
    for (let u = 0; u < sub; u++) x += (x - x * x * x) * h + s * sq * rng.normal();
    sum += x - x0[0];
    sumSq += (x - x0[0]) ** 2;
  }
  const mean = sum / n;
  return { drift: mean / dt, sd: Math.sqrt((sumSq / n - mean * mean) / dt) };
}

/** Weighted least squares y = intercept + slope·x. */
function linear(
  x: number[],
  y: number[],
  w: number[] = x.map(() => 1),
): { slope: number; intercept: number } {
  const W = w.reduce((a, b) => a + b, 0);
  const mx = x.reduce((a, v, i) => a + w[i] * v, 0) / W;
  const my = y.reduce((a, v, i) => a + w[i] * v, 0) / W;
  let sxy = 0;
  let sxx = 0;
  x.forEach((v, i) => {
    sxy += w[i] * (v - mx) * (y[i] - my);
    sxx += w[i] * (v - mx) ** 2;
  });
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

// ---- gradients of the losses against central differences ----------------------------------------

function smallNetwork(k: number, seed: number): { net: SdeNetwork; batch: IncrementSet } {
  const paths = simulateOu(
    {
      theta: [1, 2, 0.5].slice(0, k),
      mean: [0, 1, -1].slice(0, k),
      sigma: [0.3, 0.5, 0.8].slice(0, k),
    },
    { dt: 0.1, steps: 6, paths: 2, seed },
  );
  const set = incrementsOf(paths, k, 0.1);
  const fit = fitSde(set, set, { hidden: [5, 4], maxEpochs: 3, seed, lr: 0.05 });
  // move every parameter off its fitted value so no gradient is accidentally zero
  const rng = createRng(seed + 1);
  for (const p of [fit.network.drift.params, fit.network.driftLinear, fit.network.diffusion.params])
    for (let i = 0; i < p.length; i++) p[i] += 0.3 * rng.normal();
  return { net: fit.network, batch: set };
}

/** The losses written out again from evaluateSde (the reference the gradients are checked on). */
function referenceLosses(
  net: SdeNetwork,
  batch: IncrementSet,
  fixedMu?: Float64Array,
): { nll: number; drift: number; diffusion: number } {
  const { k, n, dt } = batch;
  const { mu, sigma } = evaluateSde(net, batch.x, batch.t, n);
  const m = fixedMu ?? mu;
  let nll = 0;
  let drift = 0;
  let diffusion = 0;
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < k; i++) {
      const j = r * k + i;
      const c = net.norm.scale[i];
      nll += gaussianNll(batch.dx[j], mu[j] * dt, sigma[j] ** 2 * dt) / n;
      const e = batch.dx[j] / (c * Math.sqrt(dt)) - (m[j] / c) * Math.sqrt(dt);
      drift += (e * e) / n;
      diffusion += (e * e - (sigma[j] / c) ** 2) ** 2 / n;
    }
  }
  return { nll, drift, diffusion };
}

function checkGradient(
  params: Float64Array,
  analytic: Float64Array,
  loss: () => number,
  label: string,
): void {
  const h = 1e-6;
  let worst = 0;
  for (let p = 0; p < params.length; p++) {
    const keep = params[p];
    params[p] = keep + h;
    const up = loss();
    params[p] = keep - h;
    const down = loss();
    params[p] = keep;
    const fd = (up - down) / (2 * h);
    worst = Math.max(worst, Math.abs(fd - analytic[p]) / Math.max(1e-3, Math.abs(fd)));
  }
  assert.ok(worst < 1e-5, `${label}: worst relative error ${worst}`);
}

function zeroGrads(net: SdeNetwork): SdeGradients {
  return {
    drift: new Float64Array(net.drift.params.length),
    driftLinear: new Float64Array(net.driftLinear.length),
    diffusion: new Float64Array(net.diffusion.params.length),
  };
}

test('EM NLL gradient (drift MLP, linear drift term, diffusion MLP) = central differences (relative error < 1e-5)', () => {
  const { net, batch } = smallNetwork(3, 11);
  const g = zeroGrads(net);
  const value = nllLossAndGrad(net, batch, g);
  assert.ok(Math.abs(value - referenceLosses(net, batch).nll) < 1e-12);
  const loss = () => referenceLosses(net, batch).nll;
  checkGradient(net.drift.params, g.drift, loss, 'drift');
  checkGradient(net.driftLinear, g.driftLinear, loss, 'linear drift');
  checkGradient(net.diffusion.params, g.diffusion, loss, 'diffusion');
});

test('two-loss gradients: drift from L_μ, diffusion from L_σ with μ detached = central differences', () => {
  const { net, batch } = smallNetwork(2, 12);
  const g = zeroGrads(net);
  const value = twoLossAndGrad(net, batch, g);
  const ref = referenceLosses(net, batch);
  assert.ok(Math.abs(value - (ref.drift + ref.diffusion)) < 1e-10);
  const mu0 = evaluateSde(net, batch.x, batch.t, batch.n).mu;
  checkGradient(net.drift.params, g.drift, () => referenceLosses(net, batch).drift, 'drift');
  checkGradient(
    net.driftLinear,
    g.driftLinear,
    () => referenceLosses(net, batch).drift,
    'linear drift',
  );
  checkGradient(
    net.diffusion.params,
    g.diffusion,
    () => referenceLosses(net, batch, mu0).diffusion,
    'diffusion',
  );
});

test('driftJacobian (∂μ/∂x through the input scaling and the linear term) = central differences (< 1e-6 relative)', () => {
  const { net } = smallNetwork(3, 13);
  const x = [0.2, 0.7, -0.4];
  const jac = driftJacobian(net, x, 0.3);
  const h = 1e-6;
  for (let j = 0; j < 3; j++) {
    const up = Float64Array.from(x);
    const down = Float64Array.from(x);
    up[j] += h;
    down[j] -= h;
    const fu = evaluateSde(net, up, Float64Array.of(0.3), 1).mu;
    const fd = evaluateSde(net, down, Float64Array.of(0.3), 1).mu;
    for (let i = 0; i < 3; i++) {
      const ref = (fu[i] - fd[i]) / (2 * h);
      assert.ok(Math.abs(ref - jac[i * 3 + j]) < 1e-6 * Math.max(1, Math.abs(ref)), `J[${i},${j}]`);
    }
  }
});

// ---- Euler–Maruyama against its exact moment recursions -----------------------------------------

test('Euler–Maruyama on OU: ensemble mean and variance match the exact EM recursions (within 4 standard errors)', () => {
  // x_{n+1} = x_n + θ(m − x_n)h + s√h ε  ⇒  E x_n = m + (x0 − m)(1 − θh)^n,  V_{n+1} = (1 − θh)² V_n + s²h
  const theta = 1.5;
  const m = 0.5;
  const s = 0.8;
  const h = 0.05;
  const steps = 30;
  const n = 4000;
  const sde = ouSde({ theta: [theta], mean: [m], sigma: [s] });
  const sims = eulerMaruyama(
    sde,
    Array.from({ length: n }, () => ({ x: [2], t0: 0, steps })),
    h,
    createRng(9),
  );
  let v = 0;
  for (let j = 1; j <= steps; j++) {
    v = (1 - theta * h) ** 2 * v + s * s * h;
    if (j % 10 !== 0) continue;
    const xs = sims.map((p) => p.states[j]);
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
    const expectedMean = m + (2 - m) * (1 - theta * h) ** j;
    assert.ok(
      Math.abs(mean - expectedMean) < 4 * Math.sqrt(v / n),
      `step ${j}: mean ${mean} vs ${expectedMean}`,
    );
    assert.ok(
      Math.abs(variance - v) < 4 * v * Math.sqrt(2 / (n - 1)),
      `step ${j}: variance ${variance} vs ${v}`,
    );
  }
  // paths of different lengths keep their own length; the known double well runs through the same code
  const mixed = eulerMaruyama(
    doubleWellSde(0.5),
    [
      { x: [1, 0], t0: 0, steps: 3 },
      { x: [-1, 0], t0: 2, steps: 5 },
    ],
    0.1,
    createRng(1),
  );
  assert.deepEqual(
    mixed.map((p) => p.len),
    [4, 6],
  );
  assert.deepEqual(Array.from(mixed[1].states.subarray(0, 2)), [-1, 0]);
});

// ---- statistics ---------------------------------------------------------------------------------

test('normal CDF, erfc and quantile match Python (math.erfc, statistics.NormalDist) to 1e-12 / 1e-8', () => {
  const zs = [-6, -3.2, -1, -0.1, 0, 0.3, 1.5, 2.5, 5];
  const ref = python(
    'import json,sys,math\nfrom statistics import NormalDist\nz=json.load(sys.stdin)\nprint(json.dumps({"erfc":[math.erfc(v) for v in z],"cdf":[NormalDist().cdf(v) for v in z],"q":[NormalDist().inv_cdf(p) for p in [1e-6,0.01,0.02425,0.3,0.5,0.9,0.999]]}))',
    zs,
  ) as { erfc: number[]; cdf: number[]; q: number[] };
  zs.forEach((z, i) => {
    assert.ok(
      Math.abs(erfc(z) - ref.erfc[i]) < 1e-12 * Math.max(1, ref.erfc[i]) + 1e-300,
      `erfc(${z})`,
    );
    assert.ok(Math.abs(normalCdf(z) - ref.cdf[i]) < 1e-12, `Φ(${z})`);
  });
  [1e-6, 0.01, 0.02425, 0.3, 0.5, 0.9, 0.999].forEach((p, i) =>
    assert.ok(
      Math.abs(normalQuantile(p) - ref.q[i]) < 1e-8 * Math.max(1, Math.abs(ref.q[i])),
      `Φ⁻¹(${p})`,
    ),
  );
});

test('Kolmogorov survival at tabulated critical values; χ² survival at tabulated quantiles and closed forms', () => {
  // Q_KS(λ): 0.10 at 1.2238, 0.05 at 1.3581, 0.01 at 1.6276 (Smirnov's table)
  assert.ok(Math.abs(kolmogorovSurvival(1.2238) - 0.1) < 2e-4);
  assert.ok(Math.abs(kolmogorovSurvival(1.3581) - 0.05) < 1e-4);
  assert.ok(Math.abs(kolmogorovSurvival(1.6276) - 0.01) < 1e-4);
  assert.ok(Math.abs(kolmogorovSurvival(0.5) - 0.9639452) < 1e-6); // small-λ branch
  // χ²₅ 0.95 quantile 11.0705, χ²₁₀ 0.99 quantile 23.2093; χ²₂(x) = e^{−x/2}; χ²₁(x) = erfc(√(x/2))
  assert.ok(Math.abs(chiSquareSurvival(11.0705, 5) - 0.05) < 1e-5);
  assert.ok(Math.abs(chiSquareSurvival(23.2093, 10) - 0.01) < 1e-5);
  assert.ok(Math.abs(chiSquareSurvival(3.7, 2) - Math.exp(-1.85)) < 1e-14);
  assert.ok(Math.abs(chiSquareSurvival(2.2, 1) - erfc(Math.sqrt(1.1))) < 1e-13);
});

test('KS distances, moments, autocorrelation and MMD match numpy', () => {
  const rng = createRng(21);
  const a = Array.from({ length: 300 }, () => rng.normal());
  const b = Array.from({ length: 200 }, () => 0.3 + 1.2 * rng.normal());
  const series = [a.slice(0, 120), a.slice(120)];
  const pa = Float64Array.from({ length: 40 * 3 }, () => rng.normal());
  const pb = Float64Array.from({ length: 30 * 3 }, () => 0.5 + rng.normal());
  const ref = python(
    `import json,sys,math
import numpy as np
d=json.load(sys.stdin)
a=np.array(d['a']); b=np.array(d['b'])
grid=np.concatenate([a,b])
Fa=np.searchsorted(np.sort(a),grid,side='right')/len(a); Fb=np.searchsorted(np.sort(b),grid,side='right')/len(b)
x=np.sort(a); n=len(x); F=np.array([0.5*math.erfc(-v/math.sqrt(2)) for v in x])
dn=max(np.max(np.arange(1,n+1)/n-F), np.max(F-np.arange(0,n)/n))
m=a.mean(); e=a-m; m2=(e**2).mean(); S=(e**3).mean()/m2**1.5; K=(e**4).mean()/m2**2-3
s=[np.array(v) for v in d['series']]; mu=np.concatenate(s).mean(); c0=sum(((v-mu)**2).sum() for v in s)
r=[sum(((v[:-l]-mu)*(v[l:]-mu)).sum() for v in s)/c0 for l in (1,2,3)]
X=np.array(d['pa']).reshape(-1,3); Y=np.array(d['pb']).reshape(-1,3); Z=np.vstack([X,Y])
D=np.sqrt(((Z[:,None,:]-Z[None,:,:])**2).sum(-1)); iu=np.triu_indices(len(Z),1); h=np.sort(D[iu])[len(iu[0])//2]
Kz=np.exp(-D**2/(2*h*h)); nx=len(X); ny=len(Y)
kxx=Kz[:nx,:nx]; kyy=Kz[nx:,nx:]; kxy=Kz[:nx,nx:]
mmd2=(kxx.sum()-np.trace(kxx))/(nx*(nx-1))+(kyy.sum()-np.trace(kyy))/(ny*(ny-1))-2*kxy.mean()
print(json.dumps({"d2":float(np.max(np.abs(Fa-Fb))),"dn":float(dn),"skew":float(S),"kurt":float(K),"r":[float(v) for v in r],"mmd2":float(mmd2),"h":float(h)}))`,
    { a, b, series, pa: Array.from(pa), pb: Array.from(pb) },
  ) as { d2: number; dn: number; skew: number; kurt: number; r: number[]; mmd2: number; h: number };
  assert.ok(Math.abs(ksTwoSample(a, b).d - ref.d2) < 1e-12);
  assert.ok(Math.abs(ksNormal(a).d - ref.dn) < 1e-12);
  const mo = moments(a);
  assert.ok(Math.abs(mo.skewness - ref.skew) < 1e-10 && Math.abs(mo.kurtosis - ref.kurt) < 1e-10);
  assert.ok(Math.abs(mo.jarqueBeraP - Math.exp(-mo.jarqueBera / 2)) < 1e-15);
  const ac = autocorrelation(series, 3);
  ac.r.forEach((v, i) => assert.ok(Math.abs(v - ref.r[i]) < 1e-12));
  const mm = mmd(pa, 40, pb, 30, 3, createRng(1), 50);
  assert.ok(Math.abs(mm.mmd2 - ref.mmd2) < 1e-12 && Math.abs(mm.bandwidth - ref.h) < 1e-12);
  // a shift of 0.5 in 3-D with 40 vs 30 points is detected; identical laws are not
  assert.ok(mm.p < 0.05, `p ${mm.p}`);
  // hand-computed: a = {1, 2, 3, 4}, b = {2.5, 3.5, 5, 6}: F_a − F_b peaks at x = 2 (0.5 − 0)
  assert.equal(ksTwoSample([1, 2, 3, 4], [2.5, 3.5, 5, 6]).d, 0.5);
});

test('eigenvalues of general matrices match numpy.linalg.eigvals (< 1e-9); solve matches numpy.linalg.solve', () => {
  const rng = createRng(31);
  const cases = [1, 2, 3, 5, 8, 16].map((n) => ({
    n,
    a: Array.from({ length: n * n }, () => rng.normal()),
  }));
  const ref = python(
    `import json,sys
import numpy as np
cs=json.load(sys.stdin)
out=[]
for c in cs:
  A=np.array(c['a']).reshape(c['n'],c['n']); e=np.linalg.eigvals(A)
  out.append({'e':[[float(v.real),float(v.imag)] for v in e],'x':[float(v) for v in np.linalg.solve(A,np.arange(1,c['n']+1))]})
print(json.dumps(out))`,
    cases,
  ) as { e: [number, number][]; x: number[] }[];
  cases.forEach((c, i) => {
    const ev = eigenvalues(c.a, c.n);
    assert.equal(ev.length, c.n);
    for (const e of ev) {
      const nearest = Math.min(...ref[i].e.map(([re, im]) => Math.hypot(e.re - re, e.im - im)));
      assert.ok(nearest < 1e-9, `n = ${c.n}: ${e.re} + ${e.im}i`);
    }
    const x = solve(
      c.a,
      Array.from({ length: c.n }, (_, j) => j + 1),
      c.n,
    )!;
    x.forEach((v, j) => assert.ok(Math.abs(v - ref[i].x[j]) < 1e-9 * Math.max(1, Math.abs(v))));
  });
  // a rotation generator has ±i; a diagonal matrix its diagonal
  assert.deepEqual(eigenvalues([0, -1, 1, 0], 2), [
    { re: 0, im: 1 },
    { re: 0, im: -1 },
  ]);
  assert.deepEqual(
    eigenvalues([-2, 0, 0, -1], 2).map((e) => e.re),
    [-1, -2],
  );
});

test('Kramers–Moyal bins: conditional means and variances equal the hand-computed ones', () => {
  // 1-D, two bins over [0, 2]: increments from x < 1 are {1, 3}, from x ≥ 1 are {−2, −4, −6}; Δt = 0.5
  const set: IncrementSet = {
    k: 1,
    n: 5,
    dt: 0.5,
    x: Float64Array.of(0, 0.5, 1.5, 1.8, 2),
    t: new Float64Array(5),
    dx: Float64Array.of(1, 3, -2, -4, -6),
    path: new Int32Array(5),
    step: new Int32Array(5),
  };
  const km = kramersMoyal(set, { bins: 2, minCount: 2 });
  assert.equal(km.cells.length, 2);
  const [lo, hi] = km.cells;
  assert.equal(lo.drift[0], 4); // mean 2 / 0.5
  assert.equal(hi.drift[0], -8); // mean −4 / 0.5
  assert.ok(Math.abs(lo.diffusion[0] - Math.sqrt(2 / 0.5)) < 1e-12); // sample variance 2
  assert.ok(Math.abs(hi.diffusion[0] - Math.sqrt(4 / 0.5)) < 1e-12); // sample variance 4
  assert.ok(Math.abs(hi.driftSe[0] - Math.sqrt(4 / 3) / 0.5) < 1e-12);
  assert.equal(kmLookup(km, [1.9])?.drift[0], -8);
  assert.equal(kmLookup(km, [2.5]), null);
});

test('split plans: whole paths held out with ≥ 10 paths, increments otherwise; seeded and disjoint', () => {
  const many = planSplit(
    Array.from({ length: 20 }, () => 11),
    createRng(1),
  );
  assert.equal(many.mode, 'paths');
  assert.deepEqual(
    [many.trainPaths.length, many.validationPaths.length, many.testPaths.length],
    [12, 4, 4],
  );
  assert.equal(new Set([...many.trainPaths, ...many.validationPaths, ...many.testPaths]).size, 20);
  assert.deepEqual(
    planSplit(
      Array.from({ length: 20 }, () => 11),
      createRng(1),
    ),
    many,
  );
  const few = planSplit([11, 11, 1, 6], createRng(1));
  assert.equal(few.mode, 'increments');
  assert.deepEqual(few.trainPaths, [0, 1, 3]);
  const parts = few.assignment!.flatMap((a) => Array.from(a));
  assert.equal(parts.length, 25);
  assert.deepEqual(
    [0, 1, 2].map((p) => parts.filter((v) => v === p).length),
    [15, 5, 5],
  );
});

// ---- states from a real trace, the CLI end to end -----------------------------------------------

test('states: x_0 is the last prompt position, x_j the j-th generated token; running mean; PCA scores are centred', async () => {
  const m = await openModel(STORIES);
  const trace = recordTrace(m, {
    prompt: 'Once upon a time',
    samples: 3,
    maxTokens: 10,
    sampling: { temperature: 1 },
    seed: 4,
    hooks: ['ln_final.hook_normalized'],
    logits: { kind: 'none' },
  });
  const raw = traceTrajectories(trace);
  assert.equal(raw.hook, 'ln_final.hook_normalized');
  const d = m.config.dim;
  const rec = trace.states.get('ln_final.hook_normalized')!;
  trace.samples.forEach((s, i) => {
    const P = s.promptIds.length;
    assert.equal(raw.paths[i].len, s.ids.length + 1);
    for (const j of [0, raw.paths[i].len - 1]) {
      const pos = P - 1 + j;
      for (let c = 0; c < d; c++)
        assert.equal(raw.paths[i].states[j * d + c], rec.data[(i * trace.positions + pos) * d + c]);
    }
  });
  // x_0 is shared by every sample of one prompt
  for (let c = 0; c < d; c++) assert.equal(raw.paths[1].states[c], raw.paths[0].states[c]);
  const mean = traceTrajectories(trace, { state: 'running-mean' });
  const P = trace.samples[0].promptIds.length;
  for (let c = 0; c < d; c += 7) {
    let s = 0;
    for (let pos = 0; pos <= P + 1; pos++) s += rec.data[pos * d + c];
    assert.ok(Math.abs(mean.paths[0].states[2 * d + c] - s / (P + 2)) < 1e-5);
  }
  const pca = fitStatePca(raw.paths, d, 4);
  const proj = projectPaths(raw.paths, pca);
  const total = proj.reduce((a, p) => a + p.len, 0);
  for (let c = 0; c < 4; c++) {
    const sum = proj.reduce(
      (a, p) =>
        a + Array.from({ length: p.len }, (_, j) => p.states[j * 4 + c]).reduce((x, y) => x + y, 0),
      0,
    );
    assert.ok(Math.abs(sum / total) < 1e-9, `PC${c + 1} mean ${sum / total}`);
  }
  assert.throws(
    () => traceTrajectories(trace, { hook: 'blocks.0.hook_resid_post' }),
    (e: unknown) => e instanceof LmdynError && /not in the trace/.test(e.message),
  );
});

async function runCli(args: string[]): Promise<void> {
  const program = new Command('lmdyn').exitOverride();
  registerAnalyze(program, [registerSdeLens]);
  for (const c of program.commands) c.exitOverride();
  await program.parseAsync(args, { from: 'user' });
}

const FAST = ['--dims', '2', '--hidden', '8,8', '--epochs', '15', '--replicas', '3'];

test('CLI: --trace writes sde.json, sde-model.json and figures; --model-file reuses the model without fitting; refusals', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-sde-'));
  try {
    const m = await openModel(STORIES);
    const traceDir = join(dir, 'trace');
    writeTrace(
      traceDir,
      recordTrace(m, {
        prompt: 'Once upon a time',
        samples: 12,
        maxTokens: 16,
        sampling: { temperature: 1 },
        seed: 2,
        logits: { kind: 'none' },
      }),
    );
    await runCli(['analyze', 'sde', '--trace', traceDir, ...FAST, '--seed', '5']);
    for (const f of [
      'sde.json',
      'sde-model.json',
      'sde-drift-field.svg',
      'sde-moments.svg',
      'sde-training.svg',
      'sde-residuals-qq.vl.json',
    ]) {
      assert.ok(existsSync(join(traceDir, f)), f);
    }
    const report = JSON.parse(readFileSync(join(traceDir, 'sde.json'), 'utf8')) as SdeReport;
    assert.equal(report.lens, 'sde');
    assert.equal(report.seed, 5);
    assert.equal(report.tags.model_form.tag, 'proposed'); // σ diagonal and the linear drift are ours
    assert.equal(report.tags.analyses.tag, 'proposed');
    assert.equal(report.states.k, 2);
    assert.equal(report.time.kind, 'unit');
    assert.equal(report.time.dt, 1 / 16);
    const ds = report.datasets[0];
    assert.equal(ds.split.mode, 'paths');
    assert.equal(ds.paths, 12);
    assert.ok(ds.fit.epochs >= 1 && ds.fit.epochs <= 15);
    assert.equal(ds.analyses.moments.t.length, 17);
    assert.ok(ds.headline.every((h) => h.tag === 'proposed'));
    // the same run again is refused without --force
    await assert.rejects(
      runCli(['analyze', 'sde', '--trace', traceDir, ...FAST]),
      (e: unknown) => e instanceof LmdynError && /--force/.test(e.message),
    );
    // reuse: project the trace with the stored PCA and simulate with the stored networks
    const model = JSON.parse(
      readFileSync(join(traceDir, 'sde-model.json'), 'utf8'),
    ) as SdeModelFile;
    assert.equal(model.format, 'lmdyn-sde-model');
    assert.equal(model.states.pca.components.length, 2);
    const reuse = join(dir, 'reuse');
    await runCli([
      'analyze',
      'sde',
      '--trace',
      traceDir,
      '--model-file',
      join(traceDir, 'sde-model.json'),
      '--replicas',
      '3',
      '-o',
      reuse,
    ]);
    const again = JSON.parse(readFileSync(join(reuse, 'sde.json'), 'utf8')) as SdeReport;
    assert.equal(again.estimation.from_model_file, true);
    assert.equal(again.datasets[0].fit.epochs, 0);
    assert.ok(!existsSync(join(reuse, 'sde-model.json')));
    assert.deepEqual(
      again.states.pca.explained_variance_ratio,
      report.states.pca.explained_variance_ratio,
    );
    // a broken model file and a flag clash are one-line errors
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...model, version: 7 }));
    await assert.rejects(
      runCli([
        'analyze',
        'sde',
        '--trace',
        traceDir,
        '--model-file',
        join(dir, 'bad.json'),
        '-o',
        join(dir, 'x'),
      ]),
      (e: unknown) => e instanceof LmdynError && e.code === 'bad_format',
    );
    await assert.rejects(
      runCli(['analyze', 'sde', '--trace', traceDir, '--sweep', traceDir]),
      (e: unknown) => e instanceof LmdynError && e.code === 'bad_argument',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: --sweep fits one model per configuration in a shared PCA and tabulates them across temperatures', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-sde-sweep-'));
  try {
    await runSweep(
      {
        model: STORIES,
        tokenizer: null,
        prompt: 'Once upon a time',
        samples: 3,
        maxTokens: 12,
        seed: 1,
        hooks: ['ln_final.hook_normalized'],
        logits: { kind: 'none' },
        grid: { temperature: [0.5, 1.5], topP: [1], topK: [0], repetitionPenalty: [1] },
      },
      dir,
      { workers: 1 },
    );
    await runCli(['analyze', 'sde', '--sweep', dir, ...FAST]);
    const report = JSON.parse(readFileSync(join(dir, 'sde.json'), 'utf8')) as SdeReport;
    assert.equal(report.datasets.length, 2);
    assert.equal(report.states.pca.fitted_on, 'training paths of every configuration, pooled');
    assert.deepEqual(
      report.across_temperatures!.rows.map((r) => r.temperature),
      [0.5, 1.5],
    );
    assert.equal(report.datasets[0].split.mode, 'increments'); // 3 paths: too few to hold whole ones out
    const model = JSON.parse(readFileSync(join(dir, 'sde-model.json'), 'utf8')) as SdeModelFile;
    assert.deepEqual(
      model.models.map((e) => e.label),
      report.datasets.map((d) => d.label),
    );
    assert.ok(existsSync(join(dir, 'sde-temperatures.svg')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('linear OU / VAR(1) baseline, k = 1: slope, intercept, σ and NLL equal the closed-form simple regression', () => {
  // x_{j+1} = x_j − θ x_j Δt + s √Δt ε: one path of 400 steps, Δt = 0.05
  const rng = createRng(17);
  const dt = 0.05;
  const n = 400;
  const x = new Float64Array(n);
  const dx = new Float64Array(n);
  let state = 1.5;
  for (let r = 0; r < n; r++) {
    const step = -1.3 * state * dt + 0.7 * Math.sqrt(dt) * rng.normal();
    x[r] = state;
    dx[r] = step;
    state += step;
  }
  const set = {
    k: 1,
    n,
    dt,
    x,
    t: Float64Array.from({ length: n }, (_, r) => r * dt),
    dx,
    path: new Int32Array(n),
    step: Int32Array.from({ length: n }, (_, r) => r),
  };
  // closed form: slope = Σ(x − x̄)(Δx − Δx̄)/Σ(x − x̄)², intercept = Δx̄ − slope·x̄, σ²Δt = RSS/n
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = dx.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let r = 0; r < n; r++) {
    sxy += (x[r] - mx) * (dx[r] - my);
    sxx += (x[r] - mx) ** 2;
  }
  const slope = sxy / sxx;
  const icpt = my - slope * mx;
  let rss = 0;
  for (let r = 0; r < n; r++) rss += (dx[r] - icpt - slope * x[r]) ** 2;
  const v = rss / n; // σ²Δt
  const nll = 0.5 * Math.log(2 * Math.PI * v) + 0.5; // mean Gaussian NLL at the MLE variance
  const lin = linearBaseline(set)!;
  assert.ok(Math.abs(lin.a[0] - slope / dt) < 1e-9 * Math.abs(slope / dt));
  assert.ok(Math.abs(lin.b[0] - icpt / dt) < 1e-9 * (1 + Math.abs(icpt / dt)));
  assert.ok(Math.abs(lin.sigma[0] ** 2 * dt - v) < 1e-12);
  assert.ok(Math.abs(lin.train - nll) < 1e-9, `${lin.train} vs ${nll}`);
  assert.ok(Math.abs(linearNll(lin, set) - nll) < 1e-9);
  assert.ok(Math.abs(lin.a[0] + 1.3) < 0.6, `θ̂ = ${-lin.a[0]}`); // recovers the OU rate roughly
});
