/**
 * The model's weights in Q8_0 or 16-bit floats (tensor/q80.ts and tensor/half.ts have the formats
 * and their matmuls): which matrices are converted, and how many bytes the weights take as stored.
 */
import { castMatrixH16, type H16Format } from '../tensor/half.js';
import type { Matrix } from '../tensor/matrix.js';
import { freeF32, isArenaBlock } from '../tensor/memory.js';
import { q80GroupSize, quantizeMatrixQ80 } from '../tensor/q80.js';
import type { LayerWeights, ModelWeights } from './types.js';

/** What the forward pass's weight matrices are stored as. */
export type WeightFormat = 'f32' | 'q8_0' | 'f16' | 'bf16';

/**
 * The weights with every f32 matrix that can be (token embedding and classifier included, as
 * runq.c does) converted to Q8_0 with q80GroupSize(cols, groupSize); the f32 buffers are freed,
 * so the caller must not use the old matrices afterwards. Norms, biases and learned positions
 * stay f32, and so does a matrix whose columns no multiple of 16 divides. Tied matrices stay one
 * object.
 */
export function quantizeWeightsQ80(w: ModelWeights, groupSize = 32): ModelWeights {
  const matrices = new Set<Matrix>([w.tokenEmbedding, w.unembedding]);
  for (const l of w.layers) {
    for (const m of [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]) if (m) matrices.add(m);
  }
  // Each f32 buffer is freed as soon as the last matrix over it is converted, so the Q8_0
  // copies of later matrices reuse its memory and the arena grows by one matrix, not by all.
  const users = new Map<Float32Array, number>();
  for (const m of matrices) if (m.format === 'f32') users.set(m.data, (users.get(m.data) ?? 0) + 1);
  const done = new Map<Matrix, Matrix>();
  const conv = (m: Matrix): Matrix => {
    let out = done.get(m);
    if (out) return out;
    const gs = m.format === 'f32' ? q80GroupSize(m.cols, groupSize) : null;
    out = gs === null ? m : quantizeMatrixQ80(m, gs);
    done.set(m, out);
    if (out !== m && m.format === 'f32') {
      const left = (users.get(m.data) ?? 1) - 1;
      users.set(m.data, left);
      if (left === 0 && isArenaBlock(m.data)) freeF32(m.data); // else the garbage collector's
    }
    return out;
  };
  const convNullable = (m: Matrix | null): Matrix | null => (m ? conv(m) : null);
  const layers: LayerWeights[] = w.layers.map((l) => ({
    ...l,
    wq: conv(l.wq),
    wk: conv(l.wk),
    wv: conv(l.wv),
    wo: conv(l.wo),
    wGate: convNullable(l.wGate),
    wUp: conv(l.wUp),
    wDown: conv(l.wDown),
  }));
  return { ...w, tokenEmbedding: conv(w.tokenEmbedding), unembedding: conv(w.unembedding), layers };
}

/** Bytes of the weight matrices as stored, by format (for reports). */
export function weightBytes(w: ModelWeights): Record<WeightFormat, number> {
  const seen = new Set<Matrix>();
  const bytes: Record<WeightFormat, number> = { f32: 0, q8_0: 0, f16: 0, bf16: 0 };
  const add = (m: Matrix | null) => {
    if (!m || seen.has(m)) return;
    seen.add(m);
    if (m.format === 'f32') bytes.f32 += m.data.byteLength;
    else if (m.format === 'q8_0') bytes.q8_0 += m.q.byteLength + m.scales.byteLength;
    else bytes[m.format] += m.bits.byteLength;
  };
  add(w.tokenEmbedding);
  add(w.positionEmbedding);
  add(w.unembedding);
  for (const l of w.layers) [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown].forEach(add);
  return bytes;
}

/**
 * The weights with every f32 weight matrix (token embedding and classifier included; learned
 * positions too) stored as `format`; matrices already 16-bit of the other format are converted
 * through f32, Q8_0 ones are kept. Each f32 buffer is freed as soon as its last matrix is
 * converted, so the caller must not use the old matrices afterwards. Norms and biases stay f32.
 * Tied matrices stay one object.
 */
export function castWeightsH16(w: ModelWeights, format: H16Format): ModelWeights {
  const matrices = new Set<Matrix>([w.tokenEmbedding, w.unembedding]);
  if (w.positionEmbedding) matrices.add(w.positionEmbedding);
  for (const l of w.layers) {
    for (const m of [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]) if (m) matrices.add(m);
  }
  const users = new Map<Float32Array, number>();
  for (const m of matrices) if (m.format === 'f32') users.set(m.data, (users.get(m.data) ?? 0) + 1);
  const done = new Map<Matrix, Matrix>();
  const conv = (m: Matrix): Matrix => {
    let out = done.get(m);
    if (out) return out;
    if (m.format === 'f32') {
      out = castMatrixH16(m, format);
      const left = (users.get(m.data) ?? 1) - 1;
      users.set(m.data, left);
      if (left === 0 && isArenaBlock(m.data)) freeF32(m.data); // else the garbage collector's
    } else if (m.format !== format && m.format !== 'q8_0') {
      const f32 = m.data;
      out = castMatrixH16({ format: 'f32', rows: m.rows, cols: m.cols, data: f32 }, format);
      if (isArenaBlock(f32)) freeF32(f32);
    } else {
      out = m;
    }
    done.set(m, out);
    return out;
  };
  const convNullable = (m: Matrix | null): Matrix | null => (m ? conv(m) : null);
  const layers: LayerWeights[] = w.layers.map((l) => ({
    ...l,
    wq: conv(l.wq),
    wk: conv(l.wk),
    wv: conv(l.wv),
    wo: conv(l.wo),
    wGate: convNullable(l.wGate),
    wUp: conv(l.wUp),
    wDown: conv(l.wDown),
  }));
  return {
    ...w,
    tokenEmbedding: conv(w.tokenEmbedding),
    positionEmbedding: convNullable(w.positionEmbedding),
    unembedding: conv(w.unembedding),
    layers,
  };
}
