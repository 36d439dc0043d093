/**
 * The numeric core: a handful of row-wise kernels that the model and the lenses compose.
 * Shapes are written [rows, cols]; every buffer is a flat Float32Array in row-major order.
 */
import type { F32Matrix, Matrix } from './matrix.js';
import { matmulH16 } from './half.js';
import { matmulQ80 } from './q80.js';
import { erfc } from './special.js';
import { matmulWasm } from './wasm/kernels.js';

/**
 * out[n, W.rows] = x[n, W.cols] · Wᵀ  (each row of x times the matrix). Runs the WebAssembly
 * SIMD kernel when out, x and W all live in the arena (allocF32), else the JS loop. A Q8_0 W
 * goes to matmulQ80 (x quantized per group, runq.c's scheme), an f16 / bf16 W to matmulH16
 * (weights widened exactly to f32 as they are read).
 */
export function matmul(out: Float32Array, x: Float32Array, w: Matrix, n: number): void {
  if (w.format === 'q8_0') matmulQ80(out, x, w, n);
  else if (w.format !== 'f32') matmulH16(out, x, w, n);
  else if (!matmulWasm(out, x, w.data, w.rows, w.cols, n)) matmulJs(out, x, w, n);
}

/** The reference JS loop for fp32 matmul (and its fallback): same contract. */
export function matmulJs(out: Float32Array, x: Float32Array, w: F32Matrix, n: number): void {
  const { rows, cols, data } = w;
  for (let r = 0; r < n; r++) {
    const xo = r * cols;
    const oo = r * rows;
    for (let i = 0; i < rows; i++) {
      const wo = i * cols;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let j = 0;
      for (; j + 3 < cols; j += 4) {
        s0 += data[wo + j] * x[xo + j];
        s1 += data[wo + j + 1] * x[xo + j + 1];
        s2 += data[wo + j + 2] * x[xo + j + 2];
        s3 += data[wo + j + 3] * x[xo + j + 3];
      }
      for (; j < cols; j++) s0 += data[wo + j] * x[xo + j];
      out[oo + i] = s0 + s1 + s2 + s3;
    }
  }
}

/** out[n, d] += bias[d] on every row. */
export function addBias(out: Float32Array, bias: Float32Array, n: number): void {
  const d = bias.length;
  for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) out[r * d + i] += bias[i];
}

/** a[k] += b[k]. */
export function addInPlace(a: Float32Array, b: Float32Array, len = a.length): void {
  for (let i = 0; i < len; i++) a[i] += b[i];
}

/** RMSNorm per row: out = x / sqrt(mean(x²) + eps) ⊙ weight.  x, out: [n, d]. */
export function rmsnorm(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  n: number,
  eps: number,
): void {
  const d = weight.length;
  for (let r = 0; r < n; r++) {
    const o = r * d;
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[o + i] * x[o + i];
    const scale = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) out[o + i] = weight[i] * (x[o + i] * scale);
  }
}

/** LayerNorm per row: out = (x − mean) / sqrt(var + eps) ⊙ weight + bias.  x, out: [n, d]. */
export function layernorm(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array | null,
  n: number,
  eps: number,
): void {
  const d = weight.length;
  for (let r = 0; r < n; r++) {
    const o = r * d;
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[o + i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) {
      const c = x[o + i] - mean;
      v += c * c;
    }
    const scale = 1 / Math.sqrt(v / d + eps);
    for (let i = 0; i < d; i++) {
      out[o + i] = (x[o + i] - mean) * scale * weight[i] + (bias ? bias[i] : 0);
    }
  }
}

/** In-place softmax of x[offset, offset + len). */
export function softmax(x: Float32Array | Float64Array, offset = 0, len = x.length - offset): void {
  let max = -Infinity;
  for (let i = 0; i < len; i++) if (x[offset + i] > max) max = x[offset + i];
  let sum = 0;
  for (let i = 0; i < len; i++) {
    const e = Math.exp(x[offset + i] - max);
    x[offset + i] = e;
    sum += e;
  }
  for (let i = 0; i < len; i++) x[offset + i] /= sum;
}

/** SwiGLU: gate[k] = silu(gate[k]) * up[k], with silu(g) = g / (1 + e^−g). */
export function swiglu(gate: Float32Array, up: Float32Array, len = gate.length): void {
  for (let i = 0; i < len; i++) {
    const g = gate[i];
    gate[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

const GELU_C = Math.sqrt(2 / Math.PI);
/** GPT-2's gelu_new (tanh approximation), in place. */
export function geluNew(x: Float32Array, len = x.length): void {
  for (let i = 0; i < len; i++) {
    const v = x[i];
    x[i] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + 0.044715 * v * v * v)));
  }
}

/** The exact GELU, x·Φ(x) = ½x·erfc(−x/√2) (GPT-NeoX `hidden_act: gelu`), in place. */
export function gelu(x: Float32Array, len = x.length): void {
  for (let i = 0; i < len; i++) x[i] = 0.5 * x[i] * erfc(-x[i] * Math.SQRT1_2);
}

/**
 * Interleaved-pair rotary embedding (llama2.c / GGUF convention) on one row of heads:
 * for each head h and pair i < freqs.length, (v[2i], v[2i+1]) rotates by pos · freqs[i]
 * (model/rope.ts `ropeFrequencies`; the dimensions past 2·freqs.length stay as they are), and
 * the rotated pairs are multiplied by `scale` (HF's attention_scaling on cos and sin; longrope).
 * vec: [nHeads * headDim] starting at `offset`.
 */
export function rope(
  vec: Float32Array,
  offset: number,
  nHeads: number,
  headDim: number,
  freqs: Float64Array,
  pos: number,
  scale = 1,
): void {
  for (let j = 0; j < freqs.length; j++) {
    const angle = pos * freqs[j];
    const c = Math.cos(angle) * scale;
    const s = Math.sin(angle) * scale;
    const i = 2 * j;
    for (let h = 0; h < nHeads; h++) {
      const o = offset + h * headDim + i;
      const v0 = vec[o];
      const v1 = vec[o + 1];
      vec[o] = v0 * c - v1 * s;
      vec[o + 1] = v0 * s + v1 * c;
    }
  }
}
