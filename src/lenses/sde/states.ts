/**
 * State construction for the SDE lens (papers.md §2.3 [proposed]): one trajectory per trace
 * sample, in token time, from the last-layer hidden state, reduced by a PCA fitted on the
 * pooled training trajectories and kept for simulation.
 *
 * Trajectory of a sample with prompt length P and n generated (or teacher-forced) tokens:
 *   x_0 = state at position P − 1 (the last prompt token, whose state produced the first
 *         token; shared by all samples of one prompt, so an ensemble starts together),
 *   x_j = state at position P − 1 + j, the j-th generated token (j = 1 … n),
 * stopping at the first missing (NaN) row. State kinds: `last` = the hook's vector itself;
 * `running-mean` = the mean of the hook's vectors over positions 0 … P − 1 + j (a
 * "text so far" embedding).
 */
import { LmdynError } from '../../errors.js';
import { pca } from '../../tensor/linalg.js';
import type { Trace } from '../../trace/types.js';
import type { Path } from './paths.js';

export type StateKind = 'last' | 'running-mean';

export interface RawPaths {
  hook: string;
  state: StateKind;
  d: number;
  /** Per sample: states [len, d] in float64. */
  paths: Path[];
  /** Whether the hook is before or after the final norm. */
  note: string;
}

/** The default state hook of a trace: ln_final.hook_normalized, else the last resid_post. */
export function defaultStateHook(trace: Trace): string {
  if (trace.states.has('ln_final.hook_normalized')) return 'ln_final.hook_normalized';
  const last = `blocks.${trace.meta.model.layers - 1}.hook_resid_post`;
  if (trace.states.has(last)) return last;
  throw new LmdynError(
    'bad_argument',
    `the trace holds neither ln_final.hook_normalized nor ${last}; record one of them (--hooks) or name one with --hook (recorded: ${[...trace.states.keys()].join(', ')})`,
  );
}

export function traceTrajectories(
  trace: Trace,
  options: { hook?: string; state?: StateKind } = {},
): RawPaths {
  const hook = options.hook ?? defaultStateHook(trace);
  const state = options.state ?? 'last';
  const rec = trace.states.get(hook);
  if (!rec) {
    throw new LmdynError(
      'bad_argument',
      `hook '${hook}' is not in the trace (recorded: ${[...trace.states.keys()].join(', ')})`,
    );
  }
  const d = rec.width;
  const P = trace.positions;
  const paths = trace.samples.map((s, i): Path => {
    const first = Math.max(0, s.promptIds.length - 1);
    const last = Math.min(P - 1, s.promptIds.length - 1 + s.ids.length);
    const rows: Float64Array[] = [];
    const sum = new Float64Array(d);
    let count = 0;
    for (let pos = 0; pos <= last; pos++) {
      const base = (i * P + pos) * d;
      const v = rec.data.subarray(base, base + d);
      if (!Number.isFinite(v[0])) break;
      if (state === 'running-mean') {
        for (let c = 0; c < d; c++) sum[c] += v[c];
        count++;
      }
      if (pos < first) continue;
      rows.push(state === 'running-mean' ? sum.map((x) => x / count) : Float64Array.from(v));
    }
    const states = new Float64Array(rows.length * d);
    rows.forEach((r, j) => states.set(r, j * d));
    return { states, len: rows.length, t0: 0 };
  });
  const note = hook.startsWith('ln_final')
    ? 'post-final-norm (as the last entry of HF hidden_states)'
    : hook.endsWith('hook_resid_post')
      ? 'residual stream, pre-final-norm'
      : 'as recorded by the hook';
  return { hook, state, d, paths, note };
}

/** A PCA kept for projection: x ↦ Cᵀ(x − m), C = the k leading components. */
export interface StatePca {
  d: number;
  k: number;
  mean: number[];
  /** [k][d] unit rows. */
  components: number[][];
  explainedVarianceRatio: number[];
  /** Rows the PCA was fitted on. */
  fittedOn: number;
}

/** PCA of the pooled states of the given paths (k clipped to d and to the rows − 1). */
export function fitStatePca(raw: readonly Path[], d: number, k: number): StatePca {
  const n = raw.reduce((a, p) => a + p.len, 0);
  if (n < 2)
    throw new LmdynError('bad_argument', 'the SDE lens needs at least two recorded states');
  const x = new Float64Array(n * d);
  let at = 0;
  for (const p of raw) {
    x.set(p.states.subarray(0, p.len * d), at);
    at += p.len * d;
  }
  const kk = Math.max(1, Math.min(k, d, n - 1));
  const f = pca(x, n, d, kk);
  return {
    d,
    k: f.k,
    mean: Array.from(f.mean),
    components: Array.from({ length: f.k }, (_, c) =>
      Array.from(f.components.subarray(c * d, (c + 1) * d)),
    ),
    explainedVarianceRatio: Array.from(f.explainedVarianceRatio),
    fittedOn: n,
  };
}

/** Paths in PC coordinates [len, k]. */
export function projectPaths(raw: readonly Path[], p: StatePca): Path[] {
  const { d, k } = p;
  return raw.map((path) => {
    const states = new Float64Array(path.len * k);
    for (let j = 0; j < path.len; j++) {
      for (let c = 0; c < k; c++) {
        const comp = p.components[c];
        let s = 0;
        for (let i = 0; i < d; i++) s += comp[i] * (path.states[j * d + i] - p.mean[i]);
        states[j * k + c] = s;
      }
    }
    return { states, len: path.len, t0: path.t0 };
  });
}
