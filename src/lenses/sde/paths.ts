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
export function incrementsOf(
  paths: readonly Path[],
  k: number,
  dt: number,
  ids?: readonly number[],
): IncrementSet {
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
 * Train / validation / test split, planned on path lengths alone (so it can be fixed before the
 * PCA, which is fitted on the training paths). With at least `minPaths` usable paths whole
 * paths are held out (held-out metrics then see unseen trajectories); with fewer, increments
 * are assigned at random and every path counts as training for the PCA.
 */
export interface SplitPlan {
  mode: 'paths' | 'increments';
  trainPaths: number[];
  validationPaths: number[];
  testPaths: number[];
  /** mode 'increments': per path, per increment, 0 = train, 1 = validation, 2 = test. */
  assignment: Uint8Array[] | null;
  fractions: { validation: number; test: number };
}

export interface Split extends SplitPlan {
  train: IncrementSet;
  validation: IncrementSet;
  test: IncrementSet;
}

export function planSplit(
  lengths: readonly number[],
  rng: Rng,
  options: { validation?: number; test?: number; minPaths?: number } = {},
): SplitPlan {
  const fv = options.validation ?? 0.2;
  const ft = options.test ?? 0.2;
  const minPaths = options.minPaths ?? 10;
  const usable = lengths
    .map((len, i) => [len, i] as const)
    .filter(([len]) => len >= 2)
    .map(([, i]) => i);
  const fractions = { validation: fv, test: ft };
  if (usable.length >= minPaths) {
    const order = shuffle(usable, rng);
    const nv = Math.max(1, Math.round(fv * order.length));
    const nt = Math.max(1, Math.round(ft * order.length));
    const sorted = (a: number[]) => a.sort((x, y) => x - y);
    return {
      mode: 'paths',
      validationPaths: sorted(order.slice(0, nv)),
      testPaths: sorted(order.slice(nv, nv + nt)),
      trainPaths: sorted(order.slice(nv + nt)),
      assignment: null,
      fractions,
    };
  }
  const total = usable.reduce((a, i) => a + lengths[i] - 1, 0);
  const parts = new Uint8Array(total);
  const order = shuffle(
    Array.from({ length: total }, (_, i) => i),
    rng,
  );
  const nv = Math.max(1, Math.round(fv * total));
  const nt = Math.max(1, Math.round(ft * total));
  order.forEach((r, i) => (parts[r] = i < nv ? 1 : i < nv + nt ? 2 : 0));
  let at = 0;
  const assignment = lengths.map((len) => {
    const m = Math.max(0, len - 1);
    const a = parts.slice(at, at + m);
    at += m;
    return a;
  });
  return {
    mode: 'increments',
    trainPaths: usable,
    validationPaths: usable,
    testPaths: usable,
    assignment,
    fractions,
  };
}

/** The increment sets of a planned split. */
export function applySplit(paths: readonly Path[], plan: SplitPlan, k: number, dt: number): Split {
  const part = (ids: number[]) =>
    incrementsOf(
      ids.map((i) => paths[i]),
      k,
      dt,
      ids,
    );
  if (plan.mode === 'paths') {
    return {
      ...plan,
      train: part(plan.trainPaths),
      validation: part(plan.validationPaths),
      test: part(plan.testPaths),
    };
  }
  const all = incrementsOf(paths, k, dt);
  const rows: number[][] = [[], [], []];
  for (let r = 0; r < all.n; r++) rows[plan.assignment![all.path[r]][all.step[r]]].push(r);
  return {
    ...plan,
    train: subsetIncrements(all, rows[0]),
    validation: subsetIncrements(all, rows[1]),
    test: subsetIncrements(all, rows[2]),
  };
}

/** Plans and applies a split in one go (paths already in their final coordinates). */
export function splitIncrements(
  paths: readonly Path[],
  k: number,
  dt: number,
  rng: Rng,
  options: { validation?: number; test?: number; minPaths?: number } = {},
): Split {
  return applySplit(
    paths,
    planSplit(
      paths.map((p) => p.len),
      rng,
      options,
    ),
    k,
    dt,
  );
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
