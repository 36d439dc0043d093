/**
 * SDEs with known coefficients, for self-tests of the lens (anchors.md §5 item 11: "include a
 * synthetic OU-process self-test") and the benchmark:
 *   Ornstein–Uhlenbeck  dX_i = θ_i (m_i − X_i) dt + s_i dW_i, sampled exactly;
 *   double well (2-D)   dX = (X − X³) dt + s dW₁,  dY = −Y dt + s dW₂ (wells at (±1, 0),
 *                       saddle at the origin), integrated by Euler–Maruyama on substeps.
 */
import { createRng } from '../../tensor/rng.js';
import type { Path } from './paths.js';
import type { Sde } from './simulate.js';

export interface OuParams {
  theta: number[];
  mean: number[];
  sigma: number[];
}

/** The OU process as an Sde (for simulation with known coefficients). */
export function ouSde(p: OuParams): Sde {
  const k = p.theta.length;
  return {
    k,
    evaluate(x, _t, n, mu, sigma) {
      for (let r = 0; r < n; r++) {
        for (let i = 0; i < k; i++) {
          mu[r * k + i] = p.theta[i] * (p.mean[i] - x[r * k + i]);
          sigma[r * k + i] = p.sigma[i];
        }
      }
    },
  };
}

/**
 * `paths` OU paths of `steps` increments at spacing dt, by the exact transition
 * X(t+Δt) = m + (X − m)e^{−θΔt} + s·√((1 − e^{−2θΔt})/(2θ))·ε. Starts are drawn from the
 * stationary law N(m, s²/(2θ)) unless x0 is given.
 */
export function simulateOu(
  p: OuParams,
  options: { dt: number; steps: number; paths: number; seed: number; x0?: number[] },
): Path[] {
  const k = p.theta.length;
  const rng = createRng(options.seed);
  const decay = p.theta.map((th) => Math.exp(-th * options.dt));
  const sd = p.theta.map(
    (th, i) => p.sigma[i] * Math.sqrt((1 - Math.exp(-2 * th * options.dt)) / (2 * th)),
  );
  const out: Path[] = [];
  for (let q = 0; q < options.paths; q++) {
    const len = options.steps + 1;
    const states = new Float64Array(len * k);
    for (let i = 0; i < k; i++) {
      states[i] = options.x0
        ? options.x0[i]
        : p.mean[i] + (p.sigma[i] / Math.sqrt(2 * p.theta[i])) * rng.normal();
    }
    for (let j = 1; j < len; j++) {
      for (let i = 0; i < k; i++) {
        const prev = states[(j - 1) * k + i];
        states[j * k + i] = p.mean[i] + (prev - p.mean[i]) * decay[i] + sd[i] * rng.normal();
      }
    }
    out.push({ states, len, t0: 0 });
  }
  return out;
}

/** The 2-D double well as an Sde. */
export function doubleWellSde(s: number): Sde {
  return {
    k: 2,
    evaluate(x, _t, n, mu, sigma) {
      for (let r = 0; r < n; r++) {
        const a = x[2 * r];
        mu[2 * r] = a - a * a * a;
        mu[2 * r + 1] = -x[2 * r + 1];
        sigma[2 * r] = s;
        sigma[2 * r + 1] = s;
      }
    },
  };
}

/**
 * Double-well paths observed every dt, integrated by Euler–Maruyama with `substeps` steps per
 * observation; starts at (±1, 0) at random.
 */
export function simulateDoubleWell(
  s: number,
  options: { dt: number; steps: number; paths: number; seed: number; substeps?: number },
): Path[] {
  const rng = createRng(options.seed);
  const sub = options.substeps ?? 20;
  const h = options.dt / sub;
  const sq = Math.sqrt(h);
  const out: Path[] = [];
  for (let q = 0; q < options.paths; q++) {
    const len = options.steps + 1;
    const states = new Float64Array(len * 2);
    let x = rng.next() < 0.5 ? -1 : 1;
    let y = 0;
    states[0] = x;
    states[1] = y;
    for (let j = 1; j < len; j++) {
      for (let u = 0; u < sub; u++) {
        const nx = x + (x - x * x * x) * h + s * sq * rng.normal();
        const ny = y - y * h + s * sq * rng.normal();
        x = nx;
        y = ny;
      }
      states[2 * j] = x;
      states[2 * j + 1] = y;
    }
    out.push({ states, len, t0: 0 });
  }
  return out;
}
