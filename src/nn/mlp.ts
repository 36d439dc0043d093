/**
 * Small multilayer perceptrons in float64 with hand-written reverse-mode gradients
 * (backpropagation) and forward-mode input Jacobians: the function approximators of the SDE
 * lens (papers.md §2.4, "MLP on [x, t], 2 hidden layers, tanh").
 *
 * A network is plain data: its layer widths and one flat parameter vector, so an optimiser
 * (nn/adam.ts) updates every weight with one loop and a model file stores it as one array.
 * Layer l maps a [n, in] batch to [n, out] by z = a·Wᵀ + b, then tanh on every layer but the
 * last (which stays linear). Forward and backward of each step sit side by side below.
 */
import { LmdynError } from '../errors.js';
import type { Rng } from '../tensor/rng.js';

export interface Mlp {
  /** Layer widths [in, h1, …, out]. */
  sizes: number[];
  /** Hidden activation; the output layer is linear. */
  activation: 'tanh';
  /** Per layer l: W_l [sizes[l+1], sizes[l]] row-major, then b_l [sizes[l+1]]. */
  params: Float64Array;
}

/** What the backward pass needs from the forward pass: every layer's output. */
export interface MlpTape {
  n: number;
  /** acts[0] = input [n, sizes[0]]; acts[l] = output of layer l [n, sizes[l]] (tanh applied, last linear). */
  acts: Float64Array[];
}

/** Where each layer's W and b start in `params`, and the total count. */
export function mlpLayout(sizes: readonly number[]): { w: number[]; b: number[]; total: number } {
  const w: number[] = [];
  const b: number[] = [];
  let at = 0;
  for (let l = 0; l + 1 < sizes.length; l++) {
    w.push(at);
    at += sizes[l + 1] * sizes[l];
    b.push(at);
    at += sizes[l + 1];
  }
  return { w, b, total: at };
}

/**
 * A fresh network with PyTorch's nn.Linear initialisation: W, b ~ U(−1/√in, 1/√in). The last
 * layer's weights are multiplied by `outputGain` (small values start the network near its bias).
 */
export function createMlp(sizes: readonly number[], rng: Rng, outputGain = 1): Mlp {
  if (sizes.length < 2 || sizes.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new LmdynError('bad_argument', `createMlp: bad layer sizes [${sizes.join(', ')}]`);
  }
  const layout = mlpLayout(sizes);
  const params = new Float64Array(layout.total);
  const last = sizes.length - 2;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const bound = 1 / Math.sqrt(sizes[l]);
    const gain = l === last ? outputGain : 1;
    const nw = sizes[l + 1] * sizes[l];
    for (let i = 0; i < nw; i++) params[layout.w[l] + i] = gain * bound * (2 * rng.next() - 1);
    for (let i = 0; i < sizes[l + 1]; i++) params[layout.b[l] + i] = bound * (2 * rng.next() - 1);
  }
  return { sizes: [...sizes], activation: 'tanh', params };
}

/** Output [n, out] of the network on x [n, in], and the tape for `mlpBackward`. */
export function mlpForward(
  mlp: Mlp,
  x: Float64Array,
  n: number,
): { out: Float64Array; tape: MlpTape } {
  const { sizes, params } = mlp;
  if (x.length < n * sizes[0])
    // Internal invariant, not user input: callers pass batches of the width the network was built for.
    throw new Error(`mlpForward: ${x.length} values for ${n} × ${sizes[0]}`);
  const layout = mlpLayout(sizes);
  const acts: Float64Array[] = [x];
  const last = sizes.length - 2;
  for (let l = 0; l <= last; l++) {
    const nin = sizes[l];
    const nout = sizes[l + 1];
    const w = params.subarray(layout.w[l], layout.w[l] + nout * nin);
    const b = params.subarray(layout.b[l], layout.b[l] + nout);
    // z[n, out] = a[n, in]·Wᵀ + b
    const z = new Float64Array(n * nout);
    matmulABt(z, acts[l], w, n, nout, nin, false);
    for (let r = 0; r < n; r++) for (let o = 0; o < nout; o++) z[r * nout + o] += b[o];
    if (l < last) for (let i = 0; i < z.length; i++) z[i] = Math.tanh(z[i]);
    acts.push(z);
  }
  return { out: acts[acts.length - 1], tape: { n, acts } };
}

/**
 * Reverse mode: given gOut = ∂L/∂out [n, out], ADDS ∂L/∂params into `grad` (same layout as
 * params) and, when `gIn` is given, writes ∂L/∂x [n, in] into it.
 */
export function mlpBackward(
  mlp: Mlp,
  tape: MlpTape,
  gOut: Float64Array,
  grad: Float64Array,
  gIn?: Float64Array,
): void {
  const { sizes, params } = mlp;
  const { n, acts } = tape;
  const layout = mlpLayout(sizes);
  const last = sizes.length - 2;
  let g = gOut; // ∂L/∂(output of layer l) [n, out]
  for (let l = last; l >= 0; l--) {
    const nin = sizes[l];
    const nout = sizes[l + 1];
    // through tanh: ∂L/∂z = ∂L/∂y ⊙ (1 − y²)
    let gz = g;
    if (l < last) {
      const y = acts[l + 1];
      gz = new Float64Array(n * nout);
      for (let i = 0; i < gz.length; i++) gz[i] = g[i] * (1 - y[i] * y[i]);
    }
    // ∂L/∂b[o] += Σ_r gz[r, o]
    const b0 = layout.b[l];
    for (let r = 0; r < n; r++) for (let o = 0; o < nout; o++) grad[b0 + o] += gz[r * nout + o];
    // ∂L/∂W[out, in] += gzᵀ·a = gzᵀ[out, n]·(aᵀ[in, n])ᵀ
    const gw = grad.subarray(layout.w[l], layout.w[l] + nout * nin);
    matmulABt(gw, transpose(gz, n, nout), transpose(acts[l], n, nin), nout, nin, n, true);
    if (l === 0 && !gIn) break;
    // ∂L/∂a[n, in] = gz[n, out]·W = gz·(Wᵀ[in, out])ᵀ
    const w = params.subarray(layout.w[l], layout.w[l] + nout * nin);
    const ga = l === 0 && gIn ? gIn : new Float64Array(n * nin);
    matmulABt(ga, gz, transpose(w, nout, nin), n, nin, nout, false);
    g = ga;
  }
}

/**
 * Jacobian ∂out/∂x [out, in] at one input x [in], by forward mode: the tangent matrix
 * T = ∂a_l/∂x is carried through z = W·a + b (T ← W·T) and tanh (T ← diag(1 − y²)·T).
 */
export function mlpInputJacobian(mlp: Mlp, x: ArrayLike<number>): Float64Array {
  const { sizes, params } = mlp;
  const layout = mlpLayout(sizes);
  const nx = sizes[0];
  const last = sizes.length - 2;
  let a = Float64Array.from({ length: nx }, (_, i) => x[i]);
  let t = new Float64Array(nx * nx); // [width, nx]
  for (let i = 0; i < nx; i++) t[i * nx + i] = 1;
  for (let l = 0; l <= last; l++) {
    const nin = sizes[l];
    const nout = sizes[l + 1];
    const w0 = layout.w[l];
    const b0 = layout.b[l];
    const z = new Float64Array(nout);
    const tz = new Float64Array(nout * nx);
    for (let o = 0; o < nout; o++) {
      let s = params[b0 + o];
      for (let i = 0; i < nin; i++) {
        const w = params[w0 + o * nin + i];
        s += w * a[i];
        for (let j = 0; j < nx; j++) tz[o * nx + j] += w * t[i * nx + j];
      }
      z[o] = s;
    }
    if (l < last) {
      for (let o = 0; o < nout; o++) {
        z[o] = Math.tanh(z[o]);
        const d = 1 - z[o] * z[o];
        for (let j = 0; j < nx; j++) tz[o * nx + j] *= d;
      }
    }
    a = z;
    t = tz;
  }
  return t;
}

/** [rows, cols] → [cols, rows]. */
function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/**
 * out[n, m] (+)= a[n, k]·b[m, k]ᵀ in float64 (the f32 kernels of tensor/ are too coarse for
 * gradient checks and optimisation). Blocked 4 rows × 2 columns, so each loaded value is used
 * 2–4 times: about 3× the plain dot-product loop in V8.
 */
export function matmulABt(
  out: Float64Array,
  a: Float64Array,
  b: Float64Array,
  n: number,
  m: number,
  k: number,
  accumulate: boolean,
): void {
  if (!accumulate) out.fill(0, 0, n * m);
  let r = 0;
  for (; r + 3 < n; r += 4) {
    const a0 = r * k;
    const a1 = a0 + k;
    const a2 = a1 + k;
    const a3 = a2 + k;
    let c = 0;
    for (; c + 1 < m; c += 2) {
      const b0 = c * k;
      const b1 = b0 + k;
      let s00 = 0,
        s01 = 0,
        s10 = 0,
        s11 = 0,
        s20 = 0,
        s21 = 0,
        s30 = 0,
        s31 = 0;
      for (let i = 0; i < k; i++) {
        const y0 = b[b0 + i];
        const y1 = b[b1 + i];
        const x0 = a[a0 + i];
        const x1 = a[a1 + i];
        const x2 = a[a2 + i];
        const x3 = a[a3 + i];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s20 += x2 * y0;
        s21 += x2 * y1;
        s30 += x3 * y0;
        s31 += x3 * y1;
      }
      const o = r * m + c;
      out[o] += s00;
      out[o + 1] += s01;
      out[o + m] += s10;
      out[o + m + 1] += s11;
      out[o + 2 * m] += s20;
      out[o + 2 * m + 1] += s21;
      out[o + 3 * m] += s30;
      out[o + 3 * m + 1] += s31;
    }
    for (; c < m; c++) {
      const b0 = c * k;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      for (let i = 0; i < k; i++) {
        const y = b[b0 + i];
        s0 += a[a0 + i] * y;
        s1 += a[a1 + i] * y;
        s2 += a[a2 + i] * y;
        s3 += a[a3 + i] * y;
      }
      out[r * m + c] += s0;
      out[(r + 1) * m + c] += s1;
      out[(r + 2) * m + c] += s2;
      out[(r + 3) * m + c] += s3;
    }
  }
  for (; r < n; r++) {
    const a0 = r * k;
    for (let c = 0; c < m; c++) {
      const b0 = c * k;
      let s = 0;
      for (let i = 0; i < k; i++) s += a[a0 + i] * b[b0 + i];
      out[r * m + c] += s;
    }
  }
}
