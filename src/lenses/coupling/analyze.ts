/**
 * The coupling lens (papers.md §5): the residual Jacobian of every block along each prompt's
 * hidden-state trajectory, its singular vectors, their coupling across depth and tokens, and the
 * linearity and growth of the trajectories — for a model and, optionally, its random twin.
 * Returns one plain object (written as coupling.json by the CLI); every metric carries the
 * papers.md tag: exact (from the authors' code or a quoted source) or proposed (our reading).
 */
import { encodePrompt, type Model } from '../../model/model.js';
import { LmdynError, type StopSignal } from '../../errors.js';
import {
  blockJacobians,
  crossTokenJacobians,
  finalNormJacobian,
  recordBlockStates,
  type BlockStates,
} from '../../model/jvp.js';
import { parameterCount, type ModelConfig } from '../../model/types.js';
import { matrixOperator, singularValues, svd, topSvd, type Svd } from '../../tensor/linalg.js';
import { createRng, type Rng } from '../../tensor/rng.js';
import { linearFit, mean } from '../../stats/describe.js';
import { allocF32, freeF32 } from '../../tensor/memory.js';
import { layernorm, rmsnorm } from '../../tensor/ops.js';
import { VERSION } from '../../version.js';
import {
  couplingMetric,
  exponentialGrowth,
  linearisationFidelity,
  lineShapeScore,
  stateNorms,
  stepSizes,
  type Coupling,
} from './metrics.js';
import { hfInitDiffers, initName, randomTwin } from '../../model/init.js';
import { cite, paperRef } from '../../papers.js';

import type { Tag } from '../tag.js';

export type { Tag };
export type PositionSpec = 'last' | 'all' | readonly number[];

/**
 * Whose conventions (papers.md §5.2, §5.8): 'lmdyn' — every block's own Jacobian, x^L before the
 * final norm, fidelity over all L blocks against x^L; 'paper-code' — the authors' code: consecutive
 * HF hidden states, so the last block includes the final norm (run_coupling_hf), and fidelity
 * multiplies the first L − 1 block Jacobians and compares with the post-final-norm state (align.py).
 */
export type CouplingConvention = 'lmdyn' | 'paper-code';

export interface CouplingOptions {
  /** Prompt texts (encoded with BOS, as `encodePrompt`). */
  prompts: readonly string[];
  /** Query positions T per prompt (default 'last', as the authors' code). */
  positions?: PositionSpec;
  /** K values (default 10, 30, 50); each is clipped to d. */
  k?: readonly number[];
  /** Also measure the random twin (same config, training-time initialisation). */
  randomTwin?: boolean;
  /** Add ∂ ln_final(x^L_T)/∂x^L_T as a last "block" (excluded by default, papers.md §5.2). */
  includeFinalNorm?: boolean;
  /** Whose conventions (default 'lmdyn'; see CouplingConvention). */
  convention?: CouplingConvention;
  /** Interaction family (c), context → last token (default true; costs T Jacobians per block). */
  interactions?: boolean;
  /** Seeds the twin's weights and the randomized SVD (default 1). */
  seed?: number;
  /** How the model was named (path or hub id), for the report. */
  modelSpec?: string;
  /** Receives each position's Jacobians ([blocks] × [d, d], row = output) as they are made. */
  onJacobians?: (record: JacobianRecord) => void;
  log?: (line: string) => void;
  /** Checked between prompts and positions: ends the analysis early. */
  signal?: StopSignal;
}

export interface JacobianRecord {
  weights: WeightsLabel;
  prompt: number;
  position: number;
  blocks: Float32Array[];
}

export type WeightsLabel = 'trained' | 'random_twin' | 'random_twin_hf';

export interface CouplingReport {
  lens: 'coupling';
  spec: string;
  lmdyn_version: string;
  model: {
    spec: string;
    format: string;
    path: string;
    hub_id: string | null;
    config: ModelConfig;
    parameters: number;
  };
  prompts: { text: string; prompt_ids: number[]; positions: number[] }[];
  /** K as asked and as used (clipped to d, and to the triplets the top-K SVD keeps). */
  k: { requested: number; used: number }[];
  seed: number;
  options: {
    positions: 'last' | 'all' | number[];
    /** Which conventions produced every number here (CouplingConvention). */
    convention: CouplingConvention;
    include_final_norm: boolean;
    interactions: boolean;
    random_twin: boolean;
    svd: string;
  };
  conventions: { convention: string; blocks: string; trajectory: string; depth: string };
  /** Row/column labels of every per-block array: blocks.0 … blocks.{L−1} (+ ln_final). */
  blocks: string[];
  trained: WeightsReport;
  /** The twin under the training-time (llama2.c-scaled for llama) initialisation. */
  random_twin: (WeightsReport & { seed: number; init: string }) | null;
  /**
   * The twin under Hugging Face from_config's N(0, 0.02²) everywhere (llama family); null when
   * not asked or when it equals random_twin (gpt2 and gpt_neo, whose HF init is the training one).
   */
  random_twin_hf: (WeightsReport & { seed: number; init: string }) | null;
}

export interface WeightsReport {
  weights: WeightsLabel;
  jacobian: { tag: Tag; source: string; definition: string; dtype: 'f32' };
  singular_values: {
    tag: Tag;
    source: string;
    method: string;
    /** Mean over prompts and positions of each block's leading singular values. */
    mean_by_block: number[][];
    /** [prompt][position][block] → the top max(K) singular values. */
    per_prompt: number[][][][];
  };
  coupling: {
    tag: Tag;
    source: string;
    formula: string;
    by_k: {
      k: number;
      /** C_K[i][j] = m_K(J_i, J_j) (J_i in J_j's basis), mean over prompts and positions. */
      matrix: number[][];
      trace_normalised: number[][];
      vju: number[][];
      /** [prompt][position] → C_K. */
      per_prompt: number[][][][];
    }[];
  };
  interactions: {
    tag: Tag;
    source: string;
    depth: { definition: string; by_k: { k: number; mean: number }[] };
    token: {
      definition: string;
      available: boolean;
      note: string;
      by_k: { k: number; by_block: number[] }[];
    };
    context: {
      definition: string;
      available: boolean;
      note: string;
      /** by_block: mean over t1 and prompts; per_prompt: [prompt][block][t1]. */
      by_k: { k: number; by_block: (number | null)[]; per_prompt: number[][][] }[];
    };
  };
  model_coupling: {
    tag: Tag;
    source: string;
    definition: string;
    by_k: { k: number; value: number; log10: number; per_prompt: number[] }[];
    /**
     * The level with no shared basis: m_K(J_i, ·) measured in Haar-random orthonormal bases
     * (U, V ∈ R^{d×K}) instead of J_j's singular vectors; mean and spread over blocks, positions,
     * prompts and draws. A model value near it shows no coupling beyond chance.
     */
    no_shared_basis: {
      tag: Tag;
      definition: string;
      draws: number;
      seed: number;
      by_k: { k: number; mean: number; sd: number; min: number; max: number; n: number }[];
    };
  };
  lss: {
    tag: Tag;
    aggregation_tag: Tag;
    source: string;
    /** [prompt][position] LSS of that token's trajectory x^0..x^L. */
    per_prompt: number[][];
    mean: number;
    mean_log: number;
    mean_at_analysed_positions: number;
  };
  growth: {
    tag: Tag;
    source: string;
    /** Steps l (δ_l = ‖x^l − x^{l−1}‖, l = 1..L) the per-token fits use. */
    fit_steps: number[];
    /** e^{mean b} over tokens, and the tokens' mean R², expodistance and equidistance. */
    rate: number | null;
    r2_mean: number | null;
    expodistance_mean: number | null;
    equidistance_mean: number | null;
    /** Mean over all tokens of log δ_l, l = 1..L, and the growth fit of that mean curve. */
    mean_log_step: number[];
    mean_curve: { rate: number | null; r2: number | null };
    /** [prompt][position] */
    per_prompt: {
      rate: number | null;
      r2: number | null;
      expodistance: number | null;
      equidistance: number | null;
    }[][];
  };
  norm_growth: {
    tag: Tag;
    source: string;
    /** Mean over tokens of log ‖x^l‖, l = 0..L. */
    mean_log_norm: number[];
    fit_states: number[];
    factor: number;
    r2: number;
  };
  fidelity: {
    tag: Tag;
    source: string;
    compared_to: string;
    /** [prompt][analysed position] */
    per_prompt: number[][];
    mean: number;
  };
  top_singular_value: {
    tag: Tag;
    source: string;
    /** Mean s_1(J^l) by block (blocks only, never ln_final). */
    s1_by_block: number[];
    /** Depths l = block index + 1 in the fit of 1/s_1 against l. */
    fit_depths: number[];
    slope: number;
    intercept: number;
    r2: number;
  };
}

/** Full SVD up to this width; above it the top-K randomized SVD (papers.md §5.11 step 3). */
export const FULL_SVD_MAX_DIM = 512;
export const DEFAULT_K = [10, 30, 50] as const;

/** Runs the lens over every prompt for the model (and its twin). */
export function analyzeCoupling(model: Model, options: CouplingOptions): CouplingReport {
  if (options.prompts.length === 0)
    throw new LmdynError('bad_argument', 'the coupling lens needs at least one prompt');
  const c = model.config;
  const d = c.dim;
  const seed = options.seed ?? 1;
  const fullSvd = d <= FULL_SVD_MAX_DIM;
  const requested = [...(options.k ?? DEFAULT_K)];
  if (requested.some((k) => !(Number.isInteger(k) && k >= 1))) {
    throw new LmdynError(
      'bad_argument',
      `K values must be whole numbers ≥ 1, got ${requested.join(',')}`,
    );
  }
  const k = requested.map((r) => ({ requested: r, used: Math.min(r, d) }));
  const ks = [...new Set(k.map((e) => e.used))].sort((a, b) => a - b);
  const spec = options.positions ?? 'last';
  const prompts = options.prompts.map((text, i) => {
    const ids = encodePrompt(model, text);
    return { text, prompt_ids: ids, positions: resolvePositions(spec, ids.length, i) };
  });
  const includeFinalNorm = options.includeFinalNorm ?? false;
  const convention = options.convention ?? 'lmdyn';
  if (convention !== 'lmdyn' && convention !== 'paper-code')
    throw new LmdynError(
      'bad_argument',
      `--convention must be lmdyn or paper-code, got '${convention}'`,
    );
  if (convention === 'paper-code' && includeFinalNorm)
    throw new LmdynError(
      'bad_argument',
      '--include-final-norm does not apply with --convention paper-code (its last block already includes the final norm)',
    );
  const blocks = Array.from({ length: c.nLayers }, (_, l) => `blocks.${l}`);
  if (includeFinalNorm) blocks.push('ln_final');
  if (convention === 'paper-code') blocks[c.nLayers - 1] = `blocks.${c.nLayers - 1}+ln_final`;
  const run: RunSettings = {
    convention,
    ks,
    seed,
    fullSvd,
    includeFinalNorm,
    interactions: options.interactions ?? true,
    onJacobians: options.onJacobians,
    log: options.log ?? (() => {}),
    signal: options.signal,
  };
  const trained = measureWeights(model, 'trained', prompts, run);
  let twin: CouplingReport['random_twin'] = null;
  let twinHf: CouplingReport['random_twin_hf'] = null;
  if (options.randomTwin) {
    const twinModel = randomTwin(model, seed);
    try {
      twin = { ...measureWeights(twinModel, 'random_twin', prompts, run), seed, init: initName(c) };
    } finally {
      twinModel.dispose();
    }
    if (hfInitDiffers(c)) {
      const hfModel = randomTwin(model, seed, 'hf');
      try {
        twinHf = {
          ...measureWeights(hfModel, 'random_twin_hf', prompts, { ...run, onJacobians: undefined }),
          seed,
          init: initName(c, 'hf'),
        };
      } finally {
        hfModel.dispose();
      }
    }
  }
  return {
    lens: 'coupling',
    spec: paperRef('coupling'),
    lmdyn_version: VERSION,
    model: {
      spec: options.modelSpec ?? model.source.path,
      format: model.source.format,
      path: model.source.path,
      hub_id: model.source.hubId,
      config: c,
      parameters: parameterCount(c),
    },
    prompts,
    k,
    seed,
    options: {
      positions: typeof spec === 'string' ? spec : [...spec],
      convention,
      include_final_norm: includeFinalNorm,
      interactions: run.interactions,
      random_twin: options.randomTwin ?? false,
      svd: fullSvd
        ? `full SVD (one-sided Jacobi, float64), d = ${d} ≤ ${FULL_SVD_MAX_DIM}`
        : `top-${ks[ks.length - 1]} randomized subspace iteration (seed ${seed}), d = ${d} > ${FULL_SVD_MAX_DIM}`,
    },
    conventions: {
      convention:
        convention === 'paper-code'
          ? "paper-code: the authors' code (sugolov/coupling): the last block maps hidden_states[L−1] to the post-final-norm hidden_states[L] (run_coupling_hf); fidelity multiplies the first L − 1 block Jacobians and compares with the post-norm state (align.py)"
          : "lmdyn: every block's own Jacobian, the final norm excluded (lmdyn's default, docs/papers.md); fidelity multiplies all L block Jacobians and compares with x^L before the final norm",
      blocks:
        convention === 'paper-code'
          ? `blocks.l is hook block l (0-based); its Jacobian is the paper's J^{l+1} = ∂x^{l+1}_T/∂x^l_T − I, except the last, blocks.${c.nLayers - 1}+ln_final: ∂ln_final(x^L_T)/∂x^{L−1}_T − I`
          : "blocks.l is hook block l (0-based); its Jacobian is the paper's J^{l+1} = ∂x^{l+1}_T/∂x^l_T − I",
      trajectory:
        'x^0 = blocks.0.hook_resid_pre (embedding, plus learned positions for GPT-2), x^l = blocks.{l−1}.hook_resid_post; x^L is before the final norm (for LSS and growth in both conventions)',
      depth: 'fits against depth use l = block index + 1 (1-based, as the paper)',
    },
    blocks,
    trained,
    random_twin: twin,
    random_twin_hf: twinHf,
  };
}

interface RunSettings {
  convention: CouplingConvention;
  ks: number[];
  seed: number;
  fullSvd: boolean;
  includeFinalNorm: boolean;
  interactions: boolean;
  onJacobians: ((record: JacobianRecord) => void) | undefined;
  log: (line: string) => void;
  signal: StopSignal | undefined;
}

interface PromptInput {
  prompt_ids: number[];
  positions: number[];
}

/** What one prompt contributes (before averaging). */
interface PromptMeasure {
  spectra: number[][][]; // [position][block] → singular values (up to SPECTRUM_KEEP)
  coupling: Coupling[][][][]; // [position][i][j] → per K
  token: Coupling[][][]; // [block][pair] → per K
  context: Coupling[][][]; // [block][t1] → per K
  lss: number[]; // [every position]
  growth: ReturnType<typeof exponentialGrowth>[]; // [every position]
  logSteps: number[][]; // [every position][step]
  logNorms: number[][]; // [every position][state]
  fidelity: number[]; // [analysed position]
  noSharedBasis: number[][]; // [K index] → m_K in random bases, every block × position × draw
  s1: number[][]; // [analysed position][block, blocks only]
}

const SPECTRUM_KEEP = 128;

function measureWeights(
  model: Model,
  label: WeightsLabel,
  prompts: readonly PromptInput[],
  run: RunSettings,
): WeightsReport {
  const measures = prompts.map((p, i) => {
    run.signal?.throwIfAborted();
    run.log(
      `${label}: prompt ${i + 1}/${prompts.length} (${p.prompt_ids.length} tokens, ${p.positions.length} position${p.positions.length === 1 ? '' : 's'})`,
    );
    return measurePrompt(model, label, i, p, run);
  });
  return summarise(model.config, label, prompts, measures, run);
}

function measurePrompt(
  model: Model,
  label: WeightsLabel,
  index: number,
  prompt: PromptInput,
  run: RunSettings,
): PromptMeasure {
  const tf = model.transformer;
  const c = model.config;
  const d = c.dim;
  const L = c.nLayers;
  const kMax = run.ks[run.ks.length - 1];
  const states = recordBlockStates(tf, prompt.prompt_ids);
  const owned: Float32Array[] = [];
  try {
    // J^l_T for every analysed T, in the kernels' memory (the metrics multiply with them).
    const perPosition = prompt.positions.map((T) => {
      run.signal?.throwIfAborted();
      const js = blockJacobians(tf, states, T);
      if (run.includeFinalNorm) js.push(finalNormJacobian(tf, states, T));
      if (run.convention === 'paper-code')
        js[L - 1] = throughFinalNorm(finalNormJacobian(tf, states, T), js[L - 1], d);
      run.onJacobians?.({ weights: label, prompt: index, position: T, blocks: js });
      const arena = js.map((j) => {
        const a = allocF32(d * d);
        a.set(j);
        owned.push(a);
        return a;
      });
      return { T, js: arena, svds: arena.map((j) => decompose(j, d, kMax, run)) };
    });
    // Reference level: m_K(J_i, ·) in Haar-random orthonormal bases (no shared basis).
    const noSharedBasis = run.ks.map(() => [] as number[]);
    const rng = createRng(mixSeed(run.seed, index, label));
    for (const { js, svds } of perPosition)
      for (let draw = 0; draw < NO_SHARED_BASIS_DRAWS; draw++)
        js.forEach((ji, i) => {
          const basis = randomBasis(d, kMax, rng);
          couplingMetric(ji, d, svds[i].s, basis, run.ks).forEach((cm, q) =>
            noSharedBasis[q].push(cm.mK),
          );
        });
    // §5.3 coupling matrix per position: C_K[i][j] = m_K(J_i, J_j)
    const coupling = perPosition.map(({ js, svds }) =>
      js.map((ji, i) => svds.map((sj) => couplingMetric(ji, d, svds[i].s, sj, run.ks))),
    );
    // §5.4 (b) token coupling at fixed depth: m_K(J^l_tt, J^l_t′t′), t ≠ t′
    const nBlocks = perPosition[0].js.length;
    const token = Array.from({ length: nBlocks }, (_, b) => {
      const pairs: Coupling[][] = [];
      perPosition.forEach((pi, i) =>
        perPosition.forEach((pj, j) => {
          if (i !== j) pairs.push(couplingMetric(pi.js[b], d, pi.svds[b].s, pj.svds[b], run.ks));
        }),
      );
      return pairs;
    });
    // §5.4 (c) context → last token: m_K(J^l_{t1 T}, J^l_TT), t1 < T, T = the last analysed position
    const last = perPosition[perPosition.length - 1];
    const froms = Array.from({ length: run.interactions ? last.T : 0 }, (_, t) => t);
    const context = Array.from({ length: L }, (_, l) => {
      if (froms.length === 0) return [];
      return crossTokenJacobians(tf, states, l, froms, last.T).map((jc) =>
        couplingMetric(jc, d, leadingSingularValues(jc, d, kMax, run), last.svds[l], run.ks),
      );
    });
    // §5.6–5.7 every token's depth trajectory x^0..x^L
    const trajectories = Array.from({ length: states.n }, (_, t) => trajectory(states, t, d));
    const lss = trajectories.map((x) => lineShapeScore(x, L + 1, d));
    const steps = trajectories.map((x) => stepSizes(x, L + 1, d));
    // §5.8 fidelity and top singular values, at the analysed positions (blocks only).
    // paper-code (align.py): Π over the first L − 1 blocks against the post-final-norm state.
    const fidelity = perPosition.map(({ T, js }) =>
      run.convention === 'paper-code'
        ? linearisationFidelity(
            js.slice(0, L - 1),
            states.resid[0].subarray(T * d, (T + 1) * d),
            finalNormed(tf, states.resid[L].subarray(T * d, (T + 1) * d)),
            d,
          )
        : linearisationFidelity(
            js.slice(0, L),
            states.resid[0].subarray(T * d, (T + 1) * d),
            states.resid[L].subarray(T * d, (T + 1) * d),
            d,
          ),
    );
    return {
      spectra: perPosition.map(({ svds }) =>
        svds.map((s) => Array.from(s.s.subarray(0, Math.min(s.k, SPECTRUM_KEEP)))),
      ),
      coupling,
      token,
      context,
      lss,
      growth: steps.map((delta) => exponentialGrowth(delta)),
      logSteps: steps.map((delta) => delta.map(Math.log)),
      logNorms: trajectories.map((x) => stateNorms(x, L + 1, d).map(Math.log)),
      fidelity,
      noSharedBasis,
      s1: perPosition.map(({ svds }) => svds.slice(0, L).map((s) => s.s[0])),
    };
  } finally {
    for (const a of owned) freeF32(a);
  }
}

/**
 * The last block under the authors' convention: x^{L−1} ↦ ln_final(x^{L−1} + f^L(x^{L−1})), so
 * J = N·(I + J^L) − I with N = ∂ln_final/∂x at x^L (chain rule). n, j: [d, d] row = output.
 */
function throughFinalNorm(n: Float32Array, j: Float32Array, d: number): Float32Array {
  const out = new Float32Array(d * d);
  const row = new Float64Array(d);
  for (let o = 0; o < d; o++) {
    for (let i = 0; i < d; i++) row[i] = n[o * d + i];
    for (let k = 0; k < d; k++) {
      const nk = n[o * d + k];
      if (nk === 0) continue;
      for (let i = 0; i < d; i++) row[i] += nk * j[k * d + i];
    }
    row[o] -= 1;
    for (let i = 0; i < d; i++) out[o * d + i] = row[i];
  }
  return out;
}

/** ln_final(x) for one state (RMSNorm or LayerNorm, as the model's forward pass). */
function finalNormed(tf: Model['transformer'], x: Float32Array): Float32Array {
  const w = tf.weights;
  const out = new Float32Array(x.length);
  if (tf.config.norm === 'layernorm')
    layernorm(out, x, w.finalNorm, w.finalNormBias, 1, tf.config.normEps);
  else rmsnorm(out, x, w.finalNorm, 1, tf.config.normEps);
  return out;
}

/** Draws of random bases per block and position for the no-shared-basis level. */
export const NO_SHARED_BASIS_DRAWS = 8;

/** Orthonormal rows u, v [k, d] from Gaussian draws by modified Gram–Schmidt (Haar on the Stiefel manifold). */
export function randomBasis(d: number, k: number, rng: Rng): Svd {
  const rows = () => {
    const m = new Float64Array(k * d);
    for (let a = 0; a < k; a++) {
      for (let i = 0; i < d; i++) m[a * d + i] = rng.normal();
      for (let b = 0; b < a; b++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += m[a * d + i] * m[b * d + i];
        for (let i = 0; i < d; i++) m[a * d + i] -= dot * m[b * d + i];
      }
      let norm = 0;
      for (let i = 0; i < d; i++) norm += m[a * d + i] ** 2;
      norm = Math.sqrt(norm);
      for (let i = 0; i < d; i++) m[a * d + i] /= norm;
    }
    return m;
  };
  const u = rows();
  const v = rows();
  return { m: d, n: d, k, s: new Float64Array(k), u, v };
}

/** A seed for one (run seed, prompt, weights) stream. */
function mixSeed(seed: number, prompt: number, label: WeightsLabel): number {
  const w = label === 'trained' ? 0 : label === 'random_twin' ? 1 : 2;
  return (Math.imul(seed ^ 0x9e3779b9, 2654435761) + prompt * 7919 + w * 104729) >>> 0;
}

function summarise(
  c: ModelConfig,
  label: WeightsLabel,
  prompts: readonly PromptInput[],
  ms: readonly PromptMeasure[],
  run: RunSettings,
): WeightsReport {
  const L = c.nLayers;
  const kMax = run.ks[run.ks.length - 1];
  const ki = (k: number) => run.ks.indexOf(k);
  const allPositions = ms.flatMap((m) => m.coupling);
  const meanMatrix = (pick: (x: Coupling) => number, k: number) =>
    meanOfMatrices(
      allPositions.map((pos) => pos.map((row) => row.map((cell) => pick(cell[ki(k)])))),
    );
  const offDiagonalMean = (matrix: Coupling[][][], k: number) => {
    const vals: number[] = [];
    matrix.forEach((row, i) => row.forEach((cell, j) => i !== j && vals.push(cell[ki(k)].mK)));
    return vals.length ? mean(vals) : NaN; // one block: no pairs (null in JSON)
  };
  const perPromptCoupling = (k: number) =>
    ms.map((m) => mean(m.coupling.map((matrix) => offDiagonalMean(matrix, k))));
  const allLss = ms.flatMap((m) => m.lss);
  const analysedLss = ms.flatMap((m, p) => prompts[p].positions.map((t) => m.lss[t]));
  const growths = ms.flatMap((m) => m.growth);
  const fitted = growths.filter((g) => g.b !== null);
  const meanOrNull = (v: (number | null)[]) => {
    const x = v.filter((e): e is number => e !== null && Number.isFinite(e));
    return x.length ? mean(x) : null;
  };
  const meanLogStep = columnMeans(ms.flatMap((m) => m.logSteps));
  const meanCurve = exponentialGrowth(meanLogStep.map(Math.exp));
  const meanLogNorm = columnMeans(ms.flatMap((m) => m.logNorms));
  const normStates = Array.from({ length: L + 1 }, (_, l) => l);
  const middleStates = normStates.slice(1, L);
  const fitStates = middleStates.length >= 2 ? middleStates : normStates;
  const normFit = linearFit(
    fitStates,
    fitStates.map((l) => meanLogNorm[l]),
  );
  const s1ByBlock = columnMeans(ms.flatMap((m) => m.s1));
  const depths = s1ByBlock.map((_, b) => b + 1);
  const late = depths.filter((l) => l >= 10);
  const fitDepths = late.length >= 2 ? late : depths;
  const s1Fit = linearFit(
    fitDepths,
    fitDepths.map((l) => 1 / s1ByBlock[l - 1]),
  );
  const tokenAvailable = prompts.some((p) => p.positions.length >= 2);
  const contextAvailable = run.interactions && ms.some((m) => m.context.some((b) => b.length > 0));
  return {
    weights: label,
    jacobian: {
      tag: 'exact',
      source: `${cite('coupling')} [exact: page + code coupling/jacobian.py]`,
      definition:
        'J^l = ∂x^l_T/∂x^{l−1}_T − I, other positions held fixed; forward-mode tangents (exact, not finite differences)',
      dtype: 'f32',
    },
    singular_values: {
      tag: 'exact',
      source: `${cite('coupling')} (torch.linalg.svd in coupling/metrics.py)`,
      method: run.fullSvd
        ? 'full SVD, one-sided Jacobi in float64'
        : `top-${kMax} randomized subspace iteration, seed ${run.seed}`,
      mean_by_block: columnMeansOfLists(ms.flatMap((m) => m.spectra)),
      per_prompt: ms.map((m) => m.spectra.map((pos) => pos.map((s) => s.slice(0, kMax)))),
    },
    coupling: {
      tag: 'exact',
      source: `${cite('coupling')} [exact: code coupling/metrics.py]`,
      formula:
        'm_K(J_i, J_j) = ‖ |U_{j,K}ᵀ J_i V_{j,K}| − S_{i,K} ‖_F / ‖s_{i,K}‖_2; trace_normalised divides by Σ s_{i,k}; vju uses V_{j,K}ᵀ J_i U_{j,K}',
      by_k: run.ks.map((k) => ({
        k,
        matrix: meanMatrix((x) => x.mK, k),
        trace_normalised: meanMatrix((x) => x.traceNormalised, k),
        vju: meanMatrix((x) => x.vju, k),
        per_prompt: ms.map((m) =>
          m.coupling.map((matrix) => matrix.map((row) => row.map((cell) => cell[ki(k)].mK))),
        ),
      })),
    },
    interactions: {
      tag: 'proposed',
      source: `${cite('coupling')} [exact: page] + [proposed] families`,
      depth: {
        definition: '(a) mean over i ≠ j of m_K(J^i_TT, J^j_TT), over prompts and positions',
        by_k: run.ks.map((k) => ({
          k,
          mean: mean(allPositions.map((matrix) => offDiagonalMean(matrix, k))),
        })),
      },
      token: {
        definition: '(b) mean over analysed positions t ≠ t′ of m_K(J^l_tt, J^l_t′t′), per block',
        available: tokenAvailable,
        note: tokenAvailable
          ? 'pairs within each prompt'
          : 'needs at least two analysed positions (--positions all or i,j)',
        by_k: run.ks.map((k) => ({
          k,
          by_block: tokenAvailable
            ? Array.from({ length: ms[0].token.length }, (_, b) =>
                mean(ms.flatMap((m) => m.token[b].map((pair) => pair[ki(k)].mK))),
              )
            : [],
        })),
      },
      context: {
        definition:
          '(c) m_K(J^l_{t1 T}, J^l_TT) for t1 < T, T = the last analysed position of each prompt (blocks only)',
        available: contextAvailable,
        note: contextAvailable
          ? 'J^l_{t1 T} = ∂f^l(X)_T/∂x^{l−1}_{t1}, nothing subtracted'
          : 'off (--no-interactions) or no earlier position',
        by_k: run.ks.map((k) => ({
          k,
          by_block: Array.from({ length: L }, (_, l) => {
            const vals = ms.flatMap((m) => m.context[l].map((x) => x[ki(k)].mK));
            return vals.length ? mean(vals) : null;
          }),
          per_prompt: ms.map((m) => m.context.map((b) => b.map((x) => x[ki(k)].mK))),
        })),
      },
    },
    model_coupling: {
      tag: 'proposed',
      source: `${cite('coupling')} [proposed]`,
      definition:
        'mean over prompts of (mean over analysed positions of mean over i ≠ j of m_K(J_i, J_j)); log10 beside it; lower = more coupled',
      by_k: run.ks.map((k) => {
        const perPrompt = perPromptCoupling(k);
        const value = mean(perPrompt);
        return { k, value, log10: Math.log10(value), per_prompt: perPrompt };
      }),
      no_shared_basis: {
        tag: 'proposed',
        definition:
          'm_K(J_i, R) with R = (U, V) Haar-random orthonormal d×K bases (Gram–Schmidt of Gaussian matrices), every block and analysed position, ' +
          `${NO_SHARED_BASIS_DRAWS} draws each; what m_K reads when J_j's basis shares nothing with J_i's`,
        draws: NO_SHARED_BASIS_DRAWS,
        seed: run.seed,
        by_k: run.ks.map((k) => {
          const v = ms.flatMap((m) => m.noSharedBasis[ki(k)]);
          const mu = mean(v);
          const sd = Math.sqrt(
            v.reduce((a, x) => a + (x - mu) ** 2, 0) / Math.max(v.length - 1, 1),
          );
          return { k, mean: mu, sd, min: Math.min(...v), max: Math.max(...v), n: v.length };
        }),
      },
    },
    lss: {
      tag: 'exact',
      aggregation_tag: 'proposed',
      source:
        `${cite('coupling')} [exact: review quoting paper; Gai & Zhang 2021]; mean over tokens and prompts [proposed]`,
      per_prompt: ms.map((m) => m.lss),
      mean: mean(allLss),
      mean_log: mean(allLss.map(Math.log)),
      mean_at_analysed_positions: mean(analysedLss),
    },
    growth: {
      tag: 'proposed',
      source:
        `${cite('coupling')} [proposed]: fit log δ_l = a + b·l over the middle steps, rate e^b; ED = std(ρ)/mean(ρ)`,
      fit_steps: fitted.length ? fitted[0].fitSteps : [],
      rate: fitted.length ? Math.exp(mean(fitted.map((g) => g.b as number))) : null,
      r2_mean: meanOrNull(fitted.map((g) => g.r2)),
      expodistance_mean: meanOrNull(growths.map((g) => g.expodistance)),
      equidistance_mean: meanOrNull(growths.map((g) => g.equidistance)),
      mean_log_step: meanLogStep,
      mean_curve: { rate: meanCurve.rate, r2: meanCurve.r2 },
      per_prompt: ms.map((m) =>
        m.growth.map((g) => ({
          rate: g.rate,
          r2: g.r2,
          expodistance: g.expodistance,
          equidistance: g.equidistance,
        })),
      ),
    },
    norm_growth: {
      tag: 'proposed',
      source: `${cite('coupling')} [proposed]: log ‖x^l‖ against l, factor e^slope per layer`,
      mean_log_norm: meanLogNorm,
      fit_states: fitStates,
      factor: Math.exp(normFit.slope),
      r2: normFit.r2,
    },
    fidelity: {
      tag: run.convention === 'paper-code' ? 'exact' : 'proposed',
      source:
        run.convention === 'paper-code'
          ? `${cite('coupling')} [exact: code align.py]: the first L − 1 block Jacobians against the post-final-norm state`
          : `${cite('coupling')}, lmdyn convention (not align.py’s): all L block Jacobians against x^L before the final norm; --convention paper-code gives align.py’s`,
      compared_to:
        run.convention === 'paper-code'
          ? 'cos(Π_{l<L} (I + J^l) x^0_T, ln_final(x^L_T)) (align.py: range(num_layers − 1), hidden_states[−1])'
          : 'cos(Π_l (I + J^l) x^0_T, x^L_T), x^L before the final norm; the final-norm block is never in the product',
      per_prompt: ms.map((m) => m.fidelity),
      mean: mean(ms.flatMap((m) => m.fidelity)),
    },
    top_singular_value: {
      tag: 'exact',
      source:
        `${cite('coupling')} [exact: code align.py]: linear fit of 1/s_1(J^l) against depth l, layers ≥ 10 (all layers when fewer than two are)`,
      s1_by_block: s1ByBlock,
      fit_depths: fitDepths,
      slope: s1Fit.slope,
      intercept: s1Fit.intercept,
      r2: s1Fit.r2,
    },
  };
}

/** The analysed positions of a prompt of n tokens. */
function resolvePositions(spec: PositionSpec, n: number, prompt: number): number[] {
  if (spec === 'last') return [n - 1];
  if (spec === 'all') return Array.from({ length: n }, (_, t) => t);
  const out = [...new Set(spec)].sort((a, b) => a - b);
  for (const t of out) {
    if (!(Number.isInteger(t) && t >= 0 && t < n)) {
      throw new LmdynError(
        'bad_argument',
        `position ${t} is outside prompt ${prompt + 1}, which has ${n} tokens (0..${n - 1})`,
      );
    }
  }
  if (out.length === 0) throw new LmdynError('bad_argument', 'no positions to analyse');
  return out;
}

/** Singular triplets of a [d, d] Jacobian: all of them up to FULL_SVD_MAX_DIM, else the top kMax. */
function decompose(j: Float32Array, d: number, kMax: number, run: RunSettings): Svd {
  if (run.fullSvd) return svd(j, d, d);
  const op = matrixOperator(j, d, d);
  try {
    return topSvd(op, kMax, run.seed);
  } finally {
    op.free();
  }
}

/** The top kMax singular values of a [d, d] Jacobian (values only: family (c) needs no vectors). */
function leadingSingularValues(
  j: Float32Array,
  d: number,
  kMax: number,
  run: RunSettings,
): Float64Array {
  return run.fullSvd ? singularValues(j, d, d).subarray(0, kMax) : decompose(j, d, kMax, run).s;
}

/** Token t's depth trajectory x^0..x^L: [L+1, d]. */
function trajectory(states: BlockStates, t: number, d: number): Float64Array {
  const x = new Float64Array(states.resid.length * d);
  states.resid.forEach((r, l) => x.set(r.subarray(t * d, (t + 1) * d), l * d));
  return x;
}

function meanOfMatrices(ms: readonly number[][][]): number[][] {
  return ms[0].map((row, i) => row.map((_, j) => mean(ms.map((m) => m[i][j]))));
}

/** Element-wise mean of equally long rows. */
function columnMeans(rows: readonly number[][]): number[] {
  return rows[0].map((_, j) => mean(rows.map((r) => r[j])));
}

/** [sample][block] → list; mean over samples per block and index. */
function columnMeansOfLists(samples: readonly number[][][]): number[][] {
  return samples[0].map((_, b) => columnMeans(samples.map((s) => s[b])));
}
