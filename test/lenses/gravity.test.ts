/**
 * The gravity lens (papers.md §3, proposed). References: the sampler's own code path
 * (decode/sampling.ts) for the identity check, the log-softmax computed directly and its
 * Taylor expansion for the second-order KL check, a finite-difference V×d Jacobian and numpy
 * (python3) for κ and the spectrum of G, hand-computed values for the small formulas, and a
 * brute-force sort for the kNN.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { openModel } from '../../src/api.js';
import { encodePrompt, type Model } from '../../src/model/model.js';
import { registerAnalyze } from '../../src/cli/analyze.js';
import { registerGravityLens } from '../../src/cli/analyze-gravity.js';
import { nextTokenDistribution, validateSampling } from '../../src/decode/sampling.js';
import { LmdynError } from '../../src/errors.js';
import type { GravityReport } from '../../src/lenses/gravity/analyze.js';
import { dataDir, defaultParaphrasePaths, readParaphrases } from '../../src/io/data.js';
import {
  basin,
  boltzmann,
  classifierOf,
  entropyOf,
  fisher,
  fisherEigenvalues,
  fisherMatrix,
  fisherQuadratic,
  identityCheck,
  informationMass,
  jensenShannon,
  klShift,
  finalNormOf,
  potential,
  pulledBackKappa,
  queryStates,
  wellDepth,
  type Classifier,
} from '../../src/lenses/gravity/field.js';
import { analyzeSensitivity } from '../../src/lenses/gravity/sensitivity.js';
import { distinctN, wordsOf } from '../../src/lenses/gravity/temperature.js';
import {
  buildReference,
  densityOf,
  knnDistances,
  looKnnRadii,
  voidScore,
} from '../../src/lenses/gravity/voids.js';
import { createRng } from '../../src/tensor/rng.js';
import { model } from '../helpers/paths.js';

const STORIES = model('stories260K', 'stories260K.bin');
const PROMPT = 'The cat sat on the';

let cached: Model | null = null;
async function stories(): Promise<Model> {
  return (cached ??= await openModel(STORIES));
}

/** log P(·|q, T) computed the plain way: log-softmax of (W q + b)/T in float64. [V] */
function logSoftmaxAt(c: Classifier, q: ArrayLike<number>, T: number): Float64Array {
  const z = new Float64Array(c.vocab);
  for (let v = 0; v < c.vocab; v++) {
    let s = c.b ? c.b[v] : 0;
    for (let i = 0; i < c.dim; i++) s += c.w[v * c.dim + i] * q[i];
    z[v] = s / T;
  }
  const max = Math.max(...z);
  let sum = 0;
  for (const x of z) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return z.map((x) => x - lse);
}

// ---- 1. identity: softmax(−Φ/T) is the sampler's distribution ----------------------------------

test('identity: softmax(−Φ/T) equals decode/sampling nextTokenDistribution (T = 0.3, 1, 1.7)', async () => {
  const m = await stories();
  const c = classifierOf(m);
  const [st] = queryStates(m, [encodePrompt(m, PROMPT)]);
  for (const T of [0.3, 1, 1.7]) {
    const sampler = nextTokenDistribution(
      st.logits,
      [],
      validateSampling({ temperature: T }),
    ).probs;
    const fromModelLogits = boltzmann(
      Float64Array.from(st.logits, (z) => -z),
      T,
    );
    const fromState = boltzmann(potential(c, st.q), T);
    // the sampler divides z by T in float32: each z/T is off by ≤ 2^-24·|z/T|, so
    // |Δp_v| ≤ p_v(e^{2η} − 1) ≈ 2η·p_v with η = 2^-24·max|z|/T (at T = 1 only the float64 sums' order differs)
    const eta = (2 ** -24 * Math.max(...Array.from(st.logits, Math.abs))) / T;
    let exact = 0;
    let recomputed = 0;
    for (let v = 0; v < c.vocab; v++) {
      exact = Math.max(exact, Math.abs(fromModelLogits[v] - sampler[v]));
      recomputed = Math.max(recomputed, Math.abs(fromState[v] - sampler[v]));
    }
    assert.ok(
      exact <= (T === 1 ? 1e-14 : 2.02 * eta),
      `T = ${T}: Φ = −z vs sampler ${exact} (η ${eta})`,
    );
    assert.ok(recomputed < 1e-5, `T = ${T}: Φ from q vs sampler ${recomputed}`);
    const check = identityCheck(c, st, T);
    assert.equal(check.max_abs_diff_exact, exact);
    assert.ok(check.passed);
    assert.ok(check.max_abs_diff_potential < 1e-4, `|Φ(q) + z| ${check.max_abs_diff_potential}`);
  }
});

// ---- 2. curvature: κ and G against a brute-force Jacobian and numpy ---------------------------

test('κ = tr G equals Σ_v p_v ‖J_v‖² with the V×d Jacobian of log-softmax by central differences', async () => {
  const m = await stories();
  const c = classifierOf(m);
  const [st] = queryStates(m, [encodePrompt(m, PROMPT)]);
  for (const T of [1, 0.6]) {
    const p = boltzmann(potential(c, st.q), T);
    const f = fisher(c, p, T);
    // J[v, i] = ∂ log p_v / ∂q_i, column by column
    const h = 1e-5;
    const J = new Float64Array(c.vocab * c.dim);
    for (let i = 0; i < c.dim; i++) {
      const plus = Float64Array.from(st.q);
      const minus = Float64Array.from(st.q);
      plus[i] += h;
      minus[i] -= h;
      const lp = logSoftmaxAt(c, plus, T);
      const lm = logSoftmaxAt(c, minus, T);
      for (let v = 0; v < c.vocab; v++) J[v * c.dim + i] = (lp[v] - lm[v]) / (2 * h);
    }
    let brute = 0;
    for (let v = 0; v < c.vocab; v++) {
      let s = 0;
      for (let i = 0; i < c.dim; i++) s += J[v * c.dim + i] ** 2;
      brute += p[v] * s;
    }
    assert.ok(
      Math.abs(f.kappa - brute) < 1e-6 * brute,
      `T = ${T}: κ ${f.kappa} vs brute force ${brute}`,
    );
  }
});

test('κ, G and its top eigenvalues agree with numpy (Jacobian of log-softmax formed explicitly)', async (t) => {
  const m = await stories();
  const c = classifierOf(m);
  const [st] = queryStates(m, [encodePrompt(m, 'Once upon a time, there was a')]);
  const T = 0.8;
  const p = boltzmann(potential(c, st.q), T);
  const f = fisher(c, p, T);
  const g = fisherMatrix(c, f);
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-gravity-np-'));
  try {
    writeFileSync(join(dir, 'w.f32'), Buffer.from(c.w.buffer, c.w.byteOffset, c.w.byteLength));
    writeFileSync(join(dir, 'q.f64'), Buffer.from(st.q.buffer));
    const script = [
      'import numpy as np, sys, json',
      'd = sys.argv[1]; V, D, T = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])',
      "W = np.fromfile(d + '/w.f32', dtype=np.float32).astype(np.float64).reshape(V, D)",
      "q = np.fromfile(d + '/q.f64', dtype=np.float64)",
      'z = W @ q / T; z -= z.max(); p = np.exp(z); p /= p.sum()',
      'J = (W - p @ W) / T  # d log p_v / dq, [V, D]',
      'G = J.T @ (p[:, None] * J)',
      'print(json.dumps({"kappa": float(np.trace(G)), "eig": sorted(np.linalg.eigvalsh(G).tolist(), reverse=True)[:8], "G": G.ravel().tolist()}))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', script, dir, String(c.vocab), String(c.dim), String(T)], {
      encoding: 'utf8',
    });
    if (r.status !== 0) {
      t.skip(`python3 with numpy is not available: ${r.stderr.slice(0, 200)}`);
      return;
    }
    const ref = JSON.parse(r.stdout) as { kappa: number; eig: number[]; G: number[] };
    assert.ok(
      Math.abs(f.kappa - ref.kappa) < 1e-10 * ref.kappa,
      `κ ${f.kappa} vs numpy ${ref.kappa}`,
    );
    const gMax = Math.max(...ref.G.map(Math.abs));
    let worst = 0;
    for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - ref.G[i]));
    assert.ok(worst < 1e-5 * gMax, `G differs from numpy by ${worst} (max |G| ${gMax})`);
    const full = fisherEigenvalues(g, c.dim, 8, 1, 'full');
    const randomized = fisherEigenvalues(g, c.dim, 8, 1, 'randomized');
    ref.eig.forEach((e, i) => {
      assert.ok(
        Math.abs(full.values[i] - e) < 1e-5 * ref.eig[0],
        `full λ_${i + 1} ${full.values[i]} vs ${e}`,
      );
      assert.ok(
        Math.abs(randomized.values[i] - e) < 1e-4 * ref.eig[0],
        `randomized λ_${i + 1} ${randomized.values[i]} vs ${e}`,
      );
    });
    // δᵀGδ in O(V·d) equals the dense quadratic form
    const rng = createRng(3);
    const delta = Float64Array.from({ length: c.dim }, () => rng.normal());
    let dense = 0;
    for (let i = 0; i < c.dim; i++)
      for (let j = 0; j < c.dim; j++) dense += delta[i] * ref.G[i * c.dim + j] * delta[j];
    assert.ok(Math.abs(fisherQuadratic(c, f, delta) - dense) < 1e-10 * dense);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** ln_final in float64, written from the definitions (RMSNorm: g·x/√(mean x² + ε); LayerNorm: g·(x − μ)/√(var + ε) + b). */
function normF64(m: Model, x: ArrayLike<number>): Float64Array {
  const d = x.length;
  const g = m.transformer.weights.finalNorm;
  const b = m.transformer.weights.finalNormBias;
  const eps = m.config.normEps;
  let mu = 0;
  if (m.config.norm === 'layernorm') for (let i = 0; i < d; i++) mu += x[i] / d;
  let v = 0;
  for (let i = 0; i < d; i++) v += (x[i] - mu) ** 2 / d;
  const r = Math.sqrt(v + eps);
  return Float64Array.from({ length: d }, (_, i) => (g[i] * (x[i] - mu)) / r + (b ? b[i] : 0));
}

for (const [name, path] of [
  ['stories260K (RMSNorm)', STORIES],
  ['tiny-gpt2 (LayerNorm)', model('tiny-gpt2')],
] as const) {
  test(`κ pulled back through the final norm = Σ_i ‖∂N/∂x_i‖²_G by central differences of N, ${name}`, async () => {
    const m = path === STORIES ? await stories() : await openModel(path);
    const c = classifierOf(m);
    const [st] = queryStates(m, [encodePrompt(m, 'The cat sat on the')]);
    // the captured pre-norm state maps onto the captured post-norm state
    const q = normF64(m, st.x);
    for (let i = 0; i < c.dim; i++)
      assert.ok(Math.abs(q[i] - st.q[i]) < 1e-4 * (1 + Math.abs(q[i])));
    for (const T of [1, 0.7]) {
      const f = fisher(c, boltzmann(potential(c, st.q), T), T);
      const h = 1e-4 * Math.max(...Array.from(st.x, Math.abs));
      let ref = 0;
      for (let i = 0; i < c.dim; i++) {
        const up = Float64Array.from(st.x);
        const down = Float64Array.from(st.x);
        up[i] += h;
        down[i] -= h;
        const a = normF64(m, up);
        const b = normF64(m, down);
        ref += fisherQuadratic(
          c,
          f,
          a.map((v, k) => (v - b[k]) / (2 * h)),
        );
      }
      const got = pulledBackKappa(c, f, st.x, finalNormOf(m));
      assert.ok(Math.abs(got - ref) < 1e-5 * ref, `${got} vs ${ref}`);
      assert.ok(Math.abs(got - f.kappa) > 1e-3 * f.kappa); // the pull-back changes κ
    }
  });
}

test('second order: KL(P_q ‖ P_{q+δ}) → ½ δᵀGδ as δ → 0, error O(|δ|)', async () => {
  const m = await stories();
  const c = classifierOf(m);
  const states = queryStates(
    m,
    [PROMPT, 'Lily wanted to', 'The capital of France is'].map((s) => encodePrompt(m, s)),
  );
  const rng = createRng(11);
  for (const st of states) {
    for (const T of [1, 0.5]) {
      const p = boltzmann(potential(c, st.q), T);
      const f = fisher(c, p, T);
      const u = Float64Array.from({ length: c.dim }, () => rng.normal());
      const norm = Math.hypot(...u);
      const errors = [1e-2, 1e-3].map((eps) => {
        const delta = u.map((x) => (x / norm) * eps * Math.hypot(...st.q));
        // direct KL from two log-softmaxes (the reference, not the lens's expm1 form)
        const l0 = logSoftmaxAt(c, st.q, T);
        const l1 = logSoftmaxAt(
          c,
          st.q.map((x, i) => x + delta[i]),
          T,
        );
        let kl = 0;
        for (let v = 0; v < c.vocab; v++) kl += Math.exp(l0[v]) * (l0[v] - l1[v]);
        const half = 0.5 * fisherQuadratic(c, f, delta);
        const lens = klShift(c, p, T, delta);
        assert.ok(Math.abs(lens - kl) < 1e-6 * kl + 1e-15, `lens KL ${lens} vs direct ${kl}`);
        return Math.abs(kl / half - 1);
      });
      assert.ok(errors[1] < 1e-2, `ε = 1e-3: |KL/(½δᵀGδ) − 1| = ${errors[1]}`);
      assert.ok(errors[1] < errors[0] / 4, `error shrinks with ε: ${errors[0]} → ${errors[1]}`);
    }
  }
});

// ---- 3. small formulas against hand-computed values ------------------------------------------

test('masses, depth, basin and JSD: hand-computed values', () => {
  // Φ = (−3, −1, 0): D = 2, log p_max = −log(1 + e^{−2} + e^{−3})
  const phi = Float64Array.of(-3, -1, 0);
  const dp = wellDepth(phi);
  assert.equal(dp.top, 0);
  assert.ok(Math.abs(dp.margin - 2) < 1e-15);
  assert.ok(Math.abs(dp.logPMax + Math.log(1 + Math.exp(-2) + Math.exp(-3))) < 1e-15);
  const p = boltzmann(phi, 1);
  assert.ok(Math.abs(p[0] - 1 / (1 + Math.exp(-2) + Math.exp(-3))) < 1e-15);
  // M_info = KL(P ‖ U) = Σ p log(3p); zero for a flat potential
  const kl = p.reduce((a, x) => a + x * Math.log(3 * x), 0);
  assert.ok(Math.abs(informationMass(p) - kl) < 1e-15);
  assert.ok(Math.abs(informationMass(boltzmann(Float64Array.of(2, 2, 2, 2), 0.7))) < 1e-15);
  // basin width 2.5 at T = 1 holds tokens 0 and 1; at T = 3 all three
  assert.deepEqual(basin(phi, p, 2.5, 1).ids, [0, 1]);
  assert.ok(Math.abs(basin(phi, p, 2.5, 1).mass - (p[0] + p[1])) < 1e-15);
  assert.deepEqual(basin(phi, p, 1, 3).ids, [0, 1, 2]);
  // JSD: identical 0; disjoint log 2; (1, 0) vs (½, ½) = ¾ log(4/3)
  assert.equal(jensenShannon([0.3, 0.7], [0.3, 0.7]), 0);
  assert.ok(Math.abs(jensenShannon([1, 0], [0, 1]) - Math.LN2) < 1e-15);
  assert.ok(Math.abs(jensenShannon([1, 0], [0.5, 0.5]) - 0.75 * Math.log(4 / 3)) < 1e-15);
  // entropy is non-decreasing in T
  let last = -1;
  for (const T of [0.1, 0.5, 1, 2, 5]) {
    const h = entropyOf(boltzmann(phi, T));
    assert.ok(h >= last);
    last = h;
  }
});

test('distinct-n: hand-computed ratios over DMET-style words', () => {
  assert.deepEqual(wordsOf("The cat's hat. THE cat!"), ['the', 'cat', 's', 'hat', 'the', 'cat']);
  const texts = [
    ['a', 'b', 'a', 'b'],
    ['a', 'c'],
  ];
  assert.equal(distinctN(texts, 1), 3 / 6); // a b c over 6 words
  assert.equal(distinctN(texts, 2), 3 / 4); // ab ba ab | ac → {ab, ba, ac} over 4
  assert.equal(distinctN([['a']], 2), null);
});

// ---- 4. voids -----------------------------------------------------------------------------------

test('kNN distances equal a brute-force sort; d_eff, density z-score and void score by hand', () => {
  const rng = createRng(5);
  const n = 200;
  const d = 6;
  // variance 100 and 25 on two axes, 0.01 on the rest: 95% of the variance needs 2 components
  const sd = [10, 5, 0.1, 0.1, 0.1, 0.1];
  const states = Array.from({ length: n }, () => Float64Array.from(sd, (s) => s * rng.normal()));
  const x = new Float64Array(n * d);
  states.forEach((s, i) => x.set(s, i * d));
  const q = Float64Array.of(1, -2, 0, 0, 0.1, 0);
  const brute = states.map((s) => Math.hypot(...s.map((v, i) => v - q[i]))).sort((a, b) => a - b);
  assert.deepEqual(
    knnDistances(x, n, d, q, 7).map((v) => v.toFixed(12)),
    brute.slice(0, 7).map((v) => v.toFixed(12)),
  );

  const keys = states.map((_, i) => `s${i}`);
  const entropies = states.map((_, i) => i / n);
  const ref = buildReference(states, keys, entropies, 5);
  assert.equal(ref.dEff, 2);
  // leave-one-out radii (float32 Gram screening + float64 recheck) against a brute-force sort,
  // with near-ties: every state also appears shifted by 1e-9
  const twins = states.flatMap((s) => [s, s.map((v, i) => (i === 0 ? v + 1e-9 : v))]);
  const xt = new Float64Array(2 * n * d);
  twins.forEach((s, i) => xt.set(s, i * d));
  const radii = looKnnRadii(xt, 2 * n, d, 5);
  twins.forEach((s, j) => {
    const others = twins
      .filter((_, i) => i !== j)
      .map((o) => Math.hypot(...o.map((v, i) => v - s[i])))
      .sort((a, b) => a - b);
    assert.ok(
      Math.abs(radii[j] - others[4]) <= 1e-12 * others[4],
      `row ${j}: ${radii[j]} vs ${others[4]}`,
    );
  });
  const loo = states
    .slice(1)
    .map((s) => Math.hypot(...s.map((v, i) => v - states[0][i])))
    .sort((a, b) => a - b);
  assert.ok(Math.abs(ref.logRk[0] - Math.log(loo[4])) < 1e-12);
  // a query equal to reference 0 with its key: that state is left out, so r_k is its LOO radius
  const self = densityOf(ref, states[0], 's0');
  assert.equal(self.excluded, 1);
  assert.ok(Math.abs(self.r_k - loo[4]) < 1e-12);
  const far = densityOf(ref, Float64Array.of(500, 500, 0, 0, 0, 0), 'far');
  const mean = ref.logRk.reduce((a, b) => a + b, 0) / n;
  const sdLog = Math.sqrt(ref.logRk.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  assert.ok(Math.abs(far.z_low_density - (Math.log(far.r_k) - mean) / sdLog) < 1e-12);
  assert.equal(far.sparsity_percentile, 1);
  assert.ok(Math.abs(far.log_density + 2 * Math.log(far.r_k)) < 1e-12);
  const hMean = entropies.reduce((a, b) => a + b, 0) / n;
  const hSd = Math.sqrt(entropies.reduce((a, b) => a + (b - hMean) ** 2, 0) / (n - 1));
  const v = voidScore(ref, far, 0.9);
  assert.ok(Math.abs(v.z_entropy - (0.9 - hMean) / hSd) < 1e-12);
  assert.ok(Math.abs(v.void_score - 0.5 * (far.z_low_density + v.z_entropy)) < 1e-12);
});

// ---- 5. sensitivity and the shipped data --------------------------------------------------------

test('shipped data: ≥ 20 paraphrase sets of 3–5 per domain; the reference corpus is found', () => {
  const paths = defaultParaphrasePaths();
  assert.equal(paths.length, 2);
  for (const p of paths) {
    const sets = readParaphrases(p);
    assert.ok(sets.length >= 20, `${p}: ${sets.length} sets`);
    for (const s of sets) assert.ok(s.paraphrases.length >= 3 && s.paraphrases.length <= 5, s.id);
  }
  assert.ok(existsSync(join(dataDir(), 'corpus', 'reference.txt')));
  assert.ok(existsSync(join(dataDir(), 'README.md')));
  const bad = join(mkdtempSync(join(tmpdir(), 'lmdyn-gravity-')), 'bad.jsonl');
  writeFileSync(bad, '{"paraphrases": ["only one"]}\n');
  assert.throws(
    () => readParaphrases(bad),
    (e: unknown) => e instanceof LmdynError && /at least 2/.test(e.message),
  );
});

test('sensitivity: JSD of each pair equals the JSD of the sampler distributions; δᵀGδ/8 predicts small JSD', async () => {
  const m = await stories();
  const c = classifierOf(m);
  const sets = [
    {
      id: 'a',
      domain: 'x',
      paraphrases: ['The cat sat on the', 'The cat was sitting on the', 'A cat sat on the'],
    },
    { id: 'b', domain: 'y', paraphrases: ['Lily wanted to', 'Lily wished to'] },
  ];
  const s = analyzeSensitivity(m, c, sets, 1);
  assert.equal(s.pairs.length, 3 + 1);
  const dist = (text: string) =>
    nextTokenDistribution(
      queryStates(m, [encodePrompt(m, text)])[0].logits,
      [],
      validateSampling({}),
    ).probs;
  const p0 = dist(sets[0].paraphrases[0]);
  const p2 = dist(sets[0].paraphrases[2]);
  const pair = s.pairs.find((x) => x.set === 'a' && x.i === 0 && x.j === 2);
  assert.ok(pair);
  // the lens reads Φ from q in float64, the sampler the float32 logits: ~1e-6 apart per logit
  const ref = jensenShannon(p0, p2);
  assert.ok(Math.abs(pair.jsd - ref) < 1e-4 * ref, `JSD ${pair.jsd} vs sampler's ${ref}`);
  assert.equal(
    s.sets[1].members[0].prompt_ids.join(','),
    encodePrompt(m, 'Lily wanted to').join(','),
  );
  assert.equal(s.correlations.filter((r) => r.domain === 'all').length, 6);
  // Multiple testing: every p of the table is in one BH family, so each q ≥ its p.
  for (const r of s.correlations)
    for (const [p, q] of [
      [r.spearman_p, r.spearman_q],
      [r.pearson_p, r.pearson_q],
    ])
      if (p !== null) assert.ok(q !== null && q >= p - 1e-15 && q <= 1);
  assert.ok(s.sets.every((x) => x.members.every((mm) => mm.kappa_pre_norm > 0)));
  // JSD(P_q, P_{q+δ}) ≈ δᵀGδ/8 for a small shift (second order of JSD)
  const [st] = queryStates(m, [encodePrompt(m, PROMPT)]);
  const p = boltzmann(potential(c, st.q), 1);
  const f = fisher(c, p, 1);
  const rng = createRng(2);
  const delta = Float64Array.from({ length: c.dim }, () => 1e-3 * rng.normal());
  const p1 = boltzmann(
    potential(
      c,
      st.q.map((x, i) => x + delta[i]),
    ),
    1,
  );
  const ratio = jensenShannon(p, p1) / (fisherQuadratic(c, f, delta) / 8);
  assert.ok(Math.abs(ratio - 1) < 1e-2, `JSD/(δᵀGδ/8) = ${ratio}`);
});

// ---- 6. the CLI --------------------------------------------------------------------------------

async function runCli(args: string[]): Promise<void> {
  const program = new Command('lmdyn').exitOverride();
  registerAnalyze(program, [registerGravityLens]);
  for (const cmd of program.commands) cmd.exitOverride();
  await program.parseAsync(args, { from: 'user' });
}

test('CLI: bad flags are one-line LmdynErrors before any model is opened', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-gravity-'));
  try {
    const base = ['analyze', 'gravity', '--model', join(dir, 'none.bin'), '--out', join(dir, 'o')];
    const cases: [string[], RegExp][] = [
      [['--prompt', 'x', '--temperature', '0'], /--temperature must be a number/],
      [[], /needs --prompt P or --prompts FILE/],
      [['--prompt', 'x', '--prompts', join(dir, 'p.txt')], /not both/],
      [['--prompt', 'x', '--temperatures', '1,-1'], /--temperatures must be numbers > 0/],
      [['--prompt', 'x', '--paraphrases', join(dir, 'none.jsonl')], /cannot read paraphrase file/],
      [['--prompt', 'x', '--reference-positions', 'some'], /must be all or last/],
    ];
    for (const [extra, message] of cases) {
      await assert.rejects(
        runCli([...base, ...extra]),
        (e: unknown) => e instanceof LmdynError && message.test(e.message),
        message.source,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: gravity.json has the per-prompt fields, passing checks, sensitivity and temperature tables, and the figures', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-gravity-'));
  const out = join(dir, 'run');
  try {
    writeFileSync(
      join(dir, 'prompts.txt'),
      'Once upon a time, there was a little girl named\nThe capital of France is\n',
    );
    await runCli([
      'analyze',
      'gravity',
      '-m',
      STORIES,
      '--prompts',
      join(dir, 'prompts.txt'),
      '--temperature',
      '0.8',
      '--temperatures',
      '0.5,1,1.5',
      '--samples',
      '2',
      '--max-tokens',
      '8',
      '--seed',
      '4',
      '--out',
      out,
    ]);
    const r = JSON.parse(readFileSync(join(out, 'gravity.json'), 'utf8')) as GravityReport;
    assert.equal(r.lens, 'gravity');
    assert.match(r.status, /proposed/);
    assert.ok(Object.values(r.definitions).every((d) => d.tag === 'proposed'));
    assert.equal(r.seed, 4);
    assert.equal(r.temperature, 0.8);
    assert.match(r.conventions.hidden_space, /ln_final\.hook_normalized/);
    assert.ok(r.identity_check.passed, JSON.stringify(r.identity_check));
    assert.ok(r.second_order_check.passed, JSON.stringify(r.second_order_check));
    assert.equal(r.prompts.length, 2);
    const m = await stories();
    for (const p of r.prompts) {
      assert.deepEqual(p.prompt_ids, encodePrompt(m, p.text));
      for (const key of [
        'M_geo',
        'M_info',
        'entropy_t1',
        'kappa_t1',
        'depth',
        'void_score',
      ] as const) {
        assert.ok(Number.isFinite(p[key]), key);
      }
      assert.ok(Number.isFinite(p.density.log_density));
      assert.ok(p.M_info > 0 && p.M_info <= Math.log(512));
      assert.ok(Math.abs(p.M_info + p.entropy_t1 - Math.log(512)) < 1e-9);
      assert.equal(p.at_temperature.T, 0.8);
      assert.ok(p.curvature.top_eigenvalues.length === 8 && p.curvature.top_share <= 1 + 1e-9);
    }
    // the corpus holds "The capital of France is." as a line: its prefix is left out of the reference
    assert.equal(r.prompts[1].density.excluded, 1);
    assert.ok(r.reference.states > r.reference.texts);
    assert.ok(r.sensitivity && r.sensitivity.sets.length >= 40);
    assert.equal(r.sensitivity.headline.level, 'sets');
    assert.deepEqual(
      r.temperature_sweep.per_prompt[0].map((x) => x.T),
      [0.5, 1, 1.5],
    );
    assert.ok(r.temperature_sweep.entropy_non_decreasing);
    for (const name of ['potential', 'curvature_sensitivity', 'density', 'temperature']) {
      assert.ok(existsSync(join(out, `${name}.svg`)), name);
      assert.ok(existsSync(join(out, `${name}.vl.json`)), name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
