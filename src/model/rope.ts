/**
 * Rotary position embedding: the frequencies each layer rotates q and k by.
 *
 * `ropeFrequencies(c, l)` is the one place that decides them, so that the forward pass, the
 * forward-mode Jacobians and every loader agree: inv_freq[i] = θ^(−2i/ropeDim) for the pairs
 * i < ropeDim/2 (Hugging Face's `_compute_default_rope_parameters`, llama2.c's freq). Scaled
 * variants (Llama 3, linear, dynamic NTK, Gemma 3's per-layer bases, …) change only this
 * function's result, never its callers.
 */
import type { ModelConfig } from './types.js';

const cache = new WeakMap<ModelConfig, Float64Array[]>();

/** inv_freq of layer l: ropeDim/2 values, pair i rotating by pos · inv_freq[i]. */
export function ropeFrequencies(c: ModelConfig, layer: number): Float64Array {
  let perLayer = cache.get(c);
  if (!perLayer) {
    perLayer = [];
    cache.set(c, perLayer);
  }
  let f = perLayer[layer];
  if (!f) {
    f = defaultFrequencies(c.ropeTheta, c.ropeDim);
    perLayer[layer] = f;
  }
  return f;
}

/** θ^(−2i/ropeDim), i < ropeDim/2, as 1/θ^(2i/ropeDim) (llama2.c's and the former inline form). */
export function defaultFrequencies(theta: number, ropeDim: number): Float64Array {
  const f = new Float64Array(ropeDim >> 1);
  for (let i = 0; i < f.length; i++) f[i] = 1 / Math.pow(theta, (2 * i) / ropeDim);
  return f;
}
