/**
 * Trajectories in a k-dimensional state space and the increments the SDE is fitted to
 * (papers.md §2.3–2.4). A path holds states x_0 … x_{len−1}; state j of a path sits at time
 * t = (t0 + j)·Δt, the time convention being chosen once per data set (see TimeConvention).
 */
import type { Rng } from '../../tensor/rng.js';

export interface Path {
  /** [len, k] row-major. */
  states: Float64Array;
  len: number;
  /** Step index of the first state (time of state j = (t0 + j)·Δt). */
  t0: number;
}

/**
 * How token steps become SDE time (papers.md §2.3, "state which"):
 *   unit — t_j = j / N_max ∈ [0, 1], Δt = 1 / N_max (N_max = longest training path's increments);
 *   step — t_j = j, Δt = 1;
 *   given — synthetic data with its own Δt.
 */
export interface TimeConvention {
  kind: 'unit' | 'step' | 'given';
  dt: number;
  /** Longest path's increment count in the data the convention was fixed on. */
  nMax: number;
  definition: string;
}

export function timeConvention(kind: 'unit' | 'step', nMax: number): TimeConvention {
  if (kind === 'unit') {
    return {
      kind,
      dt: 1 / nMax,
      nMax,
      definition: `t_j = j / N_max, Δt = 1 / N_max with N_max = ${nMax} (j = 0 at the first state)`,
    };
  }
  return { kind, dt: 1, nMax, definition: 't_j = j (token steps), Δt = 1' };
}

/** Increments Δx_j = x_{j+1} − x_j with the state and time they start from. */
export interface IncrementSet {
  k: number;
  n: number;
  dt: number;
  /** [n, k] */
  x: Float64Array;
  /** [n] */
  t: Float64Array;
  /** [n, k] */
  dx: Float64Array;
  /** [n] index of the path each increment comes from, and its step within that path. */
  path: Int32Array;
  step: Int32Array;
}

/** Every increment of the given paths (paths shorter than 2 states contribute none). */
export function incrementsOf(paths: readonly Path[], k: number, dt: number, ids?: readonly number[]): IncrementSet {
  const n = paths.reduce((a, p) => a + Math.max(0, p.len - 1), 0);
  const x = new Float64Array(n * k);
  const t = new Float64Array(n);
  const dx = new Float64Array(n * k);
  const path = new Int32Array(n);
  const step = new Int32Array(n);
  let r = 0;
  paths.forEach((p, pi) => {
    for (let j = 0; j + 1 < p.len; j++, r++) {
      for (let i = 0; i < k; i++) {
        x[r * k + i] = p.states[j * k + i];
        dx[r * k + i] = p.states[(j + 1) * k + i] - p.states[j * k + i];
      }
      t[r] = (p.t0 + j) * dt;
      path[r] = ids ? ids[pi] : pi;
      step[r] = j;
    }
  });
  return { k, n, dt, x, t, dx, path, step };
}

/** The increments at the given row indices. */
export function subsetIncrements(set: IncrementSet, rows: readonly number[]): IncrementSet {
  const { k } = set;
  const n = rows.length;
  const out: IncrementSet = {
    k,
    n,
    dt: set.dt,
    x: new Float64Array(n * k),
    t: new Float64Array(n),
    dx: new Float64Array(n * k),
    path: new Int32Array(n),
    step: new Int32Array(n),
  };
  rows.forEach((r, i) => {
    out.x.set(set.x.subarray(r * k, (r + 1) * k), i * k);
    out.dx.set(set.dx.subarray(r * k, (r + 1) * k), i * k);
    out.t[i] = set.t[r];
    out.path[i] = set.path[r];
    out.step[i] = set.step[r];
  });
  return out;
}

/**
 * Train / validation / test split. With at least `minPaths` paths whole paths are held out
 * (so held-out metrics see unseen trajectories); with fewer, increments are split at random.
 */
export interface Split {
  mode: 'paths' | 'increments';
  train: IncrementSet;
  validation: IncrementSet;
  test: IncrementSet;
  /** Path indices per part (mode 'paths'); every path otherwise. */
  trainPaths: number[];
  validationPaths: number[];
  testPaths: number[];
  fractions: { validation: number; test: number };
}

export function splitIncrements(
  paths: readonly Path[],
  k: number,
  dt: number,
  rng: Rng,
  options: { validation?: number; test?: number; minPaths?: number } = {},
): Split {
  const fv = options.validation ?? 0.2;
  const ft = options.test ?? 0.2;
  const minPaths = options.minPaths ?? 10;
  const usable = paths.map((p, i) => [p, i] as const).filter(([p]) => p.len >= 2);
  if (usable.length >= minPaths) {
    const order = shuffle(
      usable.map(([, i]) => i),
      rng,
    );
    const nv = Math.max(1, Math.round(fv * order.length));
    const nt = Math.max(1, Math.round(ft * order.length));
    const validationPaths = order.slice(0, nv).sort((a, b) => a - b);
    const testPaths = order.slice(nv, nv + nt).sort((a, b) => a - b);
    const trainPaths = order.slice(nv + nt).sort((a, b) => a - b);
    const part = (ids: number[]) =>
      incrementsOf(
        ids.map((i) => paths[i]),
        k,
        dt,
        ids,
      );
    return {
      mode: 'paths',
      train: part(trainPaths),
      validation: part(validationPaths),
      test: part(testPaths),
      trainPaths,
      validationPaths,
      testPaths,
      fractions: { validation: fv, test: ft },
    };
  }
  const all = incrementsOf(paths, k, dt);
  const order = shuffle(
    Array.from({ length: all.n }, (_, i) => i),
    rng,
  );
  const nv = Math.max(1, Math.round(fv * all.n));
  const nt = Math.max(1, Math.round(ft * all.n));
  const sorted = (a: number[]) => a.sort((x, y) => x - y);
  const every = usable.map(([, i]) => i);
  return {
    mode: 'increments',
    validation: subsetIncrements(all, sorted(order.slice(0, nv))),
    test: subsetIncrements(all, sorted(order.slice(nv, nv + nt))),
    train: subsetIncrements(all, sorted(order.slice(nv + nt))),
    trainPaths: every,
    validationPaths: every,
    testPaths: every,
    fractions: { validation: fv, test: ft },
  };
}

/** Fisher–Yates with the given generator (a new array). */
export function shuffle<T>(items: readonly T[], rng: Rng): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
