/**
 * Euler–Maruyama simulation (papers.md §2.4 [proposed]):
 *   x_{j+1} = x_j + μ(x_j, t_j)Δt + σ(x_j, t_j) ⊙ √Δt ε,  ε ~ N(0, I),
 * for any SDE given as a batched coefficient function (a fitted network or a known SDE).
 */
import type { Rng } from '../../tensor/rng.js';
import { evaluateSde, type SdeNetwork } from './model.js';
import type { Path } from './paths.js';

/** A diagonal-noise SDE in k dimensions: fills μ [n, k] and σ [n, k] at x [n, k], t [n]. */
export interface Sde {
  k: number;
  evaluate(
    x: Float64Array,
    t: Float64Array,
    n: number,
    mu: Float64Array,
    sigma: Float64Array,
  ): void;
}

export function networkSde(net: SdeNetwork): Sde {
  return {
    k: net.k,
    evaluate(x, t, n, mu, sigma) {
      const r = evaluateSde(net, x, t, n);
      mu.set(r.mu);
      sigma.set(r.sigma);
    },
  };
}

/**
 * One simulated path per start: start i begins at starts[i].x (time index t0) and runs
 * `steps[i]` steps of size dt. All paths advance together, so the coefficients are evaluated
 * in one batch per step.
 */
export function eulerMaruyama(
  sde: Sde,
  starts: readonly { x: ArrayLike<number>; t0: number; steps: number }[],
  dt: number,
  rng: Rng,
): Path[] {
  const { k } = sde;
  const paths: Path[] = starts.map((s) => {
    const states = new Float64Array((s.steps + 1) * k);
    for (let i = 0; i < k; i++) states[i] = s.x[i];
    return { states, len: s.steps + 1, t0: s.t0 };
  });
  const longest = Math.max(0, ...starts.map((s) => s.steps));
  const sq = Math.sqrt(dt);
  for (let j = 0; j < longest; j++) {
    const live = paths.map((_, i) => i).filter((i) => starts[i].steps > j);
    const n = live.length;
    const x = new Float64Array(n * k);
    const t = new Float64Array(n);
    live.forEach((p, r) => {
      x.set(paths[p].states.subarray(j * k, (j + 1) * k), r * k);
      t[r] = (paths[p].t0 + j) * dt;
    });
    const mu = new Float64Array(n * k);
    const sigma = new Float64Array(n * k);
    sde.evaluate(x, t, n, mu, sigma);
    live.forEach((p, r) => {
      const s = paths[p].states;
      for (let i = 0; i < k; i++) {
        s[(j + 1) * k + i] =
          x[r * k + i] + mu[r * k + i] * dt + sigma[r * k + i] * sq * rng.normal();
      }
    });
  }
  return paths;
}
