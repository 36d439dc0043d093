/**
 * The measurements of papers.md §4.3 items 1–3 on one score vector s (a context's logits, or a
 * face of them): both flows from uniform and random interior starts with ‖p(t) − π_T‖₁,
 * KL(p(t)‖π_T) and F(p(t)); their closed forms, the time-rescaling identity, the sign of dF/dt,
 * the two-token counter-example, the multiplicative-weights maps and the ternary trajectories on
 * a 3-token face. Pure functions of s and T; the model is only needed upstream for the logits.
 */
import {
  closedFormLogp,
  flowFitness,
  integrateReplicator,
  klDivergence,
  logSoftmaxAt,
  logSumExp,
  maxFreeEnergy,
  mwuClosedForm,
  mwuStep,
  type FlowKind,
} from './flows.js';
import type { StopSignal } from '../../errors.js';
import { cite } from '../../papers.js';

export interface FlowGrid {
  /** Integrate to this time. */
  tMax: number;
  /** Steps per unit time (integer, so t = 1 is a step). */
  stepsPerUnit: number;
  /** Roughly this many recorded points (t = 1 and the end are always recorded). */
  points: number;
  /** Ends the integrations early (they check it at every step). */
  signal?: StopSignal;
}

/** Default grid for temperature T: t to max(3, 10/T), dt = 1/max(100, ⌈100T⌉) (T·dt ≤ 1/100 for RK4). */
export function defaultGrid(T: number, tMax?: number): FlowGrid {
  return {
    tMax: tMax ?? Math.max(3, 10 / T),
    stepsPerUnit: Math.max(100, Math.ceil(100 * T)),
    points: 400,
  };
}

export interface FlowRun {
  flow: FlowKind;
  start: string;
  t: number[];
  /** ‖p(t) − π_T‖₁ */
  l1: number[];
  /** KL(p(t) ‖ π_T) */
  kl: number[];
  /** F(p(t)) = ⟨p, s⟩ + T·H(p) */
  free_energy: number[];
  /** max over every step of ‖p_numerical(t) − p_closed-form(t)‖₁ (§4.2 closed forms). */
  closed_form_max_l1: number;
  /** max over every step of |Σp − 1|. */
  sum_max_error: number;
  /** min over every step and token of p and of log p (log p finite ⇒ the state is interior). */
  min_p: number;
  min_log_p: number;
  /**
   * dF/dt along the trajectory: central differences of F against the formula
   * Cov_p(g, f) (g = s − T log p, f the flow's fitness; from uniform the paper's flow has the
   * closed form (1 − t)·Var_p(s)/T), error relative to the largest |dF/dt| of the run.
   */
  dF_dt: {
    formula: string;
    max_relative_error: number;
    positive_until: number | null;
    negative_from: number | null;
  };
  /** min over steps of F(t + dt) − F(t): ≥ 0 means F is non-decreasing (a Lyapunov function). */
  free_energy_min_increment: number;
  /** t where F peaks over the steps. */
  free_energy_peak_t: number;
  final: { t: number; l1: number; kl: number; l1_to_argmax_vertex: number };
}

/**
 * Integrates one flow from `logp0` on scores s at temperature T and measures it against
 * π_T = softmax(s/T) at every step. `uniformStart` selects the (1 − t)·Var_p(s)/T form of dF/dt.
 */
export function runFlow(
  flow: FlowKind,
  s: Float64Array,
  T: number,
  logp0: Float64Array,
  start: string,
  grid: FlowGrid,
): FlowRun {
  const n = s.length;
  const logPi = logSoftmaxAt(s, T);
  const pi = logPi.map(Math.exp);
  const argmax = s.indexOf(Math.max(...s));
  const steps = Math.round(grid.tMax * grid.stepsPerUnit);
  const stride = Math.max(1, Math.round(steps / grid.points));
  const dt = 1 / grid.stepsPerUnit;
  const fitness = flowFitness(flow, s, T);
  const fit = new Float64Array(n);
  const p = new Float64Array(n);
  const uniform = start === 'uniform';
  const run: FlowRun = {
    flow,
    start,
    t: [],
    l1: [],
    kl: [],
    free_energy: [],
    closed_form_max_l1: 0,
    sum_max_error: 0,
    min_p: Infinity,
    min_log_p: Infinity,
    dF_dt: {
      formula:
        flow === 'paper' && uniform
          ? 'dF/dt = (1 − t)·Var_p(s)/T'
          : flow === 'paper'
            ? 'dF/dt = Cov_p(s − T log p, s)/T'
            : 'dF/dt = Var_p(s − T log p) ≥ 0',
      max_relative_error: 0,
      positive_until: null,
      negative_from: null,
    },
    free_energy_min_increment: Infinity,
    free_energy_peak_t: 0,
    final: { t: 0, l1: NaN, kl: NaN, l1_to_argmax_vertex: NaN },
  };
  const F: number[] = []; // the last five F values, for a five-point derivative
  const rate: number[] = []; // the formula's dF/dt at the same steps
  let maxErr = 0;
  let maxRate = 0;
  let peakF = -Infinity;
  let lastPositive = -Infinity;
  let firstNegative = Infinity;
  const signTol = 1e-9;
  integrateReplicator(fitness, logp0, {
    stepsPerUnit: grid.stepsPerUnit,
    steps,
    signal: grid.signal,
    onRecord: (step, t, logp) => {
      // every step: Σp, min p, F and the formula's dF/dt (one exp per token)
      let sum = 0;
      let minP = Infinity;
      let minLog = Infinity;
      let energy = 0;
      let entropy = 0;
      for (let i = 0; i < n; i++) {
        p[i] = Math.exp(logp[i]);
        sum += p[i];
        if (p[i] < minP) minP = p[i];
        if (logp[i] < minLog) minLog = logp[i];
        if (p[i] > 0) {
          energy += p[i] * s[i];
          entropy -= p[i] * logp[i];
        }
      }
      run.sum_max_error = Math.max(run.sum_max_error, Math.abs(sum - 1));
      run.min_p = Math.min(run.min_p, minP);
      run.min_log_p = Math.min(run.min_log_p, minLog);
      const f = energy + T * entropy;
      if (f > peakF) {
        peakF = f;
        run.free_energy_peak_t = t;
      }
      if (F.length > 0)
        run.free_energy_min_increment = Math.min(
          run.free_energy_min_increment,
          f - F[F.length - 1],
        );
      fitness(logp, p, fit);
      let r = 0;
      if (flow === 'paper' && uniform) {
        let m = 0;
        for (let i = 0; i < n; i++) m += p[i] * s[i];
        for (let i = 0; i < n; i++) r += p[i] * (s[i] - m) ** 2;
        r *= (1 - t) / T;
      } else {
        let mg = 0;
        let mf = 0;
        for (let i = 0; i < n; i++) {
          mg += p[i] * (s[i] - T * logp[i]);
          mf += p[i] * fit[i];
        }
        for (let i = 0; i < n; i++) r += p[i] * (s[i] - T * logp[i] - mg) * (fit[i] - mf);
      }
      maxRate = Math.max(maxRate, Math.abs(r));
      if (r > signTol) lastPositive = t;
      if (r < -signTol && t < firstNegative) firstNegative = t;
      F.push(f);
      rate.push(r);
      if (F.length === 5) {
        // five-point central difference at the middle step: O(dt⁴)
        const fd = (F[0] - 8 * F[1] + 8 * F[3] - F[4]) / (12 * dt);
        maxErr = Math.max(maxErr, Math.abs(fd - rate[2]));
        F.shift();
        rate.shift();
      }

      // recorded steps: distances to π_T and the closed form
      if (step % stride === 0 || step === grid.stepsPerUnit || step === steps) {
        let l1 = 0;
        for (let i = 0; i < n; i++) l1 += Math.abs(p[i] - pi[i]);
        const closed = closedFormLogp(flow, s, T, logp0, t);
        let err = 0;
        for (let i = 0; i < n; i++) err += Math.abs(p[i] - Math.exp(closed[i]));
        run.closed_form_max_l1 = Math.max(run.closed_form_max_l1, err);
        run.t.push(t);
        run.l1.push(l1);
        run.kl.push(klDivergence(logp, logPi));
        run.free_energy.push(f);
        if (step === steps) {
          run.final = {
            t,
            l1,
            kl: klDivergence(logp, logPi),
            l1_to_argmax_vertex: 2 * (1 - p[argmax]),
          };
        }
      }
    },
  });
  run.dF_dt.max_relative_error = maxRate > 0 ? maxErr / maxRate : maxErr;
  run.dF_dt.positive_until = Number.isFinite(lastPositive) ? lastPositive : null;
  run.dF_dt.negative_from = Number.isFinite(firstNegative) ? firstNegative : null;
  return run;
}

/** The distance to π_T and to the argmax vertex after a long run, from uniform (no recording). */
export function flowLimit(
  flow: FlowKind,
  s: Float64Array,
  T: number,
  tEnd: number,
  stepsPerUnit: number,
): { t: number; l1_to_equilibrium: number; l1_to_argmax_vertex: number; top_probability: number } {
  const logp = integrateReplicator(flowFitness(flow, s, T), new Float64Array(s.length), {
    stepsPerUnit,
    steps: Math.round(tEnd * stepsPerUnit),
  });
  const logPi = logSoftmaxAt(s, T);
  const argmax = s.indexOf(Math.max(...s));
  let l1 = 0;
  for (let i = 0; i < s.length; i++) l1 += Math.abs(Math.exp(logp[i]) - Math.exp(logPi[i]));
  const top = Math.exp(logp[argmax]);
  return {
    t: tEnd,
    l1_to_equilibrium: l1,
    l1_to_argmax_vertex: 2 * (1 - top),
    top_probability: top,
  };
}

export interface RescalingCheck {
  /** Paper's flow: max over t of ‖p_T'(t) − p_1(t/T')‖₁, both integrated. */
  paper: { temperature: number; max_l1: number }[];
  /** Entropic flow: max over t of ‖p_T'(t) − softmax(λ_T'(t)·s)‖₁, the curve all T share. */
  entropic: { temperature: number; max_l1: number; lambda_end: number }[];
}

/** §4.3 item 2 at T/2, T and 2T (from uniform). */
export function rescalingCheck(s: Float64Array, T: number, grid: FlowGrid): RescalingCheck {
  const temps = [T / 2, T, 2 * T];
  const paper = temps
    .filter((Tp) => Tp !== 1)
    .map((Tp) => {
      const m = Math.max(grid.stepsPerUnit, Math.ceil(100 * Tp));
      const steps = Math.round(grid.tMax * m);
      const stride = Math.max(1, Math.round(steps / grid.points));
      const ref = new Map<number, Float64Array>();
      const u = new Float64Array(s.length); // uniform (unnormalised; normalised on entry)
      // p_1 on the grid τ_k = k/(m·T'), so step k is t/T' with t = k/m.
      integrateReplicator(flowFitness('paper', s, 1), u, {
        stepsPerUnit: m * Tp,
        steps,
        signal: grid.signal,
        onRecord: (step, _t, logp) => {
          if (step % stride === 0) ref.set(step, Float64Array.from(logp));
        },
      });
      let max = 0;
      integrateReplicator(flowFitness('paper', s, Tp), u, {
        stepsPerUnit: m,
        steps,
        signal: grid.signal,
        onRecord: (step, _t, logp) => {
          const r = ref.get(step);
          if (!r) return;
          let d = 0;
          for (let i = 0; i < s.length; i++) d += Math.abs(Math.exp(logp[i]) - Math.exp(r[i]));
          max = Math.max(max, d);
        },
      });
      return { temperature: Tp, max_l1: max };
    });
  const entropic = temps.map((Tp) => {
    const m = Math.max(grid.stepsPerUnit, Math.ceil(100 * Tp));
    let max = 0;
    const zero = new Float64Array(s.length);
    const tEnd = grid.tMax;
    integrateReplicator(flowFitness('entropic', s, Tp), zero, {
      stepsPerUnit: m,
      steps: Math.round(tEnd * m),
      signal: grid.signal,
      onRecord: (_step, t, logp) => {
        const curve = closedFormLogp('paper', s, 1, zero, -Math.expm1(-Tp * t) / Tp); // softmax(λ s)
        let d = 0;
        for (let i = 0; i < s.length; i++) d += Math.abs(Math.exp(logp[i]) - Math.exp(curve[i]));
        max = Math.max(max, d);
      },
    });
    return { temperature: Tp, max_l1: max, lambda_end: -Math.expm1(-Tp * tEnd) / Tp };
  });
  return { paper, entropic };
}

export interface CounterExample {
  tag: 'proposed';
  source: string;
  setting: { scores: [number, number]; temperature: number; start: [number, number] };
  /** Paper's flow at a few times: numerical p₂ and F against σ(t) and σ + H(σ). */
  rows: {
    t: number;
    p2: number;
    p2_closed: number;
    free_energy: number;
    free_energy_closed: number;
    dF_dt_closed: number;
  }[];
  paper: {
    free_energy_peak_t: number;
    free_energy_peak: number;
    /** log(1 + e) = max F, attained at π_1(s). */
    free_energy_max: number;
    p2_at_peak: number;
    /** e/(1 + e), where dF/dp₂ = 1 + ln(p₁/p₂) changes sign. */
    p2_sign_change: number;
    free_energy_end: number;
    closed_form_max_l1: number;
    verdict: string;
  };
  entropic: { free_energy_min_increment: number; free_energy_end: number; verdict: string };
}

/** papers.md §4.2: V = 2, s = (0, 1), T = 1, p(0) = (½, ½), integrated to t = 4. */
export function twoTokenCounterExample(): CounterExample {
  const s = Float64Array.of(0, 1);
  const grid: FlowGrid = { tMax: 4, stepsPerUnit: 1000, points: 400 };
  const start = Float64Array.of(Math.log(0.5), Math.log(0.5));
  const paper = runFlow('paper', s, 1, start, 'uniform', grid);
  const entropic = runFlow('entropic', s, 1, start, 'uniform', grid);
  const sigma = (t: number) => 1 / (1 + Math.exp(-t));
  const h = (q: number) => -(q * Math.log(q) + (1 - q) * Math.log(1 - q));
  const times = [0, 0.5, 1, 1.5, 2, 3, 4];
  const p2 = new Map<number, number>(); // numerical p₂ at the table's steps
  integrateReplicator(flowFitness('paper', s, 1), start, {
    stepsPerUnit: grid.stepsPerUnit,
    steps: grid.tMax * grid.stepsPerUnit,
    onRecord: (step, _t, logp) => {
      if (step % (grid.stepsPerUnit / 2) === 0) p2.set(step / grid.stepsPerUnit, Math.exp(logp[1]));
    },
  });
  const rows = times.map((t) => {
    const k = paper.t.findIndex((x) => Math.abs(x - t) < 1e-12);
    const q = sigma(t);
    return {
      t,
      p2: p2.get(t) ?? NaN,
      p2_closed: q,
      free_energy: paper.free_energy[k],
      free_energy_closed: q + h(q),
      dF_dt_closed: q * (1 - q) * (1 - t),
    };
  });
  const peakIdx = paper.t.findIndex((t) => t === paper.free_energy_peak_t);
  const e = Math.E;
  return {
    tag: 'proposed',
    source:
      `${cite('simplex')}: the independent audit’s counter-example (a third party’s check, not the paper’s), verified algebraically`,
    setting: { scores: [0, 1], temperature: 1, start: [0.5, 0.5] },
    rows,
    paper: {
      free_energy_peak_t: paper.free_energy_peak_t,
      free_energy_peak: peakIdx >= 0 ? paper.free_energy[peakIdx] : NaN,
      free_energy_max: Math.log(1 + e),
      p2_at_peak: sigma(paper.free_energy_peak_t),
      p2_sign_change: e / (1 + e),
      free_energy_end: paper.free_energy[paper.free_energy.length - 1],
      closed_form_max_l1: paper.closed_form_max_l1,
      verdict:
        'F rises until t = 1 (p = π_1(s)) and falls after: F is not a Lyapunov function of the paper’s flow, which goes on to the argmax vertex',
    },
    entropic: {
      free_energy_min_increment: entropic.free_energy_min_increment,
      free_energy_end: entropic.free_energy[entropic.free_energy.length - 1],
      verdict: 'F is non-decreasing along the entropic flow and tends to log(1 + e)',
    },
  };
}

export interface MwuRun {
  map: FlowKind;
  update: string;
  eta: number;
  k: number[];
  /** ‖p^k − π_T‖₁ */
  l1: number[];
  /** max over k of ‖p^k − closed form‖₁ */
  closed_form_max_l1: number;
  note: string;
}

/** Both multiplicative-weights maps from uniform for `steps` iterations (§4.2, [proposed]). */
export function mwuRuns(s: Float64Array, T: number, eta: number, steps: number): MwuRun[] {
  const logPi = logSoftmaxAt(s, T);
  const zero = new Float64Array(s.length);
  const stride = Math.max(1, Math.round(steps / 400));
  return (['paper', 'entropic'] as const).map((kind) => {
    const logp = new Float64Array(s.length).fill(-Math.log(s.length));
    const run: MwuRun = {
      map: kind,
      update:
        kind === 'paper'
          ? 'p ← p·exp(η s/T) / Z'
          : 'p ← p·exp(η(s − T log p)) / Z = p^{1−ηT}·exp(η s) / Z',
      eta,
      k: [],
      l1: [],
      closed_form_max_l1: 0,
      note:
        kind === 'paper'
          ? 'the exact time-η map of the paper’s flow: p^k = p(kη), passing π_T at k = 1/η and going on to the argmax'
          : `entropic mirror ascent on F; contracts to π_T with ratio |1 − ηT| = ${Math.abs(1 - eta * T)}${Math.abs(1 - eta * T) < 1 ? '' : ' (does not converge: ηT ≥ 2)'}`,
    };
    for (let k = 0; k <= steps; k++) {
      if (k > 0) mwuStep(kind, logp, s, T, eta);
      const closed = mwuClosedForm(kind, s, T, eta, zero, k);
      let err = 0;
      let l1 = 0;
      for (let i = 0; i < s.length; i++) {
        const p = Math.exp(logp[i]);
        err += Math.abs(p - Math.exp(closed[i]));
        l1 += Math.abs(p - Math.exp(logPi[i]));
      }
      run.closed_form_max_l1 = Math.max(run.closed_form_max_l1, err);
      if (k % stride === 0 || k === steps) {
        run.k.push(k);
        run.l1.push(l1);
      }
    }
    return run;
  });
}

export interface TernaryTrajectory {
  flow: FlowKind;
  start: string;
  /** Barycentric points (p₁, p₂, p₃) over t. */
  points: { t: number; p: [number, number, number] }[];
}

/** Trajectories of both flows on a 3-token face from a few starts (uniform, near each vertex, random). */
export function ternaryTrajectories(
  s3: Float64Array,
  T: number,
  randomStarts: Float64Array[],
  grid: FlowGrid,
): TernaryTrajectory[] {
  const starts: { name: string; logp: Float64Array }[] = [
    { name: 'uniform', logp: Float64Array.of(0, 0, 0) },
    ...[0, 1, 2].map((v) => ({
      name: `near vertex ${v + 1}`,
      logp: Float64Array.from([0, 1, 2], (i) => Math.log(i === v ? 0.9 : 0.05)),
    })),
    ...randomStarts.map((logp, i) => ({ name: `random ${i + 1}`, logp })),
  ];
  const out: TernaryTrajectory[] = [];
  for (const flow of ['paper', 'entropic'] as const) {
    for (const st of starts) {
      const steps = Math.round(grid.tMax * grid.stepsPerUnit);
      const stride = Math.max(1, Math.round(steps / grid.points));
      const points: TernaryTrajectory['points'] = [];
      integrateReplicator(flowFitness(flow, s3, T), st.logp, {
        stepsPerUnit: grid.stepsPerUnit,
        steps,
        onRecord: (step, t, logp) => {
          if (step % stride === 0 || step === steps) {
            points.push({ t, p: [Math.exp(logp[0]), Math.exp(logp[1]), Math.exp(logp[2])] });
          }
        },
      });
      out.push({ flow, start: st.name, points });
    }
  }
  return out;
}

/** Summary numbers of π_T: F*, entropy. */
export function equilibriumSummary(
  s: Float64Array,
  T: number,
): { free_energy_max: number; entropy: number; log_partition: number } {
  const logPi = logSoftmaxAt(s, T);
  let h = 0;
  for (let i = 0; i < s.length; i++) h -= Math.exp(logPi[i]) * logPi[i];
  const z = Float64Array.from(s, (v) => v / T);
  return { free_energy_max: maxFreeEnergy(s, T), entropy: h, log_partition: logSumExp(z) };
}
