/**
 * The llama block's ops for training: each op's forward rule and, right under it, its backward
 * rule (the vector–Jacobian product), in the manner of llm.c's train_gpt2.c. The forward rules
 * are the ones of src/model/forward.ts (same formulas, same order of operations); the backward
 * rules are the transposes of the tangent rules in src/model/jvp.ts (ẏ = J·ẋ there, x̄ = Jᵀ·ȳ
 * here). All buffers are row-major Vecs; N = rows (tokens of a micro-batch), d = model width.
 *
 * Every backward ADDS into the input gradients it is given (residual streams and weight
 * gradients accumulate), except where a comment says "overwrites".
 */
import { addTo, mmNT, transpose, type Vec } from './tensor.js';

// ---- embedding ---------------------------------------------------------------------------------

/** out[r] = E[tokens[r]].  out: [N, d], E: [V, d]. */
export function embeddingForward(
  out: Vec,
  E: Vec,
  tokens: ArrayLike<number>,
  N: number,
  d: number,
): void {
  for (let r = 0; r < N; r++) {
    const t = tokens[r] * d;
    for (let i = 0; i < d; i++) out[r * d + i] = E[t + i];
  }
}

/** dE[tokens[r]] += dout[r]. */
export function embeddingBackward(
  dE: Vec,
  dout: Vec,
  tokens: ArrayLike<number>,
  N: number,
  d: number,
): void {
  for (let r = 0; r < N; r++) {
    const t = tokens[r] * d;
    for (let i = 0; i < d; i++) dE[t + i] += dout[r * d + i];
  }
}

// ---- RMSNorm -----------------------------------------------------------------------------------

/**
 * out = g ⊙ x·ρ with ρ = 1/√(mean(x²) + eps) per row (ops.ts rmsnorm); keeps ρ for backward.
 * out, x: [N, d]; rho: [N]; g: [d].
 */
export function rmsnormForward(
  out: Vec,
  rho: Vec,
  x: Vec,
  g: Vec,
  N: number,
  d: number,
  eps: number,
): void {
  for (let r = 0; r < N; r++) {
    const o = r * d;
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[o + i] * x[o + i];
    const s = 1 / Math.sqrt(ss / d + eps);
    rho[r] = s;
    for (let i = 0; i < d; i++) out[o + i] = g[i] * (x[o + i] * s);
  }
}

/**
 * With ḡ = dout: dg += Σ_rows ḡ ⊙ x·ρ;  dx += ρ·(g ⊙ ḡ) − x·ρ³/d · Σ_i g_i ḡ_i x_i
 * (the transpose of jvp.ts normJvp: ẏ = g ⊙ (ρẋ − x ρ³ (x·ẋ)/d)).
 */
export function rmsnormBackward(
  dx: Vec,
  dg: Vec,
  dout: Vec,
  x: Vec,
  rho: Vec,
  g: Vec,
  N: number,
  d: number,
): void {
  for (let r = 0; r < N; r++) {
    const o = r * d;
    const s = rho[r];
    let dot = 0;
    for (let i = 0; i < d; i++) {
      const gy = g[i] * dout[o + i];
      dot += gy * x[o + i];
      dg[i] += dout[o + i] * x[o + i] * s;
    }
    const c = (dot * s * s * s) / d;
    for (let i = 0; i < d; i++) dx[o + i] += s * g[i] * dout[o + i] - c * x[o + i];
  }
}

// ---- linear maps -------------------------------------------------------------------------------

/** y = x·Wᵀ.  y: [N, out], x: [N, in], W: [out, in] (overwrites y). */
export function linearForward(
  y: Vec,
  x: Vec,
  W: Vec,
  N: number,
  outDim: number,
  inDim: number,
): void {
  mmNT(y, x, W, N, outDim, inDim);
}

/** Scratch for linearBackward, sized for the largest map of a model. */
export interface LinearScratch {
  dyT: Vec; // [out, N]
  xT: Vec; // [in, N]
  dW: Vec; // [out, in]
}

/**
 * x̄ = ȳ·W (overwrites dx; skipped when dx is null), dW += ȳᵀ·x. `wT` is W transposed [in, out]
 * (the kernel's one product shape needs it; the caller caches it per step).
 */
export function linearBackward(
  dx: Vec | null,
  dW: Vec,
  dy: Vec,
  x: Vec,
  wT: Vec,
  N: number,
  outDim: number,
  inDim: number,
  s: LinearScratch,
): void {
  transpose(s.dyT, dy, N, outDim);
  transpose(s.xT, x, N, inDim);
  mmNT(s.dW, s.dyT, s.xT, outDim, inDim, N); // [out, in] = ȳᵀ[out, N] · (xᵀ[in, N])ᵀ
  addTo(dW, s.dW, outDim * inDim);
  if (dx) mmNT(dx, dy, wT, N, inDim, outDim);
}

// ---- rotary embedding --------------------------------------------------------------------------

/** cos and sin of pos·θ^(−2i/hd) for pos < T, i < hd/2 (as ops.ts rope): [T, hd/2] each. */
export interface RopeTable {
  T: number;
  half: number;
  cos: Float64Array;
  sin: Float64Array;
}

export function ropeTable(T: number, headDim: number, theta: number): RopeTable {
  const half = headDim / 2;
  const cos = new Float64Array(T * half);
  const sin = new Float64Array(T * half);
  for (let i = 0; i < headDim; i += 2) {
    const freq = 1 / Math.pow(theta, i / headDim);
    for (let p = 0; p < T; p++) {
      const a = p * freq;
      cos[p * half + i / 2] = Math.cos(a);
      sin[p * half + i / 2] = Math.sin(a);
    }
  }
  return { T, half, cos, sin };
}

/**
 * Rotates the pairs (2i, 2i+1) of `heads` heads of each row by +angle (forward) or −angle
 * (backward: the rotation's transpose, so x̄ = Rᵀȳ). Row r sits at position r mod T, its heads
 * start at column `col` of a row of `stride` values.
 */
export function ropeApply(
  a: Vec,
  N: number,
  stride: number,
  col: number,
  heads: number,
  headDim: number,
  table: RopeTable,
  sign: 1 | -1,
): void {
  const { T, half, cos, sin } = table;
  for (let r = 0; r < N; r++) {
    const p = (r % T) * half;
    for (let h = 0; h < heads; h++) {
      const o = r * stride + col + h * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[p + i];
        const s = sign * sin[p + i];
        const v0 = a[o + 2 * i];
        const v1 = a[o + 2 * i + 1];
        a[o + 2 * i] = v0 * c - v1 * s;
        a[o + 2 * i + 1] = v0 * s + v1 * c;
      }
    }
  }
}

// ---- causal self-attention with grouped-query heads --------------------------------------------

export interface AttentionShape {
  m: number; // sequences
  T: number; // positions per sequence
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/** Per-(sequence, kv head) scratch: the G = nHeads/nKvHeads query heads sharing it stack up. */
export interface AttentionScratch {
  q: Vec; // [G·T, hd]
  qT: Vec; // [hd, G·T]
  k: Vec; // [T, hd]
  kT: Vec; // [hd, T]
  v: Vec; // [T, hd]
  vT: Vec; // [hd, T]
  z: Vec; // [G·T, hd]
  dz: Vec; // [G·T, hd]
  dzT: Vec; // [hd, G·T]
  dp: Vec; // [G·T, T]
  tT: Vec; // [T, G·T]  a transposed [G·T, T]
  dk: Vec; // [T, hd]
}

export function attentionScratchSize(sh: AttentionShape): Record<keyof AttentionScratch, number> {
  const G = sh.nHeads / sh.nKvHeads;
  const { T, headDim: hd } = sh;
  return {
    q: G * T * hd,
    qT: G * T * hd,
    k: T * hd,
    kT: T * hd,
    v: T * hd,
    vT: T * hd,
    z: G * T * hd,
    dz: G * T * hd,
    dzT: G * T * hd,
    dp: G * T * T,
    tT: G * T * T,
    dk: T * hd,
  };
}

/**
 * Values kept per layer for the backward pass: per sequence and kv head a block of G·T·T
 * attention weights [G·T, T] and G·T row normalisers (used by the hd = 8 path).
 */
export function attentionProbsSize(sh: AttentionShape): number {
  return sh.m * sh.nHeads * sh.T * (sh.T + 1);
}

/**
 * z = softmax(q·kᵀ/√hd, causal)·v per sequence and head (forward.ts attention), query head h
 * reading kv head ⌊h/G⌋. qkv: [N, qDim + 2·kvDim] rows (q | k | v, after RoPE); z: [N, qDim]
 * (overwritten); probs: attentionProbsSize values, per (sequence, kv head) [G·T, T] weights
 * then [G·T] normalisers (overwritten).
 */
export function attentionForward(
  z: Vec,
  probs: Vec,
  qkv: Vec,
  sh: AttentionShape,
  s: AttentionScratch,
): void {
  const { m, T, nHeads, nKvHeads, headDim: hd } = sh;
  const G = nHeads / nKvHeads;
  const qDim = nHeads * hd;
  const kvDim = nKvHeads * hd;
  const stride = qDim + 2 * kvDim;
  const scale = 1 / Math.sqrt(hd);
  const GT = G * T;
  for (let b = 0; b < m; b++) {
    for (let g = 0; g < nKvHeads; g++) {
      gatherHeads(s.q, qkv, b * T, T, stride, g * G * hd, G, hd);
      gatherHeads(s.k, qkv, b * T, T, stride, qDim + g * hd, 1, hd);
      gatherHeads(s.v, qkv, b * T, T, stride, qDim + kvDim + g * hd, 1, hd);
      const block = (b * nKvHeads + g) * GT * (T + 1);
      const P = probs.subarray(block, block + GT * T);
      if (hd === 8) {
        attention8Forward(
          s.z,
          P,
          probs.subarray(block + GT * T, block + GT * (T + 1)),
          s.q,
          s.k,
          s.v,
          G,
          T,
          scale,
        );
        scatterHeads(z, s.z, b * T, T, qDim, g * G * hd, G, hd, false);
        continue;
      }
      transpose(s.vT, s.v, T, hd);
      mmNT(P, s.q, s.k, GT, T, hd); // scores [G·T, T]
      for (let row = 0; row < GT; row++) causalSoftmax(P, row * T, (row % T) + 1, T, scale);
      mmNT(s.z, P, s.vT, GT, hd, T); // [G·T, hd]
      scatterHeads(z, s.z, b * T, T, qDim, g * G * hd, G, hd, false);
    }
  }
}

/**
 * With z̄ = dz (z: the forward output): p̄ = z̄·vᵀ, s̄ = p ⊙ (p̄ − Σ p p̄)/√hd, q̄ = s̄·k, k̄ = s̄ᵀ·q, v̄ = pᵀ·z̄ (summed
 * over the G query heads of a kv head). Writes q̄, k̄, v̄ into dqkv (overwrites), in the qkv
 * layout; RoPE's backward is applied by the caller.
 */
export function attentionBackward(
  dqkv: Vec,
  dz: Vec,
  z: Vec,
  probs: Vec,
  qkv: Vec,
  sh: AttentionShape,
  s: AttentionScratch,
): void {
  const { m, T, nHeads, nKvHeads, headDim: hd } = sh;
  const G = nHeads / nKvHeads;
  const qDim = nHeads * hd;
  const kvDim = nKvHeads * hd;
  const stride = qDim + 2 * kvDim;
  const scale = 1 / Math.sqrt(hd);
  const GT = G * T;
  for (let b = 0; b < m; b++) {
    for (let g = 0; g < nKvHeads; g++) {
      gatherHeads(s.q, qkv, b * T, T, stride, g * G * hd, G, hd);
      gatherHeads(s.k, qkv, b * T, T, stride, qDim + g * hd, 1, hd);
      gatherHeads(s.v, qkv, b * T, T, stride, qDim + kvDim + g * hd, 1, hd);
      gatherHeads(s.dz, dz, b * T, T, qDim, g * G * hd, G, hd);
      const block = (b * nKvHeads + g) * GT * (T + 1);
      const P = probs.subarray(block, block + GT * T);
      if (hd === 8) {
        const inv = probs.subarray(block + GT * T, block + GT * (T + 1));
        gatherHeads(s.qT, z, b * T, T, qDim, g * G * hd, G, hd); // z of these heads, [G·T, 8]
        attention8Backward(s.z, s.dk, s.dzT, s.dz, s.qT, P, inv, s.q, s.k, s.v, G, T, scale);
        scatterHeads(dqkv, s.z, b * T, T, stride, g * G * hd, G, hd, false);
        scatterHeads(dqkv, s.dk, b * T, T, stride, qDim + g * hd, 1, hd, false);
        scatterHeads(dqkv, s.dzT, b * T, T, stride, qDim + kvDim + g * hd, 1, hd, false);
        continue;
      }
      // v̄ = pᵀ·z̄: [T, hd] = pᵀ[T, G·T] · (z̄ᵀ[hd, G·T])ᵀ
      transposeCausal(s.tT, P, G, T);
      transpose(s.dzT, s.dz, GT, hd);
      mmNT(s.dk, s.tT, s.dzT, T, hd, GT);
      scatterHeads(dqkv, s.dk, b * T, T, stride, qDim + kvDim + g * hd, 1, hd, false);
      // p̄ = z̄·vᵀ, then s̄ in place of p̄ (zero above the diagonal)
      const dp = s.dp;
      mmNT(dp, s.dz, s.v, GT, T, hd);
      for (let row = 0; row < GT; row++) {
        const o = row * T;
        const n = (row % T) + 1;
        let dot = 0;
        for (let t = 0; t < n; t++) dot += P[o + t] * dp[o + t];
        for (let t = 0; t < n; t++) dp[o + t] = P[o + t] * (dp[o + t] - dot) * scale;
        for (let t = n; t < T; t++) dp[o + t] = 0;
      }
      // q̄ = s̄·k: [G·T, hd] = s̄ · (kᵀ[hd, T])ᵀ
      transpose(s.kT, s.k, T, hd);
      mmNT(s.z, dp, s.kT, GT, hd, T);
      scatterHeads(dqkv, s.z, b * T, T, stride, g * G * hd, G, hd, false);
      // k̄ = s̄ᵀ·q: [T, hd] = s̄ᵀ[T, G·T] · (qᵀ[hd, G·T])ᵀ
      transposeCausal(s.tT, dp, G, T);
      transpose(s.qT, s.q, GT, hd);
      mmNT(s.dk, s.tT, s.qT, T, hd, GT);
      scatterHeads(dqkv, s.dk, b * T, T, stride, qDim + g * hd, 1, hd, false);
    }
  }
}

/**
 * attentionForward for one sequence and kv head when hd = 8, fused in JS with each row's q and
 * z in registers and only the causal half computed (the SIMD kernel's products with dot length 8
 * are overhead-bound; measured ~1.7× faster). q, z: [G·T, 8]; k, v: [T, 8]. Keeps the
 * unnormalised weights e_t = exp(s_t − max) in P [G·T, T] (t ≤ row position; the rest is left
 * as it was) and 1/Σe per row in inv [G·T]: p = e·inv.
 */
// prettier-ignore
function attention8Forward(z: Vec, P: Vec, inv: Vec, q: Vec, k: Vec, v: Vec, G: number, T: number, scale: number): void {
  for (let r = 0; r < G * T; r++) {
    const t = r % T;
    const qo = r * 8;
    const po = r * T;
    const q0 = q[qo] * scale, q1 = q[qo + 1] * scale, q2 = q[qo + 2] * scale, q3 = q[qo + 3] * scale;
    const q4 = q[qo + 4] * scale, q5 = q[qo + 5] * scale, q6 = q[qo + 6] * scale, q7 = q[qo + 7] * scale;
    let max = -Infinity;
    for (let s = 0; s <= t; s++) {
      const o = s * 8;
      const d = q0 * k[o] + q1 * k[o + 1] + q2 * k[o + 2] + q3 * k[o + 3] +
        q4 * k[o + 4] + q5 * k[o + 5] + q6 * k[o + 6] + q7 * k[o + 7];
      P[po + s] = d;
      if (d > max) max = d;
    }
    let sum = 0;
    let z0 = 0, z1 = 0, z2 = 0, z3 = 0, z4 = 0, z5 = 0, z6 = 0, z7 = 0;
    for (let s = 0; s <= t; s++) {
      const e = Math.exp(P[po + s] - max);
      P[po + s] = e;
      sum += e;
      const o = s * 8;
      z0 += e * v[o]; z1 += e * v[o + 1]; z2 += e * v[o + 2]; z3 += e * v[o + 3];
      z4 += e * v[o + 4]; z5 += e * v[o + 5]; z6 += e * v[o + 6]; z7 += e * v[o + 7];
    }
    const c = 1 / sum;
    inv[r] = c;
    z[qo] = z0 * c; z[qo + 1] = z1 * c; z[qo + 2] = z2 * c; z[qo + 3] = z3 * c;
    z[qo + 4] = z4 * c; z[qo + 5] = z5 * c; z[qo + 6] = z6 * c; z[qo + 7] = z7 * c;
  }
}

/**
 * attentionBackward for one sequence and kv head when hd = 8, fused in JS: per query row r and
 * key s ≤ t, p̄ = z̄_r·v_s, s̄ = p(p̄ − z̄_r·z_r)/√hd, q̄_r += s̄ k_s, k̄_s += s̄ q_r, v̄_s += p z̄_r,
 * with p = e·inv from attention8Forward. Writes dq [G·T, 8], dk, dv [T, 8] (overwritten).
 */
// prettier-ignore
function attention8Backward(
  dq: Vec, dk: Vec, dv: Vec, dz: Vec, z: Vec, P: Vec, inv: Vec, q: Vec, k: Vec, v: Vec,
  G: number, T: number, scale: number,
): void {
  dk.fill(0, 0, T * 8);
  dv.fill(0, 0, T * 8);
  for (let r = 0; r < G * T; r++) {
    const t = r % T;
    const qo = r * 8;
    const po = r * T;
    const c = inv[r];
    const g0 = dz[qo], g1 = dz[qo + 1], g2 = dz[qo + 2], g3 = dz[qo + 3];
    const g4 = dz[qo + 4], g5 = dz[qo + 5], g6 = dz[qo + 6], g7 = dz[qo + 7];
    const D = g0 * z[qo] + g1 * z[qo + 1] + g2 * z[qo + 2] + g3 * z[qo + 3] +
      g4 * z[qo + 4] + g5 * z[qo + 5] + g6 * z[qo + 6] + g7 * z[qo + 7];
    const q0 = q[qo] * scale, q1 = q[qo + 1] * scale, q2 = q[qo + 2] * scale, q3 = q[qo + 3] * scale;
    const q4 = q[qo + 4] * scale, q5 = q[qo + 5] * scale, q6 = q[qo + 6] * scale, q7 = q[qo + 7] * scale;
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (let s = 0; s <= t; s++) {
      const o = s * 8;
      const p = P[po + s] * c;
      const dp = g0 * v[o] + g1 * v[o + 1] + g2 * v[o + 2] + g3 * v[o + 3] +
        g4 * v[o + 4] + g5 * v[o + 5] + g6 * v[o + 6] + g7 * v[o + 7];
      dv[o] += p * g0; dv[o + 1] += p * g1; dv[o + 2] += p * g2; dv[o + 3] += p * g3;
      dv[o + 4] += p * g4; dv[o + 5] += p * g5; dv[o + 6] += p * g6; dv[o + 7] += p * g7;
      const ds = p * (dp - D);
      a0 += ds * k[o]; a1 += ds * k[o + 1]; a2 += ds * k[o + 2]; a3 += ds * k[o + 3];
      a4 += ds * k[o + 4]; a5 += ds * k[o + 5]; a6 += ds * k[o + 6]; a7 += ds * k[o + 7];
      dk[o] += ds * q0; dk[o + 1] += ds * q1; dk[o + 2] += ds * q2; dk[o + 3] += ds * q3;
      dk[o + 4] += ds * q4; dk[o + 5] += ds * q5; dk[o + 6] += ds * q6; dk[o + 7] += ds * q7;
    }
    dq[qo] = a0 * scale; dq[qo + 1] = a1 * scale; dq[qo + 2] = a2 * scale; dq[qo + 3] = a3 * scale;
    dq[qo + 4] = a4 * scale; dq[qo + 5] = a5 * scale; dq[qo + 6] = a6 * scale; dq[qo + 7] = a7 * scale;
  }
}

/**
 * out[T, G·T] = a[G·T, T]ᵀ for a stack of G causal (lower-triangular) T×T blocks: only the
 * entries on or below each block's diagonal are copied; the others of `out` must be (and stay)
 * zero, which holds for a buffer used only by this function with the same G and T.
 */
function transposeCausal(out: Vec, a: Vec, G: number, T: number): void {
  const GT = G * T;
  for (let s = 0; s < T; s++) {
    const o = s * GT;
    for (let j = 0; j < G; j++) {
      const r0 = j * T;
      for (let t = s; t < T; t++) out[o + r0 + t] = a[(r0 + t) * T + s];
    }
  }
}

/** Row `o`: p_t = softmax(scale·s_t) for t < n, 0 for n ≤ t < T (in place). */
function causalSoftmax(a: Vec, o: number, n: number, T: number, scale: number): void {
  let max = -Infinity;
  for (let t = 0; t < n; t++) if (a[o + t] > max) max = a[o + t];
  let sum = 0;
  for (let t = 0; t < n; t++) {
    const e = Math.exp((a[o + t] - max) * scale);
    a[o + t] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let t = 0; t < n; t++) a[o + t] *= inv;
  for (let t = n; t < T; t++) a[o + t] = 0;
}

/**
 * dst[(j·T + t)·hd + i] = src[(row0 + t)·stride + col + j·hd + i] for j < heads, t < T:
 * `heads` consecutive heads of T rows, stacked head-major.
 */
function gatherHeads(
  dst: Vec,
  src: Vec,
  row0: number,
  T: number,
  stride: number,
  col: number,
  heads: number,
  hd: number,
): void {
  for (let j = 0; j < heads; j++) {
    for (let t = 0; t < T; t++) {
      const so = (row0 + t) * stride + col + j * hd;
      const dO = (j * T + t) * hd;
      for (let i = 0; i < hd; i++) dst[dO + i] = src[so + i];
    }
  }
}

/** The inverse of gatherHeads: writes (or adds, with `add`) the stacked heads back into rows. */
function scatterHeads(
  dst: Vec,
  src: Vec,
  row0: number,
  T: number,
  stride: number,
  col: number,
  heads: number,
  hd: number,
  add: boolean,
): void {
  for (let j = 0; j < heads; j++) {
    for (let t = 0; t < T; t++) {
      const dO = (row0 + t) * stride + col + j * hd;
      const so = (j * T + t) * hd;
      if (add) for (let i = 0; i < hd; i++) dst[dO + i] += src[so + i];
      else for (let i = 0; i < hd; i++) dst[dO + i] = src[so + i];
    }
  }
}

// ---- SwiGLU ------------------------------------------------------------------------------------

/** u = silu(a) ⊙ b with silu(a) = a·σ(a) (ops.ts swiglu).  a, b, u: [N, hidden]. */
export function swigluForward(u: Vec, a: Vec, b: Vec, len: number): void {
  for (let i = 0; i < len; i++) {
    const x = a[i];
    u[i] = (x / (1 + Math.exp(-x))) * b[i];
  }
}

/**
 * ā = ū ⊙ b ⊙ silu′(a) with silu′(a) = σ(a)(1 + a(1 − σ(a))), b̄ = ū ⊙ silu(a) (overwrites
 * da, db). da and db may be the two halves of one [N, 2·hidden] buffer.
 */
export function swigluBackward(da: Vec, db: Vec, du: Vec, a: Vec, b: Vec, len: number): void {
  for (let i = 0; i < len; i++) {
    const x = a[i];
    const sig = 1 / (1 + Math.exp(-x));
    const g = du[i];
    da[i] = g * b[i] * sig * (1 + x * (1 - sig));
    db[i] = g * x * sig;
  }
}

// ---- cross-entropy -----------------------------------------------------------------------------

/**
 * Turns logits [N, V] into ∂loss/∂logits in place, loss = scale·Σ_r −log softmax(logits_r)[y_r]:
 * row r becomes scale·(softmax(logits_r) − onehot(y_r)). Returns Σ_r −log p(y_r) (unscaled).
 * Rows whose target is negative are ignored (their gradient is zero).
 */
export function crossEntropyForwardBackward(
  logits: Vec,
  targets: ArrayLike<number>,
  N: number,
  V: number,
  scale: number,
): number {
  let total = 0;
  for (let r = 0; r < N; r++) {
    const o = r * V;
    const y = targets[r];
    if (y < 0) {
      logits.fill(0, o, o + V);
      continue;
    }
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (logits[o + i] > max) max = logits[o + i];
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[o + i] - max);
    const lse = max + Math.log(sum);
    total += lse - logits[o + y];
    for (let i = 0; i < V; i++) logits[o + i] = Math.exp(logits[o + i] - lse) * scale;
    logits[o + y] -= scale;
  }
  return total;
}

/** Σ_r −log softmax(logits_r)[y_r] without gradients (evaluation). */
export function crossEntropyLoss(
  logits: Vec,
  targets: ArrayLike<number>,
  N: number,
  V: number,
): number {
  let total = 0;
  for (let r = 0; r < N; r++) {
    const o = r * V;
    const y = targets[r];
    if (y < 0) continue;
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (logits[o + i] > max) max = logits[o + i];
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[o + i] - max);
    total += max + Math.log(sum) - logits[o + y];
  }
  return total;
}
