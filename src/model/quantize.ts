/**
 * The model's weights in Q8_0 (tensor/q80.ts has the format and its matmul): which matrices are
 * converted, and how many bytes the weights take as stored.
 */
import type { Matrix } from '../tensor/matrix.js';
import { freeF32, isArenaBlock } from '../tensor/memory.js';
import { q80GroupSize, quantizeMatrixQ80 } from '../tensor/q80.js';
import type { LayerWeights, ModelWeights } from './types.js';

/** What the forward pass's weight matrices are stored as. */
export type WeightFormat = 'f32' | 'q8_0';

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
  const bytes: Record<WeightFormat, number> = { f32: 0, q8_0: 0 };
  const add = (m: Matrix | null) => {
    if (!m || seen.has(m)) return;
    seen.add(m);
    if (m.format === 'f32') bytes.f32 += m.data.byteLength;
    else bytes.q8_0 += m.q.byteLength + m.scales.byteLength;
  };
  add(w.tokenEmbedding);
  add(w.positionEmbedding);
  add(w.unembedding);
  for (const l of w.layers) [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown].forEach(add);
  return bytes;
}
