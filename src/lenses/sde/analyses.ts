/**
 * What the SDE lens measures on one data set of trajectories (papers.md §2.4–2.5, all
 * [proposed]): validation of the fit (held-out NLL against two baselines, KS distance of
 * simulated increments, MMD of end states) and the analyses — drift and diffusion along the
 * trajectories and on a 2-D grid, fixed points with the eigenvalues of ∂μ/∂x, ensemble moments
 * real against simulated (with the Itô moment equations), mean squared displacement, residual
 * normality and autocorrelation, quadratic variation, Kramers–Moyal agreement, and phase-portrait
 * samples. Every block is plain data with its definition; the tag is added by analyze.ts.
 */
import { linearFit, median, pearson, quantileSorted } from '../../stats/describe.js';
import { multiLeastSquares } from '../../stats/regression.js';
import { normalQuantile } from '../../stats/special.js';
import { createRng, type Rng } from '../../tensor/rng.js';
import { eigenvalues, solve, type Eigenvalue } from '../../tensor/eigen.js';
import { kmLookup, kramersMoyal, type KmEstimate, type KmOptions } from './km.js';
import { driftJacobian, evaluateSde, gaussianNll, sdeNll, type SdeNetwork } from './model.js';
import { incrementsOf, type IncrementSet, type Path, type Split } from './paths.js';
import { eulerMaruyama, networkSde } from './simulate.js';
import { autocorrelation, ksNormal, ksTwoSample, mmd, moments, type MmdResult } from './stats.js';

export interface AnalysisOptions {
  /** Simulated paths per real start (default 16). */
  replicas?: number;
  /** Seed of the simulations, the MMD permutations and the fixed-point starts. */
  seed: number;
  km?: KmOptions;
  /** Grid points per axis of the 2-D drift field (default 15). */
  gridSize?: number;
  /** Autocorrelation lags of the residuals (default 5). */
  lags?: number;
}

export interface DatasetAnalysis {
  nll: {
    definition: string;
    model: { train: number; validation: number; test: number };
    per_component_test: number[];
    kramers_moyal_test: number;
    constant_test: number;
    /** The linear Gaussian (OU / VAR(1)) baseline on the same split. */
    linear_test: number;
    linear: LinearBaseline | null;
    baselines: string;
  };
  ks_increments: {
    definition: string;
    scope: string;
    per_component: { d: number; p: number }[];
    mean_d: number;
  };
  mmd_end_states: MmdResult & { definition: string; scope: string };
  along_trajectories: {
    definition: string;
    t: number[];
    n: number[];
    drift_norm: number[];
    diffusion_norm: number[];
    snr: number[];
    mean: { drift_norm: number; diffusion_norm: number; snr: number };
  };
  grid: {
    definition: string;
    t: number;
    x: number[];
    y: number[];
    /** One row per grid point: state (PC1, PC2), drift (μ1, μ2), ‖μ‖, ‖σ‖. */
    points: {
      x: number;
      y: number;
      mu1: number;
      mu2: number;
      drift_norm: number;
      diffusion_norm: number;
    }[];
  };
  fixed_points: {
    definition: string;
    t: number;
    starts: number;
    tolerance: number;
    found: {
      x: number[];
      residual: number;
      eigenvalues: Eigenvalue[];
      kind: string;
      nearest_state_distance: number;
    }[];
    outside_data_range: number;
  };
  moments: {
    definition: string;
    replicas: number;
    t: number[];
    n_real: number[];
    mean_real: number[][];
    mean_simulated: number[][];
    var_real: number[][];
    var_simulated: number[][];
    trace_cov_real: number[];
    trace_cov_simulated: number[];
    /** ‖Σ_real − Σ_sim‖_F / ‖Σ_real‖_F per step. */
    cov_relative_frobenius: number[];
    summary: {
      /** RMS over steps of ‖m_real − m_sim‖, over √(tr Cov) of all real states pooled. */
      mean_error_relative: number;
      /** Σ_t tr Σ_sim / Σ_t tr Σ_real over the steps where the real ensemble has spread. */
      trace_ratio_mean: number;
      /** tr Σ_sim / tr Σ_real at the last such step. */
      trace_ratio_end: number;
      /** Mean over those steps of ‖Σ_real − Σ_sim‖_F / ‖Σ_real‖_F. */
      cov_relative_frobenius_mean: number;
    };
    ito: {
      definition: string;
      /** Per step: ‖(m_{j+1} − m_j)/Δt‖ and ‖E[μ(x_j, t_j)]‖ over the paths alive at j + 1. */
      dm_dt_real_norm: number[];
      e_drift_norm: number[];
      /** ‖dm/dt − E[μ]‖ / ‖dm/dt‖ pooled over steps. */
      mean_relative_error: number;
      /** d tr Σ/dt real against 2E[(x − m)·μ] + E[Σσ²]. */
      dtrace_dt_real: number[];
      dtrace_dt_predicted: number[];
      trace_correlation: number | null;
    };
  };
  msd: {
    definition: string;
    tau: number[];
    real: number[];
    simulated: number[];
    alpha_real: number | null;
    alpha_simulated: number | null;
  };
  residuals: {
    definition: string;
    scope: string;
    per_component: {
      ks: { d: number; p: number };
      skewness: number;
      kurtosis: number;
      jarque_bera: number;
      jarque_bera_p: number;
      acf: number[];
      ljung_box: number;
      ljung_box_p: number;
    }[];
    acf_band: number;
    /** Normal QQ pairs of component 1's residuals (at most 200 quantiles). */
    qq: { theoretical: number; sample: number }[];
  };
  quadratic_variation: {
    definition: string;
    per_component: {
      real: number;
      predicted: number;
      simulated: number;
      ratio_predicted: number;
      ratio_simulated: number;
    }[];
  };
  kramers_moyal: {
    definition: string;
    axes: number[];
    bins: number;
    min_count: number;
    cells: {
      center: number[];
      count: number;
      drift: number[];
      diffusion: number[];
      drift_se: number[];
      network_drift: number[];
      network_diffusion: number[];
    }[];
    agreement: {
      drift: { relative_rms: number; correlation: number | null; within_2se: number };
      diffusion: { relative_rms: number; correlation: number | null; within_2se: number };
    };
  };
  /** Samples for the figures: paths in (PC1, PC2) and (x_i, Δx_i) pairs, real and simulated. */
  figures: {
    real_paths: number[][][];
    simulated_paths: number[][][];
    phase: { source: 'real' | 'simulated'; component: number; x: number; dx: number }[];
  };
}

/**
 * All validation and analyses of one data set. `paths` are in PC coordinates; `split` says
 * which increments trained the network (and which are held out).
 */
export function analyzeDataset(
  net: SdeNetwork,
  paths: readonly Path[],
  split: Split,
  nllFit: { train: number; validation: number },
  options: AnalysisOptions,
): DatasetAnalysis {
  const { k } = net;
  const dt = split.train.dt;
  const replicas = options.replicas ?? 16;
  const simRng = createRng(options.seed + 1);
  const heldOut = split.mode === 'paths';
  const testPaths = heldOut ? split.testPaths : split.trainPaths;
  const scope = heldOut
    ? `${split.testPaths.length} held-out test paths`
    : `all ${split.trainPaths.length} paths (too few paths to hold whole ones out; increments were split instead)`;

  // ---- held-out NLL with baselines -------------------------------------------------------
  const km = kramersMoyal(split.train, options.km);
  const testNll = sdeNll(net, split.test);
  const constant = constantBaseline(split.train);
  const linear = linearBaseline(split.train);
  const nll: DatasetAnalysis['nll'] = {
    definition:
      'Euler–Maruyama Gaussian NLL per increment, Σ_i [(Δx_i − μ_iΔt)²/(2σ_i²Δt) + ½log(2πσ_i²Δt)] (nats)',
    model: { train: nllFit.train, validation: nllFit.validation, test: testNll.mean },
    per_component_test: testNll.perComponent,
    kramers_moyal_test: kmNll(km, constant, split.test),
    constant_test: constantNll(constant, split.test),
    linear_test: linear ? linearNll(linear, split.test) : NaN,
    linear,
    baselines:
      'kramers_moyal: binned conditional moments of the training increments (constant baseline outside populated bins); constant: one drift and one diagonal diffusion for all states (Brownian motion with drift); ' +
      'linear: Ornstein–Uhlenbeck / VAR(1), Δx = (A x + b)Δt + diag(σ)√Δt ε fitted by least squares per component with σ² the residual variance (the Gaussian MLE), time-homogeneous — the simplest model the network has to beat',
  };

  // ---- simulation from the real starts -----------------------------------------------------
  const sde = networkSde(net);
  const starts = (ids: readonly number[]) =>
    ids.flatMap((i) =>
      Array.from({ length: replicas }, () => ({
        x: paths[i].states.subarray(0, k),
        t0: paths[i].t0,
        steps: paths[i].len - 1,
        of: i,
      })),
    );
  const allIds = paths.map((_, i) => i).filter((i) => paths[i].len >= 2);
  const simStarts = starts(allIds);
  const simulated = eulerMaruyama(sde, simStarts, dt, simRng);
  const simOf = simStarts.map((s) => s.of);
  const simTest = simulated.filter((_, j) => testPaths.includes(simOf[j]));

  const realTestInc = incrementsOf(
    testPaths.map((i) => paths[i]),
    k,
    dt,
  );
  const simTestInc = incrementsOf(simTest, k, dt);
  const ksPer = Array.from({ length: k }, (_, i) => {
    const r = ksTwoSample(column(realTestInc.dx, k, i), column(simTestInc.dx, k, i));
    return { d: r.d, p: r.p };
  });
  const ends = (ps: readonly Path[]) => {
    const out = new Float64Array(ps.length * k);
    ps.forEach((p, j) => out.set(p.states.subarray((p.len - 1) * k, p.len * k), j * k));
    return out;
  };
  const realTest = testPaths.map((i) => paths[i]);
  const simForMmd = simTest.slice(0, Math.max(2, Math.min(simTest.length, 400)));
  const mmdResult = mmd(
    ends(realTest),
    realTest.length,
    ends(simForMmd),
    simForMmd.length,
    k,
    createRng(options.seed + 2),
  );

  // ---- drift and diffusion along the trajectories -------------------------------------------
  const along = alongTrajectories(net, paths, dt);

  // ---- grid and fixed points ------------------------------------------------------------------
  const tRef = median(Array.from(split.train.t));
  const grid = driftGrid(net, split.train, tRef, options.gridSize ?? 15);
  const fixed = fixedPoints(
    net,
    split.train,
    tRef,
    createRng(options.seed + 3),
    along.mean.drift_norm,
  );

  // ---- moments, MSD, residuals, quadratic variation ------------------------------------------
  const mom = ensembleMoments(net, paths, simulated, simOf, dt, replicas);
  const msd = displacement(paths, simulated);
  const residualScope = heldOut ? split.test : incrementsOf(paths, k, dt);
  const residuals = residualChecks(
    net,
    residualScope,
    options.lags ?? 5,
    heldOut ? 'held-out test paths' : 'all increments (in-sample: no held-out paths)',
  );
  const qv = quadraticVariation(net, paths, simulated, dt, replicas);

  return {
    nll,
    ks_increments: {
      definition:
        'two-sample Kolmogorov–Smirnov distance between real and simulated increments Δx_i, per component; simulations start at the real paths’ first states and run as many steps',
      scope: `${scope}; ${replicas} simulations per path`,
      per_component: ksPer,
      mean_d: ksPer.reduce((a, r) => a + r.d, 0) / k,
    },
    mmd_end_states: {
      definition:
        'unbiased MMD² between real and simulated end states, Gaussian kernel with the median pairwise distance as bandwidth; permutation p-value',
      scope: `${scope}; ${simForMmd.length} simulated end states`,
      ...mmdResult,
    },
    along_trajectories: along,
    grid,
    fixed_points: fixed,
    moments: mom,
    msd,
    residuals,
    quadratic_variation: qv,
    kramers_moyal: kmAgreement(net, km, split.train),
    figures: figureSamples(paths, simulated, replicas, k),
  };
}

// ---- baselines ------------------------------------------------------------------------------

interface Constant {
  drift: number[];
  sigma: number[];
}

function constantBaseline(set: IncrementSet): Constant {
  const { k, n, dt } = set;
  const drift: number[] = [];
  const sigma: number[] = [];
  for (let i = 0; i < k; i++) {
    const v = column(set.dx, k, i);
    const m = v.reduce((a, b) => a + b, 0) / n;
    const variance = v.reduce((a, b) => a + (b - m) ** 2, 0) / n;
    drift.push(m / dt);
    sigma.push(Math.sqrt(Math.max(variance, 1e-300) / dt));
  }
  return { drift, sigma };
}

export interface LinearBaseline {
  /** Drift μ(x) = A x + b per unit time: A [k, k] row-major (row = output component), b [k]. */
  a: number[];
  b: number[];
  /** Diagonal diffusion σ per component (per unit time). */
  sigma: number[];
  /** Training NLL per increment (nats). */
  train: number;
}

/**
 * The OU / VAR(1) Gaussian baseline: per component i, Δx_i = [x, 1]·β_i + e by least squares on
 * the training increments (the Gaussian MLE of the drift for any diagonal noise), σ_i²Δt =
 * RSS_i / n (MLE). Null when the design is singular.
 */
export function linearBaseline(set: IncrementSet): LinearBaseline | null {
  const { k, n, dt } = set;
  const p = k + 1;
  const design = new Float64Array(n * p);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < k; j++) design[r * p + j] = set.x[r * k + j];
    design[r * p + k] = 1;
  }
  const fit = multiLeastSquares(design, n, p, set.dx, k);
  if (!fit) return null;
  const a: number[] = [];
  const b: number[] = [];
  const sigma: number[] = [];
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) a.push(fit.beta[j * k + i] / dt);
    b.push(fit.beta[k * k + i] / dt);
    sigma.push(Math.sqrt(Math.max(fit.rss[i] / n, 1e-300) / dt));
  }
  const base = { a, b, sigma, train: 0 };
  return { ...base, train: linearNll(base, set) };
}

/** Mean Euler–Maruyama Gaussian NLL per increment of the linear baseline (nats). */
export function linearNll(lin: LinearBaseline, set: IncrementSet): number {
  const { k, n, dt } = set;
  let s = 0;
  for (let r = 0; r < n; r++)
    for (let i = 0; i < k; i++) {
      let mu = lin.b[i];
      for (let j = 0; j < k; j++) mu += lin.a[i * k + j] * set.x[r * k + j];
      s += gaussianNll(set.dx[r * k + i], mu * dt, lin.sigma[i] ** 2 * dt);
    }
  return s / Math.max(1, n);
}

function constantNll(c: Constant, set: IncrementSet): number {
  const { k, n, dt } = set;
  let s = 0;
  for (let r = 0; r < n; r++)
    for (let i = 0; i < k; i++)
      s += gaussianNll(set.dx[r * k + i], c.drift[i] * dt, c.sigma[i] ** 2 * dt);
  return s / Math.max(1, n);
}

function kmNll(km: KmEstimate, c: Constant, set: IncrementSet): number {
  const { k, n, dt } = set;
  let s = 0;
  for (let r = 0; r < n; r++) {
    const cell = kmLookup(km, set.x.subarray(r * k, (r + 1) * k));
    for (let i = 0; i < k; i++) {
      const mu = cell ? cell.drift[i] : c.drift[i];
      const sg = cell && cell.diffusion[i] > 0 ? cell.diffusion[i] : c.sigma[i];
      s += gaussianNll(set.dx[r * k + i], mu * dt, sg * sg * dt);
    }
  }
  return s / Math.max(1, n);
}

// ---- drift and diffusion along trajectories (§2.5 item 1) ------------------------------------

function alongTrajectories(
  net: SdeNetwork,
  paths: readonly Path[],
  dt: number,
): DatasetAnalysis['along_trajectories'] {
  const { k } = net;
  const longest = Math.max(...paths.map((p) => p.len));
  const sums = {
    n: new Array<number>(longest).fill(0),
    mu: new Array<number>(longest).fill(0),
    sg: new Array<number>(longest).fill(0),
    snr: new Array<number>(longest).fill(0),
  };
  let total = { mu: 0, sg: 0, snr: 0, n: 0 };
  for (const p of paths) {
    const t = Float64Array.from({ length: p.len }, (_, j) => (p.t0 + j) * dt);
    const { mu, sigma } = evaluateSde(net, p.states, t, p.len);
    for (let j = 0; j < p.len; j++) {
      const m = norm(mu.subarray(j * k, (j + 1) * k));
      const s = norm(sigma.subarray(j * k, (j + 1) * k));
      const snr = (m * dt) / (s * Math.sqrt(dt));
      sums.n[j]++;
      sums.mu[j] += m;
      sums.sg[j] += s;
      sums.snr[j] += snr;
      total = { mu: total.mu + m, sg: total.sg + s, snr: total.snr + snr, n: total.n + 1 };
    }
  }
  const t0 = paths[0]?.t0 ?? 0;
  return {
    definition:
      '‖μ(x_j, t_j)‖ and ‖σ(x_j, t_j)‖ at the real states, mean over paths per step; signal-to-noise ‖μ‖Δt / (‖σ‖√Δt)',
    t: sums.n.map((_, j) => (t0 + j) * dt),
    n: sums.n,
    drift_norm: sums.mu.map((v, j) => v / sums.n[j]),
    diffusion_norm: sums.sg.map((v, j) => v / sums.n[j]),
    snr: sums.snr.map((v, j) => v / sums.n[j]),
    mean: {
      drift_norm: total.mu / total.n,
      diffusion_norm: total.sg / total.n,
      snr: total.snr / total.n,
    },
  };
}

function driftGrid(
  net: SdeNetwork,
  train: IncrementSet,
  t: number,
  size: number,
): DatasetAnalysis['grid'] {
  const { k } = net;
  const axis = (c: number) => {
    if (c >= k) return [0];
    const v = column(train.x, k, c).sort((a, b) => a - b);
    const lo = quantileSorted(v, 0.01);
    const hi = quantileSorted(v, 0.99);
    return Array.from({ length: size }, (_, i) => lo + ((hi - lo) * i) / Math.max(1, size - 1));
  };
  const xs = axis(0);
  const ys = axis(1);
  const mean = Array.from(
    { length: k },
    (_, i) => column(train.x, k, i).reduce((a, b) => a + b, 0) / train.n,
  );
  const n = xs.length * ys.length;
  const x = new Float64Array(n * k);
  let r = 0;
  for (const yv of ys) {
    for (const xv of xs) {
      for (let i = 0; i < k; i++) x[r * k + i] = mean[i];
      x[r * k] = xv;
      if (k > 1) x[r * k + 1] = yv;
      r++;
    }
  }
  const { mu, sigma } = evaluateSde(net, x, new Float64Array(n).fill(t), n);
  const points = Array.from({ length: n }, (_, j) => ({
    x: x[j * k],
    y: k > 1 ? x[j * k + 1] : 0,
    mu1: mu[j * k],
    mu2: k > 1 ? mu[j * k + 1] : 0,
    drift_norm: norm(mu.subarray(j * k, (j + 1) * k)),
    diffusion_norm: norm(sigma.subarray(j * k, (j + 1) * k)),
  }));
  return {
    definition:
      'μ and σ on a grid over PC1 × PC2 (1st–99th percentile of the training states), other components at their training mean, at time t',
    t,
    x: xs,
    y: ys,
    points,
  };
}

/**
 * Zeros of μ(·, t) by damped Newton steps x ← x − J⁻¹μ from training states drawn at random;
 * kept when ‖μ‖ falls below the tolerance, merged when closer than 5% of the data's spread,
 * and classified by the eigenvalues of J = ∂μ/∂x there.
 */
function fixedPoints(
  net: SdeNetwork,
  train: IncrementSet,
  t: number,
  rng: Rng,
  typicalDrift: number,
): DatasetAnalysis['fixed_points'] {
  const { k } = net;
  const nStarts = Math.min(48, train.n);
  const tol = 1e-4 * Math.max(typicalDrift, 1e-12);
  const lo: number[] = [];
  const hi: number[] = [];
  let spread = 0;
  for (let i = 0; i < k; i++) {
    const v = column(train.x, k, i);
    const mn = Math.min(...v);
    const mx = Math.max(...v);
    lo.push(mn - 0.1 * (mx - mn));
    hi.push(mx + 0.1 * (mx - mn));
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    spread += v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length;
  }
  spread = Math.sqrt(spread);
  const drift = (x: Float64Array) => evaluateSde(net, x, Float64Array.of(t), 1).mu;
  const found: DatasetAnalysis['fixed_points']['found'] = [];
  let outside = 0;
  for (let s = 0; s < nStarts; s++) {
    const r = Math.floor(rng.next() * train.n);
    let x = train.x.slice(r * k, (r + 1) * k);
    let f = drift(x);
    let fn = norm(f);
    for (let it = 0; it < 60 && fn > tol; it++) {
      const step = solve(driftJacobian(net, x, t), f, k);
      if (!step) break;
      let lambda = 1;
      let moved = false;
      for (let h = 0; h < 12; h++, lambda /= 2) {
        const xn = x.map((v, i) => v - lambda * step[i]);
        const fnew = drift(xn);
        const nn = norm(fnew);
        if (nn < fn) {
          x = xn;
          f = fnew;
          fn = nn;
          moved = true;
          break;
        }
      }
      if (!moved) break;
    }
    if (!(fn <= tol)) continue;
    if (x.some((v, i) => v < lo[i] || v > hi[i])) {
      outside++;
      continue;
    }
    if (found.some((p) => dist(p.x, x) < 0.05 * spread)) continue;
    const ev = eigenvalues(driftJacobian(net, x, t), k);
    let nearest = Infinity;
    for (let q = 0; q < train.n; q++)
      nearest = Math.min(nearest, dist(train.x.subarray(q * k, (q + 1) * k), x));
    found.push({
      x: Array.from(x),
      residual: fn,
      eigenvalues: ev,
      kind: classify(ev),
      nearest_state_distance: nearest,
    });
  }
  found.sort((a, b) => a.x[0] - b.x[0]);
  return {
    definition:
      'zeros of μ(·, t) (damped Newton from random training states) inside the data’s range (±10%), with the eigenvalues of ∂μ/∂x there: all Re < 0 stable, all Re > 0 unstable, mixed saddle; complex pairs make a focus',
    t,
    starts: nStarts,
    tolerance: tol,
    found,
    outside_data_range: outside,
  };
}

function classify(ev: readonly Eigenvalue[]): string {
  const scale = Math.max(...ev.map((e) => Math.hypot(e.re, e.im)), 1e-300);
  const neg = ev.filter((e) => e.re < -1e-9 * scale).length;
  const pos = ev.filter((e) => e.re > 1e-9 * scale).length;
  const complex = ev.some((e) => Math.abs(e.im) > 1e-9 * scale);
  if (neg + pos < ev.length) return 'degenerate';
  if (pos === 0) return complex ? 'stable focus' : 'stable node';
  if (neg === 0) return complex ? 'unstable focus' : 'unstable node';
  return 'saddle';
}

// ---- moments (§2.5 item 2) ---------------------------------------------------------------------

function ensembleMoments(
  net: SdeNetwork,
  paths: readonly Path[],
  simulated: readonly Path[],
  simOf: readonly number[],
  dt: number,
  replicas: number,
): DatasetAnalysis['moments'] {
  const { k } = net;
  const longest = Math.max(...paths.map((p) => p.len));
  const t0 = paths[0]?.t0 ?? 0;
  const out: DatasetAnalysis['moments'] = {
    definition:
      'ensemble mean m_t and covariance Σ_t over the paths alive at step t, real against simulated (simulations start at each real path’s first state); summary: RMS_t ‖m_real − m_sim‖ / √tr Cov(all real states), Σ_t tr Σ_sim / Σ_t tr Σ_real, and the same ratio at the last step',
    replicas,
    t: [],
    n_real: [],
    mean_real: [],
    mean_simulated: [],
    var_real: [],
    var_simulated: [],
    trace_cov_real: [],
    trace_cov_simulated: [],
    cov_relative_frobenius: [],
    summary: {
      mean_error_relative: NaN,
      trace_ratio_mean: NaN,
      trace_ratio_end: NaN,
      cov_relative_frobenius_mean: NaN,
    },
    ito: {
      definition:
        'Itô moment equations dm/dt = E[μ], d tr Σ/dt = 2E[(x − m)·μ] + E[Σ_i σ_i²], evaluated on the real ensemble (paths alive at t + 1) against finite differences of the real moments',
      dm_dt_real_norm: [],
      e_drift_norm: [],
      mean_relative_error: NaN,
      dtrace_dt_real: [],
      dtrace_dt_predicted: [],
      trace_correlation: null,
    },
  };
  const rows = (ps: readonly Path[], j: number) =>
    ps.filter((p) => p.len > j).map((p) => p.states.subarray(j * k, (j + 1) * k));
  const real = paths.filter((p) => p.len >= 2);
  const sims = simulated.filter((_, i) => paths[simOf[i]].len >= 2);
  for (let j = 0; j < longest; j++) {
    const a = rows(real, j);
    const b = rows(sims, j);
    if (a.length === 0) break;
    const ma = meanOf(a, k);
    const mb = meanOf(b, k);
    const ca = covOf(a, ma, k);
    const cb = covOf(b, mb, k);
    out.t.push((t0 + j) * dt);
    out.n_real.push(a.length);
    out.mean_real.push(ma);
    out.mean_simulated.push(mb);
    out.var_real.push(ma.map((_, i) => ca[i * k + i]));
    out.var_simulated.push(mb.map((_, i) => cb[i * k + i]));
    out.trace_cov_real.push(traceOf(ca, k));
    out.trace_cov_simulated.push(traceOf(cb, k));
    const fa = Math.sqrt(ca.reduce((s, v) => s + v * v, 0));
    const fd = Math.sqrt(ca.reduce((s, v, i) => s + (v - cb[i]) ** 2, 0));
    out.cov_relative_frobenius.push(fa > 0 ? fd / fa : NaN);
  }
  // the mean error is scaled by the spread of all real states (pooled over steps and paths);
  // the variance ratio pools over steps, so steps with a near-zero real spread (a shared start)
  // cannot dominate it
  const steps = out.t.length;
  const pooled = real.flatMap((p) =>
    Array.from({ length: p.len }, (_, j) => p.states.subarray(j * k, (j + 1) * k)),
  );
  const cloud = traceOf(covOf(pooled, meanOf(pooled, k), k), k);
  const errSq = out.mean_real.reduce((acc, m, j) => acc + dist(m, out.mean_simulated[j]) ** 2, 0);
  const used = out.t
    .map((_, j) => j)
    .filter((j) => out.n_real[j] >= 2 && out.trace_cov_real[j] > 1e-9 * cloud);
  const sumReal = used.reduce((a, j) => a + out.trace_cov_real[j], 0);
  const sumSim = used.reduce((a, j) => a + out.trace_cov_simulated[j], 0);
  const end = used.length ? used[used.length - 1] : -1;
  out.summary = {
    mean_error_relative: cloud > 0 ? Math.sqrt(errSq / steps / cloud) : NaN,
    trace_ratio_mean: sumReal > 0 ? sumSim / sumReal : NaN,
    trace_ratio_end: end >= 0 ? out.trace_cov_simulated[end] / out.trace_cov_real[end] : NaN,
    cov_relative_frobenius_mean: used.length
      ? used.reduce((a, j) => a + out.cov_relative_frobenius[j], 0) / used.length
      : NaN,
  };
  // Itô moment equations on the real ensemble that survives to j + 1
  let num = 0;
  let den = 0;
  for (let j = 0; j + 1 < longest; j++) {
    const alive = real.filter((p) => p.len > j + 1);
    if (alive.length < 2) break;
    const a0 = alive.map((p) => p.states.subarray(j * k, (j + 1) * k));
    const a1 = alive.map((p) => p.states.subarray((j + 1) * k, (j + 2) * k));
    const m0 = meanOf(a0, k);
    const m1 = meanOf(a1, k);
    const x = new Float64Array(alive.length * k);
    a0.forEach((r, i) => x.set(r, i * k));
    const { mu, sigma } = evaluateSde(
      net,
      x,
      new Float64Array(alive.length).fill((t0 + j) * dt),
      alive.length,
    );
    const eMu = new Array<number>(k).fill(0);
    let cross = 0;
    let s2 = 0;
    for (let r = 0; r < alive.length; r++) {
      for (let i = 0; i < k; i++) {
        eMu[i] += mu[r * k + i] / alive.length;
        cross += ((x[r * k + i] - m0[i]) * mu[r * k + i]) / alive.length;
        s2 += sigma[r * k + i] ** 2 / alive.length;
      }
    }
    const dm = m1.map((v, i) => (v - m0[i]) / dt);
    out.ito.dm_dt_real_norm.push(norm(dm));
    out.ito.e_drift_norm.push(norm(eMu));
    num += dist(dm, eMu) ** 2;
    den += norm(dm) ** 2;
    out.ito.dtrace_dt_real.push((traceOf(covOf(a1, m1, k), k) - traceOf(covOf(a0, m0, k), k)) / dt);
    out.ito.dtrace_dt_predicted.push(2 * cross + s2);
  }
  out.ito.mean_relative_error = den > 0 ? Math.sqrt(num / den) : NaN;
  out.ito.trace_correlation = pearsonOrNull(out.ito.dtrace_dt_real, out.ito.dtrace_dt_predicted);
  return out;
}

// ---- mean squared displacement (§2.5 item 3) ----------------------------------------------------

function displacement(paths: readonly Path[], simulated: readonly Path[]): DatasetAnalysis['msd'] {
  const longest = Math.max(...paths.map((p) => p.len));
  const tauMax = Math.max(1, Math.floor((longest - 1) / 2));
  const tau = Array.from({ length: tauMax }, (_, i) => i + 1);
  const k = paths.length ? paths[0].states.length / Math.max(1, paths[0].len) : 1;
  const msdOf = (ps: readonly Path[]) =>
    tau.map((tt) => {
      let s = 0;
      let n = 0;
      for (const p of ps) {
        for (let j = 0; j + tt < p.len; j++) {
          s +=
            dist(
              p.states.subarray(j * k, (j + 1) * k),
              p.states.subarray((j + tt) * k, (j + tt + 1) * k),
            ) ** 2;
          n++;
        }
      }
      return n ? s / n : NaN;
    });
  const real = msdOf(paths);
  const sim = msdOf(simulated);
  return {
    definition:
      'MSD(τ) = E‖x_{t+τ} − x_t‖² over all paths and t (τ in steps, up to half the longest path); α = slope of log MSD against log τ (α ≈ 1 diffusive, > 1 drift-dominated, < 1 confined)',
    tau,
    real,
    simulated: sim,
    alpha_real: logSlope(tau, real),
    alpha_simulated: logSlope(tau, sim),
  };
}

function logSlope(x: readonly number[], y: readonly number[]): number | null {
  const pts = x.map((v, i) => [v, y[i]]).filter(([a, b]) => a > 0 && b > 0 && Number.isFinite(b));
  if (pts.length < 3) return null;
  return linearFit(
    pts.map(([a]) => Math.log(a)),
    pts.map(([, b]) => Math.log(b)),
  ).slope;
}

// ---- residuals and quadratic variation (§2.5 item 4) ---------------------------------------------

function residualChecks(
  net: SdeNetwork,
  set: IncrementSet,
  lags: number,
  scope: string,
): DatasetAnalysis['residuals'] {
  const { k, n, dt } = set;
  const { mu, sigma } = evaluateSde(net, set.x, set.t, n);
  const z = new Float64Array(n * k);
  for (let r = 0; r < n * k; r++) z[r] = (set.dx[r] - mu[r] * dt) / (sigma[r] * Math.sqrt(dt));
  // one series per path, in step order (increment sets are stored path by path, step by step)
  const byPath = new Map<number, number[]>();
  for (let r = 0; r < n; r++) {
    const list = byPath.get(set.path[r]) ?? [];
    list.push(r);
    byPath.set(set.path[r], list);
  }
  let band = NaN;
  const perComponent = Array.from({ length: k }, (_, i) => {
    const v = column(z, k, i);
    const ks = ksNormal(v);
    const m = moments(v);
    const series = [...byPath.values()].map((rows) => rows.map((r) => z[r * k + i]));
    const ac = autocorrelation(series, lags);
    band = ac.band;
    return {
      ks: { d: ks.d, p: ks.p },
      skewness: m.skewness,
      kurtosis: m.kurtosis,
      jarque_bera: m.jarqueBera,
      jarque_bera_p: m.jarqueBeraP,
      acf: ac.r,
      ljung_box: ac.ljungBox,
      ljung_box_p: ac.ljungBoxP,
    };
  });
  const sorted = column(z, k, 0).sort((a, b) => a - b);
  const nq = Math.min(200, sorted.length);
  const qq = Array.from({ length: nq }, (_, i) => {
    const p = (i + 0.5) / nq;
    return {
      theoretical: normalQuantile(p),
      sample: sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))],
    };
  });
  return {
    definition: `standardised residuals z = (Δx − μΔt)/(σ√Δt) per component: KS distance from N(0, 1), skewness, excess kurtosis, Jarque–Bera; autocorrelation at lags 1–${lags} within paths with the Ljung–Box test (white residuals ⇔ Markov, well-specified)`,
    scope,
    per_component: perComponent,
    acf_band: band,
    qq,
  };
}

function quadraticVariation(
  net: SdeNetwork,
  paths: readonly Path[],
  simulated: readonly Path[],
  dt: number,
  replicas: number,
): DatasetAnalysis['quadratic_variation'] {
  const { k } = net;
  const all = incrementsOf(paths, k, dt);
  const sim = incrementsOf(simulated, k, dt);
  const { mu, sigma } = evaluateSde(net, all.x, all.t, all.n);
  return {
    definition:
      'Σ(Δx_i)² over all real increments, against the model’s Σ(σ_i²Δt + μ_i²Δt²) at the real states and against simulated paths (divided by the replicas per path)',
    per_component: Array.from({ length: k }, (_, i) => {
      let real = 0;
      let predicted = 0;
      for (let r = 0; r < all.n; r++) {
        real += all.dx[r * k + i] ** 2;
        predicted += sigma[r * k + i] ** 2 * dt + (mu[r * k + i] * dt) ** 2;
      }
      let s = 0;
      for (let r = 0; r < sim.n; r++) s += sim.dx[r * k + i] ** 2;
      const simulatedQv = s / replicas;
      return {
        real,
        predicted,
        simulated: simulatedQv,
        ratio_predicted: predicted / real,
        ratio_simulated: simulatedQv / real,
      };
    }),
  };
}

// ---- Kramers–Moyal agreement -------------------------------------------------------------------

function kmAgreement(
  net: SdeNetwork,
  km: KmEstimate,
  train: IncrementSet,
): DatasetAnalysis['kramers_moyal'] {
  const { k } = net;
  const { mu, sigma } = evaluateSde(net, train.x, train.t, train.n);
  const key = (idx: number[]) => idx.join(',');
  const acc = new Map<string, { n: number; mu: number[]; s2: number[] }>();
  for (let r = 0; r < train.n; r++) {
    const cell = kmLookup(km, train.x.subarray(r * k, (r + 1) * k));
    if (!cell) continue;
    const e = acc.get(key(cell.index)) ?? {
      n: 0,
      mu: new Array<number>(k).fill(0),
      s2: new Array<number>(k).fill(0),
    };
    e.n++;
    for (let i = 0; i < k; i++) {
      e.mu[i] += mu[r * k + i];
      e.s2[i] += sigma[r * k + i] ** 2;
    }
    acc.set(key(cell.index), e);
  }
  const cells = km.cells.map((c) => {
    const e = acc.get(key(c.index))!;
    return {
      center: c.center,
      count: c.count,
      drift: c.drift,
      diffusion: c.diffusion,
      drift_se: c.driftSe,
      network_drift: e.mu.map((v) => v / e.n),
      network_diffusion: e.s2.map((v) => Math.sqrt(v / e.n)),
      diffusion_se: c.diffusionSe,
    };
  });
  const agreement = (get: (c: (typeof cells)[number]) => [number[], number[], number[]]) => {
    let num = 0;
    let den = 0;
    let within = 0;
    let total = 0;
    const a: number[] = [];
    const b: number[] = [];
    for (const c of cells) {
      const [kmv, nnv, se] = get(c);
      for (let i = 0; i < k; i++) {
        num += c.count * (kmv[i] - nnv[i]) ** 2;
        den += c.count * kmv[i] ** 2;
        if (Math.abs(kmv[i] - nnv[i]) <= 2 * se[i]) within++;
        total++;
        a.push(kmv[i]);
        b.push(nnv[i]);
      }
    }
    return {
      relative_rms: den > 0 ? Math.sqrt(num / den) : NaN,
      correlation: pearsonOrNull(a, b),
      within_2se: total ? within / total : NaN,
    };
  };
  return {
    definition:
      'Kramers–Moyal bins on the training increments (conditioning on the listed components): μ̂ = E[Δx|bin]/Δt, σ̂² = Var[Δx|bin]/Δt, against the network averaged over the same increments; relative RMS weighted by counts, correlation over bins × components, share within two standard errors',
    axes: km.axes,
    bins: km.bins,
    min_count: km.minCount,
    cells: cells.map(({ diffusion_se: _, ...rest }) => rest),
    agreement: {
      drift: agreement((c) => [c.drift, c.network_drift, c.drift_se]),
      diffusion: agreement((c) => [c.diffusion, c.network_diffusion, c.diffusion_se]),
    },
  };
}

// ---- figure samples ---------------------------------------------------------------------------

function figureSamples(
  paths: readonly Path[],
  simulated: readonly Path[],
  replicas: number,
  k: number,
): DatasetAnalysis['figures'] {
  const two = (p: Path) =>
    Array.from({ length: p.len }, (_, j) => [p.states[j * k], k > 1 ? p.states[j * k + 1] : 0]);
  const realPaths = paths.slice(0, 20).map(two);
  const simPaths = simulated
    .filter((_, i) => i % replicas === 0)
    .slice(0, 20)
    .map(two);
  const phase: DatasetAnalysis['figures']['phase'] = [];
  const add = (source: 'real' | 'simulated', ps: readonly Path[]) => {
    const total = ps.reduce((a, p) => a + p.len - 1, 0);
    const stride = Math.max(1, Math.ceil(total / 300));
    let at = 0;
    for (const p of ps) {
      for (let j = 0; j + 1 < p.len; j++, at++) {
        if (at % stride !== 0) continue;
        for (let c = 0; c < Math.min(2, k); c++) {
          phase.push({
            source,
            component: c + 1,
            x: p.states[j * k + c],
            dx: p.states[(j + 1) * k + c] - p.states[j * k + c],
          });
        }
      }
    }
  };
  add('real', paths);
  add(
    'simulated',
    simulated.filter((_, i) => i % replicas === 0),
  );
  return { real_paths: realPaths, simulated_paths: simPaths, phase };
}

// ---- small helpers -----------------------------------------------------------------------------

export function column(a: ArrayLike<number>, k: number, i: number): number[] {
  const n = Math.floor(a.length / k);
  const out = new Array<number>(n);
  for (let r = 0; r < n; r++) out[r] = a[r * k + i];
  return out;
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

function dist(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

function meanOf(rows: readonly ArrayLike<number>[], k: number): number[] {
  const m = new Array<number>(k).fill(0);
  for (const r of rows) for (let i = 0; i < k; i++) m[i] += r[i] / rows.length;
  return m;
}

/** Sample covariance (divisor n − 1; zeros for a single row). */
function covOf(rows: readonly ArrayLike<number>[], m: readonly number[], k: number): number[] {
  const c = new Array<number>(k * k).fill(0);
  if (rows.length < 2) return c;
  for (const r of rows)
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++)
        c[i * k + j] += ((r[i] - m[i]) * (r[j] - m[j])) / (rows.length - 1);
  return c;
}

function traceOf(c: readonly number[], k: number): number {
  let s = 0;
  for (let i = 0; i < k; i++) s += c[i * k + i];
  return s;
}

function pearsonOrNull(a: readonly number[], b: readonly number[]): number | null {
  return a.length < 3 ? null : pearson(a, b);
}
