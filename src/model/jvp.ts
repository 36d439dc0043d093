/**
 * Exact block Jacobians by forward-mode tangents (papers.md §5.2).
 *
 * Block l maps the residual stream X^{l−1} [n, d] to X^l = X^{l−1} + f^l(X^{l−1}). At a query
 * position T, with the inputs of all other positions held fixed, a tangent of the input
 * x^{l−1}_T — or of x^{l−1}_{t1}, t1 < T, for the cross-token Jacobian — is pushed through the
 * same ops as forward.ts, in the same order; each op's tangent rule is written beside its
 * forward rule. m tangent directions travel together as the rows of a matrix [m, d], so every
 * linear map is one matmul with m rows. Seeding with the identity (m = d) gives a whole
 * Jacobian: row i of the output tangent is J·e_i, column i of J.
 *
 * Every Jacobian returned here is a Float32Array [d, d], row = output coordinate, column =
 * input coordinate (the tangents are fp32, like the forward pass; the attention weights and
 * norm statistics of the primal point are kept in float64).
 */
import {
  attentionScale,
  isParallel,
  softcap,
  windowStart,
  type LayerWeights,
  type ModelConfig,
} from './types.js';
import { newMatrix } from '../tensor/matrix.js';
import type { Transformer } from './forward.js';
import { allocF32, freeF32 } from '../tensor/memory.js';
import { addBias, geluNew, matmul, rmsnorm, rope, softmax, swiglu } from '../tensor/ops.js';
import { ropeAttentionFactor, ropeFrequencies } from './rope.js';
import { erfc } from '../tensor/special.js';

/** The inputs of every block at every position, from one forward pass. */
export interface BlockStates {
  ids: number[];
  n: number; // positions
  /**
   * resid[l] = X^l [n, d] for l = 0..L: resid[0] = blocks.0.hook_resid_pre (token embedding,
   * plus learned positions for GPT-2: HF's hidden_states[0]); resid[l] = blocks.{l−1}.hook_resid_post
   * (before the final norm).
   */
  resid: Float32Array[];
  keys: Float32Array[]; // [L] → [n, nKvHeads·headDim], after RoPE (the KV cache)
  values: Float32Array[]; // [L] → [n, nKvHeads·headDim]
}

/** Runs the model once over `ids` and keeps what the tangents need: every X^l and every K, V. */
export function recordBlockStates(tf: Transformer, ids: readonly number[]): BlockStates {
  const { dim, nLayers } = tf.config;
  const n = ids.length;
  const resid = Array.from({ length: nLayers + 1 }, () => new Float32Array(n * dim));
  const kv = tf.newCache(1, Math.max(1, n));
  tf.forward(kv, [{ seq: 0, tokens: ids }], {
    logits: 'none',
    hooks: [
      {
        filter: (name) => name === 'blocks.0.hook_resid_pre' || name.endsWith('.hook_resid_post'),
        fn: (act, ctx) => {
          const l = ctx.name === 'blocks.0.hook_resid_pre' ? 0 : (ctx.layer as number) + 1;
          ctx.rows.forEach((r, i) =>
            resid[l].set(act.subarray(i * dim, (i + 1) * dim), r.pos * dim),
          );
        },
      },
    ],
  });
  return { ids: [...ids], n, resid, keys: kv.k[0], values: kv.v[0] };
}

/** J^l = ∂x^l_T/∂x^{l−1}_T − I = ∂f^l(X)_T/∂x^{l−1}_T for every block l at position T: [L] → [d, d]. */
export function blockJacobians(tf: Transformer, states: BlockStates, pos: number): Float32Array[] {
  const d = tf.config.dim;
  const eye = identity(d);
  const ws = createWorkspace(tf.config, d, pos + 1);
  try {
    return tf.weights.layers.map((_, l) =>
      transposeSquare(blockJvp(tf, states, l, pos, pos, eye, d, ws), d),
    );
  } finally {
    freeWorkspace(ws);
    freeF32(eye);
  }
}

/**
 * The cross-token Jacobians J^l_{t1,T} = ∂f^l(X)_T/∂x^{l−1}_{t1} of block l for each t1 in
 * `froms` (t1 ≤ T; nothing subtracted, so t1 = T gives J^l itself): [froms.length] → [d, d].
 */
export function crossTokenJacobians(
  tf: Transformer,
  states: BlockStates,
  layer: number,
  froms: readonly number[],
  pos: number,
): Float32Array[] {
  const d = tf.config.dim;
  const eye = identity(d);
  const ws = createWorkspace(tf.config, d, pos + 1);
  try {
    return froms.map((from) =>
      transposeSquare(blockJvp(tf, states, layer, pos, from, eye, d, ws), d),
    );
  } finally {
    freeWorkspace(ws);
    freeF32(eye);
  }
}

/** ∂ ln_final(x^L_T)/∂x^L_T (the final norm as a "block"; nothing subtracted): [d, d]. */
export function finalNormJacobian(tf: Transformer, states: BlockStates, pos: number): Float32Array {
  const c = tf.config;
  const d = c.dim;
  const eye = identity(d);
  const out = allocF32(d * d);
  try {
    const x = states.resid[c.nLayers].subarray(pos * d, (pos + 1) * d);
    normJvp(out, eye, x, tf.weights.finalNorm, d, c);
    return transposeSquare(out, d);
  } finally {
    freeF32(eye);
    freeF32(out);
  }
}

/** Scratch tangents for up to `m` directions and `kLen` attended positions; free with freeWorkspace. */
export interface Workspace {
  m: number;
  kLen: number;
  xn: Float32Array; // [m, d]      normalised-input tangent (both norms)
  q: Float32Array; // [m, qDim]
  k: Float32Array; // [m, kvDim]
  v: Float32Array; // [m, kvDim]
  z: Float32Array; // [m, qDim]    attention output tangent, per head
  attn: Float32Array; // [m, d]    ȯ: attention branch tangent
  mid: Float32Array; // [m, d]     ẋ_mid
  h: Float32Array; // [m, hidden]  gate / fc pre-activation tangent
  u: Float32Array; // [m, hidden]  up tangent (SwiGLU)
  out: Float32Array; // [m, d]     ḟ: the block's tangent (attention + MLP branches)
  mixT: Float32Array; // [d, hidden] (diag(α)W1 + diag(β)W3)ᵀ, for the linearised MLP
  mlp: Float32Array; // [d, d]       the linearised MLP M
  qh: Float32Array; // [m, hd]     one head's q̇
  scores: Float32Array; // [m, kLen] one head's ṡ, then ȧ
  zh: Float32Array; // [m, hd]     one head's Σ_t ȧ_t v_t
  kh: Float32Array; // [kLen, hd]  one head's keys
  vht: Float32Array; // [hd, kLen] one head's values, transposed
}

export function createWorkspace(c: ModelConfig, m: number, kLen: number): Workspace {
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  return {
    m,
    kLen,
    xn: allocF32(m * c.dim),
    q: allocF32(m * qDim),
    k: allocF32(m * kvDim),
    v: allocF32(m * kvDim),
    z: allocF32(m * qDim),
    attn: allocF32(m * c.dim),
    mid: allocF32(m * c.dim),
    h: allocF32(m * c.hiddenDim),
    u: allocF32(m * c.hiddenDim),
    out: allocF32(m * c.dim),
    mixT: allocF32(c.dim * c.hiddenDim),
    mlp: allocF32(c.dim * c.dim),
    qh: allocF32(m * c.headDim),
    scores: allocF32(m * kLen),
    zh: allocF32(m * c.headDim),
    kh: allocF32(kLen * c.headDim),
    vht: allocF32(kLen * c.headDim),
  };
}

export function freeWorkspace(ws: Workspace): void {
  const buffers = [
    ws.xn,
    ws.q,
    ws.k,
    ws.v,
    ws.z,
    ws.attn,
    ws.mid,
    ws.h,
    ws.u,
    ws.out,
    ws.qh,
    ws.scores,
    ws.zh,
    ws.kh,
    ws.vht,
  ];
  for (const b of buffers) freeF32(b);
}

/**
 * The block's Jacobian–vector products: ḟ [m, d] with row r = ∂f^l(X)_pos/∂x^{l−1}_from · ẋ_r,
 * xDot: [m, d]. `from` = `pos` differentiates through the query position itself (its query,
 * key, value and residual), `from` < `pos` through that position's key and value only.
 * The result is `ws.out` (overwritten by the next call).
 */
export function blockJvp(
  tf: Transformer,
  states: BlockStates,
  layer: number,
  pos: number,
  from: number,
  xDot: Float32Array,
  m: number,
  ws: Workspace,
): Float32Array {
  const c = tf.config;
  const lw = tf.weights.layers[layer];
  if (m > ws.m || pos + 1 > ws.kLen) throw new Error('blockJvp: workspace too small');
  if (!(from >= 0 && from <= pos && pos < states.n))
    throw new Error(`blockJvp: bad positions ${from} → ${pos}`);
  const { dim: d, nHeads, nKvHeads, headDim, hiddenDim: hd } = c;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const own = from === pos;
  const xIn = states.resid[layer];
  const p = blockPoint(tf, states, layer, pos);

  // ---- attention ------------------------------------------------------------------------
  // forward: xb = norm(x_s)                  tangent: ṅ = norm′(x_s)·ẋ                 ṅ: [m, d]
  normJvp(ws.xn, xDot, xIn.subarray(from * d, (from + 1) * d), lw.attnNorm, m, c);
  // forward: q = xb·Wqᵀ + bq                 tangent: q̇ = ṅ·Wqᵀ (q_T moves only with x_T)  [m, qDim]
  // forward: k = xb·Wkᵀ + bk, v = xb·Wvᵀ + bv tangent: k̇_s = ṅ·Wkᵀ, v̇_s = ṅ·Wvᵀ       [m, kvDim]
  if (own) matmul(ws.q, ws.xn, lw.wq, m);
  matmul(ws.k, ws.xn, lw.wk, m);
  matmul(ws.v, ws.xn, lw.wv, m);
  // forward: q ← rmsnorm_h(q), k ← rmsnorm_h(k) per head (Qwen3, Gemma 3; before RoPE)
  // tangent: the norm's tangent of each head at its primal pre-norm q_T (k_s)
  if (lw.qNorm && lw.kNorm) {
    if (own) headNormJvp(ws.q, p.qPre, lw.qNorm, nHeads, m, c);
    headNormJvp(ws.k, preNormKey(tf, states, layer, from), lw.kNorm, nKvHeads, m, c);
  }
  // forward: rope(q, T), rope(k, s)          tangent: the same rotations (RoPE is linear)
  // (one forward over the n recorded positions: HF's seq_len is n at every position)
  if (c.positional === 'rope') {
    const freqs = ropeFrequencies(c, layer, states.n);
    const scale = ropeAttentionFactor(c);
    for (let r = 0; r < m; r++) {
      if (own) rope(ws.q, r * qDim, nHeads, headDim, freqs, pos, scale);
      rope(ws.k, r * kvDim, nKvHeads, headDim, freqs, from, scale);
    }
  }
  // forward: s_t = c·q·k_t (t ≤ T; c = 1/√hd, GPT-Neo's 1, Gemma's query_pre_attn_scalar^−½),
  //          Gemma 2: s_t ← cap·tanh(s_t/cap), a = softmax(s), z = Σ_t a_t v_t       per head
  //          (a local layer's a_t is 0 outside its window, so its tangents vanish there too)
  // tangent: ṡ_t = c·q̇·k_t, plus c·q·k̇_s at t = s; capped: ṡ_t ← (1 − tanh²(s_t/cap))·ṡ_t
  //          ȧ_t = a_t (ṡ_t − Σ_u a_u ṡ_u)
  //          ż = Σ_t ȧ_t v_t + a_s v̇_s                                     ż: [m, qDim]
  attentionJvp(ws, p, states.keys[layer], states.values[layer], c, pos, from, own, m);
  // forward: o = z·Woᵀ + bo                  tangent: ȯ = ż·Woᵀ                        [m, d]
  matmul(ws.attn, ws.z, lw.wo, m);
  // Gemma: o ← rmsnorm(o) (post-norm)        tangent: ȯ ← rmsnorm′(o)·ȯ
  if (lw.attnPostNorm) normJvp(ws.attn, ws.attn, p.attnRaw, lw.attnPostNorm, m, c);
  // sequential: x_mid = x_T + o             tangent: ẋ_mid = ẋ_T + ȯ  (ẋ_T = 0 when s < T)
  // parallel:   the MLP reads x_T itself     tangent: ẋ_T, which is 0 when s < T
  const parallel = isParallel(c);
  if (parallel && !own) {
    ws.out.set(ws.attn.subarray(0, m * d));
    return ws.out;
  }
  for (let i = 0; i < m * d; i++) ws.mid[i] = parallel ? xDot[i] : (own ? xDot[i] : 0) + ws.attn[i];

  // ---- MLP --------------------------------------------------------------------------------
  // forward: xb = norm(x_in), x_in = x_mid (sequential) or x_T (parallel)
  // tangent: ṅ = norm′(x_in)·ẋ_in                                                         [m, d]
  normJvp(ws.xn, ws.mid, p.mlpIn, lw.mlpNorm, m, c);
  // SwiGLU   forward: h = xb·W1ᵀ, u = xb·W3ᵀ, g = silu(h)·u, mlp = g·W2ᵀ
  //          tangent: ḣ = ṅ·W1ᵀ, u̇ = ṅ·W3ᵀ, ġ = silu′(h)·u·ḣ + silu(h)·u̇, ṁ = ġ·W2ᵀ
  //          with silu(h) = h·σ(h), silu′(h) = σ(h)·(1 + h·(1 − σ(h)))
  // gelu_new forward: h = xb·Wfcᵀ + b, g = ½h(1 + tanh(c(h + 0.044715h³))), mlp = g·W2ᵀ + b2
  //          tangent: ḣ = ṅ·Wfcᵀ, ġ = gelu′(h)·ḣ, ṁ = ġ·W2ᵀ
  //          with gelu′(h) = ½(1 + τ) + ½h(1 − τ²)·c(1 + 3·0.044715h²), τ = tanh(c(h + 0.044715h³))
  // gelu     forward: g = h·Φ(h)             tangent: ġ = (Φ(h) + h·φ(h))·ḣ
  // GeGLU    forward: g = gelu_new(h)·u       tangent: ġ = gelu_new′(h)·u·ḣ + gelu_new(h)·u̇
  // All: ġ = α ⊙ ḣ + β ⊙ u̇ per hidden unit (β = 0 without a gate).     α, β: [hidden]
  const { alpha, beta } = mlpSlopes(p, lw.wGate !== null, c.mlp);
  const w1 = lw.wGate ?? lw.wUp;
  const products = lw.wGate ? 3 : 2;
  if (products * m * hd > d * hd + m * d) {
    // Many directions: the same map, reassociated. The linearised MLP
    // M = W2·(diag(α)·W1 + diag(β)·W3) [d, d] costs one d×hidden×d product, then ṁ = ṅ·Mᵀ
    // one m×d×d product, instead of `products` m×d×hidden products.
    for (let j = 0; j < hd; j++) {
      for (let i = 0; i < d; i++) {
        const g = alpha[j] * w1.data[j * d + i];
        ws.mixT[i * hd + j] = lw.wGate ? g + beta[j] * lw.wUp.data[j * d + i] : g; // (diag(α)W1 + diag(β)W3)ᵀ
      }
    }
    matmul(ws.mlp, lw.wDown.data, newMatrix(d, hd, ws.mixT), d); // M = W2 · (…)       [d, d]
    matmul(ws.out, ws.xn, newMatrix(d, d, ws.mlp), m); // ṁ = ṅ·Mᵀ                        [m, d]
  } else {
    matmul(ws.h, ws.xn, w1, m); // ḣ = ṅ·W1ᵀ                                              [m, hidden]
    if (lw.wGate) matmul(ws.u, ws.xn, lw.wUp, m); // u̇ = ṅ·W3ᵀ                             [m, hidden]
    for (let r = 0; r < m; r++) {
      const o = r * hd;
      for (let j = 0; j < hd; j++)
        ws.h[o + j] = alpha[j] * ws.h[o + j] + (lw.wGate ? beta[j] * ws.u[o + j] : 0);
    }
    matmul(ws.out, ws.h, lw.wDown, m); // ṁ = ġ·W2ᵀ                                      [m, d]
  }
  // Gemma: mlp ← rmsnorm(mlp) (post-norm)    tangent: ṁ ← rmsnorm′(mlp)·ṁ
  if (lw.mlpPostNorm) normJvp(ws.out, ws.out, p.mlpRaw, lw.mlpPostNorm, m, c);
  // forward: x_out = x_mid + mlp (sequential), x_T + o + mlp (parallel)
  // tangent: ẋ_out = ẋ_T + ȯ + ṁ; f's tangent is ȯ + ṁ
  for (let i = 0; i < m * d; i++) ws.out[i] += ws.attn[i];
  return ws.out;
}

/**
 * Norm tangent, row by row (ẋ: [m, d] at the point x [d]):
 * RMSNorm  y = w ⊙ x·σ, σ = (mean x² + ε)^−½          ẏ = w ⊙ σ(ẋ − x·σ²·(x·ẋ)/d)
 * LayerNorm y = w ⊙ c·σ + b, c = x − mean x, σ = (mean c² + ε)^−½
 *                                                     ẏ = w ⊙ σ(ċ − c·σ²·(c·ẋ)/d), ċ = ẋ − mean ẋ
 */
export function normJvp(
  out: Float32Array,
  xDot: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  m: number,
  c: ModelConfig,
): void {
  const d = weight.length;
  const centred = new Float64Array(d);
  let mean = 0;
  if (c.norm === 'layernorm') {
    for (let i = 0; i < d; i++) mean += x[i];
    mean /= d;
  }
  let ss = 0;
  for (let i = 0; i < d; i++) {
    centred[i] = x[i] - mean;
    ss += centred[i] * centred[i];
  }
  const sigma = 1 / Math.sqrt(ss / d + c.normEps);
  const k = (sigma * sigma) / d;
  for (let r = 0; r < m; r++) {
    const o = r * d;
    let proj = 0; // c·ẋ (= c·ċ for LayerNorm, since Σc = 0)
    let dMean = 0;
    for (let i = 0; i < d; i++) {
      proj += centred[i] * xDot[o + i];
      dMean += xDot[o + i];
    }
    dMean = c.norm === 'layernorm' ? dMean / d : 0;
    for (let i = 0; i < d; i++) {
      out[o + i] = weight[i] * sigma * (xDot[o + i] - dMean - centred[i] * k * proj);
    }
  }
}

/**
 * Per-head norm tangent (Qwen3 / Gemma 3 q and k norms), in place: t [m, heads·hd] holds ẋ, each
 * head's hd values a row of normJvp at that head's primal pre-norm values `pre` [heads·hd].
 */
function headNormJvp(
  t: Float32Array,
  pre: Float32Array,
  weight: Float32Array,
  heads: number,
  m: number,
  c: ModelConfig,
): void {
  const hd = weight.length;
  const width = heads * hd;
  const rows = new Float32Array(m * hd);
  for (let h = 0; h < heads; h++) {
    for (let r = 0; r < m; r++)
      rows.set(t.subarray(r * width + h * hd, r * width + (h + 1) * hd), r * hd);
    normJvp(rows, rows, pre.subarray(h * hd, (h + 1) * hd), weight, m, c);
    for (let r = 0; r < m; r++) t.set(rows.subarray(r * hd, (r + 1) * hd), r * width + h * hd);
  }
}

/** The key of position s in block l before its per-head norm and RoPE: norm(x_s)·Wkᵀ + bk. */
function preNormKey(tf: Transformer, states: BlockStates, layer: number, s: number): Float32Array {
  const c = tf.config;
  const lw = tf.weights.layers[layer];
  const xb = new Float32Array(c.dim);
  normForward(
    xb,
    states.resid[layer].subarray(s * c.dim, (s + 1) * c.dim),
    lw.attnNorm,
    lw.attnNormBias,
    c,
  );
  const k = new Float32Array(c.nKvHeads * c.headDim);
  matmul(k, xb, lw.wk, 1);
  if (lw.bk) addBias(k, lw.bk, 1);
  return k;
}

/** α, β of ġ = α ⊙ ḣ + β ⊙ u̇ at the block's MLP pre-activations (see blockJvp). */
function mlpSlopes(
  p: BlockPoint,
  gated: boolean,
  act: ModelConfig['mlp'],
): { alpha: Float32Array; beta: Float32Array } {
  const hd = p.h.length;
  const alpha = new Float32Array(hd);
  const beta = new Float32Array(hd);
  for (let j = 0; j < hd; j++) {
    const h = p.h[j];
    if (gated && act === 'geglu') {
      const tau = Math.tanh(GELU_C * (h + 0.044715 * h * h * h));
      alpha[j] = geluNewDerivative(h) * p.u[j]; // gelu_new′(h)·u
      beta[j] = 0.5 * h * (1 + tau); // gelu_new(h)
    } else if (gated) {
      const sig = 1 / (1 + Math.exp(-h));
      alpha[j] = sig * (1 + h * (1 - sig)) * p.u[j]; // silu′(h)·u
      beta[j] = h * sig; // silu(h)
    } else {
      alpha[j] = act === 'gelu' ? geluDerivative(h) : geluNewDerivative(h);
    }
  }
  return { alpha, beta };
}

/** The primal values of block l at position T that its tangent rules read. */
interface BlockPoint {
  qPre: Float32Array; // [qDim] query at T before its per-head norm and RoPE
  q: Float32Array; // [qDim] rotated query at T
  att: Float64Array; // [nHeads, T+1] attention weights (0 outside a local layer's window)
  /** [nHeads, T+1] ds_capped/ds_raw = 1 − tanh²(s/cap) with soft-capped scores, else null. */
  capSlope: Float64Array | null;
  attnRaw: Float32Array; // [d] the attention output o_proj(z) before a post-norm
  mlpRaw: Float32Array; // [d] the MLP output before a post-norm (computed only with one)
  mlpIn: Float32Array; // [d] the MLP norm's input: x_mid = x_T + attention output, or x_T (parallel)
  h: Float32Array; // [hidden] gate (SwiGLU) or fc pre-activation (GPT-2)
  u: Float32Array; // [hidden] up projection (SwiGLU)
}

/** Recomputes block l at position T from X^{l−1}_T and the cached keys and values, as forward.ts does. */
function blockPoint(tf: Transformer, states: BlockStates, layer: number, pos: number): BlockPoint {
  const c = tf.config;
  const lw: LayerWeights = tf.weights.layers[layer];
  const { dim: d, nHeads, nKvHeads, headDim } = c;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const group = nHeads / nKvHeads;
  const x = states.resid[layer].subarray(pos * d, (pos + 1) * d);
  const xb = new Float32Array(d);
  normForward(xb, x, lw.attnNorm, lw.attnNormBias, c);
  const q = new Float32Array(qDim);
  matmul(q, xb, lw.wq, 1);
  if (lw.bq) addBias(q, lw.bq, 1);
  const qPre = q.slice();
  if (lw.qNorm) rmsnorm(q, q, lw.qNorm, nHeads, c.normEps);
  if (c.positional === 'rope') {
    const freqs = ropeFrequencies(c, layer, states.n);
    rope(q, 0, nHeads, headDim, freqs, pos, ropeAttentionFactor(c));
  }
  const keys = states.keys[layer];
  const values = states.values[layer];
  const scale = attentionScale(c);
  const kLen = pos + 1;
  const start = windowStart(c, layer, pos);
  const att = new Float64Array(nHeads * kLen);
  const cap = c.attnSoftcap;
  const capSlope = cap === undefined ? null : new Float64Array(nHeads * kLen);
  const z = new Float32Array(qDim);
  for (let h = 0; h < nHeads; h++) {
    const ko = Math.floor(h / group) * headDim;
    const a = att.subarray(h * kLen, (h + 1) * kLen);
    for (let t = start; t < kLen; t++) {
      let dot = 0;
      for (let i = 0; i < headDim; i++) dot += q[h * headDim + i] * keys[t * kvDim + ko + i];
      a[t] = dot * scale;
      if (capSlope && cap !== undefined) {
        const th = Math.tanh(a[t] / cap);
        capSlope[h * kLen + t] = 1 - th * th;
        a[t] = softcap(a[t], cap);
      }
    }
    softmax(a, start, kLen - start);
    for (let t = start; t < kLen; t++) {
      for (let i = 0; i < headDim; i++) z[h * headDim + i] += a[t] * values[t * kvDim + ko + i];
    }
  }
  const attnRaw = new Float32Array(d);
  matmul(attnRaw, z, lw.wo, 1);
  if (lw.bo) addBias(attnRaw, lw.bo, 1);
  let mlpIn = new Float32Array(x);
  if (!isParallel(c)) {
    mlpIn = new Float32Array(d);
    if (lw.attnPostNorm) rmsnorm(mlpIn, attnRaw, lw.attnPostNorm, 1, c.normEps);
    else mlpIn.set(attnRaw);
    for (let i = 0; i < d; i++) mlpIn[i] += x[i];
  }
  normForward(xb, mlpIn, lw.mlpNorm, lw.mlpNormBias, c);
  const h = new Float32Array(c.hiddenDim);
  const u = new Float32Array(c.hiddenDim);
  if (lw.wGate) {
    matmul(h, xb, lw.wGate, 1);
    matmul(u, xb, lw.wUp, 1);
  } else {
    matmul(h, xb, lw.wUp, 1);
    if (lw.bUp) addBias(h, lw.bUp, 1);
  }
  const mlpRaw = new Float32Array(lw.mlpPostNorm ? d : 0);
  if (lw.mlpPostNorm && lw.wGate) {
    const g = h.slice();
    if (c.mlp === 'geglu') {
      geluNew(g);
      for (let j = 0; j < g.length; j++) g[j] *= u[j];
    } else swiglu(g, u);
    matmul(mlpRaw, g, lw.wDown, 1);
  } else if (lw.mlpPostNorm) {
    throw new Error('blockPoint: a post-norm after an ungated MLP is not implemented');
  }
  return { qPre, q, att, capSlope, attnRaw, mlpRaw, mlpIn, h, u };
}

/**
 * ż [m, qDim] from q̇ (own position only), k̇_s, v̇_s, head by head; see blockJvp for the rules.
 * The two products over positions are matmuls: ṡ = q̇_h·K_hᵀ [m, kLen] and Σ_t ȧ_t v_t = ȧ·V_h.
 */
function attentionJvp(
  ws: Workspace,
  p: BlockPoint,
  keys: Float32Array,
  values: Float32Array,
  c: ModelConfig,
  pos: number,
  from: number,
  own: boolean,
  m: number,
): void {
  const { nHeads, nKvHeads, headDim: hd } = c;
  const qDim = nHeads * hd;
  const kvDim = nKvHeads * hd;
  const group = nHeads / nKvHeads;
  const scale = attentionScale(c);
  const kLen = pos + 1;
  const sDot = ws.scores; // [m, kLen]
  for (let h = 0; h < nHeads; h++) {
    const ko = Math.floor(h / group) * hd;
    const qo = h * hd;
    const a = p.att.subarray(h * kLen, (h + 1) * kLen);
    // K_h: [kLen, hd], V_hᵀ: [hd, kLen] of this head's key/value head
    for (let t = 0; t < kLen; t++) {
      for (let i = 0; i < hd; i++) {
        ws.kh[t * hd + i] = keys[t * kvDim + ko + i];
        ws.vht[i * kLen + t] = values[t * kvDim + ko + i];
      }
    }
    // ṡ_t = c·q̇·k_t  (t ≤ T)
    if (own) {
      for (let r = 0; r < m; r++)
        ws.qh.set(ws.q.subarray(r * qDim + qo, r * qDim + qo + hd), r * hd);
      matmul(sDot, ws.qh, newMatrix(kLen, hd, ws.kh.subarray(0, kLen * hd)), m);
    } else {
      sDot.fill(0, 0, m * kLen);
    }
    for (let r = 0; r < m; r++) {
      const row = r * kLen;
      const kr = r * kvDim + ko; // k̇_s row r, this head's key/value head
      // ṡ_s += c·q·k̇_s
      let dotK = 0;
      for (let i = 0; i < hd; i++) dotK += p.q[qo + i] * ws.k[kr + i];
      if (own) for (let t = 0; t < kLen; t++) sDot[row + t] *= scale;
      sDot[row + from] += dotK * scale;
      if (p.capSlope) {
        const slope = p.capSlope.subarray(h * kLen, (h + 1) * kLen); // ṡ ← (1 − tanh²)·ṡ
        for (let t = 0; t < kLen; t++) sDot[row + t] *= slope[t];
      }
      // ȧ_t = a_t (ṡ_t − Σ_u a_u ṡ_u)
      let mean = 0;
      for (let t = 0; t < kLen; t++) mean += a[t] * sDot[row + t];
      for (let t = 0; t < kLen; t++) sDot[row + t] = a[t] * (sDot[row + t] - mean);
    }
    // ż = Σ_t ȧ_t v_t + a_s v̇_s
    matmul(ws.zh, sDot, newMatrix(hd, kLen, ws.vht.subarray(0, hd * kLen)), m);
    for (let r = 0; r < m; r++) {
      const zo = r * qDim + qo;
      const vr = r * kvDim + ko;
      for (let i = 0; i < hd; i++) ws.z[zo + i] = ws.zh[r * hd + i] + a[from] * ws.v[vr + i];
    }
  }
}

function normForward(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array | null,
  c: ModelConfig,
): void {
  const d = weight.length;
  let mean = 0;
  if (c.norm === 'layernorm') {
    for (let i = 0; i < d; i++) mean += x[i];
    mean /= d;
  }
  let ss = 0;
  for (let i = 0; i < d; i++) ss += (x[i] - mean) * (x[i] - mean);
  const sigma = 1 / Math.sqrt(ss / d + c.normEps);
  for (let i = 0; i < d; i++) out[i] = (x[i] - mean) * sigma * weight[i] + (bias ? bias[i] : 0);
}

const GELU_C = Math.sqrt(2 / Math.PI);
/** d/dh of gelu_new(h) = ½h(1 + tanh(c(h + 0.044715h³))). */
function geluNewDerivative(h: number): number {
  const tau = Math.tanh(GELU_C * (h + 0.044715 * h * h * h));
  return 0.5 * (1 + tau) + 0.5 * h * (1 - tau * tau) * GELU_C * (1 + 3 * 0.044715 * h * h);
}

/** d/dh of the exact gelu h·Φ(h): Φ(h) + h·φ(h). */
function geluDerivative(h: number): number {
  return 0.5 * erfc(-h * Math.SQRT1_2) + (h * Math.exp(-0.5 * h * h)) / Math.sqrt(2 * Math.PI);
}

/** I_d as d tangent rows, in the kernels' memory. */
function identity(d: number): Float32Array {
  const eye = allocF32(d * d);
  for (let i = 0; i < d; i++) eye[i * d + i] = 1;
  return eye;
}

/** The transpose of a [d, d] tangent block: row i = J e_i becomes column i. Plain memory. */
function transposeSquare(a: Float32Array, d: number): Float32Array {
  const t = new Float32Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) t[j * d + i] = a[i * d + j];
  return t;
}
