/**
 * Faces of the simplex (papers.md §4.2, [exact: abstract, standard math]): top-k and top-p keep
 * a support S, and the flows run on Δ_S = {p : p_i = 0, i ∉ S} (replicator-type flows keep faces
 * invariant). S is chosen by the sampler itself (decode/sampling.ts, the code path generation
 * uses: temperature, then top-k, then top-p on the full-vocabulary π_T), and the equilibrium of
 * the entropic flow on Δ_S is compared with the sampler's own distribution.
 */
import { nextTokenDistribution, validateSampling } from '../../decode/sampling.js';
import { runFlow, type FlowGrid, type FlowRun } from './equilibrium.js';
import {
  flowFitness,
  integrateReplicator,
  logSoftmaxAt,
  uniformLog,
  type FlowKind,
} from './flows.js';
import { cite } from '../../papers.js';

export interface FaceSpec {
  topK?: number;
  topP?: number;
}

export interface FaceReport {
  tag: 'proposed';
  source: string;
  sampler: { temperature: number; top_k: number; top_p: number };
  /** Kept token ids, most probable first (the sampler's ranking). */
  support: number[];
  support_size: number;
  /** The sampler's probabilities on `support` (same order). */
  sampler_probs: number[];
  /** softmax(s_S/T) in float64 from the raw logits (same order). */
  closed_form_probs: number[];
  /** ‖closed form − sampler‖₁: the sampler divides by T in float32 (as HF), so ~1e-7·|s/T| when T ≠ 1. */
  closed_form_l1_vs_sampler: number;
  /** The entropic flow on Δ_S integrated from the face's uniform point to t = 40/T. */
  entropic_limit: { t: number; l1_vs_sampler: number; l1_vs_closed_form: number };
  /** The paper's flow on Δ_S at t = 1 (uniform start) against the sampler: it passes through it. */
  paper_at_t1: { l1_vs_sampler: number };
  /** The paper's flow on Δ_S after t = 40/T: near the face's argmax vertex. */
  paper_limit: { t: number; l1_to_argmax_vertex: number };
  runs: FlowRun[];
}

/** The face the sampler keeps for `logits` at temperature T with top-k/top-p, and both flows on it. */
export function faceReport(
  logits: Float32Array,
  history: readonly number[],
  T: number,
  face: FaceSpec,
  grid: FlowGrid,
): FaceReport {
  const sampling = validateSampling({ temperature: T, topK: face.topK ?? 0, topP: face.topP ?? 1 });
  const dist = nextTokenDistribution(logits, history, sampling);
  const support = Array.from(dist.support);
  // s_S: [|S|] raw scores of the kept tokens, float64
  const s = Float64Array.from(support, (id) => logits[id]);
  const samplerProbs = support.map((id) => dist.probs[id]);
  const closed = Array.from(logSoftmaxAt(s, T), Math.exp);
  const tLong = 40 / T;
  const entropicEnd = integrateTo('entropic', s, T, tLong, grid.stepsPerUnit);
  const paperAtOne = integrateTo('paper', s, T, 1, grid.stepsPerUnit);
  const paperEnd = integrateTo('paper', s, T, tLong, grid.stepsPerUnit);
  const top = s.indexOf(Math.max(...s));
  return {
    tag: 'proposed',
    source:
      `${cite('simplex')} faces (the abstract claims face restriction; the equilibrium on the face and its comparison with the sampler are ours); support from decode/sampling.ts nextTokenDistribution`,
    sampler: { temperature: T, top_k: sampling.topK, top_p: sampling.topP },
    support,
    support_size: support.length,
    sampler_probs: samplerProbs,
    closed_form_probs: closed,
    closed_form_l1_vs_sampler: l1(closed, samplerProbs),
    entropic_limit: {
      t: tLong,
      l1_vs_sampler: l1(entropicEnd, samplerProbs),
      l1_vs_closed_form: l1(entropicEnd, closed),
    },
    paper_at_t1: { l1_vs_sampler: l1(paperAtOne, samplerProbs) },
    paper_limit: { t: tLong, l1_to_argmax_vertex: 2 * (1 - paperEnd[top]) },
    runs: [
      runFlow('paper', s, T, uniformLog(s.length), 'uniform', grid),
      runFlow('entropic', s, T, uniformLog(s.length), 'uniform', grid),
    ],
  };
}

/** p(t) of a flow from the face's uniform point, integrated (RK4 in log-coordinates). */
function integrateTo(
  flow: FlowKind,
  s: Float64Array,
  T: number,
  t: number,
  stepsPerUnit: number,
): number[] {
  const logp = integrateReplicator(flowFitness(flow, s, T), uniformLog(s.length), {
    stepsPerUnit,
    steps: Math.round(t * stepsPerUnit),
  });
  return Array.from(logp, Math.exp);
}

function l1(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i] - b[i]);
  return d;
}
