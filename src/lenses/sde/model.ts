/**
 * The neural SDE of papers.md §2.2/§2.4 [proposed]: dX = μ_θ(X, t) dt + diag(σ_φ(X, t)) dW,
 * a drift MLP and a diagonal-diffusion MLP on [x, t], fitted to increments by
 *   nll      — the Euler–Maruyama Gaussian likelihood, jointly (preferred in §2.4);
 *   two-loss — a drift loss ‖Δx − μΔt‖² and a moment-matching diffusion loss
 *              ‖(Δx − μΔt)⊙² − σ⊙²Δt‖² with μ detached,
 * with Adam on minibatches, seeded, and early stopping on the validation NLL (best epoch kept).
 *
 * Scaling (part of the model, stored with it): the networks see x̃ = (x − m)/s_x and
 * t̃ = (t − m_t)/s_t, and output in units of c_i = std(Δx_i)/√Δt:
 *   μ_i = c_i·(o_i + (A·x̃ + b)_i),   σ_i = c_i·(softplus(a_i) + floor),
 * o and a being the two MLPs' outputs. The linear drift term A·x̃ + b (an Ornstein–Uhlenbeck
 * drift) starts at the least-squares fit of the increments and is trained with the MLPs, which
 * learn what is not linear: with few increments the mean reversion is then there from the
 * first epoch instead of having to be grown through saturating tanh units.
 */
import { LmdynError } from '../../errors.js';
import { createAdam } from '../../nn/adam.js';
import {
  createMlp,
  mlpBackward,
  mlpForward,
  mlpInputJacobian,
  type Mlp,
  type MlpTape,
} from '../../nn/mlp.js';
import { createRng } from '../../tensor/rng.js';
import { solve } from '../../tensor/eigen.js';
import type { IncrementSet } from './paths.js';

export type SdeLoss = 'nll' | 'two-loss';

export interface SdeNetwork {
  k: number;
  /** Whether t is an input (μ(x, t), σ(x, t)) or the SDE is autonomous. */
  timeInput: boolean;
  drift: Mlp;
  /** Linear drift term in scaled units: [A (k × k, row-major), b (k)]. */
  driftLinear: Float64Array;
  diffusion: Mlp;
  norm: {
    xMean: number[];
    xStd: number[];
    tMean: number;
    tStd: number;
    /** c_i = std(Δx_i)/√Δt on the training increments. */
    scale: number[];
  };
  /** σ_i ≥ c_i·floor. */
  sigmaFloor: number;
}

export interface FitOptions {
  loss?: SdeLoss;
  /** Hidden widths of both networks (default [128, 128], papers.md §2.4). */
  hidden?: number[];
  timeInput?: boolean;
  lr?: number;
  /** Minibatch size (default 256; smaller when that would leave fewer than 8 steps per epoch). */
  batchSize?: number;
  maxEpochs?: number;
  /** Stop after this many epochs without a better validation NLL. */
  patience?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface FitHistory {
  epoch: number;
  /** Mean training loss over the epoch's batches (NLL per increment, or the drift + diffusion losses). */
  train: number;
  /** Validation NLL per increment (nats, summed over components). */
  validation: number;
}

export interface SdeFit {
  network: SdeNetwork;
  options: Required<Omit<FitOptions, 'log'>>;
  history: FitHistory[];
  bestEpoch: number;
  epochs: number;
  stoppedBy: 'patience' | 'max_epochs';
  seconds: number;
  nll: { train: number; validation: number };
}

const SIGMA_FLOOR = 1e-3;

/** Fits μ and σ to `train`, early-stopping on the NLL of `validation`. */
export function fitSde(
  train: IncrementSet,
  validation: IncrementSet,
  options: FitOptions = {},
): SdeFit {
  const opts = {
    loss: options.loss ?? 'nll',
    hidden: options.hidden ?? [128, 128],
    timeInput: options.timeInput ?? true,
    lr: options.lr ?? 1e-3,
    batchSize: options.batchSize ?? 256,
    maxEpochs: options.maxEpochs ?? 300,
    patience: options.patience ?? 20,
    seed: options.seed ?? 1,
  };
  if (train.n < 2) throw new LmdynError('bad_argument', 'fitSde: fewer than 2 training increments');
  const start = performance.now();
  const rng = createRng(opts.seed);
  const network = initialNetwork(train, opts.hidden, opts.timeInput, rng);
  const adamMu = createAdam(network.drift.params.length, { lr: opts.lr });
  const adamLin = createAdam(network.driftLinear.length, { lr: opts.lr });
  const adamSigma = createAdam(network.diffusion.params.length, { lr: opts.lr });
  const grads: SdeGradients = {
    drift: new Float64Array(network.drift.params.length),
    driftLinear: new Float64Array(network.driftLinear.length),
    diffusion: new Float64Array(network.diffusion.params.length),
  };
  const batchSize = Math.max(1, Math.min(opts.batchSize, Math.max(8, Math.floor(train.n / 8))));
  const val = validation.n > 0 ? validation : train;
  let best = sdeNll(network, val).mean;
  let bestParams = snapshot(network);
  let bestEpoch = 0;
  let lastCut = 0;
  const history: FitHistory[] = [{ epoch: 0, train: NaN, validation: best }];
  let stoppedBy: SdeFit['stoppedBy'] = 'max_epochs';
  const order = Array.from({ length: train.n }, (_, i) => i);
  for (let epoch = 1; epoch <= opts.maxEpochs; epoch++) {
    shuffleInPlace(order, rng);
    let lossSum = 0;
    for (let b0 = 0; b0 < train.n; b0 += batchSize) {
      const rows = order.slice(b0, Math.min(train.n, b0 + batchSize));
      const batch = gather(train, rows);
      grads.drift.fill(0);
      grads.driftLinear.fill(0);
      grads.diffusion.fill(0);
      const loss =
        opts.loss === 'nll'
          ? nllLossAndGrad(network, batch, grads)
          : twoLossAndGrad(network, batch, grads);
      lossSum += loss * rows.length;
      adamMu.step(network.drift.params, grads.drift);
      adamLin.step(network.driftLinear, grads.driftLinear);
      adamSigma.step(network.diffusion.params, grads.diffusion);
    }
    const v = sdeNll(network, val).mean;
    history.push({ epoch, train: lossSum / train.n, validation: v });
    if (v < best - 1e-6 * Math.abs(best)) {
      best = v;
      bestParams = snapshot(network);
      bestEpoch = epoch;
      lastCut = epoch;
    } else if (epoch - bestEpoch >= opts.patience) {
      stoppedBy = 'patience';
      break;
    } else if (epoch - lastCut >= Math.ceil(opts.patience / 4)) {
      // reduce on plateau: halve the step when the validation NLL stalls
      for (const adam of [adamMu, adamLin, adamSigma]) adam.lr /= 2;
      lastCut = epoch;
    }
    if (options.log && epoch % 25 === 0)
      options.log(
        `  epoch ${epoch}: train ${(lossSum / train.n).toFixed(4)}, validation NLL ${v.toFixed(4)}`,
      );
  }
  network.drift.params.set(bestParams.drift);
  network.driftLinear.set(bestParams.driftLinear);
  network.diffusion.params.set(bestParams.diffusion);
  return {
    network,
    options: { ...opts, batchSize },
    history,
    bestEpoch,
    epochs: history.length - 1,
    stoppedBy,
    seconds: (performance.now() - start) / 1000,
    nll: { train: sdeNll(network, train).mean, validation: best },
  };
}

/** μ [n, k] and σ [n, k] at states x [n, k] and times t [n]. */
export function evaluateSde(
  net: SdeNetwork,
  x: Float64Array,
  t: Float64Array,
  n: number,
): { mu: Float64Array; sigma: Float64Array; raw: RawOutputs } {
  const input = networkInput(net, x, t, n);
  const fm = mlpForward(net.drift, input, n);
  const fs = mlpForward(net.diffusion, input, n);
  const { k } = net;
  const w = net.drift.sizes[0];
  const lin = net.driftLinear;
  const mu = new Float64Array(n * k);
  const sigma = new Float64Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < k; i++) {
      const c = net.norm.scale[i];
      let o = fm.out[r * k + i] + lin[k * k + i];
      for (let j = 0; j < k; j++) o += lin[i * k + j] * input[r * w + j];
      mu[r * k + i] = c * o;
      sigma[r * k + i] = c * (softplus(fs.out[r * k + i]) + net.sigmaFloor);
    }
  }
  return { mu, sigma, raw: { input, drift: fm.tape, diffusion: fs.tape, a: fs.out } };
}

export interface RawOutputs {
  input: Float64Array;
  drift: MlpTape;
  diffusion: MlpTape;
  /** Pre-softplus diffusion outputs [n, k]. */
  a: Float64Array;
}

/**
 * Euler–Maruyama Gaussian NLL of each increment (papers.md §2.4):
 *   Σ_i [(Δx_i − μ_iΔt)² / (2σ_i²Δt) + ½ log(2π σ_i² Δt)]  (nats), and its mean.
 */
export function sdeNll(
  net: SdeNetwork,
  set: IncrementSet,
): { mean: number; perIncrement: Float64Array; perComponent: number[] } {
  const perIncrement = new Float64Array(set.n);
  const perComponent = new Array<number>(set.k).fill(0);
  const chunk = 4096;
  for (let r0 = 0; r0 < set.n; r0 += chunk) {
    const m = Math.min(chunk, set.n - r0);
    const { mu, sigma } = evaluateSde(net, set.x.subarray(r0 * set.k), set.t.subarray(r0), m);
    for (let r = 0; r < m; r++) {
      let s = 0;
      for (let i = 0; i < set.k; i++) {
        const e = gaussianNll(
          set.dx[(r0 + r) * set.k + i],
          mu[r * set.k + i] * set.dt,
          sigma[r * set.k + i] ** 2 * set.dt,
        );
        s += e;
        perComponent[i] += e / set.n;
      }
      perIncrement[r0 + r] = s;
    }
  }
  let mean = 0;
  for (const v of perIncrement) mean += v / Math.max(1, set.n);
  return { mean, perIncrement, perComponent };
}

/** −log N(y; m, v). */
export function gaussianNll(y: number, m: number, v: number): number {
  return ((y - m) * (y - m)) / (2 * v) + 0.5 * Math.log(2 * Math.PI * v);
}

/** Gradient buffers, one per parameter vector (same layouts). */
export interface SdeGradients {
  drift: Float64Array;
  driftLinear: Float64Array;
  diffusion: Float64Array;
}

/**
 * Mean EM NLL of a batch, with its gradient ADDED to `grads`. With r = Δx − μΔt, v = σ²Δt:
 *   ∂/∂μ = −Δt·r/v,   ∂/∂σ = (1 − r²/v)/σ,   ∂σ/∂a = c·sigmoid(a),  ∂μ/∂o = c.
 */
export function nllLossAndGrad(net: SdeNetwork, batch: IncrementSet, grads: SdeGradients): number {
  const { n, k, dt } = batch;
  const { mu, sigma, raw } = evaluateSde(net, batch.x, batch.t, n);
  const go = new Float64Array(n * k);
  const ga = new Float64Array(n * k);
  let loss = 0;
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < k; i++) {
      const j = r * k + i;
      const c = net.norm.scale[i];
      const s = sigma[j];
      const v = s * s * dt;
      const res = batch.dx[j] - mu[j] * dt;
      loss += gaussianNll(batch.dx[j], mu[j] * dt, v);
      go[j] = (((-dt * res) / v) * c) / n;
      ga[j] = (((1 - (res * res) / v) / s) * c * sigmoid(raw.a[j])) / n;
    }
  }
  backward(net, raw, go, ga, grads);
  return loss / n;
}

/**
 * The two-loss variant on increments standardised per component (u = Δx/(c√Δt)):
 *   L_μ = mean Σ_i (u_i − μ̃_i√Δt)²,  μ̃ = μ/c;
 *   L_σ = mean Σ_i ((u_i − μ̃_i√Δt)² − σ̃_i²)²,  σ̃ = σ/c,  μ detached.
 * Returns L_μ + L_σ; the drift gradients come from L_μ only, the diffusion's from L_σ only.
 */
export function twoLossAndGrad(net: SdeNetwork, batch: IncrementSet, grads: SdeGradients): number {
  const { n, k, dt } = batch;
  const { mu, sigma, raw } = evaluateSde(net, batch.x, batch.t, n);
  const sq = Math.sqrt(dt);
  const go = new Float64Array(n * k);
  const ga = new Float64Array(n * k);
  let lMu = 0;
  let lSigma = 0;
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < k; i++) {
      const j = r * k + i;
      const c = net.norm.scale[i];
      const u = batch.dx[j] / (c * sq);
      const e = u - (mu[j] / c) * sq;
      const st = sigma[j] / c;
      const m = e * e - st * st;
      lMu += e * e;
      lSigma += m * m;
      // ∂L_μ/∂o = 2e·(−√Δt) (μ̃ = o);  ∂L_σ/∂σ̃ = −4 m σ̃, ∂σ̃/∂a = sigmoid(a)
      go[j] = (-2 * e * sq) / n;
      ga[j] = (-4 * m * st * sigmoid(raw.a[j])) / n;
    }
  }
  backward(net, raw, go, ga, grads);
  return (lMu + lSigma) / n;
}

/** From ∂L/∂o (drift output, scaled units) and ∂L/∂a (pre-softplus) to every parameter. */
function backward(
  net: SdeNetwork,
  raw: RawOutputs,
  go: Float64Array,
  ga: Float64Array,
  grads: SdeGradients,
): void {
  const { k } = net;
  const n = raw.drift.n;
  const w = net.drift.sizes[0];
  mlpBackward(net.drift, raw.drift, go, grads.drift);
  mlpBackward(net.diffusion, raw.diffusion, ga, grads.diffusion);
  // o += A·x̃ + b:  ∂L/∂A_ij = Σ_r go[r, i]·x̃[r, j],  ∂L/∂b_i = Σ_r go[r, i]
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < k; i++) {
      const g = go[r * k + i];
      for (let j = 0; j < k; j++) grads.driftLinear[i * k + j] += g * raw.input[r * w + j];
      grads.driftLinear[k * k + i] += g;
    }
  }
}

/** ∂μ/∂x [k, k] at one state (row i = ∂μ_i/∂x), through the input scaling. */
export function driftJacobian(net: SdeNetwork, x: ArrayLike<number>, t: number): Float64Array {
  const { k } = net;
  const input = networkInput(
    net,
    Float64Array.from({ length: k }, (_, i) => x[i]),
    Float64Array.of(t),
    1,
  );
  const jin = mlpInputJacobian(net.drift, input); // [k, k (+1)]
  const w = net.drift.sizes[0];
  const out = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      out[i * k + j] =
        (net.norm.scale[i] * (jin[i * w + j] + net.driftLinear[i * k + j])) / net.norm.xStd[j];
    }
  }
  return out;
}

/** Network inputs [n, k (+1)]: standardised state (and time). */
function networkInput(net: SdeNetwork, x: Float64Array, t: Float64Array, n: number): Float64Array {
  const { k } = net;
  const w = k + (net.timeInput ? 1 : 0);
  const input = new Float64Array(n * w);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < k; i++)
      input[r * w + i] = (x[r * k + i] - net.norm.xMean[i]) / net.norm.xStd[i];
    if (net.timeInput) input[r * w + k] = (t[r] - net.norm.tMean) / net.norm.tStd;
  }
  return input;
}

/**
 * Fresh networks scaled to the data: the drift starts near zero (last layer × 0.1), the
 * diffusion near c (its output bias set so that softplus(b) = 1).
 */
function initialNetwork(
  train: IncrementSet,
  hidden: number[],
  timeInput: boolean,
  rng: ReturnType<typeof createRng>,
): SdeNetwork {
  const { k, n, dt } = train;
  const xMean = new Array<number>(k).fill(0);
  const xStd = new Array<number>(k).fill(0);
  const dMean = new Array<number>(k).fill(0);
  const dVar = new Array<number>(k).fill(0);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < k; i++) {
      xMean[i] += train.x[r * k + i] / n;
      dMean[i] += train.dx[r * k + i] / n;
    }
  }
  let tMean = 0;
  for (let r = 0; r < n; r++) tMean += train.t[r] / n;
  let tVar = 0;
  for (let r = 0; r < n; r++) {
    tVar += (train.t[r] - tMean) ** 2 / n;
    for (let i = 0; i < k; i++) {
      xStd[i] += (train.x[r * k + i] - xMean[i]) ** 2 / n;
      dVar[i] += (train.dx[r * k + i] - dMean[i]) ** 2 / n;
    }
  }
  const positive = (v: number) => (v > 0 && Number.isFinite(v) ? v : 1);
  const norm = {
    xMean,
    xStd: xStd.map((v) => positive(Math.sqrt(v))),
    tMean,
    tStd: positive(Math.sqrt(tVar)),
    scale: dVar.map((v) => positive(Math.sqrt(v / dt))),
  };
  const sizes = [k + (timeInput ? 1 : 0), ...hidden, k];
  const drift = createMlp(sizes, rng, 0.1);
  const diffusion = createMlp(sizes, rng, 0.1);
  const last = diffusion.params.length - k; // output bias of the diffusion network
  for (let i = 0; i < k; i++) diffusion.params[last + i] = Math.log(Math.E - 1);
  const driftLinear = linearDriftFit(train, norm);
  return { k, timeInput, drift, driftLinear, diffusion, norm, sigmaFloor: SIGMA_FLOOR };
}

/**
 * Least squares (ridge 1e-6·n) of the scaled drift target Δx_i/(c_i Δt) on [x̃, 1]: the
 * Ornstein–Uhlenbeck drift the linear term starts from. Returns [A (k × k), b (k)].
 */
function linearDriftFit(train: IncrementSet, norm: SdeNetwork['norm']): Float64Array {
  const { k, n, dt } = train;
  const m = k + 1;
  const xtx = new Float64Array(m * m);
  const xty = new Float64Array(m * k);
  const row = new Float64Array(m);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < k; j++) row[j] = (train.x[r * k + j] - norm.xMean[j]) / norm.xStd[j];
    row[k] = 1;
    for (let a = 0; a < m; a++) {
      for (let b = 0; b < m; b++) xtx[a * m + b] += row[a] * row[b];
      for (let i = 0; i < k; i++)
        xty[a * k + i] += (row[a] * train.dx[r * k + i]) / (norm.scale[i] * dt);
    }
  }
  for (let a = 0; a < m; a++) xtx[a * m + a] += 1e-6 * n;
  const out = new Float64Array(k * k + k);
  for (let i = 0; i < k; i++) {
    const w = solve(
      xtx,
      Float64Array.from({ length: m }, (_, a) => xty[a * k + i]),
      m,
    );
    if (!w) continue;
    for (let j = 0; j < k; j++) out[i * k + j] = w[j];
    out[k * k + i] = w[k];
  }
  return out;
}

function gather(set: IncrementSet, rows: readonly number[]): IncrementSet {
  const { k } = set;
  const n = rows.length;
  const x = new Float64Array(n * k);
  const dx = new Float64Array(n * k);
  const t = new Float64Array(n);
  rows.forEach((r, i) => {
    for (let c = 0; c < k; c++) {
      x[i * k + c] = set.x[r * k + c];
      dx[i * k + c] = set.dx[r * k + c];
    }
    t[i] = set.t[r];
  });
  return { k, n, dt: set.dt, x, t, dx, path: new Int32Array(n), step: new Int32Array(n) };
}

function snapshot(net: SdeNetwork): {
  drift: Float64Array;
  driftLinear: Float64Array;
  diffusion: Float64Array;
} {
  return {
    drift: net.drift.params.slice(),
    driftLinear: net.driftLinear.slice(),
    diffusion: net.diffusion.params.slice(),
  };
}

function shuffleInPlace(a: number[], rng: ReturnType<typeof createRng>): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const tmp = a[i];
    a[i] = a[j];
    a[j] = tmp;
  }
}

export function softplus(a: number): number {
  return a > 20 ? a : Math.log1p(Math.exp(a));
}

export function sigmoid(a: number): number {
  return 1 / (1 + Math.exp(-a));
}
