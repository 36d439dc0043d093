/**
 * Rotary position embedding: the frequencies each layer rotates q and k by, and the factor on
 * cos/sin.
 *
 * `ropeFrequencies(c, l, length)` is the one place that decides them, so that the forward pass,
 * the forward-mode Jacobians and every loader agree. Without scaling, inv_freq[i] = θ^(−2i/ropeDim)
 * for the pairs i < ropeDim/2 (Hugging Face's `_compute_default_rope_parameters`, llama2.c's
 * freq). `c.ropeScaling` (HF `rope_scaling` / `rope_parameters`) changes them as transformers'
 * modeling_rope_utils.py does:
 *
 * - linear:   inv_freq / factor.
 * - llama3:   Llama 3.1's band-wise rule: wavelengths 2π/inv_freq shorter than
 *             original/highFreqFactor keep their frequency, longer than original/lowFreqFactor are
 *             divided by factor, and the band between interpolates with
 *             s = (original/wavelen − low)/(high − low): (1 − s)·f/factor + s·f.
 * - dynamic:  NTK-aware base θ' = θ·(factor·L/original − (factor − 1))^(ropeDim/(ropeDim−2)) when
 *             L > original (HF `_compute_dynamic_ntk_parameters`, original = config
 *             max_position_embeddings), the plain frequencies otherwise.
 * - longrope: inv_freq[i] = 1/(ext[i]·θ^(2i/ropeDim)) with ext = longFactor when L > original,
 *             shortFactor otherwise; cos and sin are multiplied by `ropeAttentionFactor`.
 *
 * L, the `length` argument, is what HF's `dynamic_rope_update` calls seq_len: max(position_ids) + 1
 * of the forward call, i.e. the last position this call computes for the sequence, plus one. A
 * single forward over a whole sequence of n tokens therefore uses L = n at every position; cached
 * generation uses, at each step, the length reached by that step (the keys already in the cache
 * keep the frequencies they were rotated with). lmdyn takes L per sequence, with no state carried
 * between calls: HF's module keeps `max_seq_len_cached` across calls, which for one sequence
 * processed from its start gives the same frequencies.
 */
import type { ModelConfig, RopeScaling } from './types.js';

const cache = new WeakMap<ModelConfig, Float64Array[]>();

/**
 * inv_freq of layer l for a forward call whose last position of this sequence is length − 1:
 * ropeDim/2 values, pair i rotating by pos · inv_freq[i].
 */
export function ropeFrequencies(c: ModelConfig, layer: number, length: number): Float64Array {
  const s = c.ropeScaling;
  if (s && lengthDependent(s) && length > s.originalContext) {
    // Depends on the call's length: computed on demand (ropeDim/2 powers), kept per length.
    return scaledByLength(c, s, length);
  }
  let perLayer = cache.get(c);
  if (!perLayer) {
    perLayer = [];
    cache.set(c, perLayer);
  }
  let f = perLayer[layer];
  if (!f) {
    // Gemma 3: the sliding-window layers rotate with their own base (rope_local_base_freq),
    // unscaled; the global layers with rope_theta and the model's scaling.
    const local = c.ropeLocalTheta !== undefined && (c.attnWindow?.[layer] ?? null) !== null;
    f = local
      ? defaultFrequencies(c.ropeLocalTheta as number, c.ropeDim)
      : scaledFrequencies(c, s, defaultFrequencies(c.ropeTheta, c.ropeDim));
    perLayer[layer] = f;
  }
  return f;
}

/** The factor HF multiplies cos and sin by (`attention_scaling`): longrope's, else 1. */
export function ropeAttentionFactor(c: ModelConfig): number {
  return c.ropeScaling?.type === 'longrope' ? c.ropeScaling.attentionFactor : 1;
}

/** θ^(−2i/ropeDim), i < ropeDim/2, as 1/θ^(2i/ropeDim) (llama2.c's and the former inline form). */
export function defaultFrequencies(theta: number, ropeDim: number): Float64Array {
  const f = new Float64Array(ropeDim >> 1);
  for (let i = 0; i < f.length; i++) f[i] = 1 / Math.pow(theta, (2 * i) / ropeDim);
  return f;
}

/** A one-line description for `lmdyn info`, e.g. "llama3 ×8 (original context 8192, …)". */
export function describeRopeScaling(s: RopeScaling): string {
  switch (s.type) {
    case 'linear':
      return `linear ×${s.factor}`;
    case 'llama3':
      return `llama3 ×${s.factor} (original context ${s.originalContext}, low_freq_factor ${s.lowFreqFactor}, high_freq_factor ${s.highFreqFactor})`;
    case 'dynamic':
      return `dynamic NTK ×${s.factor} beyond ${s.originalContext} positions (base recomputed per forward call)`;
    case 'longrope':
      return `longrope (short factors up to ${s.originalContext} positions, long beyond; cos/sin × ${s.attentionFactor.toPrecision(6)})`;
  }
}

function lengthDependent(
  s: RopeScaling,
): s is Extract<RopeScaling, { type: 'dynamic' } | { type: 'longrope' }> {
  return s.type === 'dynamic' || s.type === 'longrope';
}

/** The frequencies that do not depend on the call's length (L ≤ original for dynamic/longrope). */
function scaledFrequencies(
  c: ModelConfig,
  s: RopeScaling | undefined,
  base: Float64Array,
): Float64Array {
  if (!s || s.type === 'dynamic') return base;
  if (s.type === 'linear') return base.map((f) => f / s.factor);
  if (s.type === 'longrope') return longrope(c.ropeTheta, c.ropeDim, s.shortFactor);
  return llama3(base, s);
}

const byLength = new WeakMap<ModelConfig, Map<number, Float64Array>>();

function scaledByLength(
  c: ModelConfig,
  s: Extract<RopeScaling, { type: 'dynamic' } | { type: 'longrope' }>,
  length: number,
): Float64Array {
  let m = byLength.get(c);
  if (!m) {
    m = new Map();
    byLength.set(c, m);
  }
  const key = s.type === 'longrope' ? 0 : length; // longrope's long factors serve every L > original
  let f = m.get(key);
  if (!f) {
    if (s.type === 'longrope') {
      f = longrope(c.ropeTheta, c.ropeDim, s.longFactor);
    } else {
      // HF: base · ((factor · seq_len / max_position_embeddings) − (factor − 1))^(dim/(dim − 2))
      const d = c.ropeDim;
      const theta =
        c.ropeTheta *
        Math.pow((s.factor * length) / s.originalContext - (s.factor - 1), d / (d - 2));
      f = defaultFrequencies(theta, d);
    }
    if (m.size >= 64) m.clear(); // generation asks for one new length per step
    m.set(key, f);
  }
  return f;
}

/** 1/(ext[i] · θ^(2i/ropeDim)) (HF `_compute_longrope_parameters`). */
function longrope(theta: number, ropeDim: number, ext: readonly number[]): Float64Array {
  const f = new Float64Array(ropeDim >> 1);
  for (let i = 0; i < f.length; i++) f[i] = 1 / (ext[i] * Math.pow(theta, (2 * i) / ropeDim));
  return f;
}

/** HF `_compute_llama3_parameters` on the plain frequencies. */
function llama3(base: Float64Array, s: Extract<RopeScaling, { type: 'llama3' }>): Float64Array {
  const lowWavelen = s.originalContext / s.lowFreqFactor;
  const highWavelen = s.originalContext / s.highFreqFactor;
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth =
      (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return ((1 - smooth) * f) / s.factor + smooth * f;
  });
}
