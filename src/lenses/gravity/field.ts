/**
 * The information-gravity field of one query state (papers.md §3.3, all [proposed]): the
 * potential Φ_q(v) = −z_v(q), its Boltzmann law softmax(−Φ/T) (= temperature sampling), the
 * masses, the well and its basin, and the Fisher metric G pulled back to the hidden space.
 *
 * Hidden space: q = ln_final.hook_normalized at the last prompt position, i.e. the final-norm
 * output that the classifier W reads (z = W q + b). G lives on that space; `pulledBackKappa` pulls
 * it further back through the final norm to the residual stream x^L (q = N(x^L)).
 */
import type { Model } from '../../model/model.js';
import { LmdynError } from '../../errors.js';
import { nextTokenDistribution, validateSampling } from '../../decode/sampling.js';
import { newMatrix } from '../../tensor/matrix.js';
import { matrixOperator, symEig, topSvd } from '../../tensor/linalg.js';
import { allocF32, freeF32 } from '../../tensor/memory.js';
import { matmul } from '../../tensor/ops.js';

/** The classifier z = W q + b the potential is read from. */
export interface Classifier {
  vocab: number;
  dim: number;
  w: Float32Array; // [V, d], row v = w_v (the unembedding row of token v)
  b: Float32Array | null; // [V]
}

/** A prompt's query state: q and the model's own logits at the last prompt position. */
export interface QueryState {
  ids: number[];
  q: Float64Array; // [d] ln_final.hook_normalized at position P − 1
  x: Float64Array; // [d] the final norm's input x^L (blocks.{L−1}.hook_resid_post) there
  logits: Float32Array; // [V] the forward pass's logits there (float32, the sampler's input)
}

export function classifierOf(model: Model): Classifier {
  const cap = model.config.finalSoftcap;
  if (cap !== undefined) {
    throw new LmdynError(
      'unsupported',
      `gravity reads its potential from the linear logits z = W q + b; this model soft-caps them (${cap}·tanh(z/${cap}), Gemma's final_logit_softcapping)`,
    );
  }
  const u = model.transformer.weights.unembedding;
  return { vocab: u.rows, dim: u.cols, w: u.data, b: model.transformer.weights.unembeddingBias };
}

/** Sequences per forward pass. */
const BATCH = 16;

/**
 * One forward pass per batch of prompts (token ids, non-empty): the final-norm state and the
 * logits of each prompt's last position.
 */
export function queryStates(model: Model, prompts: readonly (readonly number[])[]): QueryState[] {
  const out: QueryState[] = [];
  forEachState(model, prompts, 'last', (i, _pos, q, logits, x) => {
    out[i] = {
      ids: [...prompts[i]],
      q: Float64Array.from(q),
      x: Float64Array.from(x),
      logits: logits.slice(),
    };
  });
  return out;
}

/**
 * Runs the prompts in batches and hands over, for the last position of each prompt or for every
 * position, the final-norm state q [d] and the logits [V] there (views reused after the call).
 */
export function forEachState(
  model: Model,
  prompts: readonly (readonly number[])[],
  positions: 'last' | 'all',
  fn: (prompt: number, pos: number, q: Float32Array, logits: Float32Array, x: Float32Array) => void,
): void {
  const tf = model.transformer;
  const d = model.config.dim;
  const lastResid = `blocks.${model.config.nLayers - 1}.hook_resid_post`;
  const V = model.config.vocabSize;
  for (let start = 0; start < prompts.length; start += BATCH) {
    const chunk = prompts.slice(start, start + BATCH);
    const longest = Math.max(...chunk.map((ids) => ids.length));
    const states = new Map<string, Float32Array>();
    const inputs = new Map<string, Float32Array>();
    const kv = tf.newCache(chunk.length, longest);
    const res = tf.forward(
      kv,
      chunk.map((ids, seq) => ({ seq, tokens: ids })),
      {
        logits: positions,
        hooks: [
          {
            filter: (name) => name === 'ln_final.hook_normalized' || name === lastResid,
            fn: (act, ctx) => {
              const into = ctx.name === lastResid ? inputs : states;
              ctx.rows.forEach((r, i) => {
                if (positions === 'all' || r.pos === chunk[r.seq].length - 1) {
                  into.set(`${r.seq}:${r.pos}`, act.slice(i * d, (i + 1) * d));
                }
              });
            },
          },
        ],
      },
    );
    res.logitRows.forEach((r, i) => {
      const q = states.get(`${r.seq}:${r.pos}`);
      const x = inputs.get(`${r.seq}:${r.pos}`);
      if (!q || !x) throw new Error(`no final-norm state for sequence ${r.seq}, position ${r.pos}`);
      fn(start + r.seq, r.pos, q, res.logits.subarray(i * V, (i + 1) * V), x);
    });
  }
}

/** Φ_q(v) = −(w_v·q + b_v), float64 (papers.md §3.3 "Potential"). [V] */
export function potential(c: Classifier, q: ArrayLike<number>): Float64Array {
  const { vocab: V, dim: d, w, b } = c;
  const phi = new Float64Array(V);
  for (let v = 0; v < V; v++) {
    let z = b ? b[v] : 0;
    const o = v * d;
    for (let i = 0; i < d; i++) z += w[o + i] * q[i];
    phi[v] = -z;
  }
  return phi;
}

/** The Boltzmann law in the well: P(v | q, T) = exp(−Φ_v/T) / Σ_u exp(−Φ_u/T), T > 0. [V] */
export function boltzmann(phi: ArrayLike<number>, T: number): Float64Array {
  let min = Infinity;
  for (let v = 0; v < phi.length; v++) min = Math.min(min, phi[v]);
  const p = new Float64Array(phi.length);
  let sum = 0;
  for (let v = 0; v < phi.length; v++) {
    p[v] = Math.exp(-(phi[v] - min) / T);
    sum += p[v];
  }
  for (let v = 0; v < phi.length; v++) p[v] /= sum;
  return p;
}

/**
 * §3.4 experiment 1: softmax(−Φ/T) against the sampler's distribution (decode/sampling.ts
 * `nextTokenDistribution`, no penalties, no top-k/p) for the same logits.
 * - `exact`: Φ = −z with z the forward pass's float32 logits. The sampler divides z by T in
 *   float32 (as torch does), so at T = 1 they differ only by the order of float64 sums (~1e-15), otherwise by that
 *   rounding: each z/T is off by ≤ 2^-24·|z/T|, so |Δp_v| ≤ p_v·(e^{2η} − 1) with
 *   η = 2^-24·max|z|/T; `rounding_bound` = 2.02·η + 1e-12 ≥ that.
 * - `recomputed`: Φ recomputed as −(W q + b) in float64 from the final-norm state q; it differs
 *   from −z by the float32 matmul's rounding (`max_abs_diff_potential`, allowed ≤ 1e-5·(1 + max|z|)),
 *   which moves p by ≤ 2·that/T more.
 */
export interface IdentityCheck {
  temperature: number;
  max_abs_diff_exact: number;
  max_abs_diff_recomputed: number;
  max_abs_diff_potential: number;
  rounding_bound: number;
  passed: boolean;
}

export function identityCheck(c: Classifier, state: QueryState, T: number): IdentityCheck {
  const sampler = nextTokenDistribution(
    state.logits,
    [],
    validateSampling({ temperature: T }),
  ).probs;
  const phiExact = Float64Array.from(state.logits, (z) => -z);
  const phi = potential(c, state.q);
  let zMax = 0;
  for (const z of state.logits) zMax = Math.max(zMax, Math.abs(z));
  const bound = 2.02 * 2 ** -24 * (zMax / T) + 1e-12;
  const exact = maxAbsDiff(boltzmann(phiExact, T), sampler);
  const recomputed = maxAbsDiff(boltzmann(phi, T), sampler);
  const dPhi = maxAbsDiff(phi, phiExact);
  return {
    temperature: T,
    max_abs_diff_exact: exact,
    max_abs_diff_recomputed: recomputed,
    max_abs_diff_potential: dPhi,
    rounding_bound: bound,
    passed: exact <= bound && dPhi <= 1e-5 * (1 + zMax) && recomputed <= bound + (2.02 * dPhi) / T,
  };
}

/** H(p) = −Σ p log p in nats. */
export function entropyOf(p: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) h -= p[i] * Math.log(p[i]);
  return h;
}

/** M_info(q) = log V − H(P(·|q)) = KL(P ‖ Uniform), nats (§3.3 "Information mass"). */
export function informationMass(p: ArrayLike<number>): number {
  return Math.log(p.length) - entropyOf(p);
}

/** M_geo(q) = ‖q‖₂ (§3.3). */
export function geometricMass(q: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < q.length; i++) s += q[i] * q[i];
  return Math.sqrt(s);
}

/**
 * Well depth (§3.3): D = z_(1) − z_(2), the top-1 logit margin (= Φ_(2) − Φ_(1)), and
 * D_lse = z_(1) − logsumexp(z) = log p_max at T = 1; the deepest token is `top`.
 */
export function wellDepth(phi: ArrayLike<number>): {
  top: number;
  margin: number;
  logPMax: number;
} {
  let top = 0;
  for (let v = 1; v < phi.length; v++) if (phi[v] < phi[top]) top = v;
  let second = Infinity;
  for (let v = 0; v < phi.length; v++) if (v !== top && phi[v] < second) second = phi[v];
  let sum = 0;
  for (let v = 0; v < phi.length; v++) sum += Math.exp(-(phi[v] - phi[top]));
  return { top, margin: second - phi[top], logPMax: -Math.log(sum) };
}

/** Basin B_κ(q) = {v : Φ_v ≤ Φ_min + κ·T} (ids, deepest first) and its mass under p (§3.3). */
export function basin(
  phi: ArrayLike<number>,
  p: ArrayLike<number>,
  width: number,
  T: number,
): { ids: number[]; mass: number } {
  let min = Infinity;
  for (let v = 0; v < phi.length; v++) min = Math.min(min, phi[v]);
  const ids: number[] = [];
  for (let v = 0; v < phi.length; v++) if (phi[v] <= min + width * T) ids.push(v);
  ids.sort((a, b) => phi[a] - phi[b]);
  let mass = 0;
  for (const v of ids) mass += p[v];
  return { ids, mass };
}

/**
 * The Fisher metric of P(·|q, T) pulled back to the hidden space (§3.3 "Curvature"):
 *   G = (1/T²) Wᵀ(diag p − p pᵀ) W = (1/T²) Σ_v p_v (w_v − w̄)(w_v − w̄)ᵀ,   w̄ = Σ_v p_v w_v,
 * the p-weighted covariance of the unembedding rows over T². Nothing V×d×d is formed: the trace,
 * quadratic forms and products are O(V·d), the d×d matrix (for its spectrum) one matmul.
 */
export interface Fisher {
  T: number;
  p: Float64Array; // [V] P(·|q, T)
  wbar: Float64Array; // [d] E_p[w_v]
  /** κ = tr G = (1/T²) Σ_v p_v ‖w_v − w̄‖² (two-pass, no cancellation). */
  kappa: number;
}

export function fisher(c: Classifier, p: Float64Array, T: number): Fisher {
  const { vocab: V, dim: d, w } = c;
  const wbar = new Float64Array(d);
  for (let v = 0; v < V; v++) {
    if (p[v] === 0) continue;
    const o = v * d;
    for (let i = 0; i < d; i++) wbar[i] += p[v] * w[o + i];
  }
  let tr = 0;
  for (let v = 0; v < V; v++) {
    if (p[v] === 0) continue;
    const o = v * d;
    let s = 0;
    for (let i = 0; i < d; i++) s += (w[o + i] - wbar[i]) ** 2;
    tr += p[v] * s;
  }
  return { T, p, wbar, kappa: tr / (T * T) };
}

/** The final norm q = N(x) of the model (RMSNorm or LayerNorm): its weight, bias and ε. */
export interface FinalNorm {
  kind: 'rmsnorm' | 'layernorm';
  weight: Float32Array; // [d]
  eps: number;
}

export function finalNormOf(model: Model): FinalNorm {
  return {
    kind: model.config.norm === 'layernorm' ? 'layernorm' : 'rmsnorm',
    weight: model.transformer.weights.finalNorm,
    eps: model.config.normEps,
  };
}

/**
 * κ pulled back through the final norm to the residual stream: tr(JᵀGJ), J = ∂N/∂x at x = x^L,
 * = (1/T²) Σ_v p_v ‖Jᵀ(w_v − w̄)‖². RMSNorm: J = (1/r) diag(g)(I − x xᵀ/(d r²)), r = √(mean x² + ε);
 * LayerNorm: J = (1/σ) diag(g)(I − 11ᵀ/d − c cᵀ/(d σ²)), c = x − mean x, σ = √(var x + ε).
 * Both projections are symmetric, so Jᵀa = (1/r)·P(g ⊙ a). O(V·d).
 */
export function pulledBackKappa(
  c: Classifier,
  f: Fisher,
  x: ArrayLike<number>,
  norm: FinalNorm,
): number {
  const { vocab: V, dim: d, w } = c;
  const centred = Float64Array.from(x);
  let mean = 0;
  if (norm.kind === 'layernorm') {
    for (let i = 0; i < d; i++) mean += centred[i];
    mean /= d;
    for (let i = 0; i < d; i++) centred[i] -= mean;
  }
  let ss = 0;
  for (let i = 0; i < d; i++) ss += centred[i] * centred[i];
  const r2 = ss / d + norm.eps;
  const a = new Float64Array(d);
  let total = 0;
  for (let v = 0; v < V; v++) {
    if (f.p[v] === 0) continue;
    const o = v * d;
    let dotC = 0;
    let sumA = 0;
    for (let i = 0; i < d; i++) {
      a[i] = norm.weight[i] * (w[o + i] - f.wbar[i]);
      dotC += centred[i] * a[i];
      sumA += a[i];
    }
    const m = norm.kind === 'layernorm' ? sumA / d : 0;
    let s = 0;
    for (let i = 0; i < d; i++) {
      const y = a[i] - m - (centred[i] * dotC) / (d * r2);
      s += y * y;
    }
    total += f.p[v] * s;
  }
  return total / r2 / (f.T * f.T);
}

/** δᵀ G δ = (1/T²) Σ_v p_v ((w_v − w̄)·δ)², O(V·d). */
export function fisherQuadratic(c: Classifier, f: Fisher, delta: ArrayLike<number>): number {
  const { vocab: V, dim: d, w } = c;
  let shift = 0;
  for (let i = 0; i < d; i++) shift += f.wbar[i] * delta[i];
  let s = 0;
  for (let v = 0; v < V; v++) {
    if (f.p[v] === 0) continue;
    const o = v * d;
    let x = -shift;
    for (let i = 0; i < d; i++) x += w[o + i] * delta[i];
    s += f.p[v] * x * x;
  }
  return s / (f.T * f.T);
}

/**
 * G as a dense [d, d] float64 matrix: G = MᵀM with M = (1/T) diag(√p)(W − 1 w̄ᵀ) [V, d], one
 * fp32 matmul on the kernels (Mᵀ·(Mᵀ)ᵀ), symmetrised.
 */
export function fisherMatrix(c: Classifier, f: Fisher): Float64Array {
  const { vocab: V, dim: d, w } = c;
  const mt = allocF32(d * V); // Mᵀ [d, V]
  const g32 = allocF32(d * d);
  try {
    for (let v = 0; v < V; v++) {
      if (f.p[v] === 0) continue;
      const s = Math.sqrt(f.p[v]) / f.T;
      const o = v * d;
      for (let i = 0; i < d; i++) mt[i * V + v] = s * (w[o + i] - f.wbar[i]);
    }
    matmul(g32, mt, newMatrix(d, V, mt), d); // g[i, j] = Σ_v Mᵀ[i, v] Mᵀ[j, v]
    const g = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) g[i * d + j] = 0.5 * (g32[i * d + j] + g32[j * d + i]);
    }
    return g;
  } finally {
    freeF32(mt);
    freeF32(g32);
  }
}

/** Widest G whose spectrum is taken by the full Jacobi eigensolver; above it, top-k randomized. */
export const FULL_EIG_MAX_DIM = 256;

/**
 * The k largest eigenvalues of G (descending): all of symEig(G) up to FULL_EIG_MAX_DIM, else
 * randomized subspace iteration on G (tensor/linalg topSvd; G is PSD, so σ_i = λ_i).
 */
export function fisherEigenvalues(
  g: Float64Array,
  d: number,
  k: number,
  seed: number,
  method: 'auto' | 'full' | 'randomized' = 'auto',
): { values: number[]; method: 'full' | 'randomized' } {
  const kk = Math.min(k, d);
  const useFull = method === 'full' || (method === 'auto' && d <= FULL_EIG_MAX_DIM);
  if (useFull) {
    return {
      values: Array.from(symEig(g, d).values.slice(0, kk), (x) => Math.max(x, 0)),
      method: 'full',
    };
  }
  const op = matrixOperator(Float32Array.from(g), d, d);
  try {
    return { values: Array.from(topSvd(op, kk, seed).s), method: 'randomized' };
  } finally {
    op.free();
  }
}

/**
 * KL(P_q ‖ P_{q+δ}) at temperature T, from Δ_v = (w_v·δ)/T without cancellation of the two
 * log-partition functions: KL = log(1 + Σ p (e^Δ − 1)) − Σ p Δ. Used for the second-order check
 * KL ≈ ½ δᵀGδ (§3.3).
 */
export function klShift(
  c: Classifier,
  p: Float64Array,
  T: number,
  delta: ArrayLike<number>,
): number {
  const { vocab: V, dim: d, w } = c;
  let mean = 0;
  let growth = 0;
  for (let v = 0; v < V; v++) {
    if (p[v] === 0) continue;
    const o = v * d;
    let x = 0;
    for (let i = 0; i < d; i++) x += w[o + i] * delta[i];
    x /= T;
    mean += p[v] * x;
    growth += p[v] * Math.expm1(x);
  }
  return Math.max(0, Math.log1p(growth) - mean);
}

/** Jensen–Shannon divergence in nats (≤ log 2): ½ KL(P‖M) + ½ KL(Q‖M), M = (P + Q)/2. */
export function jensenShannon(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const m = 0.5 * (p[i] + q[i]);
    if (p[i] > 0) s += 0.5 * p[i] * Math.log(p[i] / m);
    if (q[i] > 0) s += 0.5 * q[i] * Math.log(q[i] / m);
  }
  return Math.max(0, s);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
