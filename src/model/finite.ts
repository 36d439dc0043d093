/**
 * Refuses weights with NaN or ±∞: generation stops at the first non-finite logit, and a lens
 * would otherwise read them as numbers (a NaN weight gave coupling m_K = 0, "perfectly coupled").
 * One pass over the weights at load (Q8_0 matrices: their scales; the int8 values are finite;
 * 16-bit matrices: their bits, without widening them).
 */
import { LmdynError } from '../errors.js';
import type { ModelWeights } from './types.js';
import type { Matrix } from '../tensor/matrix.js';

export function requireFiniteWeights(weights: ModelWeights, path: string): void {
  const check = (name: string, a: Float32Array | null): void => {
    if (!a) return;
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (v - v !== 0) {
        throw new LmdynError(
          'bad_format',
          `${path}: weight ${name} holds a non-finite value (${v} at index ${i}); the model cannot be run or measured`,
        );
      }
    }
  };
  const matrix = (name: string, m: Matrix | null): void => {
    if (!m) return;
    if (m.format === 'f16' || m.format === 'bf16') checkBits(name, m.bits, m.format);
    else check(name, m.format === 'q8_0' ? m.scales : m.data);
  };
  // all-ones exponent: f16 5 bits (0x7c00), bf16 8 bits (0x7f80)
  const checkBits = (name: string, bits: Uint16Array, format: 'f16' | 'bf16'): void => {
    const exp = format === 'f16' ? 0x7c00 : 0x7f80;
    for (let i = 0; i < bits.length; i++) {
      if ((bits[i] & exp) === exp) {
        throw new LmdynError(
          'bad_format',
          `${path}: weight ${name} holds a non-finite value (${format} bits 0x${bits[i].toString(16)} at index ${i}); the model cannot be run or measured`,
        );
      }
    }
  };
  matrix('token_embedding', weights.tokenEmbedding);
  matrix('position_embedding', weights.positionEmbedding);
  weights.layers.forEach((l, i) => {
    const p = `blocks.${i}.`;
    check(`${p}attn_norm`, l.attnNorm);
    check(`${p}attn_norm_bias`, l.attnNormBias);
    matrix(`${p}wq`, l.wq);
    matrix(`${p}wk`, l.wk);
    matrix(`${p}wv`, l.wv);
    matrix(`${p}wo`, l.wo);
    check(`${p}bq`, l.bq);
    check(`${p}bk`, l.bk);
    check(`${p}bv`, l.bv);
    check(`${p}bo`, l.bo);
    check(`${p}mlp_norm`, l.mlpNorm);
    check(`${p}mlp_norm_bias`, l.mlpNormBias);
    matrix(`${p}w_gate`, l.wGate);
    matrix(`${p}w_up`, l.wUp);
    check(`${p}b_up`, l.bUp);
    matrix(`${p}w_down`, l.wDown);
    check(`${p}b_down`, l.bDown);
    check(`${p}q_norm`, l.qNorm ?? null);
    check(`${p}k_norm`, l.kNorm ?? null);
    check(`${p}attn_post_norm`, l.attnPostNorm ?? null);
    check(`${p}mlp_post_norm`, l.mlpPostNorm ?? null);
  });
  check('final_norm', weights.finalNorm);
  check('final_norm_bias', weights.finalNormBias);
  if (weights.unembedding !== weights.tokenEmbedding) matrix('unembedding', weights.unembedding);
  check('unembedding_bias', weights.unembeddingBias);
}
