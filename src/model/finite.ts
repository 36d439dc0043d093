/**
 * Refuses weights with NaN or ±∞: generation stops at the first non-finite logit, and a lens
 * would otherwise read them as numbers (a NaN weight gave coupling m_K = 0, "perfectly coupled").
 * One pass over the weights at load (Q8_0 matrices: their scales; the int8 values are finite).
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
    if (m) check(name, m.format === 'q8_0' ? m.scales : m.data);
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
  });
  check('final_norm', weights.finalNorm);
  check('final_norm_bias', weights.finalNormBias);
  if (weights.unembedding !== weights.tokenEmbedding) matrix('unembedding', weights.unembedding);
  check('unembedding_bias', weights.unembeddingBias);
}
