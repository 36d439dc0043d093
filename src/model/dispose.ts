/**
 * Returning a model's weights to the kernels' memory (model.dispose()). Only buffers that start
 * a live arena block are freed; plain Float32Arrays are left to the garbage collector.
 */
import { widenedData } from '../tensor/half.js';
import { freeF32, freeI8, freeU16, isArenaBlock } from '../tensor/memory.js';
import { dequantizedData } from '../tensor/q80.js';
import type { ModelWeights } from './types.js';
import type { Matrix } from '../tensor/matrix.js';

/** Frees every weight buffer once (tied matrices are shared); the weights are unusable afterwards. */
export function disposeWeights(w: ModelWeights): void {
  const f32 = new Set<Float32Array>();
  const i8 = new Set<Int8Array>();
  const u16 = new Set<Uint16Array>();
  const matrix = (m: Matrix | null): void => {
    if (!m) return;
    if (m.format === 'f32') {
      f32.add(m.data);
      return;
    }
    if (m.format !== 'q8_0') {
      u16.add(m.bits);
      const d = widenedData(m);
      if (d) f32.add(d);
      return;
    }
    i8.add(m.q);
    f32.add(m.scales);
    const d = dequantizedData(m);
    if (d) f32.add(d);
  };
  const vector = (v: Float32Array | null | undefined): void => {
    if (v) f32.add(v);
  };
  matrix(w.tokenEmbedding);
  matrix(w.positionEmbedding);
  matrix(w.unembedding);
  vector(w.finalNorm);
  vector(w.finalNormBias);
  vector(w.unembeddingBias);
  for (const l of w.layers) {
    for (const m of [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]) matrix(m);
    for (const v of [
      l.attnNorm,
      l.attnNormBias,
      l.bq,
      l.bk,
      l.bv,
      l.bo,
      l.mlpNorm,
      l.mlpNormBias,
      l.bUp,
      l.bDown,
      l.qNorm,
      l.kNorm,
      l.attnPostNorm,
      l.mlpPostNorm,
    ]) {
      vector(v);
    }
  }
  for (const b of f32) if (isArenaBlock(b)) freeF32(b);
  for (const b of i8) if (isArenaBlock(b)) freeI8(b);
  for (const b of u16) if (isArenaBlock(b)) freeU16(b);
}
