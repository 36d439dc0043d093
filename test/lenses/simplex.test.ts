import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { generateText, openModel } from '../../src/api.js';
import { encodePrompt, type Model } from '../../src/model/model.js';
import { runWithCache } from '../../src/hooked.js';
import { registerAnalyze } from '../../src/cli/analyze.js';
import { registerSimplexLens } from '../../src/cli/analyze-simplex.js';
import { sealUnit } from '../../src/io/commit.js';
import { LmdynError } from '../../src/errors.js';
import { lastLogits } from '../../src/lenses/simplex/analyze.js';
import { escapeTrials, scoreResponse } from '../../src/lenses/simplex/dynamics.js';
import {
  mwuRuns,
  runFlow,
  twoTokenCounterExample,
  type FlowGrid,
} from '../../src/lenses/simplex/equilibrium.js';
import { faceReport } from '../../src/lenses/simplex/faces.js';
import {
  dirichletLog,
  flowFitness,
  integrateReplicator,
  type FlowKind,
} from '../../src/lenses/simplex/flows.js';
import {
  asymmetry,
  detectLoop,
  loopSummary,
  wilsonInterval,
} from '../../src/lenses/simplex/loops.js';
import { validateSampling } from '../../src/decode/sampling.js';
import { createRng } from '../../src/tensor/rng.js';
import { fixture, model as modelPath } from '../helpers/paths.js';

const STORIES = modelPath('stories260K', 'stories260K.bin');
const PROMPT = 'Once upon a time';

let cached: Promise<Model> | null = null;
const stories = () => (cached ??= openModel(STORIES));

// ---- references written out here, independently of src/lenses/simplex --------------------------

/** softmax(c·s) in float64 (max-shifted). */
function softmaxScaled(s: ArrayLike<number>, c: number): number[] {
  let max = -Infinity;
  for (let i = 0; i < s.length; i++) max = Math.max(max, c * s[i]);
  const e = Array.from({ length: s.length }, (_, i) => Math.exp(c * s[i] - max));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

/** normalise(exp(y)) */
function fromLog(y: ArrayLike<number>): number[] {
  return softmaxScaled(y, 1);
}

function l1(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i] - b[i]);
  return d;
}

/** F(p) = ⟨p, s⟩ + T·H(p) */
function freeEnergyRef(p: number[], s: ArrayLike<number>, T: number): number {
  let f = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) f += p[i] * s[i] - T * p[i] * Math.log(p[i]);
  return f;
}

/** Integrates a flow and hands p(t) to `visit` at every step. */
function trajectory(
  kind: FlowKind,
  s: Float64Array,
  T: number,
  logp0: Float64Array,
  tEnd: number,
  m: number,
  visit: (t: number, p: number[], logp: Float64Array) => void,
): void {
  integrateReplicator(flowFitness(kind, s, T), logp0, {
    stepsPerUnit: m,
    steps: Math.round(tEnd * m),
    onRecord: (_k, t, logp) => visit(t, Array.from(logp, Math.exp), logp),
  });
}

async function storiesScores(): Promise<{
  m: Model;
  logits: Float32Array;
  s: Float64Array;
  ids: number[];
}> {
  const m = await stories();
  const ids = encodePrompt(m, PROMPT);
  const logits = lastLogits(m, ids);
  return { m, logits, s: Float64Array.from(logits), ids };
}

// ---- closed forms on real stories260K logits (papers.md §4.2), float64, 1e-8 ---------------------

test('paper’s flow from uniform is softmax(t·s/T) on stories260K logits: meets π_T at t = 1, goes on to the argmax; Σp = 1 to 1e-12, p inside the simplex', async () => {
  const { s, logits } = await storiesScores();
  // the logits agree with an independent forward pass (runWithCache) before we use them
  const m = await stories();
  const check = runWithCache(m, encodePrompt(m, PROMPT), 'blocks.0.hook_resid_post').logits.data;
  const last = check.subarray(check.length - logits.length);
  assert.ok(l1(last, logits) === 0);
  for (const T of [1, 0.5, 2]) {
    let worst = 0;
    let sumErr = 0;
    let atOne = NaN;
    let minLog = Infinity;
    let minP = Infinity;
    trajectory('paper', s, T, new Float64Array(s.length), 6, 100, (t, p, logp) => {
      worst = Math.max(worst, l1(p, softmaxScaled(s, t / T)));
      sumErr = Math.max(
        sumErr,
        Math.abs(Array.from(logp, Math.exp).reduce((a, b) => a + b, 0) - 1),
      );
      for (let i = 0; i < p.length; i++) {
        minP = Math.min(minP, p[i]);
        minLog = Math.min(minLog, logp[i]);
      }
      if (Math.abs(t - 1) < 1e-12) atOne = l1(p, softmaxScaled(s, 1 / T));
    });
    assert.ok(worst < 1e-8, `T = ${T}: ‖p(t) − softmax(t s/T)‖₁ = ${worst}`);
    assert.ok(atOne < 1e-12, `T = ${T}: at t = 1 ‖p − π_T‖₁ = ${atOne}`);
    assert.ok(sumErr < 1e-12, `Σp − 1 = ${sumErr}`);
    assert.ok(minP >= 0 && Number.isFinite(minLog), `min p ${minP}, min log p ${minLog}`);
  }
  // the long run ends at the argmax vertex, not at π_T
  const top = s.indexOf(Math.max(...s));
  let end: number[] = [];
  trajectory('paper', s, 1, new Float64Array(s.length), 40, 100, (_t, p) => (end = p));
  assert.ok(end[top] > 1 - 1e-12, `p_top(40) = ${end[top]}`);
  assert.ok(l1(end, softmaxScaled(s, 1)) > 0.01);
});

test('entropic flow: from uniform softmax(λ(t)·s), λ = (1 − e^{−Tt})/T; from a random start the log-linear closed form; converges to π_T with F non-decreasing', async () => {
  const { s } = await storiesScores();
  for (const T of [1, 0.5]) {
    let worst = 0;
    let prevF = -Infinity;
    let minIncrement = Infinity;
    let last: number[] = [];
    trajectory('entropic', s, T, new Float64Array(s.length), 10 / T, 100, (t, p) => {
      worst = Math.max(worst, l1(p, softmaxScaled(s, (1 - Math.exp(-T * t)) / T)));
      const f = freeEnergyRef(p, s, T);
      minIncrement = Math.min(minIncrement, f - prevF);
      prevF = f;
      last = p;
    });
    assert.ok(worst < 1e-8, `T = ${T}: ‖p(t) − softmax(λ(t)s)‖₁ = ${worst}`);
    assert.ok(minIncrement > -1e-12, `F decreased by ${-minIncrement}`);
    // distance to π_T decays like e^{−Tt}: at t = 10/T it is below 1e-3
    assert.ok(l1(last, softmaxScaled(s, 1 / T)) < 1e-3);
  }
  // random interior start: log p(t) = e^{−Tt} log p(0) + (1 − e^{−Tt}) s/T + c
  const rng = createRng(5);
  const start = dirichletLog(s.length, () => rng.next());
  const T = 0.7;
  let worst = 0;
  trajectory('entropic', s, T, start, 8, 100, (t, p) => {
    const y = Array.from(
      s,
      (si, i) => Math.exp(-T * t) * start[i] + ((1 - Math.exp(-T * t)) * si) / T,
    );
    worst = Math.max(worst, l1(p, fromLog(y)));
  });
  assert.ok(worst < 1e-8, `random start: ${worst}`);
  // and the paper's flow from the same start: log p(0) + t s/T
  worst = 0;
  trajectory('paper', s, T, start, 4, 100, (t, p) => {
    worst = Math.max(worst, l1(p, fromLog(Array.from(s, (si, i) => start[i] + (t * si) / T))));
  });
  assert.ok(worst < 1e-8, `paper, random start: ${worst}`);
});

test('time rescaling p_T(t) = p_1(t/T) for the paper’s flow, both integrated (T = 0.5, 2)', async () => {
  const { s } = await storiesScores();
  for (const T of [0.5, 2]) {
    const m = 200;
    const ref: number[][] = [];
    trajectory('paper', s, 1, new Float64Array(s.length), 5 / T, m * T, (_t, p) => ref.push(p));
    let k = 0;
    let worst = 0;
    trajectory('paper', s, T, new Float64Array(s.length), 5, m, (_t, p) => {
      worst = Math.max(worst, l1(p, ref[k++]));
    });
    assert.equal(k, ref.length);
    assert.ok(worst < 1e-8, `T = ${T}: ${worst}`);
  }
});

test('runFlow: F peaks at t = 1 along the paper’s flow from uniform and dF/dt = (1 − t)Var_p(s)/T changes sign there; KL = (F* − F)/T', async () => {
  const { s } = await storiesScores();
  const T = 0.8;
  const grid: FlowGrid = { tMax: 5, stepsPerUnit: 100, points: 200 };
  const paper = runFlow(
    'paper',
    s,
    T,
    new Float64Array(s.length).fill(-Math.log(s.length)),
    'uniform',
    grid,
  );
  assert.equal(paper.free_energy_peak_t, 1);
  assert.ok(paper.dF_dt.positive_until! < 1 && paper.dF_dt.positive_until! >= 0.99);
  assert.ok(paper.dF_dt.negative_from! > 1 && paper.dF_dt.negative_from! <= 1.01);
  assert.ok(
    paper.dF_dt.max_relative_error < 1e-3,
    `finite differences vs formula: ${paper.dF_dt.max_relative_error}`,
  );
  assert.ok(paper.closed_form_max_l1 < 1e-8 && paper.sum_max_error < 1e-12);
  // Gibbs: F* = T logsumexp(s/T); KL(p‖π_T) = (F* − F(p))/T at every recorded point
  let max = -Infinity;
  for (const v of s) max = Math.max(max, v / T);
  const fStar =
    T * (max + Math.log(Array.from(s, (v) => Math.exp(v / T - max)).reduce((a, b) => a + b, 0)));
  paper.t.forEach((_, k) => {
    assert.ok(
      Math.abs(paper.kl[k] - (fStar - paper.free_energy[k]) / T) < 1e-9 * Math.max(1, paper.kl[k]),
    );
  });
  const ent = runFlow(
    'entropic',
    s,
    T,
    new Float64Array(s.length).fill(-Math.log(s.length)),
    'uniform',
    grid,
  );
  assert.ok(ent.free_energy_min_increment > -1e-12);
  assert.equal(ent.dF_dt.negative_from, null);
  assert.ok(ent.dF_dt.max_relative_error < 1e-3);
});

test('the two-token counter-example of papers.md §4.2 exactly: s = (0, 1), T = 1, F = σ(t) + H(σ(t)) peaks at t = 1 with log(1 + e), then falls', () => {
  const c = twoTokenCounterExample();
  const sigma = (t: number) => 1 / (1 + Math.exp(-t));
  for (const r of c.rows) {
    const q = sigma(r.t);
    assert.ok(Math.abs(r.p2 - q) < 1e-12, `t = ${r.t}: p2 ${r.p2} vs σ ${q}`);
    const fHand = q - (q * Math.log(q) + (1 - q) * Math.log(1 - q));
    assert.ok(
      Math.abs(r.free_energy - fHand) < 1e-12,
      `t = ${r.t}: F ${r.free_energy} vs ${fHand}`,
    );
    assert.ok(Math.sign(r.dF_dt_closed) === Math.sign(1 - r.t) || r.t === 1);
  }
  assert.equal(c.paper.free_energy_peak_t, 1);
  assert.ok(Math.abs(c.paper.free_energy_peak - Math.log(1 + Math.E)) < 1e-12);
  assert.ok(Math.abs(c.paper.p2_sign_change - Math.E / (1 + Math.E)) < 1e-15);
  // F falls after t = 1 and ends near F(argmax) = 1 (p → (0, 1), H → 0)
  assert.ok(c.paper.free_energy_end < c.paper.free_energy_peak - 0.2);
  assert.ok(c.entropic.free_energy_min_increment > 0);
});

test('MWU maps: k steps of the paper’s map equal its flow at t = kη (π_T at k = 1/η); the entropic mirror map contracts to π_T', async () => {
  const { s } = await storiesScores();
  const T = 1;
  const eta = 0.25;
  const [paper, entropic] = mwuRuns(s, T, eta, 40);
  assert.ok(paper.closed_form_max_l1 < 1e-12 && entropic.closed_form_max_l1 < 1e-12);
  const k4 = paper.k.indexOf(4);
  assert.ok(paper.l1[k4] < 1e-12, `p^4 vs π_T: ${paper.l1[k4]}`);
  // ratio (1 − ηT)^k: after 40 steps 0.75^40 ≈ 1e-5
  assert.ok(entropic.l1[entropic.l1.length - 1] < 1e-3);
  assert.ok(paper.l1[paper.l1.length - 1] > 0.01);
});

// ---- faces: the sampler's own top-k / top-p distribution ------------------------------------------

test('faces: the entropic flow on the top-k and top-p faces ends at the sampler’s distribution; the support matches an independent ranking', async () => {
  const { s, logits, ids } = await storiesScores();
  const grid: FlowGrid = { tMax: 5, stepsPerUnit: 100, points: 100 };
  const order = Array.from(s.keys()).sort((a, b) => s[b] - s[a]);
  // top-k 5 at T = 0.8
  const k = faceReport(logits, ids, 0.8, { topK: 5 }, grid);
  assert.deepEqual([...k.support].sort(), order.slice(0, 5).sort());
  const ref = softmaxScaled(
    k.support.map((id) => s[id]),
    1 / 0.8,
  );
  assert.ok(l1(k.closed_form_probs, ref) < 1e-14);
  assert.ok(k.entropic_limit.l1_vs_closed_form < 1e-12, `${k.entropic_limit.l1_vs_closed_form}`);
  // the sampler divides by T in float32 (as HF), hence ~1e-7 rather than 1e-15
  assert.ok(k.entropic_limit.l1_vs_sampler < 1e-5, `${k.entropic_limit.l1_vs_sampler}`);
  assert.ok(k.paper_at_t1.l1_vs_sampler < 1e-5);
  assert.ok(k.paper_limit.l1_to_argmax_vertex < 1e-9);
  // top-p 0.9 at T = 2: HF keeps the smallest most-probable prefix whose mass reaches 0.9
  const p = faceReport(logits, ids, 2, { topP: 0.9 }, grid);
  const full = softmaxScaled(s, 0.5);
  let mass = 0;
  let n = 0;
  while (mass < 0.9) mass += full[order[n++]];
  assert.equal(p.support_size, n);
  assert.deepEqual([...p.support].sort(), order.slice(0, n).sort());
  assert.ok(p.entropic_limit.l1_vs_sampler < 1e-5, `${p.entropic_limit.l1_vs_sampler}`);
  // at T = 1 the sampler does no division: agreement to rounding
  const one = faceReport(logits, ids, 1, { topK: 7 }, grid);
  assert.ok(one.entropic_limit.l1_vs_sampler < 1e-12, `${one.entropic_limit.l1_vs_sampler}`);
});

// ---- loops in hand-made sequences --------------------------------------------------------------

test('loop detection: periods 1 to 8 with full and partial final cycles, at the right start', () => {
  const rng = createRng(3);
  for (let period = 1; period <= 8; period++) {
    const cycle = Array.from({ length: period }, (_, j) => 100 + j);
    for (const extra of [0, Math.floor(period / 2)]) {
      const reps = Math.max(3, Math.ceil(6 / period)) + 1;
      const prefix = Array.from({ length: 5 + period }, () => Math.floor(rng.next() * 50));
      const body = [...Array.from({ length: reps }, () => cycle).flat(), ...cycle.slice(0, extra)];
      const ids = [...prefix, ...body];
      const loop = detectLoop(ids, { minRepeats: 3, minSpan: 6, maxPeriod: 8 });
      assert.ok(loop, `period ${period}, extra ${extra}: no loop found`);
      assert.equal(loop.period, period);
      assert.equal(loop.start, prefix.length);
      assert.equal(loop.span, body.length);
      assert.deepEqual(loop.cycle, cycle);
    }
  }
  // a block with a smaller period is reported with its minimal period; AAB keeps period 3
  assert.equal(detectLoop([7, 1, 2, 1, 2, 1, 2, 1, 2])!.period, 2);
  assert.equal(detectLoop([7, 1, 2, 1, 2, 1, 2, 1, 2], { minSpan: 2 })!.start, 1);
  const aab = detectLoop([9, 5, 5, 6, 5, 5, 6, 5, 5, 6]);
  assert.deepEqual(aab && { p: aab.period, start: aab.start }, { p: 3, start: 1 });
});

test('loop detection: no loop without a final cycle (distinct, cycle in the middle, too few repeats, too long, too short)', () => {
  const distinct = Array.from({ length: 40 }, (_, i) => i);
  assert.equal(detectLoop(distinct), null);
  const middle = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 10, 11, 12, 13, 14];
  assert.equal(detectLoop(middle), null);
  const twice = [50, 1, 2, 3, 4, 1, 2, 3, 4];
  assert.equal(detectLoop(twice, { minRepeats: 3 }), null);
  assert.equal(detectLoop(twice, { minRepeats: 2 })!.period, 4);
  const nine = Array.from({ length: 27 }, (_, i) => 100 + (i % 9));
  assert.equal(detectLoop(nine, { maxPeriod: 8 }), null);
  assert.equal(detectLoop(nine, { maxPeriod: 9 })!.period, 9);
  assert.equal(detectLoop([9, 4, 4, 4, 4, 4]), null); // five identical < minSpan 6
  assert.equal(detectLoop([9, 4, 4, 4, 4, 4, 4])!.period, 1);
  assert.equal(detectLoop([]), null);
});

test('identical sequences count once: 32 copies of one greedy loop give 1/1 with Wilson [0.2065, 1] (statsmodels proportion_confint, fixture)', () => {
  const ref = JSON.parse(readFileSync(fixture('stats', 'wilson.json'), 'utf8')) as {
    cases: { k: number; n: number; ci: [number, number] }[];
  };
  for (const c of ref.cases) {
    const [lo, hi] = wilsonInterval(c.k, c.n);
    assert.ok(Math.abs(lo - c.ci[0]) < 1e-12 && Math.abs(hi - c.ci[1]) < 1e-12, `${c.k}/${c.n}`);
  }
  const loop = [5, 6, 7, 1, 2, 1, 2, 1, 2, 1, 2];
  const other = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  const greedy = Array.from({ length: 32 }, () => ({ ids: loop, finishReason: 'length' }));
  const { summary, first } = loopSummary(greedy);
  assert.equal(summary.samples, 32);
  assert.equal(summary.distinct_sequences, 1);
  assert.equal(summary.loops, 1);
  assert.equal(summary.loops_in_samples, 32);
  assert.equal(summary.loop_rate, 1);
  const one = ref.cases.find((c) => c.k === 1 && c.n === 1)!.ci;
  assert.ok(
    Math.abs(summary.loop_rate_ci95[0] - one[0]) < 1e-12 && summary.loop_rate_ci95[1] === 1,
  );
  assert.deepEqual(first, [true, ...Array<boolean>(31).fill(false)]);
  // 2 distinct of 3 samples, one looping: 1/2.
  const mixed = loopSummary([
    { ids: loop, finishReason: 'length' },
    { ids: other, finishReason: 'length' },
    { ids: loop, finishReason: 'length' },
  ]).summary;
  assert.equal(mixed.loops, 1);
  assert.equal(mixed.distinct_sequences, 2);
  assert.equal(mixed.loop_rate, 0.5);
  assert.deepEqual(mixed.loop_rate_ci95, wilsonInterval(1, 2));
});

test('loop summary: rate, periods, time to loop and a stop-ended sequence; Wilson interval and asymmetry against hand values', () => {
  const loopA = [1, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6, 6]; // period 1 from 5
  const loopB = [9, 8, 1, 2, 1, 2, 1, 2]; // period 2 from 2
  const none = [1, 2, 3, 4, 5, 6, 7, 8];
  const { summary } = loopSummary([
    { ids: loopA, finishReason: 'length' },
    { ids: loopB, finishReason: 'length' },
    { ids: none, finishReason: 'length' },
    { ids: loopA, finishReason: 'eos' },
  ]);
  assert.equal(summary.loops, 2);
  assert.equal(summary.loop_rate, 0.5);
  assert.equal(summary.ended_by_stop, 1);
  assert.equal(summary.distinct_sequences, 4); // loopA ended by a stop token is another sequence
  assert.deepEqual(summary.periods, { '1': 1, '2': 1 });
  assert.deepEqual(summary.time_to_loop, { mean: 3.5, median: 3.5, min: 2, max: 5 });
  // Wilson 95 %: 0/10 → upper z²/(n + z²) = 0.2775; 3/10 → (0.1078, 0.6032) (published tables)
  const [lo0, hi0] = wilsonInterval(0, 10);
  assert.ok(lo0 === 0 && Math.abs(hi0 - 0.27753) < 1e-4);
  const [lo3, hi3] = wilsonInterval(3, 10);
  assert.ok(Math.abs(lo3 - 0.1078) < 1e-4 && Math.abs(hi3 - 0.6032) < 1e-4);
  // ‖A − Aᵀ‖/‖A + Aᵀ‖: symmetric 0; [[1, 2], [0, 1]] → √8/4
  assert.equal(asymmetry([1, 3, 3, 2], 2), 0);
  assert.ok(Math.abs(asymmetry([1, 2, 0, 1], 2)! - Math.sqrt(8) / 4) < 1e-15);
  assert.equal(asymmetry([0, 1, -1, 0], 2), null);
});

// ---- path dependence with the model ----------------------------------------------------------------

test('escape: a greedy loop of stories260K (repetition penalty 0.5) never escapes without noise and its continuation is generateText’s', async () => {
  const m = await stories();
  const sampling = validateSampling({ temperature: 0, repetitionPenalty: 0.5 });
  const g = generateText(m, { prompt: PROMPT, maxTokens: 60, sampling });
  const loop = detectLoop(g.ids);
  assert.ok(loop, 'the greedy sequence with θ = 0.5 should end in a loop');
  const context = [...g.promptIds, ...g.ids];
  const r = escapeTrials(m, context, g.ids.length, loop, sampling, {
    sigmas: [0, 3],
    trials: 3,
    horizon: 12,
    seed: 1,
  });
  assert.ok(r);
  assert.equal(r.by_sigma[0].escaped, 0);
  // the reference continuation from the library's generation loop stays on the cycle too
  const more = generateText(m, { promptIds: context, maxTokens: r.horizon, sampling });
  more.ids.forEach((id, h) =>
    assert.equal(id, loop.cycle[(g.ids.length - loop.start + h) % loop.period]),
  );
  assert.equal(r.by_sigma[1].trials, 3);
});

test('score response: with a frequency penalty α, A − A_model = −α·I (the penalty formula); A_model matches a separate forward pass', async () => {
  const m = await stories();
  const g = generateText(m, { prompt: PROMPT, maxTokens: 30, sampling: { temperature: 0 } });
  const context = [...g.promptIds, ...g.ids];
  const alpha = 0.7;
  const r = scoreResponse(
    m,
    context,
    g.ids,
    { repetitionPenalty: 1, frequencyPenalty: alpha, presencePenalty: 0 },
    4,
  );
  assert.ok(r);
  const k = r.tokens.length;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const d = r.a[i * k + j] - r.a_model[i * k + j];
      assert.ok(Math.abs(d - (i === j ? -alpha : 0)) < 1e-4, `(${i}, ${j}): ${d}`);
    }
  }
  // A_model[0][1] by two runWithCache passes
  const V = m.config.vocabSize;
  const lastRow = (ids: number[]) => {
    const out = runWithCache(m, ids, 'blocks.0.hook_resid_post').logits.data;
    return out.subarray(out.length - V);
  };
  const base = lastRow(context);
  const plus = lastRow([context[0], r.tokens[1], ...context.slice(1)]);
  assert.ok(Math.abs(plus[r.tokens[0]] - base[r.tokens[0]] - r.a_model[1]) < 1e-4);
});

// ---- the CLI -------------------------------------------------------------------------------------

async function runCli(args: string[]): Promise<void> {
  const program = new Command('lmdyn').exitOverride();
  registerAnalyze(program, [registerSimplexLens]);
  for (const c of program.commands) c.exitOverride();
  await program.parseAsync(args, { from: 'user' });
}

test('CLI: analyze simplex --model writes simplex.json (model, prompt, prompt_ids, T, seed, face) and the figures', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-simplex-'));
  try {
    const out = join(dir, 'run');
    await runCli([
      'analyze',
      'simplex',
      '--model',
      STORIES,
      '--prompt',
      PROMPT,
      '--temperature',
      '0.8',
      '--top-k',
      '5',
      '--starts',
      '1',
      '--seed',
      '7',
      '--out',
      out,
    ]);
    const r = JSON.parse(readFileSync(join(out, 'simplex.json'), 'utf8'));
    const m = await stories();
    assert.equal(r.model.spec, STORIES);
    assert.equal(r.prompt, PROMPT);
    assert.deepEqual(r.prompt_ids, encodePrompt(m, PROMPT));
    assert.equal(r.temperature, 0.8);
    assert.equal(r.seed, 7);
    assert.equal(r.flows.paper.tag, 'exact');
    assert.equal(r.flows.entropic.tag, 'proposed'); // the corrected flow is not the paper's
    assert.equal(r.faces[0].tag, 'proposed');
    assert.equal(r.counter_example.tag, 'proposed');
    assert.match(r.flows.paper.limit, /argmax/);
    assert.match(r.flows.entropic.limit, /π_T/);
    assert.equal(r.faces[0].name, 'top-k 5');
    assert.equal(r.faces[0].support_size, 5);
    assert.ok(
      r.checks.closed_form_max_l1 < 1e-8 && r.checks.sum_max_error < 1e-12 && r.checks.interior,
    );
    for (const f of ['distance.svg', 'distance.vl.json', 'ternary.svg'])
      assert.ok(existsSync(join(out, f)), f);
    // refusals: non-empty --out, T = 0, --sweep with --out
    await assert.rejects(
      runCli(['analyze', 'simplex', '--model', STORIES, '--out', out]),
      (e: unknown) => e instanceof LmdynError && /not empty/.test(e.message),
    );
    await assert.rejects(
      runCli(['analyze', 'simplex', '--temperature', '0', '--out', join(dir, 'x')]),
      (e: unknown) => e instanceof LmdynError && /> 0/.test(e.message),
    );
    await assert.rejects(
      runCli(['analyze', 'simplex', '--sweep', dir, '--out', join(dir, 'x')]),
      (e: unknown) => e instanceof LmdynError && /drop --out/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: analyze simplex --sweep on a hand-made sweep folder: loop rates as constructed, simplex.json in the folder', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-simplex-sweep-'));
  try {
    const cycle = [261, 376, 298, 315, 421];
    const looped = [403, 407, 261, 378, ...Array.from({ length: 5 }, () => cycle).flat()]; // period 5 from 4
    const plain = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421];
    const configs = [
      { dir: '000_a', temperature: 0.5, samples: [looped, plain, plain, looped] },
      { dir: '001_b', temperature: 1, samples: [plain, plain, plain, looped] },
    ];
    writeFileSync(
      join(dir, 'sweep.json'),
      JSON.stringify({
        lmdyn: 'test',
        plan: {
          model: STORIES,
          tokenizer: null,
          prompt: PROMPT,
          samples: 4,
          maxTokens: 40,
          seed: 1,
          hooks: [],
          logits: { kind: 'none' },
          grid: {},
        },
        configs: configs.map((c, index) => ({
          index,
          dir: c.dir,
          sampling: { temperature: c.temperature, topP: 1, topK: 0, repetitionPenalty: 1 },
        })),
      }),
    );
    for (const c of configs) {
      mkdirSync(join(dir, c.dir));
      writeFileSync(
        join(dir, c.dir, 'trace.json'),
        JSON.stringify({
          format: 'lmdyn-trace',
          meta: {
            decoding: {
              temperature: c.temperature,
              topK: 0,
              topP: 1,
              minP: 0,
              repetitionPenalty: 1,
              frequencyPenalty: 0,
              presencePenalty: 0,
            },
          },
          samples: c.samples.map((ids, i) => ({
            prompt: PROMPT,
            prompt_ids: [1, 403, 407, 261, 378],
            ids,
            text: '',
            finish_reason: 'length',
            seed: 1 + i,
            length: 5 + ids.length,
          })),
        }),
      );
      sealUnit(join(dir, c.dir), 'trace', ['trace.json']); // committed as lmdyn trace would
    }
    await runCli([
      'analyze',
      'simplex',
      '--sweep',
      dir,
      '--trials',
      '2',
      '--max-loops',
      '1',
      '--response-samples',
      '1',
      '--seed',
      '3',
    ]);
    const r = JSON.parse(readFileSync(join(dir, 'simplex.json'), 'utf8'));
    assert.equal(r.mode, 'sweep');
    assert.equal(r.seed, 3);
    assert.equal(r.model.spec, STORIES);
    assert.deepEqual(r.prompt_ids, [1, 403, 407, 261, 378]);
    assert.deepEqual(r.temperatures, [0.5, 1]);
    const [a, b] = r.loops.configs;
    // over distinct sequences: a = {looped, plain} → 1/2; b = {plain, looped} → 1/2
    assert.equal(a.summary.loop_rate, 0.5);
    assert.equal(b.summary.loop_rate, 0.5);
    assert.equal(b.summary.samples, 4);
    assert.equal(a.summary.loops_in_samples, 2);
    assert.deepEqual(a.summary.periods, { '5': 1 });
    assert.equal(a.summary.time_to_loop.median, 4); // the cycle begins after 403 407 261 378
    assert.equal(a.summary.distinct_sequences, 2);
    assert.equal(a.escape.loops_used, 1);
    assert.equal(a.escape.by_sigma.length, 4);
    assert.ok(existsSync(join(dir, 'simplex_loop_rate.svg')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
