/**
 * Replicator-type flows on the probability simplex for one context's scores s and a temperature
 * T (papers.md §4.2), integrated in log-coordinates so the state never leaves the simplex:
 *
 *   paper's flow   ṗ_i = p_i (s_i − s̄)/T                (the paper's ODE, [exact, per audit])
 *   entropic flow  ṗ_i = p_i (g_i − ḡ),  g = s − T log p  (natural gradient of F; exact math)
 *
 * Both are ṗ_i = p_i (f_i − f̄) for a fitness f, so d log p_i/dt = f_i − f̄. The state is
 * y = log p, advanced by classical RK4 and re-normalised (y ← y − logsumexp y) after every step:
 * p = exp(y) is positive and sums to 1 whatever the step does. Closed forms (§4.2):
 *
 *   paper     log p(t) = log p(0) + t·s/T + c(t)          (uniform start: softmax(t·s/T))
 *   entropic  log p(t) = e^{−Tt} log p(0) + (1 − e^{−Tt})·s/T + c(t)
 *                                                         (uniform start: softmax(λ(t)·s),
 *                                                          λ(t) = (1 − e^{−Tt})/T)
 *
 * The paper's flow meets π_T = softmax(s/T) at t = 1 (uniform start) and goes on to the argmax
 * vertex; the entropic flow converges to π_T. Free energy F(p) = ⟨p, s⟩ + T·H(p), maximised by
 * π_T with F* = T·logsumexp(s/T); KL(p‖π_T) = (F* − F(p))/T.
 */
import type { StopSignal } from '../../errors.js';

/** Which flow: the paper's replicator ODE or the entropic (corrected) one. */
export type FlowKind = 'paper' | 'entropic';

/** d log p/dt = f − f̄ for a fitness f computed from (log p, p). Writes f into `out`. */
type Fitness = (logp: Float64Array, p: Float64Array, out: Float64Array) => void;

/** The fitness of a flow (§4.2): s/T for the paper's, s − T log p for the entropic one. */
export function flowFitness(kind: FlowKind, s: Float64Array, T: number): Fitness {
  if (kind === 'paper') {
    return (_logp, _p, out) => {
      for (let i = 0; i < s.length; i++) out[i] = s[i] / T;
    };
  }
  return (logp, _p, out) => {
    for (let i = 0; i < s.length; i++) out[i] = s[i] - T * logp[i];
  };
}

export interface IntegrateOptions {
  /** Steps per unit time (dt = 1/stepsPerUnit, so t = 1 is a grid point). */
  stepsPerUnit: number;
  /** Number of steps (t_end = steps / stepsPerUnit). */
  steps: number;
  /** Called with the normalised state at step 0 and at the steps `record` accepts (and the last). */
  onRecord?: (step: number, t: number, logp: Float64Array) => void;
  record?: (step: number) => boolean;
  /** Checked at every step: the integration ends early (throws) once the result is unwanted. */
  signal?: StopSignal;
}

/**
 * Integrates d log p/dt = f(p) − f̄ from `logp0` (normalised log-probabilities, [n]) with RK4 in
 * log-coordinates; returns the final normalised log p. `logp0` is not modified.
 */
export function integrateReplicator(
  fitness: Fitness,
  logp0: Float64Array,
  options: IntegrateOptions,
): Float64Array {
  const n = logp0.length;
  const dt = 1 / options.stepsPerUnit;
  const y = Float64Array.from(logp0);
  normalizeLog(y);
  const k1 = new Float64Array(n);
  const k2 = new Float64Array(n);
  const k3 = new Float64Array(n);
  const k4 = new Float64Array(n);
  const tmp = new Float64Array(n);
  const work = { logp: new Float64Array(n), p: new Float64Array(n), f: new Float64Array(n) };
  const record = options.record ?? (() => true);
  options.onRecord?.(0, 0, y);
  for (let step = 1; step <= options.steps; step++) {
    options.signal?.throwIfAborted();
    logVelocity(fitness, y, k1, work);
    for (let i = 0; i < n; i++) tmp[i] = y[i] + 0.5 * dt * k1[i];
    logVelocity(fitness, tmp, k2, work);
    for (let i = 0; i < n; i++) tmp[i] = y[i] + 0.5 * dt * k2[i];
    logVelocity(fitness, tmp, k3, work);
    for (let i = 0; i < n; i++) tmp[i] = y[i] + dt * k3[i];
    logVelocity(fitness, tmp, k4, work);
    for (let i = 0; i < n; i++) y[i] += (dt / 6) * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
    normalizeLog(y);
    if (step === options.steps || record(step)) options.onRecord?.(step, step * dt, y);
  }
  return y;
}

/** out = f(p) − f̄(p) at the (possibly unnormalised) log-state y; one exp per token. */
function logVelocity(
  fitness: Fitness,
  y: Float64Array,
  out: Float64Array,
  work: { logp: Float64Array; p: Float64Array; f: Float64Array },
): void {
  const n = y.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (y[i] > max) max = y[i];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    work.p[i] = Math.exp(y[i] - max);
    sum += work.p[i];
  }
  const lse = max + Math.log(sum);
  for (let i = 0; i < n; i++) {
    work.p[i] /= sum;
    work.logp[i] = y[i] - lse;
  }
  fitness(work.logp, work.p, work.f);
  let fbar = 0;
  for (let i = 0; i < n; i++) fbar += work.p[i] * work.f[i];
  for (let i = 0; i < n; i++) out[i] = work.f[i] - fbar;
}

/** Closed-form log p(t) of a flow from `logp0` (§4.2), normalised. */
export function closedFormLogp(
  kind: FlowKind,
  s: Float64Array,
  T: number,
  logp0: Float64Array,
  t: number,
): Float64Array {
  const out = new Float64Array(s.length);
  if (kind === 'paper') {
    for (let i = 0; i < s.length; i++) out[i] = logp0[i] + (t * s[i]) / T;
  } else {
    const decay = Math.exp(-T * t);
    const gain = -Math.expm1(-T * t) / T; // λ(t) = (1 − e^{−Tt})/T
    for (let i = 0; i < s.length; i++) out[i] = decay * logp0[i] + gain * s[i];
  }
  normalizeLog(out);
  return out;
}

/** λ(t) = (1 − e^{−Tt})/T: the entropic flow from uniform is softmax(λ(t)·s) (§4.2). */
export function entropicLambda(T: number, t: number): number {
  return -Math.expm1(-T * t) / T;
}

/**
 * One step of the multiplicative-weights maps (§4.2, MWU [proposed form]):
 * paper's  p' ∝ p·exp(η s/T)  (the exact time-η map of the paper's flow);
 * entropic p' ∝ p·exp(η(s − T log p)) = p^{1−ηT}·exp(η s)  (entropic mirror ascent on F; its
 * fixed point is π_T, reached geometrically with ratio |1 − ηT|). In place on normalised log p.
 */
export function mwuStep(
  kind: FlowKind,
  logp: Float64Array,
  s: Float64Array,
  T: number,
  eta: number,
): void {
  if (kind === 'paper') {
    for (let i = 0; i < s.length; i++) logp[i] += (eta * s[i]) / T;
  } else {
    for (let i = 0; i < s.length; i++) logp[i] = (1 - eta * T) * logp[i] + eta * s[i];
  }
  normalizeLog(logp);
}

/** Closed form of k MWU steps: paper log p^k = log p^0 + kη s/T; entropic r^k log p^0 + (1 − r^k) s/T, r = 1 − ηT. */
export function mwuClosedForm(
  kind: FlowKind,
  s: Float64Array,
  T: number,
  eta: number,
  logp0: Float64Array,
  k: number,
): Float64Array {
  const out = new Float64Array(s.length);
  if (kind === 'paper') {
    for (let i = 0; i < s.length; i++) out[i] = logp0[i] + (k * eta * s[i]) / T;
  } else {
    const r = Math.pow(1 - eta * T, k);
    for (let i = 0; i < s.length; i++) out[i] = r * logp0[i] + ((1 - r) * s[i]) / T;
  }
  normalizeLog(out);
  return out;
}

// ---- quantities on the simplex --------------------------------------------------------------

/** log π_T(s) = log softmax(s/T). [n] */
export function logSoftmaxAt(s: ArrayLike<number>, T: number): Float64Array {
  const out = new Float64Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s[i] / T;
  normalizeLog(out);
  return out;
}

/** Free energy F(p) = ⟨p, s⟩ + T·H(p) (§4.2), from normalised log p. */
export function freeEnergy(logp: Float64Array, s: Float64Array, T: number): number {
  let e = 0;
  let h = 0;
  for (let i = 0; i < s.length; i++) {
    const p = Math.exp(logp[i]);
    if (p === 0) continue;
    e += p * s[i];
    h -= p * logp[i];
  }
  return e + T * h;
}

/** max_p F = T·logsumexp(s/T), attained at π_T (Gibbs variational principle). */
export function maxFreeEnergy(s: Float64Array, T: number): number {
  const z = new Float64Array(s.length);
  for (let i = 0; i < s.length; i++) z[i] = s[i] / T;
  return T * logSumExp(z);
}

/** KL(p‖q) from normalised log p and log q (terms with p = 0 contribute 0). */
export function klDivergence(logp: Float64Array, logq: Float64Array): number {
  let kl = 0;
  for (let i = 0; i < logp.length; i++) {
    const p = Math.exp(logp[i]);
    if (p > 0) kl += p * (logp[i] - logq[i]);
  }
  return Math.max(0, kl);
}

/** ‖p − q‖₁ from log-probabilities. */
export function l1FromLog(logp: Float64Array, logq: Float64Array): number {
  let d = 0;
  for (let i = 0; i < logp.length; i++) d += Math.abs(Math.exp(logp[i]) - Math.exp(logq[i]));
  return d;
}

/** Var_p(x) = Σ p x² − (Σ p x)². */
export function varianceUnder(logp: Float64Array, x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < logp.length; i++) m += Math.exp(logp[i]) * x[i];
  let v = 0;
  for (let i = 0; i < logp.length; i++) v += Math.exp(logp[i]) * (x[i] - m) ** 2;
  return v;
}

export function logSumExp(y: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < y.length; i++) if (y[i] > max) max = y[i];
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < y.length; i++) sum += Math.exp(y[i] - max);
  return max + Math.log(sum);
}

/** y ← y − logsumexp(y): log-probabilities of the point exp(y)/Σ exp(y). */
export function normalizeLog(y: Float64Array): void {
  const lse = logSumExp(y);
  for (let i = 0; i < y.length; i++) y[i] -= lse;
}

/** log of the uniform point of an n-simplex. */
export function uniformLog(n: number): Float64Array {
  return new Float64Array(n).fill(-Math.log(n));
}

/** log of a Dirichlet(1, …, 1) draw (uniform on the simplex): p_i = E_i/ΣE, E_i = −log U_i. */
export function dirichletLog(n: number, uniform: () => number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let u = uniform();
    while (u === 0) u = uniform();
    out[i] = Math.log(-Math.log(u));
  }
  normalizeLog(out);
  return out;
}
