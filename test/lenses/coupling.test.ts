import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { openModel } from '../../src/api.js';
import { registerAnalyze } from '../../src/cli/analyze.js';
import { registerCouplingLens } from '../../src/cli/analyze-coupling.js';
import { LmdynError } from '../../src/errors.js';
import { openSafetensors, closeSafetensors } from '../../src/io/safetensors.js';
import {
  analyzeCoupling,
  randomBasis,
  type CouplingReport,
  type WeightsReport,
} from '../../src/lenses/coupling/analyze.js';
import { correlate } from '../../src/lenses/coupling/correlate.js';
import {
  couplingMetric,
  exponentialGrowth,
  linearisationFidelity,
  lineShapeScore,
  stepSizes,
} from '../../src/lenses/coupling/metrics.js';
import { INIT_STD, initialWeights } from '../../src/model/init.js';
import type { ModelConfig } from '../../src/model/types.js';
import { svd } from '../../src/tensor/linalg.js';
import { createRng } from '../../src/tensor/rng.js';
import { fixture, model } from '../helpers/paths.js';

const STORIES = model('stories260K', 'stories260K.bin');

// ---- m_K (papers.md §5.3): references are the definition and hand-computed 2×2 values -------

function matrixFrom(values: number[]): Float32Array {
  return Float32Array.from(values);
}

test('m_K(J, J) = 0 (and its trace-normalised variant) for a random J, for every K', () => {
  const d = 12;
  const rng = createRng(1);
  const j = Float32Array.from({ length: d * d }, () => rng.normal());
  const f = svd(j, d, d);
  for (const c of couplingMetric(j, d, f.s, f, [1, 5, 12])) {
    assert.ok(c.mK < 1e-5, `K = ${c.k}: ${c.mK}`);
    assert.ok(c.traceNormalised < 1e-5);
  }
});

test('a shared singular basis gives m_K = 0; rotating one basis by θ gives the hand-computed value', () => {
  // J1 = diag(2, 1) (U = V = I, s = (2, 1)); J2 = R(θ)·diag(3, 1)·R(θ)ᵀ (U = V = R(θ)).
  // U2ᵀ J1 V2 = R(θ)ᵀ diag(2,1) R(θ) = [[1 + c², −cs], [−cs, 1 + s²]], so
  //   K = 1: m_1 = |1 + c² − 2| / 2 = s²/2
  //   K = 2: ‖[[−s², |cs|], [|cs|, s²]]‖_F / ‖(2, 1)‖ = √(2s⁴ + 2c²s²)/√5 = √2·|s|/√5,
  //          trace-normalised √2·|s|/3
  const j1 = matrixFrom([2, 0, 0, 1]);
  const s1 = svd(j1, 2, 2).s;
  for (const theta of [0, 0.3, 0.7, Math.PI / 4]) {
    const c = Math.cos(theta);
    const s = Math.sin(theta);
    // R diag(3, 1) Rᵀ with R = [[c, −s], [s, c]]
    const j2 = matrixFrom([3 * c * c + s * s, 2 * c * s, 2 * c * s, 3 * s * s + c * c]);
    const [k1, k2] = couplingMetric(j1, 2, s1, svd(j2, 2, 2), [1, 2]);
    assert.ok(
      Math.abs(k1.mK - (s * s) / 2) < 1e-6,
      `θ = ${theta}, K = 1: ${k1.mK} vs ${(s * s) / 2}`,
    );
    assert.ok(
      Math.abs(k2.mK - (Math.SQRT2 * Math.abs(s)) / Math.sqrt(5)) < 1e-6,
      `θ = ${theta}, K = 2: ${k2.mK}`,
    );
    assert.ok(Math.abs(k2.traceNormalised - (Math.SQRT2 * Math.abs(s)) / 3) < 1e-6);
    assert.ok(Math.abs(k2.vju - k2.mK) < 1e-6); // U2 = V2 here, so the left–right variant agrees
  }
  // a 3×3 shared basis: J1 = Q diag(5, 2, 1) Qᵀ, J2 = Q diag(4, 3, 0.5) Qᵀ ⇒ m_K = 0
  const q = svd(
    Float64Array.from({ length: 9 }, (_, i) => Math.sin(i * 1.7 + 0.3)),
    3,
    3,
  ).u;
  const build = (sv: number[]) =>
    Float32Array.from({ length: 9 }, (_, e) => {
      const [r, col] = [Math.floor(e / 3), e % 3];
      return sv.reduce((a, v, k) => a + q[k * 3 + r] * v * q[k * 3 + col], 0);
    });
  const a = build([5, 2, 1]);
  const b = build([4, 3, 0.5]);
  for (const c of couplingMetric(a, 3, svd(a, 3, 3).s, svd(b, 3, 3), [1, 2, 3]))
    assert.ok(c.mK < 1e-5, `K = ${c.k}: ${c.mK}`);
});

// ---- LSS (§5.6), growth (§5.7), fidelity (§5.8): hand-computed references ----------------------

test('LSS = 1 for a straight ray and the hand-computed value for polylines', () => {
  const ray = [0, 0, 1, 2, 2, 4, 5, 10, 6, 12]; // 2-D points along (1, 2), uneven steps
  assert.ok(Math.abs(lineShapeScore(ray, 5, 2) - 1) < 1e-12);
  // (0,0) → (3,0) → (3,2): unit steps (1,0) + (0,1), LSS = 2/√2
  assert.ok(Math.abs(lineShapeScore([0, 0, 3, 0, 3, 2], 3, 2) - Math.SQRT2) < 1e-12);
  // (0,0) → (2,0) → (2,5) → (−1,5): (1,0) + (0,1) + (−1,0) = (0,1), LSS = 3/1
  assert.ok(Math.abs(lineShapeScore([0, 0, 2, 0, 2, 5, -1, 5], 4, 2) - 3) < 1e-12);
});

test('the growth fit recovers the rate of a geometric sequence of step sizes', () => {
  // x^l on a ray with steps δ_l = 0.5·1.3^l: rate 1.3, R² 1, expodistance 0
  const L = 8;
  const traj: number[] = [0, 0];
  for (let l = 1; l <= L; l++) traj.push(traj[2 * (l - 1)] + 0.5 * 1.3 ** l, 0);
  const delta = stepSizes(traj, L + 1, 2);
  delta.forEach((v, i) => assert.ok(Math.abs(v - 0.5 * 1.3 ** (i + 1)) < 1e-9));
  const g = exponentialGrowth(delta);
  assert.deepEqual(g.fitSteps, [2, 3, 4, 5, 6, 7]);
  assert.ok(Math.abs((g.rate as number) - 1.3) < 1e-12);
  assert.ok(Math.abs((g.r2 as number) - 1) < 1e-12);
  assert.ok((g.expodistance as number) < 1e-12);
  // equal steps: equidistance 0, rate 1
  const flat = exponentialGrowth([2, 2, 2, 2, 2]);
  assert.ok((flat.equidistance as number) < 1e-12 && Math.abs((flat.rate as number) - 1) < 1e-12);
});

test('linearisation fidelity: J = 0 gives cos(x^0, x^L); J = −½I per block scales x^0 and gives 1', () => {
  const d = 3;
  const zero = [new Float32Array(9), new Float32Array(9)];
  const x0 = [1, 0, 0];
  assert.ok(Math.abs(linearisationFidelity(zero, x0, [1, 1, 0], d) - Math.SQRT1_2) < 1e-12);
  const half = Float32Array.from([-0.5, 0, 0, 0, -0.5, 0, 0, 0, -0.5]);
  assert.ok(
    Math.abs(linearisationFidelity([half, half], [1, 2, 3], [0.25, 0.5, 0.75], d) - 1) < 1e-12,
  );
});

test('correlations match scipy.stats.pearsonr and spearmanr on a fixed table', () => {
  // scipy 1.x: pearsonr([1,2,3,4,5],[2,1,4,3,7]) = (0.824163383692134, 0.08613863131395952)
  //            spearmanr(...)                    = (0.8, 0.10408803866182788)
  const c = correlate([1, 2, 3, 4, 5], [2, 1, 4, 3, 7]);
  assert.ok(Math.abs((c.pearsonR as number) - 0.824163383692134) < 1e-12);
  assert.ok(Math.abs((c.pearsonP as number) - 0.08613863131395952) < 1e-9);
  assert.ok(Math.abs((c.r2 as number) - 0.824163383692134 ** 2) < 1e-12);
  assert.ok(Math.abs((c.spearmanRho as number) - 0.8) < 1e-12);
  assert.ok(Math.abs((c.spearmanP as number) - 0.10408803866182788) < 1e-9);
  assert.equal(correlate([1, 2], [3, 4]).pearsonR, null);
});

// ---- the random twin: the documented initialisation -----------------------------------------

test('initialWeights: N(0, 0.02²) weights, residual projections scaled by 1/√(2L), unit norms, zero biases, seeded', () => {
  const std = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
  const llama: ModelConfig = {
    architecture: 'llama',
    sourceArchitecture: 'test',
    dim: 64,
    hiddenDim: 172,
    nLayers: 5,
    nHeads: 8,
    nKvHeads: 4,
    headDim: 8,
    vocabSize: 512,
    seqLen: 64,
    norm: 'rmsnorm',
    normEps: 1e-5,
    mlp: 'swiglu',
    positional: 'rope',
    ropeTheta: 10000,
    ropeDim: 8,
    tiedEmbeddings: true,
    bosId: 1,
    eosId: 2,
  };
  const w = initialWeights(llama, 7);
  const scaled = INIT_STD / Math.sqrt(2 * llama.nLayers);
  const near = (a: number, b: number) => Math.abs(a - b) < 0.08 * b;
  assert.ok(near(std(w.tokenEmbedding.data), INIT_STD));
  assert.ok(
    near(std(w.layers[0].wq.data), INIT_STD) && near(std(w.layers[0].wDown.data), INIT_STD),
  );
  assert.ok(near(std(w.layers[0].wo.data), scaled) && near(std(w.layers[0].wUp.data), scaled)); // model.py: wo, w3
  assert.ok(w.layers[0].attnNorm.every((v) => v === 1) && w.finalNorm.every((v) => v === 1));
  assert.equal(w.unembedding, w.tokenEmbedding);
  assert.deepEqual(initialWeights(llama, 7).layers[2].wk.data, w.layers[2].wk.data);
  const gpt2: ModelConfig = {
    ...llama,
    architecture: 'gpt2',
    nKvHeads: 8,
    norm: 'layernorm',
    mlp: 'gelu_new',
    positional: 'learned',
  };
  const g = initialWeights(gpt2, 7);
  assert.ok(near(std(g.layers[0].wUp.data), INIT_STD) && near(std(g.layers[0].wDown.data), scaled)); // HF: c_fc, mlp.c_proj
  assert.ok(near(std(g.layers[0].wo.data), scaled)); // attn.c_proj
  assert.ok(near(std((g.positionEmbedding as { data: Float32Array }).data), INIT_STD));
  assert.ok(
    g.layers[0].bq?.every((v) => v === 0) && g.layers[0].attnNormBias?.every((v) => v === 0),
  );
});

// ---- the lens end to end on stories260K --------------------------------------------------------

const PROMPTS = ['Once upon a time', 'The dog ran to the park'];

let cached: CouplingReport | null = null;
async function storiesReport(): Promise<CouplingReport> {
  cached ??= analyzeCoupling(await openModel(STORIES), {
    prompts: PROMPTS,
    positions: 'all',
    k: [10, 30, 50, 100],
    randomTwin: true,
    seed: 3,
  });
  return cached;
}

function everyMetric(w: WeightsReport): { tag: string }[] {
  return [
    w.jacobian,
    w.singular_values,
    w.coupling,
    w.interactions,
    w.model_coupling,
    w.lss,
    w.growth,
    w.norm_growth,
    w.fidelity,
    w.top_singular_value,
  ];
}

test('analyzeCoupling on stories260K: shapes, tags, K clipped to d, C_K diagonal 0, twin beside trained', async () => {
  const r = await storiesReport();
  const L = 5;
  assert.deepEqual(r.k, [
    { requested: 10, used: 10 },
    { requested: 30, used: 30 },
    { requested: 50, used: 50 },
    { requested: 100, used: 64 },
  ]);
  assert.equal(r.seed, 3);
  assert.deepEqual(r.blocks, ['blocks.0', 'blocks.1', 'blocks.2', 'blocks.3', 'blocks.4']);
  assert.equal(r.prompts[0].prompt_ids[0], 1); // BOS
  assert.deepEqual(
    r.prompts[1].positions,
    r.prompts[1].prompt_ids.map((_, t) => t),
  );
  const twin = r.random_twin as WeightsReport & { seed: number };
  assert.equal(twin.seed, 3);
  for (const w of [r.trained, twin]) {
    for (const m of everyMetric(w)) assert.ok(m.tag === 'exact' || m.tag === 'proposed');
    assert.equal(w.interactions.tag, 'proposed');
    assert.equal(w.model_coupling.tag, 'proposed');
    assert.equal(w.coupling.tag, 'exact');
    for (const e of w.coupling.by_k) {
      assert.equal(e.matrix.length, L);
      e.matrix.forEach((row, i) => assert.ok(row[i] < 1e-4, `C_K[${i}][${i}] = ${row[i]}`));
    }
    assert.ok(w.interactions.token.available && w.interactions.token.by_k[0].by_block.length === L);
    assert.ok(w.interactions.context.available);
    assert.equal(
      w.interactions.context.by_k[0].per_prompt[0][0].length,
      r.prompts[0].prompt_ids.length - 1,
    );
    assert.equal(w.lss.per_prompt[0].length, r.prompts[0].prompt_ids.length);
    assert.ok(w.lss.per_prompt.flat().every((v) => v >= 1 - 1e-9));
    assert.equal(w.growth.mean_log_step.length, L);
    assert.equal(w.norm_growth.mean_log_norm.length, L + 1);
    assert.ok(Math.abs(w.fidelity.mean) <= 1);
    assert.equal(w.singular_values.mean_by_block[0].length, 64);
    const mc = w.model_coupling.by_k[0];
    assert.ok(Math.abs(mc.log10 - Math.log10(mc.value)) < 1e-12);
  }
  // the same seed gives the same twin
  const again = analyzeCoupling(await openModel(STORIES), {
    prompts: PROMPTS.slice(0, 1),
    k: [10],
    randomTwin: true,
    seed: 3,
  });
  assert.equal(again.random_twin?.lss.per_prompt[0][3], twin.lss.per_prompt[0][3]);
});

test('baselines: HF from_config twin (N(0, 0.02²) everywhere) beside the llama2.c-scaled one; the no-shared-basis level above the trained value', async () => {
  const r = await storiesReport();
  const hf = r.random_twin_hf!;
  assert.match(hf.init, /from_config/);
  assert.match(r.random_twin!.init, /llama2\.c/);
  assert.notEqual(hf.fidelity.mean, r.random_twin!.fidelity.mean);
  for (const w of [r.trained, r.random_twin!, hf]) {
    const level = w.model_coupling.no_shared_basis;
    assert.equal(level.tag, 'proposed');
    assert.equal(level.by_k.length, w.model_coupling.by_k.length);
    for (const e of level.by_k)
      assert.ok(e.sd > 0 && e.min <= e.mean && e.mean <= e.max && e.n > 0);
  }
  // The trained model is coupled beyond chance: its K = 10 value lies below the random-basis level.
  const t = r.trained.model_coupling;
  assert.ok(
    t.by_k[0].value < t.no_shared_basis.by_k[0].mean,
    `${t.by_k[0].value} vs ${t.no_shared_basis.by_k[0].mean}`,
  );
});

test('no-shared-basis level: Haar-random bases are orthonormal and E m_10(diag(1..32)/32, R) matches scipy ortho_group (fixture)', () => {
  const ref = JSON.parse(readFileSync(fixture('coupling', 'no-shared-basis.json'), 'utf8')) as {
    d: number;
    k: number;
    mean: number;
    sd: number;
  };
  const d = ref.d;
  const j = new Float32Array(d * d);
  for (let i = 0; i < d; i++) j[i * d + i] = (i + 1) / d;
  const s = Array.from({ length: d }, (_, i) => (d - i) / d);
  const rng = createRng(11);
  const draws = 4000;
  const vals: number[] = [];
  for (let t = 0; t < draws; t++) {
    const b = randomBasis(d, ref.k, rng);
    if (t === 0)
      for (let a = 0; a < ref.k; a++)
        for (let c = 0; c < ref.k; c++) {
          let uu = 0;
          let vv = 0;
          for (let i = 0; i < d; i++) {
            uu += b.u[a * d + i] * b.u[c * d + i];
            vv += b.v[a * d + i] * b.v[c * d + i];
          }
          assert.ok(
            Math.abs(uu - (a === c ? 1 : 0)) < 1e-12 && Math.abs(vv - (a === c ? 1 : 0)) < 1e-12,
          );
        }
    vals.push(couplingMetric(j, d, s, b, [ref.k])[0].mK);
  }
  const mu = vals.reduce((a, b) => a + b, 0) / draws;
  const sd = Math.sqrt(vals.reduce((a, b) => a + (b - mu) ** 2, 0) / (draws - 1));
  const se = ref.sd / Math.sqrt(draws);
  assert.ok(Math.abs(mu - ref.mean) < 4 * se, `mean ${mu} vs ${ref.mean} (SE ${se})`);
  assert.ok(Math.abs(sd - ref.sd) < 0.1 * ref.sd, `sd ${sd} vs ${ref.sd}`);
});

test('analyzeCoupling: --include-final-norm adds an ln_final block; a position past the prompt is refused', async () => {
  const m = await openModel(STORIES);
  const r = analyzeCoupling(m, {
    prompts: [PROMPTS[1]],
    k: [10],
    includeFinalNorm: true,
    interactions: false,
  });
  assert.deepEqual(r.blocks.at(-1), 'ln_final');
  assert.equal(r.trained.coupling.by_k[0].matrix.length, 6);
  assert.equal(r.trained.top_singular_value.s1_by_block.length, 5); // blocks only
  assert.equal(r.trained.interactions.context.available, false);
  assert.throws(
    () => analyzeCoupling(m, { prompts: ['Hi'], positions: [40] }),
    (e: unknown) => e instanceof LmdynError && /outside prompt 1/.test(e.message),
  );
});

test("--convention paper-code matches a float64 PyTorch run of the authors' conventions (HF hidden states, align.py fidelity; fixture)", async () => {
  const ref = JSON.parse(readFileSync(fixture('coupling', 'paper-code.json'), 'utf8')) as {
    prompts: {
      ids: number[];
      fidelity_align_py: number;
      last_block_s: number[];
      m10: number[][];
    }[];
  };
  const m = await openModel(STORIES);
  const texts = ['Once upon a time, there was a little girl', 'The cat sat on the mat'];
  const r = analyzeCoupling(m, {
    prompts: texts,
    k: [10],
    interactions: false,
    convention: 'paper-code',
  });
  assert.equal(r.options.convention, 'paper-code');
  assert.match(r.conventions.convention, /^paper-code/);
  assert.equal(r.blocks.at(-1), 'blocks.4+ln_final');
  assert.equal(r.trained.fidelity.tag, 'exact');
  ref.prompts.forEach((p, i) => {
    assert.deepEqual(r.prompts[i].prompt_ids, p.ids);
    const fid = r.trained.fidelity.per_prompt[i][0];
    assert.ok(
      Math.abs(fid - p.fidelity_align_py) < 2e-4,
      `fidelity ${fid} vs ${p.fidelity_align_py}`,
    );
    const s = r.trained.singular_values.per_prompt[i][0][4];
    p.last_block_s.forEach((v, k) =>
      assert.ok(Math.abs(s[k] - v) < 1e-4 * v, `s_${k} ${s[k]} vs ${v}`),
    );
    const c = r.trained.coupling.by_k[0].per_prompt[i][0];
    p.m10.forEach((row, a) =>
      row.forEach((v, b) =>
        assert.ok(Math.abs(c[a][b] - v) < 5e-4, `m10[${a}][${b}] ${c[a][b]} vs ${v}`),
      ),
    );
  });
  // The lmdyn convention differs (all L blocks, pre-norm x^L) and is tagged proposed.
  const own = analyzeCoupling(m, { prompts: texts, k: [10], interactions: false });
  assert.equal(own.options.convention, 'lmdyn');
  assert.equal(own.trained.fidelity.tag, 'proposed');
  assert.ok(
    Math.abs(own.trained.fidelity.per_prompt[0][0] - ref.prompts[0].fidelity_align_py) > 1e-2,
  );
  assert.throws(
    () => analyzeCoupling(m, { prompts: texts, convention: 'paper-code', includeFinalNorm: true }),
    (e: unknown) => e instanceof LmdynError && /does not apply/.test(e.message),
  );
});

// ---- the CLI: refusal before computing, files written -------------------------------------------

async function runCli(args: string[]): Promise<void> {
  const program = new Command('lmdyn').exitOverride();
  registerAnalyze(program, [registerCouplingLens]);
  for (const c of program.commands) c.exitOverride();
  await program.parseAsync(args, { from: 'user' });
}

test('CLI: a non-empty --out without --force is refused before any model is opened', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-coupling-'));
  try {
    writeFileSync(join(dir, 'keep.txt'), 'x');
    await assert.rejects(
      runCli([
        'analyze',
        'coupling',
        '--model',
        join(dir, 'no-such-model.bin'),
        '--prompt',
        'Hi',
        '--out',
        dir,
      ]),
      (e: unknown) => e instanceof LmdynError && /not empty/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: writes coupling.json, jacobians.safetensors [positions, d, d] and the figures', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-coupling-'));
  const out = join(dir, 'run');
  const prompts = join(dir, 'prompts.txt');
  try {
    writeFileSync(prompts, 'Once upon a time\nThe cat sat\n');
    mkdirSync(out);
    await runCli([
      'analyze',
      'coupling',
      '-m',
      STORIES,
      '--prompts',
      prompts,
      '--positions',
      '0,2',
      '--k',
      '5',
      '--save-jacobians',
      '--no-interactions',
      '--out',
      out,
      '--force',
    ]);
    const report = JSON.parse(readFileSync(join(out, 'coupling.json'), 'utf8')) as CouplingReport;
    assert.equal(report.prompts.length, 2);
    assert.equal(report.trained.coupling.by_k[0].k, 5);
    const f = openSafetensors(join(out, 'jacobians.safetensors'));
    try {
      assert.deepEqual(f.byName.get('blocks.4.jacobian')?.shape, [4, 64, 64]); // 2 prompts × 2 positions
      assert.deepEqual(f.byName.get('jacobian_index')?.shape, [4, 2]);
    } finally {
      closeSafetensors(f);
    }
    for (const name of ['coupling_k5.svg', 'spectra.svg', 'lss.svg', 'growth.svg'])
      assert.ok(existsSync(join(out, name)), name);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: --models with --scores writes one row per model and correlations', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-coupling-'));
  const out = join(dir, 'models');
  try {
    writeFileSync(join(dir, 'p.txt'), 'Once upon a time\n');
    writeFileSync(join(dir, 's.csv'), 'model,score\nstories260K.bin,0.5\ntiny-gpt2,0.1\n');
    const gpt2 = model('tiny-gpt2');
    await runCli([
      'analyze',
      'coupling',
      '--models',
      `${STORIES},${gpt2}`,
      '--prompts',
      join(dir, 'p.txt'),
      '--scores',
      join(dir, 's.csv'),
      '--k',
      '10',
      '--out',
      out,
    ]);
    const r = JSON.parse(readFileSync(join(out, 'coupling-models.json'), 'utf8')) as {
      rows: { model: string; width: number; score: number }[];
      correlations: { quantity: string; n: number }[];
    };
    assert.deepEqual(
      r.rows.map((x) => [x.width, x.score]),
      [
        [64, 0.5],
        [2, 0.1],
      ],
    );
    assert.ok(r.correlations.some((c) => c.quantity === 'coupling' && c.n === 2));
    assert.ok(existsSync(join(out, 'coupling-models.csv')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
