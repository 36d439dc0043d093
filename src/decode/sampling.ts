/**
 * The next-token distribution exactly as Hugging Face transformers builds it for `generate`
 * (papers.md §0.1 for the transforms, §4.2 for the penalties as score adjustments):
 *
 *   logits → repetition penalty → frequency/presence penalties → temperature
 *          → top-k → top-p → min-p → softmax (float64)
 *
 * HF sources read (transformers `src/transformers/generation/`):
 * - `utils.py` `_get_logits_processor`: RepetitionPenaltyLogitsProcessor comes with the processors
 *   that also run in greedy mode; the warpers follow only when sampling, in the order
 *   Temperature (if T ≠ 1), TopK (if k ≠ 0), TopP (if p < 1), MinP, each with
 *   min_tokens_to_keep = 1.
 * - `logits_process.py`: the processors themselves; each rule is restated at its step below.
 *
 * Frequency and presence penalties are not HF processors. They follow OpenAI's formula
 * `s_i -= α_f·c_i + α_p·[c_i > 0]` on the logits, applied right after the repetition penalty,
 * so before temperature (the order vLLM uses as well).
 *
 * Scores stay float32 up to the softmax, like HF's. The HF processors' arithmetic is float32 as
 * torch does it on CPU (the Python scalar cast to float32, a correctly rounded operation; on CUDA
 * torch divides by multiplying with the reciprocal, up to 1 ulp off), so `scores` should match
 * HF's on CPU bit for bit. The softmax and everything after it are float64, where HF sums
 * top-p's cumulative probabilities in float32: a token whose cumulative mass lies within ~1e-7
 * of 1 − top_p can fall on the other side of the cut there.
 */
import { LmdynError } from '../errors.js';
import type { Rng } from '../tensor/rng.js';
import { expShiftWasm } from '../tensor/wasm/kernels.js';

export interface SamplingConfig {
  /** Divides the scores; 0 = greedy (argmax, the warpers below are skipped, as HF's do_sample=False). */
  temperature: number;
  /** Keep every token scoring ≥ the k-th largest score (ties included); 0 = off. */
  topK: number;
  /** Nucleus: keep the smallest most-probable set with mass ≥ p (HF's rule, see below); 1 = off. */
  topP: number;
  /** Drop tokens with probability < minP × the top probability (after temperature); 0 = off. */
  minP: number;
  /** HF RepetitionPenaltyLogitsProcessor θ: s/θ if s ≥ 0, s·θ if s < 0, once per seen token; 1 = off. */
  repetitionPenalty: number;
  /** OpenAI-style: s_i −= α_f · count_i; 0 = off. */
  frequencyPenalty: number;
  /** OpenAI-style: s_i −= α_p · [count_i > 0]; 0 = off. */
  presencePenalty: number;
}

/**
 * Every transform off: pure sampling from softmax(logits). Note HF's GenerationConfig defaults
 * to top_k = 50; pass `topK: 50` to reproduce a bare `generate(do_sample=True)`.
 */
export const defaultSampling: Readonly<SamplingConfig> = Object.freeze({
  temperature: 1,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
});

export interface NextTokenDistribution {
  /** Probability of each token, zero outside the support: [vocab], float64. */
  probs: Float64Array;
  /**
   * What HF returns as `scores` with `output_scores=True`: the logits after penalties and
   * temperature, −∞ where a warper removed the token (greedy: after penalties only). [vocab]
   * The kept tokens are exactly those with a finite score.
   */
  scores: Float32Array;
  /** Number of kept tokens: the support of the face Δ_S the token is drawn on (papers.md §4.2). */
  size: number;
  /**
   * Kept token ids, most probable first; ranked from `scores` on first access (a sort the
   * generation loop does not need), so read it before modifying `scores`. Equal scores are
   * ordered as HF ranks them for top-p: torch.sort ascending keeps equal values in id order on
   * CPU, so the higher id comes first. A kept token can have probability 0 if exp underflows.
   */
  readonly support: Int32Array;
  /**
   * The kept ids in no particular order where the sampler has them anyway (greedy, top-p,
   * min-p); null where finding them would take a pass over the vocabulary (then the kept tokens
   * are those with a finite score). Lets a reader of the distribution skip the zeros.
   */
  kept: Int32Array | null;
  /**
   * Entropy (nats) and largest probability where they came free with the normalizer (the
   * whole-vocabulary SIMD pass); null otherwise (distributionStats computes them).
   */
  stats?: { entropy: number; top1: number } | null;
}

/** Fills defaults and checks ranges; throws LmdynError('bad_argument') naming the bad field. */
export function validateSampling(c: Partial<SamplingConfig>): SamplingConfig {
  for (const key of Object.keys(c)) {
    if (!(key in defaultSampling)) {
      const known = Object.keys(defaultSampling).join(', ');
      throw new LmdynError('bad_argument', `unknown sampling option "${key}" (known: ${known})`);
    }
  }
  const out: SamplingConfig = { ...defaultSampling };
  for (const key of Object.keys(defaultSampling) as (keyof SamplingConfig)[]) {
    const v = c[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new LmdynError(
        'bad_argument',
        `sampling ${key} must be a finite number, got ${String(v)}`,
      );
    }
    out[key] = v;
  }
  const bad = (message: string): never => {
    throw new LmdynError('bad_argument', `sampling ${message}`);
  };
  if (out.temperature < 0) bad(`temperature must be ≥ 0 (0 = greedy), got ${out.temperature}`);
  if (!Number.isInteger(out.topK) || out.topK < 0) {
    bad(`topK must be a whole number ≥ 0 (0 = off), got ${out.topK}`);
  }
  if (!(out.topP > 0 && out.topP <= 1)) bad(`topP must be in (0, 1] (1 = off), got ${out.topP}`);
  if (!(out.minP >= 0 && out.minP <= 1)) bad(`minP must be in [0, 1] (0 = off), got ${out.minP}`);
  if (!(out.repetitionPenalty > 0)) {
    bad(`repetitionPenalty must be > 0 (1 = off), got ${out.repetitionPenalty}`);
  }
  return out;
}

/**
 * Applies the history-dependent score adjustments in place (papers.md §4.2, path-dependent
 * scores). `history` is every token the model has seen: prompt + generated so far. That is what
 * HF's repetition penalty counts (its input_ids include the prompt for decoder-only models);
 * lmdyn counts the same history for the frequency and presence penalties, whereas OpenAI and
 * vLLM count only generated tokens for those two.
 *
 * Per distinct token id in the history, with count c:
 *   1. repetition (HF): s ← s·θ if s < 0, else s/θ — once, however often the token occurs;
 *   2. frequency/presence (OpenAI): s ← s − α_f·c − α_p.
 */
export function applyPenalties(
  scores: Float32Array,
  history: ArrayLike<number>,
  c: Pick<SamplingConfig, 'repetitionPenalty' | 'frequencyPenalty' | 'presencePenalty'>,
): void {
  if (c.repetitionPenalty === 1 && c.frequencyPenalty === 0 && c.presencePenalty === 0) return;
  const theta = Math.fround(c.repetitionPenalty); // torch casts the scalar to the scores' float32
  for (const [id, count] of tokenCounts(history, scores.length)) {
    if (theta !== 1) scores[id] = scores[id] < 0 ? scores[id] * theta : scores[id] / theta;
    scores[id] -= c.frequencyPenalty * count + c.presencePenalty;
  }
}

/**
 * The distribution the next token is drawn from, for one row of logits [vocab] (not modified).
 * `c` should come from validateSampling. O(V): top-k selects with a heap, top-p ranks only the
 * score bucket its cut falls in, and the support is ranked only when read.
 */
export function nextTokenDistribution(
  logits: Float32Array,
  history: ArrayLike<number>,
  c: SamplingConfig,
): NextTokenDistribution {
  const V = logits.length;
  // scores: [V] processed scores, float32 like HF's; a removed token becomes −∞.
  const scores = new Float32Array(logits);
  applyPenalties(scores, history, c);
  const probs = new Float64Array(V);

  if (c.temperature === 0) {
    // Greedy: HF applies no warper and takes torch.argmax (first maximum) of the processed scores.
    scanScores(scores);
    const id = argmax(scores);
    probs[id] = 1;
    const one = Int32Array.of(id);
    return { probs, scores, size: 1, support: one, kept: one, stats: { entropy: 0, top1: 1 } };
  }

  // TemperatureLogitsWarper: scores / T, a float32 division as torch's (T cast to float32).
  const T = Math.fround(c.temperature);
  if (c.temperature !== 1) for (let i = 0; i < V; i++) scores[i] /= T;
  const { max, finite } = scanScores(scores);

  // TopKLogitsWarper: remove scores < the k-th largest (torch.topk(scores, k)[0][-1]), so every
  // token tied with the k-th survives.
  const floor = c.topK > 0 && c.topK < finite ? kthLargest(scores, c.topK) : -Infinity;
  if (c.topP === 1 && c.minP === 0) return keepAll(scores, probs, max, floor, finite);
  // Candidates in descending id order, the tie order of rankByScore. Until the end, probs holds
  // e_i = exp(z_i − max), the unnormalized float64 probabilities.
  const candidates = new Int32Array(finite);
  let n = 0;
  for (let i = V - 1; i >= 0; i--) {
    if (scores[i] < floor) scores[i] = -Infinity;
    else if (scores[i] > -Infinity) candidates[n++] = i;
  }
  // Σ e over the candidates: top-p's normalizer. The SIMD kernel takes the whole row (e = 0 at
  // −∞); with few candidates left (a top-k cut) the JS loop over them is cheaper.
  let total = n * 8 >= V ? (expShiftWasm(scores, max, probs)?.sum ?? -1) : -1;
  if (total < 0) {
    total = 0;
    for (let j = 0; j < n; j++) {
      const i = candidates[j];
      probs[i] = Math.exp(scores[i] - max);
      total += probs[i];
    }
  }

  // TopPLogitsWarper, then MinPLogitsWarper.
  const survivors = applyTopPMinP(candidates.subarray(0, n), scores, probs, {
    total,
    max,
    topP: c.topP,
    minP: c.minP,
  });

  let keptMass = 0;
  for (let j = 0; j < survivors.length; j++) keptMass += probs[survivors[j]];
  for (let j = 0; j < survivors.length; j++) probs[survivors[j]] /= keptMass;
  let support: Int32Array | null = null;
  return {
    probs,
    scores,
    size: survivors.length,
    get support() {
      return (support ??= rankByScore(scores, survivors));
    },
    kept: survivors,
  };
}

/**
 * The end of nextTokenDistribution without top-p and min-p: every score ≥ floor is kept, so the
 * support needs no candidate list (it is built only if read) and Σ e is the normalizer.
 */
function keepAll(
  scores: Float32Array,
  probs: Float64Array,
  max: number,
  floor: number,
  finite: number,
): NextTokenDistribution {
  const V = scores.length;
  let n = finite;
  if (floor > -Infinity) {
    n = 0;
    for (let i = 0; i < V; i++) {
      if (scores[i] < floor) scores[i] = -Infinity;
      else if (scores[i] > -Infinity) n++;
    }
  }
  // e_i = exp(z_i − max): the SIMD kernel takes the whole row (e = 0 at −∞); with few tokens
  // left (a top-k cut) the JS loop is cheaper.
  const simd = n * 8 >= V ? expShiftWasm(scores, max, probs) : null;
  let total = simd ? simd.sum : -1;
  if (total < 0) {
    total = 0;
    for (let i = V - 1; i >= 0; i--) {
      if (scores[i] > -Infinity) {
        probs[i] = Math.exp(scores[i] - max);
        total += probs[i];
      }
    }
  }
  for (let i = 0; i < V; i++) probs[i] /= total;
  let support: Int32Array | null = null;
  return {
    probs,
    scores,
    size: n,
    get support() {
      if (support) return support;
      const kept = new Int32Array(n); // descending id order, the tie order of rankByScore
      for (let i = V - 1, j = 0; i >= 0; i--) if (scores[i] > -Infinity) kept[j++] = i;
      return (support = rankByScore(scores, kept));
    },
    kept: null,
    // Σ e and Σ e·(z − max) are the kernel's by-products: H = log Σe − Σ e·x / Σe, and the
    // top token has e = 1
    stats: simd
      ? { entropy: Math.max(0, Math.log(total) - simd.weighted / total), top1: 1 / total }
      : null,
  };
}

/**
 * Draws a token id from `probs` by inverse CDF over ids in order, with one uniform from `rng`.
 * `rng = null` is greedy: the argmax, lowest id on ties (as torch.argmax).
 */
export function sampleToken(probs: Float64Array, rng: Rng | null): number {
  if (rng === null) return argmax(probs);
  const u = rng.next();
  let cumulative = 0;
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    cumulative += probs[i];
    last = i;
    if (u < cumulative) return i;
  }
  if (last < 0) throw new LmdynError('bad_argument', 'cannot sample from an all-zero distribution');
  return last; // Σ probs rounded just below u
}

/** log π_1(z): log-softmax of a logits row at temperature 1 (papers.md §0.1), float64. [V] */
export function logSoftmax(logits: Float32Array): Float64Array {
  const { max } = scanScores(logits);
  let sum = expShiftWasm(logits, max)?.sum ?? -1;
  if (sum < 0) {
    sum = 0;
    for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  }
  const logZ = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - logZ;
  return out;
}

/**
 * Entropy and largest probability of a distribution from nextTokenDistribution, without a
 * logarithm per token: on the support p_i = exp(s_i − log Z), so H = log Z − Σ p_i s_i with
 * log Z = s_m − log p_m for the most probable token m. O(V) multiply-adds where `entropy`
 * needs V logarithms (10× slower); the two agree to ~1e-15 × max |s|.
 */
export function distributionStats(d: {
  probs: Float64Array;
  scores: Float32Array;
  kept?: Int32Array | null;
}): {
  entropy: number;
  top1: number;
} {
  const { probs, scores } = d;
  const kept = d.kept ?? null;
  const n = kept ? kept.length : probs.length;
  let acc = 0;
  let best = 0;
  let m = -1;
  for (let j = 0; j < n; j++) {
    const i = kept ? kept[j] : j;
    const p = probs[i];
    if (p > 0) {
      acc += p * scores[i];
      if (p > best) {
        best = p;
        m = i;
      }
    }
  }
  if (m < 0) throw new LmdynError('bad_argument', 'an all-zero distribution has no entropy');
  return { entropy: Math.max(0, scores[m] - Math.log(best) - acc), top1: best };
}

/** True when the sampled distribution is softmax(logits) itself: T = 1, no penalty, no warper. */
export function isPlainSampling(c: SamplingConfig): boolean {
  return (
    c.temperature === 1 &&
    c.topK === 0 &&
    c.topP === 1 &&
    c.minP === 0 &&
    c.repetitionPenalty === 1 &&
    c.frequencyPenalty === 0 &&
    c.presencePenalty === 0
  );
}

/** Occurrences of each distinct token id in the history. */
function tokenCounts(history: ArrayLike<number>, vocab: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (let t = 0; t < history.length; t++) {
    const id = history[t];
    if (!(Number.isInteger(id) && id >= 0 && id < vocab)) {
      throw new LmdynError(
        'bad_argument',
        `history token ${id} is outside the vocabulary [0, ${vocab})`,
      );
    }
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** Filters a token out: score −∞ (as HF's filter_value), probability 0. */
function remove(id: number, scores: Float32Array, probs: Float64Array): void {
  scores[id] = -Infinity;
  probs[id] = 0;
}

/**
 * TopPLogitsWarper and MinPLogitsWarper on the candidates `ids` (in tie order; their
 * e_i = exp(z_i − max) in `probs`, Σ e = total). Both only ever remove a bottom set of the
 * ranking, so they are computed together without ranking everything:
 * - min-p removes p_i < min_p · p_max, i.e. e_i < min_p (p_max ↔ e = 1). HF runs it after top-p,
 *   whose renormalization leaves the ratio unchanged; its mass still counts in top-p's sums.
 * - top-p (HF): sort ascending, remove every token whose cumulative probability is ≤ 1 − top_p,
 *   keep the top one (min_tokens_to_keep = 1). The tokens with p_i < (1 − top_p)/n hold less
 *   than 1 − top_p together, so each goes at once. The rest are bucketed by score: buckets whose
 *   mass lies at or under 1 − top_p go, those above the crossing bucket stay, and only the
 *   crossing bucket is ranked and cut token by token.
 * Compacts `ids` in place; returns the kept ids. O(n) plus one bucket's sort.
 */
function applyTopPMinP(
  ids: Int32Array,
  scores: Float32Array,
  probs: Float64Array,
  s: { total: number; max: number; topP: number; minP: number },
): Int32Array {
  const topP = s.topP < 1;
  const cut = Math.max(s.minP, topP ? (s.total * (1 - s.topP)) / ids.length : 0);
  if (cut === 0) return ids;
  // Survivors have e ≥ cut, so 0 ≤ max − z ≤ −ln(cut): split that range into equal buckets.
  const buckets = 2048;
  const range = -Math.log(cut);
  const scale = range > 0 ? (buckets - 1) / range : 0;
  const bucket = new Uint16Array(ids.length); // 0 = top
  const mass = new Float64Array(buckets);
  const count = new Int32Array(buckets);
  let below = 0; // Σ e of the removed bottom set
  let n = 0;
  for (let j = 0; j < ids.length; j++) {
    const id = ids[j];
    if (probs[id] < cut) {
      below += probs[id];
      remove(id, scores, probs);
    } else {
      // 0 ≤ (max − z)·scale ≲ buckets − 1 here (e ≥ cut), so truncation is the floor
      const f = ((s.max - scores[id]) * scale) | 0;
      const b = f < buckets - 1 ? f : buckets - 1;
      ids[n] = id;
      bucket[n++] = b;
      mass[b] += probs[id];
      count[b]++;
    }
  }
  if (!topP) return ids.subarray(0, n);

  const limit = 1 - s.topP;
  let cumulative = below / s.total; // ascending cumulative probability
  let crossing = buckets - 1;
  for (; crossing > 0; crossing--) {
    if (cumulative + mass[crossing] / s.total > limit) break;
    cumulative += mass[crossing] / s.total;
  }
  // Kept: the buckets above the crossing one in their given order, then the crossing bucket's
  // survivors in rank order. Equal scores share a bucket, so their relative order is unchanged.
  const inCrossing = new Int32Array(count[crossing]);
  let m = 0;
  let k = 0;
  for (let j = 0; j < n; j++) {
    if (bucket[j] < crossing) ids[k++] = ids[j];
    else if (bucket[j] === crossing) inCrossing[m++] = ids[j];
    else remove(ids[j], scores, probs);
  }
  const ranked = rankByScore(scores, inCrossing);
  let last = m - 1; // lowest-ranked token of the crossing bucket that stays
  for (; last >= 0; last--) {
    cumulative += probs[ranked[last]] / s.total;
    if (cumulative > limit) break;
  }
  if (crossing === 0) last = Math.max(last, 0); // ranked[0] is then the top token
  for (let r = 0; r < m; r++) {
    if (r <= last) ids[k++] = ranked[r];
    else remove(ranked[r], scores, probs);
  }
  return ids.subarray(0, k);
}

/** Index of the first maximum (torch.argmax's tie rule). */
function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Largest score and number of finite scores; −∞ is a masked token, NaN and +∞ are errors. */
function scanScores(z: Float32Array): { max: number; finite: number } {
  let max = -Infinity;
  let finite = 0;
  for (let i = 0; i < z.length; i++) {
    const v = z[i];
    if (!(v < Infinity)) {
      throw new LmdynError(
        'bad_argument',
        `token ${i} has score ${v}; scores must be finite or −∞`,
      );
    }
    if (v > -Infinity) finite++;
    if (v > max) max = v;
  }
  if (finite === 0)
    throw new LmdynError('bad_argument', 'every logit is −∞: no token can be drawn');
  return { max, finite };
}

/** k-th largest finite score (counting repeats), 1 ≤ k ≤ #finite, via a size-k min-heap: O(V log k). */
function kthLargest(z: Float32Array, k: number): number {
  const heap = new Float32Array(k); // the k largest seen so far; heap[0] is the smallest of them
  let size = 0;
  for (let i = 0; i < z.length; i++) {
    const v = z[i];
    if (v === -Infinity) continue;
    if (size < k) {
      let j = size++;
      while (j > 0 && heap[(j - 1) >> 1] > v) {
        heap[j] = heap[(j - 1) >> 1];
        j = (j - 1) >> 1;
      }
      heap[j] = v;
    } else if (v > heap[0]) {
      let j = 0;
      while (true) {
        let child = 2 * j + 1;
        if (child >= k) break;
        if (child + 1 < k && heap[child + 1] < heap[child]) child++;
        if (heap[child] >= v) break;
        heap[j] = heap[child];
        j = child;
      }
      heap[j] = v;
    }
  }
  return heap[0];
}

/**
 * Sorts `ids` by score, highest first, keeping the given order among equal scores: an LSD radix
 * sort (three 11-bit passes, stable) on the float32 bits mapped to unsigned keys that order
 * descending scores. O(n), where a comparison sort of 32000 ids costs several milliseconds.
 */
function rankByScore(z: Float32Array, ids: Int32Array): Int32Array {
  const n = ids.length;
  const bits = new Uint32Array(z.buffer, z.byteOffset, z.length);
  let keys = new Uint32Array(n);
  let order = ids.slice();
  let nextKeys = new Uint32Array(n);
  let nextOrder = new Int32Array(n);
  const hist = new Int32Array(3 * 2048); // one 2048-bucket histogram per pass
  for (let i = 0; i < n; i++) {
    let b = bits[order[i]];
    if (b === 0x80000000) b = 0; // −0 ranks with +0: they compare equal, as in torch.sort
    // Negative floats: larger bits = more negative = later. Positive: larger bits = earlier.
    const key = b & 0x80000000 ? b : ~b & 0x7fffffff;
    keys[i] = key;
    hist[key & 2047]++;
    hist[2048 + ((key >>> 11) & 2047)]++;
    hist[4096 + (key >>> 22)]++;
  }
  for (let pass = 0; pass < 3; pass++) {
    const base = pass * 2048;
    let start = 0;
    for (let d = 0; d < 2048; d++) {
      const count = hist[base + d];
      hist[base + d] = start;
      start += count;
    }
    const shift = 11 * pass;
    for (let i = 0; i < n; i++) {
      const at = hist[base + ((keys[i] >>> shift) & 2047)]++;
      nextKeys[at] = keys[i];
      nextOrder[at] = order[i];
    }
    [keys, nextKeys] = [nextKeys, keys];
    [order, nextOrder] = [nextOrder, order];
  }
  return order;
}
