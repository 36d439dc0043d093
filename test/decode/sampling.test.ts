import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyPenalties,
  defaultSampling,
  logSoftmax,
  nextTokenDistribution,
  sampleToken,
  validateSampling,
  type SamplingConfig,
} from '../../src/decode/sampling.js';
import { LmdynError } from '../../src/errors.js';
import { entropy } from '../../src/stats/describe.js';
import { createRng } from '../../src/tensor/rng.js';

// References: hand-computed closed forms (arithmetic in the comments, exp values to 6 digits),
// and a line-by-line transcription of Hugging Face's processors (hfReference, at the bottom:
// transformers generation/logits_process.py, order from generation/utils.py _get_logits_processor).

const cfg = (c: Partial<SamplingConfig>): SamplingConfig => validateSampling(c);
const dist = (logits: number[], c: Partial<SamplingConfig>, history: number[] = []) =>
  nextTokenDistribution(Float32Array.from(logits), history, cfg(c));

function assertProbs(actual: Float64Array, expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  expected.forEach((p, i) =>
    assert.ok(Math.abs(actual[i] - p) <= tol, `p[${i}] = ${actual[i]}, expected ${p}`),
  );
}

test('temperature scales the logits before the softmax', () => {
  // z = [2, 1, 0] / 0.5 = [4, 2, 0]; e^4 = 54.59815, e^2 = 7.389056, e^0 = 1; Σ = 62.98721
  // → [0.866813, 0.117310, 0.015876]
  assertProbs(dist([2, 1, 0], { temperature: 0.5 }).probs, [0.866813, 0.11731, 0.015876]);
  // z = [2, 1, 0] / 2 = [1, 0.5, 0]; e^1 = 2.718282, e^0.5 = 1.648721, 1; Σ = 5.367003
  // → [0.506480, 0.307196, 0.186324]
  const hot = dist([2, 1, 0], { temperature: 2 });
  assertProbs(hot.probs, [0.50648, 0.307196, 0.186324]);
  assert.deepEqual([...hot.support], [0, 1, 2]);
  // HF's output_scores: the scores after temperature.
  assert.deepEqual([...hot.scores], [1, 0.5, 0]);
});

test('top-k keeps every token tied with the k-th largest score', () => {
  // k = 2 on [3, 1, 2, 2, 0]: the 2nd largest is 2, HF removes scores < 2, so 3 tokens stay.
  // e^3 = 20.085537, e^2 = 7.389056 (twice); Σ = 34.863649 → 0.576117, 0.211942, 0.211942
  const d = dist([3, 1, 2, 2, 0], { topK: 2 });
  assertProbs(d.probs, [0.576117, 0, 0.211942, 0.211942, 0]);
  // Tied scores rank the higher id first (torch.sort ascending keeps ties in id order on CPU).
  assert.deepEqual([...d.support], [0, 3, 2]);
  assert.deepEqual([...d.scores], [3, -Infinity, 2, 2, -Infinity]);
  // k ≥ vocabulary keeps everything.
  assert.equal(dist([3, 1, 2, 2, 0], { topK: 9 }).support.length, 5);
});

test('top-p keeps the token that crosses the threshold (HF: remove cumulative ≤ 1 − p, ascending)', () => {
  const logits = [Math.log(0.5), Math.log(0.3), Math.log(0.2)];
  // Ascending probs 0.2, 0.3, 0.5 have cumulative sums 0.2, 0.5, 1.0.
  // p = 0.6: remove cumulative ≤ 0.4 → only 0.2 goes; keep {0.5, 0.3} → 0.625, 0.375.
  assertProbs(dist(logits, { topP: 0.6 }).probs, [0.625, 0.375, 0]);
  // p = 0.55: remove ≤ 0.45 → only 0.2 goes (0.5 > 0.45): two tokens again.
  assert.equal(dist(logits, { topP: 0.55 }).support.length, 2);
  // p = 0.45: remove ≤ 0.55 → 0.2 and 0.3 go (0.5 ≤ 0.55): one token, probability 1.
  assertProbs(dist(logits, { topP: 0.45 }).probs, [1, 0, 0]);
  // p = 0.5 is the exact boundary: cumulative 0.5 ≤ 1 − 0.5 removes 0.3, keeping one token in
  // exact arithmetic, but 0.2 + 0.3 from float32 logits may round either side of 0.5. The same
  // boundary with exactly representable masses: four equal logits give 0.25 each, cumulative
  // 0.25, 0.5, 0.75, 1. p = 0.5 removes ≤ 0.5 → two stay (a strict < would keep three); the
  // ascending sort keeps ties in id order, so ids 0 and 1 go.
  const flat = dist([0, 0, 0, 0], { topP: 0.5 });
  assert.deepEqual([...flat.support], [3, 2]);
  assertProbs(flat.probs, [0, 0, 0.5, 0.5], 0);
  // p = 0.75 removes ≤ 0.25 → three stay.
  assert.deepEqual([...dist([0, 0, 0, 0], { topP: 0.75 }).support], [3, 2, 1]);
  // A tiny p still keeps the top token (min_tokens_to_keep = 1).
  assert.deepEqual([...dist(logits, { topP: 1e-9 }).support], [0]);
});

test('min-p is relative to the top probability after temperature', () => {
  // Relative masses 1, 0.5, 0.1, 0.05 (p_i / p_max).
  const logits = [0, Math.log(0.5), Math.log(0.1), Math.log(0.05)];
  // min_p = 0.2 removes p_i < 0.2 p_max → keep 1, 0.5 → 1/1.5 = 0.666667, 0.5/1.5 = 0.333333
  assertProbs(dist(logits, { minP: 0.2 }).probs, [0.666667, 0.333333, 0, 0]);
  // min_p = 0.08 → keep 1, 0.5, 0.1; Σ = 1.6 → 0.625, 0.3125, 0.0625
  assertProbs(dist(logits, { minP: 0.08 }).probs, [0.625, 0.3125, 0.0625, 0]);
  // [0, −1, −2] with min_p = 0.2: at T = 1 the ratios are 1, e^−1 = 0.367879, e^−2 = 0.135335,
  // so the last goes → [1, 0.367879]/1.367879 = [0.731059, 0.268941].
  assertProbs(dist([0, -1, -2], { minP: 0.2 }).probs, [0.731059, 0.268941, 0]);
  // At T = 2 the ratios are 1, e^−0.5 = 0.606531, e^−1 = 0.367879: all stay, = softmax([0, −.5, −1]).
  assertProbs(
    dist([0, -1, -2], { minP: 0.2, temperature: 2 }).probs,
    [0.50648, 0.307196, 0.186324],
  );
});

test('repetition penalty: divide positive, multiply negative, once per distinct seen token', () => {
  // θ = 2, history [0, 1, 1, 2] (prompt + generated; token 1 twice is still penalized once):
  // token 0: 2/2 = 1; token 1: −1·2 = −2 (not −4); token 2: 0 stays 0; token 3 unseen: 3.
  const s = Float32Array.from([2, -1, 0, 3]);
  applyPenalties(s, [0, 1, 1, 2], cfg({ repetitionPenalty: 2 }));
  assert.deepEqual([...s], [1, -2, 0, 3]);
  // θ < 1 rewards: 2/0.5 = 4, −1·0.5 = −0.5.
  const r = Float32Array.from([2, -1]);
  applyPenalties(r, [0, 1], cfg({ repetitionPenalty: 0.5 }));
  assert.deepEqual([...r], [4, -0.5]);
});

test('frequency and presence penalties count the whole history; repetition penalty comes first', () => {
  // history [0, 0, 0, 1]: counts c0 = 3, c1 = 1. α_f = 0.5, α_p = 0.25:
  // token 0: 1 − 0.5·3 − 0.25 = −0.75; token 1: 1 − 0.5·1 − 0.25 = 0.25; unseen stay 1.
  const s = Float32Array.from([1, 1, 1, 1]);
  applyPenalties(s, [0, 0, 0, 1], cfg({ frequencyPenalty: 0.5, presencePenalty: 0.25 }));
  assert.deepEqual([...s], [-0.75, 0.25, 1, 1]);
  // With θ = 2 too, repetition first: token 0: 1/2 − 1.75 = −1.25 (the other order would give
  // (1 − 1.75)·2 = −1.5); token 1: 1/2 − 0.75 = −0.25.
  const c = { repetitionPenalty: 2, frequencyPenalty: 0.5, presencePenalty: 0.25 };
  const t = Float32Array.from([1, 1, 1, 1]);
  applyPenalties(t, [0, 0, 0, 1], cfg(c));
  assert.deepEqual([...t], [-1.25, -0.25, 1, 1]);
  // Penalties act before temperature: T = 2 halves the penalized scores → [−0.625, −0.125, 0.5, 0.5];
  // softmax: e^−0.625 = 0.535261, e^−0.125 = 0.882497, e^0.5 = 1.648721 (twice); Σ = 4.715201
  // → [0.113518, 0.187160, 0.349661, 0.349661]
  const d = dist([1, 1, 1, 1], { ...c, temperature: 2 }, [0, 0, 0, 1]);
  assert.deepEqual([...d.scores], [-0.625, -0.125, 0.5, 0.5]);
  assertProbs(d.probs, [0.113518, 0.18716, 0.349661, 0.349661]);
  // Out-of-vocabulary history is an error.
  assert.throws(() => applyPenalties(s, [4], cfg({ presencePenalty: 1 })), LmdynError);
});

test('composition order: temperature, then top-k, then top-p (HF), differs from other orders', () => {
  // Temperature before top-p. Logits [2, 1, 0], T = 2, p = 0.6.
  // HF: π_2 = [0.506480, 0.307196, 0.186324]; remove ascending cumulative ≤ 0.4: 0.186324 goes,
  // 0.493520 stays → keep 2: [e^1, e^0.5]/(e^1 + e^0.5) = [0.622459, 0.377541].
  // Top-p first at T = 1: π_1 = [0.665241, 0.244728, 0.090031], cumulative 0.090031 and 0.334759
  // are both ≤ 0.4 → one token would be left.
  assertProbs(dist([2, 1, 0], { temperature: 2, topP: 0.6 }).probs, [0.622459, 0.377541, 0]);
  // Top-k before top-p. probs [0.4, 0.3, 0.2, 0.1], k = 3, p = 0.75.
  // HF: top-3 renormalized = [4/9, 3/9, 2/9] = [0.444, 0.333, 0.222]; remove ≤ 0.25: 2/9 goes
  // → [0.4, 0.3]/0.7 = [0.571429, 0.428571].
  // Top-p first on all four: cumulative 0.1 (≤ 0.25, goes), 0.3 (stays) → 3 tokens, then top-3 keeps 3.
  const logits = [0.4, 0.3, 0.2, 0.1].map(Math.log);
  assertProbs(dist(logits, { topK: 3, topP: 0.75 }).probs, [0.571429, 0.428571, 0, 0]);
});

test('greedy: argmax of the penalized scores, lowest id on ties (torch.argmax)', () => {
  const d = dist([1, 3, 3, 2], { temperature: 0, topK: 1, topP: 0.1 });
  assert.deepEqual([...d.probs], [0, 1, 0, 0]);
  assert.deepEqual([...d.support], [1]);
  assert.deepEqual([...d.scores], [1, 3, 3, 2]); // HF: no warper in greedy mode
  // Repetition penalty still applies: θ = 2 on token 1 → [1, 1.5, 3, 2] → token 2.
  assert.deepEqual(
    [...dist([1, 3, 3, 2], { temperature: 0, repetitionPenalty: 2 }, [1]).support],
    [2],
  );
  // sampleToken without an rng is argmax.
  assert.equal(sampleToken(Float64Array.from([0.2, 0.4, 0.4]), null), 1);
});

test('seeded sampling is reproducible', () => {
  const { probs } = dist([1, 0.5, 0, -0.5, 2], { temperature: 1.3 });
  const draw = (seed: number): number[] => {
    const rng = createRng(seed);
    return Array.from({ length: 200 }, () => sampleToken(probs, rng));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

test('empirical frequencies of 100k samples match probs (chi-square, 4 dof)', () => {
  const { probs } = dist([2, 1, 0.5, 0, -1, -Infinity], {});
  assert.equal(probs[5], 0);
  const n = 100_000;
  const counts = new Array<number>(6).fill(0);
  const rng = createRng(2024);
  for (let i = 0; i < n; i++) counts[sampleToken(probs, rng)]++;
  assert.equal(counts[5], 0); // a −∞ logit is never drawn
  let chi2 = 0;
  for (let i = 0; i < 5; i++) chi2 += (counts[i] - n * probs[i]) ** 2 / (n * probs[i]);
  // χ²(4) upper 1e-4 quantile = 23.51.
  assert.ok(chi2 < 23.51, `chi2 = ${chi2}`);
});

test('logSoftmax and entropy (nats)', () => {
  // [0, 0] → log ½ each; entropy of [½, ¼, ¼] = ½ ln 2 + 2·¼ ln 4 = 1.5 ln 2 = 1.039721.
  assertProbs(logSoftmax(Float32Array.from([0, 0])), [-Math.LN2, -Math.LN2], 1e-12);
  assert.ok(Math.abs(entropy([0.5, 0.25, 0.25, 0]) - 1.5 * Math.LN2) < 1e-12);
  // logSoftmax of [2, 1, 0]: log π_1 = z − log(11.107338) = z − 2.407606.
  assertProbs(logSoftmax(Float32Array.from([2, 1, 0])), [-0.407606, -1.407606, -2.407606]);
});

test('invalid configs and logits are LmdynErrors', () => {
  assert.deepEqual(validateSampling({}), { ...defaultSampling });
  assert.equal(validateSampling({ topP: 1, minP: 1, topK: 0, temperature: 0 }).topP, 1);
  const bad: Partial<SamplingConfig>[] = [
    { temperature: -1 },
    { temperature: NaN },
    { temperature: Infinity },
    { topP: 0 },
    { topP: 1.5 },
    { minP: -0.1 },
    { minP: 1.1 },
    { topK: 1.5 },
    { topK: -1 },
    { repetitionPenalty: 0 },
    { repetitionPenalty: -1 },
    { frequencyPenalty: NaN },
    { top_p: 0.9 } as unknown as Partial<SamplingConfig>,
  ];
  for (const c of bad) {
    assert.throws(
      () => validateSampling(c),
      (e: unknown) =>
        e instanceof LmdynError && e.code === 'bad_argument' && !e.message.includes('\n'),
      JSON.stringify(c),
    );
  }
  assert.throws(() => dist([0, NaN], {}), LmdynError);
  assert.throws(() => dist([-Infinity, -Infinity], {}), LmdynError);
});

test('matches a transcription of HF on random logits with ties and every transform', () => {
  const rng = createRng(99);
  for (let trial = 0; trial < 400; trial++) {
    const V = 1 + Math.floor(rng.next() * 40);
    // Scores on a 0.5 grid so that ties are common.
    const logits = Array.from({ length: V }, () => Math.round(rng.normal() * 6) / 2);
    if (V > 2 && rng.next() < 0.2) logits[1] = -Infinity;
    if (!logits.some((v) => v > -Infinity)) logits[0] = 0;
    const history = Array.from({ length: Math.floor(rng.next() * 6) }, () =>
      Math.floor(rng.next() * V),
    );
    const pick = <T>(options: T[]): T => options[Math.floor(rng.next() * options.length)];
    const c = cfg({
      temperature: pick([0, 0.3, 0.7, 1, 1.5]),
      topK: pick([0, 0, 1, 2, 3, 5]),
      topP: pick([1, 1, 0.3, 0.6, 0.9]),
      minP: pick([0, 0, 0.05, 0.3]),
      repetitionPenalty: pick([1, 1, 1.3, 0.8]),
      frequencyPenalty: pick([0, 0.4, -0.2]),
      presencePenalty: pick([0, 0.3]),
    });
    const got = nextTokenDistribution(Float32Array.from(logits), history, c);
    const want = hfReference(logits, history, c);
    const at = `trial ${trial}: ${JSON.stringify({ logits, history, c })}`;
    assert.equal(got.size, want.support.length, at);
    assert.deepEqual([...got.support], want.support, at);
    assertProbs(got.probs, want.probs, 1e-9);
    assert.deepEqual([...got.scores], want.scores, at);
  }
});

test('vocabulary 32000: same as the HF transcription, including ties at the top-p cut', () => {
  const rng = createRng(5);
  const V = 32000;
  const smooth = Array.from({ length: V }, () => rng.normal() * 3);
  // On a 0.25 grid thousands of tokens share each score, so top-p cuts inside a tie.
  const tied = smooth.map((v) => Math.round(v * 4) / 4);
  const history = [5, 17, 17, 31999];
  for (const c of [
    { temperature: 0.8, topK: 40 },
    { temperature: 1.2, topP: 0.9 },
    { temperature: 1.5, topP: 0.95 },
    { temperature: 1, minP: 0.05, repetitionPenalty: 1.2 },
    { temperature: 0.9, topP: 0.5, minP: 0.01, frequencyPenalty: 0.5 },
    { topK: 2000, topP: 0.8 },
    { temperature: 1.5 },
  ]) {
    for (const logits of [smooth, tied]) {
      const got = nextTokenDistribution(Float32Array.from(logits), history, cfg(c));
      const want = hfReference(logits, history, cfg(c));
      assert.equal(got.size, want.support.length, JSON.stringify(c));
      assert.deepEqual([...got.support], want.support, JSON.stringify(c));
      assert.deepEqual([...got.scores], want.scores, JSON.stringify(c));
      assertProbs(got.probs, want.probs, 1e-12);
    }
  }
});

/**
 * Hugging Face's processors transcribed statement by statement on full vocabulary arrays
 * (transformers generation/logits_process.py), in _get_logits_processor's order. Sorting is
 * JavaScript's stable sort, as torch.sort behaves on CPU for ties.
 */
function hfReference(
  logits: number[],
  history: number[],
  c: SamplingConfig,
): { probs: number[]; support: number[]; scores: number[] } {
  const V = logits.length;
  const s = Float32Array.from(logits);
  // RepetitionPenaltyLogitsProcessor: gather the scores of input_ids, torch.where(score < 0,
  // score * penalty, score / penalty), scatter back (a repeated id writes the same value).
  const seen = [...new Set(history)];
  if (c.repetitionPenalty !== 1) {
    const theta = Math.fround(c.repetitionPenalty); // a Python float becomes a float32 scalar
    const g = seen.map((id) => s[id]);
    seen.forEach((id, j) => {
      s[id] = g[j] < 0 ? g[j] * theta : g[j] / theta;
    });
  }
  // OpenAI: mu[j] -= c[j] * alpha_frequency + (c[j] > 0) * alpha_presence.
  for (const id of seen) {
    const count = history.filter((h) => h === id).length;
    s[id] -= c.frequencyPenalty * count + c.presencePenalty;
  }
  if (c.temperature === 0) {
    const best = s.indexOf(Math.max(...s));
    return { probs: logits.map((_, i) => (i === best ? 1 : 0)), support: [best], scores: [...s] };
  }
  // TemperatureLogitsWarper
  if (c.temperature !== 1) for (let i = 0; i < V; i++) s[i] = s[i] / Math.fround(c.temperature);
  const softmax = (x: ArrayLike<number>): number[] => {
    const m = Math.max(...Array.from(x));
    const e = Array.from(x, (v) => Math.exp(v - m));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  };
  // TopKLogitsWarper: scores < torch.topk(scores, top_k)[0][..., -1] → −inf
  if (c.topK !== 0) {
    const k = Math.min(Math.max(c.topK, 1), V);
    const kth = [...s].sort((a, b) => b - a)[k - 1];
    for (let i = 0; i < V; i++) if (s[i] < kth) s[i] = -Infinity;
  }
  // TopPLogitsWarper
  if (c.topP < 1) {
    const sortedIdx = [...Array(V).keys()].sort((a, b) => s[a] - s[b] || 0); // ascending, stable
    const p = softmax(sortedIdx.map((i) => s[i]));
    let cum = 0;
    const remove = p.map((pi) => (cum += pi) <= 1 - c.topP);
    remove[V - 1] = false; // min_tokens_to_keep = 1
    sortedIdx.forEach((id, j) => {
      if (remove[j]) s[id] = -Infinity;
    });
  }
  // MinPLogitsWarper
  if (c.minP !== 0) {
    const p = softmax(s);
    const top = Math.max(...p);
    const keep = p.indexOf(top); // torch.topk(probs, 1)
    for (let i = 0; i < V; i++) if (p[i] < c.minP * top && i !== keep) s[i] = -Infinity;
  }
  const probs = softmax(s);
  const support = [...Array(V).keys()]
    .filter((i) => s[i] > -Infinity)
    .sort((a, b) => s[b] - s[a] || b - a);
  return { probs, support, scores: [...s] };
}
