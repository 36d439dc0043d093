/**
 * The simplex lens (papers.md §4): next-token selection for one context as a flow on the
 * probability simplex, and path dependence (loops) in real generations.
 *
 * Two flows are reported side by side, and the report says which is which:
 * - `paper`: the paper's replicator ODE ṗ = p ⊙ (s − s̄)/T. From the uniform point it is
 *   softmax(t·s/T): it passes through the softmax equilibrium π_T at t = 1 and goes on to the
 *   argmax vertex; F is not a Lyapunov function of it (dF/dt = (1 − t)·Var_p(s)/T).
 * - `entropic`: ṗ = p ⊙ (g − ḡ), g = s − T log p (natural gradient of F). It converges to π_T,
 *   F is non-decreasing (dF/dt = Var_p(g)), and from uniform it is softmax(λ(t)·s).
 * Every section carries its papers.md tag (exact / proposed). analyzeSimplex takes a model and a
 * prompt; analyzeSweepLoops takes the generations of a `lmdyn sweep` folder.
 */
import { encodePrompt, type Model } from '../../model/model.js';
import { LmdynError, type StopSignal } from '../../errors.js';
import { createRng } from '../../tensor/rng.js';
import { VERSION } from '../../version.js';
import {
  defaultGrid,
  equilibriumSummary,
  flowLimit,
  mwuRuns,
  rescalingCheck,
  runFlow,
  ternaryTrajectories,
  twoTokenCounterExample,
  type CounterExample,
  type FlowGrid,
  type FlowRun,
  type MwuRun,
  type RescalingCheck,
  type TernaryTrajectory,
} from './equilibrium.js';
import { faceReport, type FaceReport, type FaceSpec } from './faces.js';
import { dirichletLog, logSoftmaxAt, uniformLog, type FlowKind } from './flows.js';
import { generateGrid, type GenerationSet } from './generations.js';
import { analyzePathDependence, type LoopReport, type PathOptions } from './path.js';
import { cite, paperRef } from '../../papers.js';

import type { Tag } from '../tag.js';

export type { Tag };

export interface LoopGridOptions {
  temperature: number[];
  repetitionPenalty: number[];
  frequencyPenalty: number[];
  presencePenalty: number[];
  samples: number;
  maxTokens: number;
}

export interface SimplexOptions {
  prompt: string;
  /** Temperature T > 0 of the flows (default 1). */
  temperature?: number;
  /** A face: the sampler's top-k and/or top-p support at T. */
  topK?: number;
  topP?: number;
  /** Random interior starts (Dirichlet(1)) besides the uniform point (default 3). */
  starts?: number;
  /** Integrate to t = tMax (default max(3, 10/T)). */
  tMax?: number;
  /** Step η of the multiplicative-weights maps (default 0.1). */
  eta?: number;
  /** Seeds the random starts, the loop grid's samples and the noise trials (default 1). */
  seed?: number;
  /** Also generate over this grid and measure loops (the lens's own generation loop). */
  loopGrid?: LoopGridOptions;
  path?: Omit<PathOptions, 'seed' | 'log'>;
  modelSpec?: string;
  log?: (line: string) => void;
  /** Checked between the flows and at every integration step: ends the analysis early. */
  signal?: StopSignal;
}

export interface FlowSection {
  tag: Tag;
  source: string;
  label: string;
  equation: string;
  closed_form: string;
  limit: string;
  runs: FlowRun[];
  /** From uniform to t = 40/T without recording. */
  long_run: {
    t: number;
    l1_to_equilibrium: number;
    l1_to_argmax_vertex: number;
    top_probability: number;
  };
}

export interface ModelInfo {
  spec: string;
  format: string;
  path: string;
  hub_id: string | null;
  vocab_size: number;
}

export interface SimplexReport {
  lens: 'simplex';
  spec: string;
  lmdyn_version: string;
  mode: 'context';
  model: ModelInfo;
  prompt: string;
  prompt_ids: number[];
  temperature: number;
  seed: number;
  context: {
    /** Position whose next-token logits are the scores s. */
    position: number;
    top: { id: number; text: string; logit: number; probability: number }[];
  };
  grid: {
    t_max: number;
    steps_per_unit: number;
    dt: number;
    recorded_points: number;
    random_starts: number;
  };
  equilibrium: {
    tag: Tag;
    definition: string;
    free_energy_max: number;
    entropy: number;
    log_partition: number;
  };
  flows: { paper: FlowSection; entropic: FlowSection };
  temperature_rescaling: RescalingCheck & { tag: Tag; source: string; note: string };
  counter_example: CounterExample;
  mwu: { tag: Tag; source: string; runs: MwuRun[] };
  faces: (FaceReport & { name: string })[];
  ternary: {
    tag: Tag;
    tokens: { id: number; text: string }[];
    equilibrium: [number, number, number];
    trajectories: TernaryTrajectory[];
  };
  /** The numbers the done-criteria ask for, over every run above. */
  checks: {
    closed_form_max_l1: number;
    sum_max_error: number;
    min_log_p: number;
    interior: boolean;
    entropic_free_energy_min_increment: number;
    paper_free_energy_peak_t_uniform: number;
    rescaling_max_l1: number;
    face_equilibrium_l1_vs_sampler: number;
  };
  loops: LoopReport | null;
}

export const FLOW_TEXT: Record<FlowKind, Omit<FlowSection, 'runs' | 'long_run'>> = {
  paper: {
    tag: 'exact',
    source: `${cite('simplex')}: the paper’s replicator ODE (exact, per audit)`,
    label: 'paper’s replicator flow',
    equation: 'ṗ_i = p_i (s_i − s̄)/T, s̄ = Σ p_j s_j',
    closed_form: 'log p(t) = log p(0) + t·s/T + c(t); from uniform p(t) = softmax(t·s/T)',
    limit:
      'the argmax vertex: from uniform it passes through π_T = softmax(s/T) at t = 1 and goes on; F rises until t = 1 and falls after',
  },
  entropic: {
    tag: 'proposed',
    source:
      `${cite('simplex')}: corrected (entropic / natural-gradient) flow, exact math — not the paper’s ODE`,
    label: 'entropic replicator flow',
    equation: 'ṗ_i = p_i (g_i − ḡ), g = s − T log p',
    closed_form:
      'log p(t) = e^{−Tt} log p(0) + (1 − e^{−Tt}) s/T + c(t); from uniform p(t) = softmax(λ(t)·s), λ(t) = (1 − e^{−Tt})/T',
    limit: 'π_T = softmax(s/T), monotonically: dF/dt = Var_p(g) ≥ 0',
  },
};

export function analyzeSimplex(model: Model, options: SimplexOptions): SimplexReport {
  const T = options.temperature ?? 1;
  if (!(T > 0 && Number.isFinite(T))) {
    throw new LmdynError('bad_argument', `the flows need a temperature T > 0, got ${T}`);
  }
  const seed = options.seed ?? 1;
  const nStarts = options.starts ?? 3;
  const eta = options.eta ?? 0.1;
  if (!(eta > 0)) throw new LmdynError('bad_argument', `η must be > 0, got ${eta}`);
  const log = options.log ?? (() => {});
  const grid: FlowGrid = { ...defaultGrid(T, options.tMax), signal: options.signal };
  const promptIds = encodePrompt(model, options.prompt);
  const logits = lastLogits(model, promptIds);
  // s: [V] the context's scores, float64
  const s = Float64Array.from(logits);
  const V = s.length;
  const rng = createRng(seed);
  const starts = [
    { name: 'uniform', logp: uniformLog(V) },
    ...Array.from({ length: nStarts }, (_, i) => ({
      name: `random ${i + 1}`,
      logp: dirichletLog(V, () => rng.next()),
    })),
  ];

  log(`simplex: flows on ${V} tokens at T = ${T}, t ≤ ${grid.tMax}, ${starts.length} starts`);
  const flows = {} as Record<FlowKind, FlowSection>;
  for (const kind of ['paper', 'entropic'] as const) {
    const runs = starts.map((st) => runFlow(kind, s, T, st.logp, st.name, grid));
    options.signal?.throwIfAborted();
    flows[kind] = {
      ...FLOW_TEXT[kind],
      runs,
      long_run: flowLimit(kind, s, T, 40 / T, grid.stepsPerUnit),
    };
  }
  log('simplex: time rescaling, counter-example, MWU maps');
  const rescaling = rescalingCheck(s, T, grid);
  const counter = twoTokenCounterExample();
  options.signal?.throwIfAborted();
  const mwu = mwuRuns(s, T, eta, Math.round(grid.tMax / eta));

  log('simplex: faces');
  const faceSpecs: { name: string; face: FaceSpec }[] = [];
  if (options.topK !== undefined || options.topP !== undefined) {
    const parts = [
      ...(options.topK !== undefined ? [`top-k ${options.topK}`] : []),
      ...(options.topP !== undefined ? [`top-p ${options.topP}`] : []),
    ];
    faceSpecs.push({ name: parts.join(', '), face: { topK: options.topK, topP: options.topP } });
  }
  faceSpecs.push({ name: 'top-k 3 (ternary)', face: { topK: 3 } });
  const faces = faceSpecs.map(({ name, face }) => ({
    name,
    ...faceReport(logits, promptIds, T, face, grid),
  }));

  const top3 = faces[faces.length - 1].support.slice(0, 3);
  const s3 = Float64Array.from(top3, (id) => s[id]);
  const pi3 = Array.from(logSoftmaxAt(s3, T), Math.exp) as [number, number, number];
  const ternaryStarts = Array.from({ length: 4 }, () => dirichletLog(3, () => rng.next()));
  const trajectories = ternaryTrajectories(s3, T, ternaryStarts, { ...grid, points: 150 });

  let loops: LoopReport | null = null;
  if (options.loopGrid) {
    const g = options.loopGrid;
    log(
      `simplex: generating the loop grid (${g.temperature.length * g.repetitionPenalty.length * g.frequencyPenalty.length * g.presencePenalty.length} configurations × ${g.samples})`,
    );
    const set: GenerationSet = generateGrid(
      model,
      options.modelSpec ?? model.source.path,
      options.prompt,
      {
        promptIds,
        ...g,
        topK: options.topK,
        topP: options.topP,
        seed,
      },
    );
    options.signal?.throwIfAborted();
    loops = analyzePathDependence(set, model, { ...options.path, seed, log });
  }

  const allRuns = [...flows.paper.runs, ...flows.entropic.runs, ...faces.flatMap((f) => f.runs)];
  const topIds = Array.from(s.keys())
    .sort((a, b) => s[b] - s[a])
    .slice(0, 10);
  const logPi = logSoftmaxAt(s, T);
  return {
    lens: 'simplex',
    spec: paperRef('simplex'),
    lmdyn_version: VERSION,
    mode: 'context',
    model: modelInfo(model, options.modelSpec),
    prompt: options.prompt,
    prompt_ids: promptIds,
    temperature: T,
    seed,
    context: {
      position: promptIds.length - 1,
      top: topIds.map((id) => ({
        id,
        text: model.tokenizer.tokenText(id),
        logit: s[id],
        probability: Math.exp(logPi[id]),
      })),
    },
    grid: {
      t_max: grid.tMax,
      steps_per_unit: grid.stepsPerUnit,
      dt: 1 / grid.stepsPerUnit,
      recorded_points: grid.points,
      random_starts: nStarts,
    },
    equilibrium: {
      tag: 'exact',
      definition:
        'π_T = softmax(s/T) = argmax_p F(p), F(p) = ⟨p, s⟩ + T·H(p), F* = T·logsumexp(s/T); KL(p‖π_T) = (F* − F(p))/T',
      ...equilibriumSummary(s, T),
    },
    flows,
    temperature_rescaling: {
      tag: 'exact',
      source: cite('simplex'),
      note: 'paper: p_T(t) = p_1(t/T), both integrated, at T/2 and 2T (and T unless T = 1); entropic: every T traces softmax(λ·s), λ from 0 to 1/T',
      ...rescaling,
    },
    counter_example: counter,
    mwu: {
      tag: 'proposed',
      source: `${cite('simplex')} MWU / entropic mirror step (proposed form)`,
      runs: mwu,
    },
    faces,
    ternary: {
      tag: 'exact',
      tokens: top3.map((id) => ({ id, text: model.tokenizer.tokenText(id) })),
      equilibrium: pi3,
      trajectories,
    },
    checks: {
      closed_form_max_l1: Math.max(...allRuns.map((r) => r.closed_form_max_l1)),
      sum_max_error: Math.max(...allRuns.map((r) => r.sum_max_error)),
      min_log_p: Math.min(...allRuns.map((r) => r.min_log_p)),
      interior: allRuns.every((r) => Number.isFinite(r.min_log_p) && r.min_p >= 0),
      entropic_free_energy_min_increment: Math.min(
        ...flows.entropic.runs.map((r) => r.free_energy_min_increment),
      ),
      paper_free_energy_peak_t_uniform: flows.paper.runs[0].free_energy_peak_t,
      rescaling_max_l1: Math.max(
        ...rescaling.paper.map((r) => r.max_l1),
        ...rescaling.entropic.map((r) => r.max_l1),
      ),
      face_equilibrium_l1_vs_sampler: Math.max(...faces.map((f) => f.entropic_limit.l1_vs_sampler)),
    },
    loops,
  };
}

export interface SimplexSweepReport {
  lens: 'simplex';
  spec: string;
  lmdyn_version: string;
  mode: 'sweep';
  model: ModelInfo;
  prompt: string;
  prompt_ids: number[];
  /** The temperatures of the sweep (T varies across configurations). */
  temperatures: number[];
  seed: number;
  loops: LoopReport;
}

/** Loop statistics of a sweep's generations (see path.ts); `model` is the sweep's model. */
export function analyzeSweepLoops(
  set: GenerationSet,
  model: Model,
  options: PathOptions & { modelSpec?: string } = {},
): SimplexSweepReport {
  const seed = options.seed ?? 1;
  const loops = analyzePathDependence(set, model, { ...options, seed });
  return {
    lens: 'simplex',
    spec: paperRef('simplex'),
    lmdyn_version: VERSION,
    mode: 'sweep',
    model: modelInfo(model, options.modelSpec ?? set.model),
    prompt: set.prompt,
    prompt_ids: set.configs[0]?.samples[0]?.promptIds ?? [],
    temperatures: [...new Set(set.configs.map((c) => c.sampling.temperature))],
    seed,
    loops,
  };
}

/** Next-token logits after the last prompt token: [V]. */
export function lastLogits(model: Model, ids: readonly number[]): Float32Array {
  const tf = model.transformer;
  const out = tf.forward(tf.newCache(1, ids.length), [{ seq: 0, tokens: ids }]);
  return out.logits.slice(0, tf.config.vocabSize);
}

function modelInfo(model: Model, spec?: string): ModelInfo {
  return {
    spec: spec ?? model.source.path,
    format: model.source.format,
    path: model.source.path,
    hub_id: model.source.hubId,
    vocab_size: model.config.vocabSize,
  };
}
