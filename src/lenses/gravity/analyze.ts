/**
 * The information-gravity lens (papers.md §3): potential, masses, wells, curvature, voids,
 * sensitivity and temperature for a model and a set of prompts. The paper's equations could not
 * be recovered (§3.2), so every metric is the proposed operationalisation of §3.3 and is tagged
 * 'proposed'. Returns one plain object (gravity.json).
 */
import { encodePrompt, type Model } from '../../model/model.js';
import { LmdynError, type StopSignal } from '../../errors.js';
import { parameterCount, type ModelConfig } from '../../model/types.js';
import { meanSd } from '../../stats/describe.js';
import { createRng } from '../../tensor/rng.js';
import { VERSION } from '../../version.js';
import type { ParaphraseSet } from './sensitivity.js';
import {
  basin,
  boltzmann,
  classifierOf,
  fisher,
  fisherEigenvalues,
  fisherMatrix,
  fisherQuadratic,
  geometricMass,
  identityCheck,
  informationMass,
  klShift,
  potential,
  finalNormOf,
  forEachState,
  pulledBackKappa,
  queryStates,
  wellDepth,
  type Classifier,
  type IdentityCheck,
  type QueryState,
} from './field.js';
import { entropy } from '../../stats/describe.js';
import { analyzeSensitivity, type Sensitivity } from './sensitivity.js';
import { DEFAULT_TEMPERATURES, temperatureRows, type TemperatureRow } from './temperature.js';
import { buildReference, densityOf, voidScore, type Density, type Reference } from './voids.js';
import { cite, paperRef } from '../../papers.js';

import type { Tag } from '../tag.js';

export type { Tag };
export type ReferencePositions = 'all' | 'last';

export interface GravityOptions {
  /** Prompt texts (encoded with BOS, as `encodePrompt`); the query state is the last position. */
  prompts: readonly string[];
  /** Temperature of the Boltzmann law, G and the basin (default 1; must be > 0). */
  temperature?: number;
  /** Reference corpus for densities: texts and where they came from. */
  reference: { texts: readonly string[]; source: string };
  /** Reference states at every position of each text (default) or only at the last. */
  referencePositions?: ReferencePositions;
  /** Neighbours of the kNN density (default 10). */
  k?: number;
  /** Basin width κ_B in units of T: B = {v : Φ_v ≤ Φ_min + κ_B·T} (default 1). */
  basinWidth?: number;
  /** Paraphrase sets for sensitivity (null or empty: skipped) and their files. */
  paraphrases?: { sets: readonly ParaphraseSet[]; sources: readonly string[] } | null;
  /** Temperature grid (default 0.2 … 2). */
  temperatures?: readonly number[];
  /** Sampled continuations per prompt and temperature for distinct-n (default 4), their length (24). */
  samples?: number;
  maxTokens?: number;
  /** Seeds the sampled continuations, the KL-check directions and the randomized eigensolver. */
  seed?: number;
  /** Eigenvalues of G to report (default 8). */
  eigenvalues?: number;
  /** Tokens listed per prompt in the potential table (default 12). */
  topTokens?: number;
  /** How the model was named (path or hub id), for the report. */
  modelSpec?: string;
  log?: (line: string) => void;
  /** Checked between forward batches, prompts and phases: ends the analysis early. */
  signal?: StopSignal;
}

export interface TopToken {
  id: number;
  token: string;
  /** Φ_q(v) = −z_v. */
  phi: number;
  /** P(v | q, T). */
  prob: number;
  /** ‖w_v‖ and cos θ_v = w_v·q / (‖w_v‖‖q‖): Φ = −‖q‖‖w_v‖cos θ_v − b_v. */
  w_norm: number;
  cos: number;
}

export interface PromptReport {
  text: string;
  prompt_ids: number[];
  query_position: number;
  M_geo: number;
  M_info: number;
  entropy_t1: number;
  kappa_t1: number;
  /** Top-1 logit margin z_(1) − z_(2). */
  depth: number;
  /** z_(1) − logsumexp(z) = log p_max at T = 1. */
  depth_lse: number;
  at_temperature: {
    T: number;
    entropy: number;
    effective_support: number;
    kappa: number;
    /** κ pulled back through the final norm to x^L (tr JᵀGJ, J = ∂ln_final/∂x). */
    kappa_pre_norm: number;
    log_p_max: number;
    basin: { width: number; size: number; mass: number; ids: number[] };
  };
  curvature: {
    /** Largest eigenvalues of G at T, descending. */
    top_eigenvalues: number[];
    /** Σ top eigenvalues / κ. */
    top_share: number;
    method: 'full' | 'randomized';
  };
  /** KL(P_q ‖ P_{q+δ}) against ½δᵀGδ along one seeded random direction, |δ| = ε‖q‖. */
  kl_check: { epsilon: number; kl: number; half_dgd: number; ratio: number }[];
  identity: IdentityCheck[];
  density: Density;
  void_score: number;
  z_entropy: number;
  top_tokens: TopToken[];
}

export interface GravityReport {
  lens: 'gravity';
  spec: string;
  status: string;
  lmdyn_version: string;
  model: {
    spec: string;
    format: string;
    path: string;
    hub_id: string | null;
    config: ModelConfig;
    parameters: number;
  };
  temperature: number;
  seed: number;
  options: {
    k: number;
    basin_width: number;
    temperatures: number[];
    samples: number;
    max_tokens: number;
    eigenvalues: number;
  };
  conventions: Record<string, string>;
  /** Every metric's papers.md tag and formula. */
  definitions: Record<string, { tag: Tag; source: string; formula: string }>;
  identity_check: {
    tag: Tag;
    /** Every prompt's check at every T within its float32 rounding bound (see field.ts). */
    passed: boolean;
    max_abs_diff_exact: number;
    max_abs_diff_recomputed: number;
    max_abs_diff_potential: number;
  };
  second_order_check: {
    tag: Tag;
    passed: boolean;
    /** |KL / ½δᵀGδ − 1| at the smallest ε, worst prompt, and the bound it must stay under. */
    max_rel_error: number;
    tolerance: number;
  };
  prompts: PromptReport[];
  reference: {
    tag: Tag;
    source: string;
    texts: number;
    positions: ReferencePositions;
    /** Distinct reference query states (one per distinct prefix). */
    states: number;
    k: number;
    d_eff: number;
    variance_threshold: number;
    variance_ratio: number[];
    /** log r_k of each reference state among the others, and their log ρ = −d_eff log r_k. */
    log_rk: number[];
    entropy: { mean: number; sd: number };
  };
  sensitivity: (Sensitivity & { tag: Tag; sources: string[] }) | null;
  temperature_sweep: {
    tag: Tag;
    seed: number;
    /** [prompt] → one row per grid temperature. */
    per_prompt: TemperatureRow[][];
    /** Mean over prompts per temperature (distinct-n over prompts that produced n-grams). */
    mean: TemperatureRow[];
    entropy_non_decreasing: boolean;
  };
}

const SOURCE = cite('gravity');
const EPSILONS = [1e-1, 1e-2, 1e-3];
/** The smallest-ε ratio must be within this of 1 (the third-order term is O(ε)). */
const SECOND_ORDER_TOLERANCE = 0.05;

export function analyzeGravity(model: Model, options: GravityOptions): GravityReport {
  if (options.prompts.length === 0)
    throw new LmdynError('bad_argument', 'the gravity lens needs at least one prompt');
  const T = options.temperature ?? 1;
  if (!(T > 0 && Number.isFinite(T)))
    throw new LmdynError('bad_argument', `the temperature must be > 0, got ${T}`);
  const grid = [...(options.temperatures ?? DEFAULT_TEMPERATURES)];
  if (grid.length === 0 || grid.some((t) => !(t > 0 && Number.isFinite(t)))) {
    throw new LmdynError('bad_argument', `temperatures must be > 0, got ${grid.join(',')}`);
  }
  const k = options.k ?? 10;
  const width = options.basinWidth ?? 1;
  const seed = options.seed ?? 1;
  const nEig = options.eigenvalues ?? 8;
  const samples = options.samples ?? 4;
  const maxTokens = options.maxTokens ?? 24;
  const log = options.log ?? (() => {});
  const c = classifierOf(model);
  const d = c.dim;

  log(`gravity: reference states from ${options.reference.texts.length} texts`);
  const refPositions = options.referencePositions ?? 'all';
  const ref = referenceOf(model, options.reference.texts, T, k, refPositions, options.signal);

  const ids = options.prompts.map((p) => encodePrompt(model, p));
  const states = queryStates(model, ids);
  const rng = createRng(seed);
  const prompts = states.map((st, i) => {
    options.signal?.throwIfAborted();
    log(`gravity: prompt ${i + 1}/${states.length}`);
    return promptReport(model, c, options.prompts[i], st, {
      T,
      width,
      ref,
      nEig,
      seed,
      topTokens: options.topTokens ?? 12,
      direction: Float64Array.from({ length: d }, () => rng.normal()),
    });
  });

  log('gravity: temperature sweep');
  const perPrompt = states.map((st, i) => {
    options.signal?.throwIfAborted();
    return temperatureRows(model, st.ids, potential(c, st.q), prompts[i].at_temperature.basin.ids, {
      grid,
      samples,
      maxTokens,
      seed,
    });
  });

  let sensitivity: GravityReport['sensitivity'] = null;
  if (options.paraphrases && options.paraphrases.sets.length > 0) {
    options.signal?.throwIfAborted();
    log(`gravity: sensitivity over ${options.paraphrases.sets.length} paraphrase sets`);
    sensitivity = {
      tag: 'proposed',
      sources: [...options.paraphrases.sources],
      ...analyzeSensitivity(model, c, options.paraphrases.sets, T),
    };
  }

  const identities = prompts.flatMap((p) => p.identity);
  const worst = (
    key: 'max_abs_diff_exact' | 'max_abs_diff_recomputed' | 'max_abs_diff_potential',
  ) => Math.max(...identities.map((x) => x[key]));
  const relErr = Math.max(
    ...prompts.map((p) => Math.abs(p.kl_check[p.kl_check.length - 1].ratio - 1)),
  );
  const refEntropy = meanSd(ref.entropies);
  return {
    lens: 'gravity',
    spec: paperRef('gravity'),
    status:
      `proposed operationalisation (${cite('gravity')}): the paper gives no recoverable equations, so every quantity here is our reading, not the paper’s definition`,
    lmdyn_version: VERSION,
    model: {
      spec: options.modelSpec ?? model.source.hubId ?? model.source.path,
      format: model.source.format,
      path: model.source.path,
      hub_id: model.source.hubId,
      config: model.config,
      parameters: parameterCount(model.config),
    },
    temperature: T,
    seed,
    options: {
      k,
      basin_width: width,
      temperatures: grid,
      samples,
      max_tokens: maxTokens,
      eigenvalues: nEig,
    },
    conventions: {
      hidden_space:
        'q = ln_final.hook_normalized at the last prompt position: the final-norm output that the classifier reads (z = W q + b); G is the Fisher metric on this space. kappa_pre_norm is κ pulled back through the final norm to the residual stream x^L (tr JᵀGJ), which the norm rescales differently per prompt',
      semantic_space:
        'R^d of q; token v sits at its unembedding row w_v (tied to the input embedding when the model ties them)',
      units: 'nats for entropies, masses, KL and JSD; Φ in logit units',
      prompt_ids: 'encoded with BOS first where the tokenizer has one (api.encodePrompt)',
      dtype:
        'q and W are float32 from the model; every quantity derived from them is float64 (the d×d G for its spectrum is one float32 matmul)',
    },
    definitions: DEFINITIONS,
    identity_check: {
      tag: 'proposed',
      passed: identities.every((x) => x.passed),
      max_abs_diff_exact: worst('max_abs_diff_exact'),
      max_abs_diff_recomputed: worst('max_abs_diff_recomputed'),
      max_abs_diff_potential: worst('max_abs_diff_potential'),
    },
    second_order_check: {
      tag: 'proposed',
      passed: relErr <= SECOND_ORDER_TOLERANCE,
      max_rel_error: relErr,
      tolerance: SECOND_ORDER_TOLERANCE,
    },
    prompts,
    reference: {
      tag: 'proposed',
      source: options.reference.source,
      texts: options.reference.texts.length,
      positions: refPositions,
      states: ref.n,
      k,
      d_eff: ref.dEff,
      variance_threshold: ref.varianceThreshold,
      variance_ratio: ref.varianceRatio,
      log_rk: Array.from(ref.logRk),
      entropy: refEntropy,
    },
    sensitivity,
    temperature_sweep: {
      tag: 'proposed',
      seed,
      per_prompt: perPrompt,
      mean: meanRows(perPrompt),
      entropy_non_decreasing: perPrompt.every((rows) => {
        const sorted = [...rows].sort((a, b) => a.T - b.T);
        return sorted.every((r, i) => i === 0 || r.entropy >= sorted[i - 1].entropy - 1e-12);
      }),
    },
  };
}

/**
 * Reference query states: the final-norm state at every position of every corpus text (each
 * prefix is a query; `positions: 'last'` keeps only whole texts), one per distinct prefix, with
 * the entropy of its next-token law at T, the kNN radii and d_eff.
 */
export function referenceOf(
  model: Model,
  texts: readonly string[],
  T: number,
  k: number,
  positions: ReferencePositions = 'all',
  signal?: StopSignal,
): Reference {
  const prompts = texts.map((t) => encodePrompt(model, t));
  const states: Float64Array[] = [];
  const keys: string[] = [];
  const entropies: number[] = [];
  const seen = new Set<string>();
  forEachState(model, prompts, positions, (i, pos, q, logits) => {
    signal?.throwIfAborted(); // once per state: the forward batches dominate
    const key = prompts[i].slice(0, pos + 1).join(',');
    if (seen.has(key)) return;
    seen.add(key);
    states.push(Float64Array.from(q));
    keys.push(key);
    entropies.push(
      entropy(
        boltzmann(
          Float64Array.from(logits, (z) => -z),
          T,
        ),
      ),
    );
  });
  signal?.throwIfAborted();
  if (states.length <= k) {
    throw new LmdynError(
      'bad_argument',
      `the reference corpus gives ${states.length} distinct query states; the kNN density needs more than k = ${k}`,
    );
  }
  return buildReference(states, keys, entropies, k);
}

interface PromptSettings {
  T: number;
  width: number;
  ref: Reference;
  nEig: number;
  seed: number;
  topTokens: number;
  /** A random direction (not normalised) for the second-order KL check. */
  direction: Float64Array;
}

function promptReport(
  model: Model,
  c: Classifier,
  text: string,
  st: QueryState,
  s: PromptSettings,
): PromptReport {
  const { T, width } = s;
  const d = c.dim;
  const phi = potential(c, st.q);
  const p1 = boltzmann(phi, 1);
  const f1 = fisher(c, p1, 1);
  const fT = T === 1 ? f1 : fisher(c, boltzmann(phi, T), T);
  const depth = wellDepth(phi);
  const b = basin(phi, fT.p, width, T);
  const eig = fisherEigenvalues(fisherMatrix(c, fT), d, s.nEig, s.seed);
  const mGeo = geometricMass(st.q);
  const unit = scale(s.direction, 1 / geometricMass(s.direction));
  const klCheck = EPSILONS.map((eps) => {
    const delta = scale(unit, eps * mGeo);
    const kl = klShift(c, fT.p, T, delta);
    const half = 0.5 * fisherQuadratic(c, fT, delta);
    return { epsilon: eps, kl, half_dgd: half, ratio: half > 0 ? kl / half : NaN };
  });
  const hT = entropy(fT.p);
  const density = densityOf(s.ref, st.q, st.ids.join(','));
  const voids = voidScore(s.ref, density, hT);
  const temps = [...new Set([0.5, 1, T, 2])];
  const order = Array.from(phi.keys())
    .sort((a, b2) => phi[a] - phi[b2])
    .slice(0, s.topTokens);
  let pMaxT = 0;
  for (const x of fT.p) pMaxT = Math.max(pMaxT, x);
  return {
    text,
    prompt_ids: st.ids,
    query_position: st.ids.length - 1,
    M_geo: mGeo,
    M_info: informationMass(p1),
    entropy_t1: entropy(p1),
    kappa_t1: f1.kappa,
    depth: depth.margin,
    depth_lse: depth.logPMax,
    at_temperature: {
      T,
      entropy: hT,
      effective_support: Math.exp(hT),
      kappa: fT.kappa,
      kappa_pre_norm: pulledBackKappa(c, fT, st.x, finalNormOf(model)),
      log_p_max: Math.log(pMaxT),
      basin: { width, size: b.ids.length, mass: b.mass, ids: b.ids },
    },
    curvature: {
      top_eigenvalues: eig.values,
      top_share: eig.values.reduce((a, x) => a + x, 0) / fT.kappa,
      method: eig.method,
    },
    kl_check: klCheck,
    identity: temps.map((t) => identityCheck(c, st, t)),
    density,
    void_score: voids.void_score,
    z_entropy: voids.z_entropy,
    top_tokens: order.map((v) => topToken(model, c, st.q, mGeo, phi, fT.p, v)),
  };
}

function topToken(
  model: Model,
  c: Classifier,
  q: Float64Array,
  qNorm: number,
  phi: Float64Array,
  p: Float64Array,
  v: number,
): TopToken {
  const d = c.dim;
  let nw = 0;
  let dot = 0;
  for (let i = 0; i < d; i++) {
    nw += c.w[v * d + i] ** 2;
    dot += c.w[v * d + i] * q[i];
  }
  nw = Math.sqrt(nw);
  return {
    id: v,
    token: model.tokenizer.tokenText(v),
    phi: phi[v],
    prob: p[v],
    w_norm: nw,
    cos: nw > 0 && qNorm > 0 ? dot / (nw * qNorm) : 0,
  };
}

function scale(x: Float64Array, a: number): Float64Array {
  return x.map((v) => v * a);
}

function meanRows(perPrompt: TemperatureRow[][]): TemperatureRow[] {
  return perPrompt[0].map((r, t) => {
    const rows = perPrompt.map((pr) => pr[t]);
    const avg = (f: (x: TemperatureRow) => number | null): number | null => {
      const v = rows.map(f).filter((x): x is number => x !== null);
      return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
    };
    return {
      T: r.T,
      entropy: avg((x) => x.entropy) ?? NaN,
      effective_support: avg((x) => x.effective_support) ?? NaN,
      p_max: avg((x) => x.p_max) ?? NaN,
      escape_basin: avg((x) => x.escape_basin) ?? NaN,
      escape_top1: avg((x) => x.escape_top1) ?? NaN,
      distinct_1: avg((x) => x.distinct_1),
      distinct_2: avg((x) => x.distinct_2),
      generated_tokens: rows.reduce((a, x) => a + x.generated_tokens, 0),
    };
  });
}

const DEFINITIONS: GravityReport['definitions'] = {
  potential: { tag: 'proposed', source: SOURCE, formula: 'Φ_q(v) = −z_v(q) = −(w_v·q + b_v)' },
  token_law: {
    tag: 'proposed',
    source: SOURCE,
    formula: 'P(v | q, T) = exp(−Φ_q(v)/T) / Σ_u exp(−Φ_q(u)/T) (= temperature sampling)',
  },
  identity_check: {
    tag: 'proposed',
    source: `${cite('gravity')}, proposed experiment 1 (identity check)`,
    formula:
      'max_v |softmax(−Φ/T)_v − sampler(z, T)_v|, sampler = decode/sampling.ts nextTokenDistribution; equal up to the float32 rounding of z/T in the sampler (to float64 summation order, ~1e-15, at T = 1)',
  },
  M_geo: { tag: 'proposed', source: SOURCE, formula: '‖q‖₂' },
  M_info: {
    tag: 'proposed',
    source: SOURCE,
    formula: 'log V − H(P(·|q, 1)) = KL(P ‖ Uniform), nats',
  },
  depth: { tag: 'proposed', source: SOURCE, formula: 'D = z_(1) − z_(2)' },
  depth_lse: {
    tag: 'proposed',
    source: SOURCE,
    formula: 'D_lse = z_(1) − logsumexp(z) = log p_max (T = 1)',
  },
  basin: {
    tag: 'proposed',
    source: SOURCE,
    formula: 'B_κ = {v : Φ_v ≤ Φ_min + κ_B·T}, mass P_T(B_κ)',
  },
  kappa: {
    tag: 'proposed',
    source: SOURCE,
    formula:
      'κ = tr G, G = (1/T²) Wᵀ(diag p − p pᵀ) W = (1/T²) Σ_v p_v (w_v − w̄)(w_v − w̄)ᵀ, on the post-norm q; kappa_pre_norm = tr(JᵀGJ), J = ∂ln_final/∂x at x^L',
  },
  top_eigenvalues: { tag: 'proposed', source: SOURCE, formula: 'largest eigenvalues of G' },
  kl_check: {
    tag: 'proposed',
    source: SOURCE,
    formula: 'KL(P_q ‖ P_{q+δ}) ≈ ½ δᵀGδ, δ = ε‖q‖u, u a seeded random unit vector',
  },
  density: {
    tag: 'proposed',
    source: SOURCE,
    formula:
      'ρ_k(q) ∝ 1/r_k(q)^{d_eff}, r_k the distance (Euclidean in q-space) to the k-th nearest reference query state (the final-norm state at every position of every reference text, one per distinct prefix, a prefix equal to the prompt left out); d_eff = #PCs for 95% of the reference variance',
  },
  void_score: {
    tag: 'proposed',
    source: SOURCE,
    formula:
      '½ (z(log r_k) + z(H(P_q, T))), z-scores against the reference states (leave-one-out r_k)',
  },
  sensitivity: {
    tag: 'proposed',
    source: cite('gravity'),
    formula:
      'S = JSD(P(·|q) ‖ P(·|q′)) over paraphrase pairs; Spearman and Pearson against κ (post-norm), κ pulled back through the final norm, and δᵀGδ (δ = q′ − q, G symmetrised over the pair); Benjamini–Hochberg q-values over every p-value of the table',
  },
  temperature: {
    tag: 'proposed',
    source: cite('gravity'),
    formula:
      'H(P_T), exp(H), escape 1 − P_T(B) and 1 − p_max, distinct-n (words \\b\\w+\\b, lowercased) of sampled continuations',
  },
};
