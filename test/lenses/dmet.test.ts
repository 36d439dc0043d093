import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openModel } from '../../src/api.js';
import { readParquet } from '../../src/io/parquet.js';
import {
  applyProjection,
  cosineContinuity,
  jumpSteps,
  PooledFit,
  predictability,
  sequenceDynamics,
  stateContinuity,
  type DynamicsOptions,
} from '../../src/lenses/dmet/dynamics.js';
import { trajectory, type DmetReport } from '../../src/lenses/dmet/analyze.js';
import {
  coherence,
  distinctN,
  grammarScore,
  perplexity,
  spellingScore,
} from '../../src/lenses/dmet/text.js';
import { loadDictionary } from '../../src/io/dictionary.js';
import { createRng } from '../../src/tensor/rng.js';
import { fixture, model, STORIES_LSE0, STORIES_TOP5 } from '../helpers/paths.js';

const BIN = resolve('bin', 'lmdyn.js');
const STORIES = model('stories260K', 'stories260K.bin');
const TOKENIZER = model('stories260K', 'tok512.bin');

const close = (a: number, b: number, tol: number) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

function python(code: string, input: unknown): unknown {
  const out = spawnSync('python3', ['-c', code], {
    input: JSON.stringify(input),
    encoding: 'utf8',
  });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout);
}

function lmdyn(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LMDYN_MODEL: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const OPTIONS: DynamicsOptions = {
  space: 'per-sequence',
  bugCompatible: false,
  pcaSigns: 'sklearn>=1.5',
  clusters: 3,
  kmeansSeed: 42,
  kmeansInit: 1,
  ripsMaxDim: 1,
  predictability: true,
};

// numpy reference of §1.3: StandardScaler (ddof 0, zero std → 1), then PCA(2) by eigh of the
// covariance; scores and explained-variance ratios.
const NUMPY_PCA = `
import json, sys, numpy as np
d = json.load(sys.stdin); X = np.array(d['x']).reshape(d['n'], d['d'])
sd = X.std(0); sd[sd == 0] = 1; Z = (X - X.mean(0)) / sd
w, V = np.linalg.eigh(np.cov(Z, rowvar=False)); o = np.argsort(w)[::-1]; w, V = w[o], V[:, o]
S = (Z - Z.mean(0)) @ V[:, :2]
print(json.dumps({'scores': S.ravel().tolist(), 'ratio': (w[:2] / w.sum()).tolist()}))`;

// ---- trajectory geometry: PCA against a numpy eigendecomposition ------------------------------

test('per-sequence z-score + PCA equals numpy (eigh of the covariance), up to the sign of each PC', () => {
  const rng = createRng(4);
  const n = 30;
  const d = 8;
  // a drifting random walk with one constant feature (StandardScaler leaves it unscaled)
  const h = new Float64Array(n * d);
  for (let t = 0; t < n; t++)
    for (let j = 0; j < d; j++)
      h[t * d + j] = j === 5 ? 3 : (t > 0 ? h[(t - 1) * d + j] : 0) + rng.normal() * (j + 1);
  const ref = python(NUMPY_PCA, { x: [...h], n, d }) as { scores: number[]; ratio: number[] };
  const dyn = sequenceDynamics(h, n, d, OPTIONS);
  for (const c of [0, 1]) {
    const sign = Math.sign(dyn.curve[c]) * Math.sign(ref.scores[c]);
    for (let t = 0; t < n; t++) close(dyn.curve[t * 2 + c], sign * ref.scores[t * 2 + c], 1e-9);
    close(dyn.explainedVarianceRatio[c], ref.ratio[c], 1e-10);
  }
});

test('pooled z-score + PCA over several trajectories equals numpy on the stacked rows', () => {
  const rng = createRng(8);
  const d = 6;
  const parts = [12, 20, 9].map((n) =>
    Float64Array.from({ length: n * d }, (_, k) => rng.normal() * (1 + (k % d)) + (k % d)),
  );
  const fit = new PooledFit(d);
  parts.forEach((h) => fit.add(h, h.length / d));
  const p = fit.finish();
  const all = parts.flatMap((h) => [...h]);
  const ref = python(NUMPY_PCA, { x: all, n: all.length / d, d }) as {
    scores: number[];
    ratio: number[];
  };
  const mine = parts.flatMap((h) => [...applyProjection(h, h.length / d, d, p)]);
  for (const c of [0, 1]) {
    const sign = Math.sign(mine[c]) * Math.sign(ref.scores[c]);
    for (let t = 0; t < all.length / d; t++)
      close(mine[t * 2 + c], sign * ref.scores[t * 2 + c], 1e-8);
    close(p.explainedVarianceRatio[c], ref.ratio[c], 1e-10);
  }
});

// ---- continuity, jumps, bounded variants, predictability: hand-computed values ---------------

test('continuity on (0,0) → (3,4) → (3,0) → (0,0): d = 5, 4, 3; C = 4 ± 1, max 5 (hand-computed)', () => {
  const z = [0, 0, 3, 4, 3, 0, 0, 0];
  const c = stateContinuity(z, 4, 2);
  assert.deepEqual(c.distances, [5, 4, 3]);
  close(c.mean, 4, 1e-15);
  close(c.std, 1, 1e-15); // unbiased, as torch.std
  close(c.max, 5, 1e-15);
  assert.deepEqual(jumpSteps(c), []);
});

test('bug-compatible continuity is the released code: mean |PC2 − PC1|, std NaN, no jumps', () => {
  // |y − x| per point: 0, 1, 3, 0 → m = 1 = C_mean = C_max
  const c = stateContinuity([0, 0, 3, 4, 3, 0, 0, 0], 4, 2, true);
  close(c.mean, 1, 1e-15);
  close(c.max, 1, 1e-15);
  assert.ok(Number.isNaN(c.std));
  assert.deepEqual(jumpSteps(c), []);
});

test('a jump: nine unit steps then one of 10 → threshold 1.9 + 2·√8.1, jump at step 9', () => {
  const z = Array.from({ length: 10 }, (_, t) => [t, 0])
    .flat()
    .concat([19, 0]);
  const c = stateContinuity(z, 11, 2);
  close(c.mean, 1.9, 1e-12);
  close(c.std, Math.sqrt(8.1), 1e-12);
  assert.deepEqual(jumpSteps(c), [9]);
});

test('C_cos of (1,0), (0,1), (1,1) is (0 + 1/√2)/2; AR(1) recovers a noiseless linear map exactly', () => {
  close(cosineContinuity([1, 0, 0, 1, 1, 1], 3, 2)!, Math.SQRT1_2 / 2, 1e-15);
  // z_{t+1} = A z_t + b with a rotation-and-shrink A: residuals 0, predictability 1/(0 + 1e-6)
  const z = [1, 0];
  for (let t = 0; t < 20; t++) {
    const [x, y] = z.slice(-2);
    z.push(0.9 * x - 0.3 * y + 0.1, 0.3 * x + 0.9 * y - 0.2);
  }
  const p = predictability(z, 21, 2)!;
  assert.ok(p.mse < 1e-20, String(p.mse));
  close(p.value, 1e6, 1e-9);
});

// ---- text quality: hand-computed values and MANIFEST.md logits -------------------------------

test('grammar, spelling and distinct-2 by hand', () => {
  // segments "the cat sat", " The dog ran", " it is here": two lower-case starts
  close(grammarScore('the cat sat. The dog ran! it is here'), 1 - 2 / (3 + 1e-6), 1e-15);
  close(grammarScore('Hello world.'), 1, 1e-15); // segments "Hello world", "": no error
  // "cats ingest food." : lower-case start + (first word ends in s, second starts with ing)
  close(grammarScore('cats ingest food.'), 1 - 2 / (2 + 1e-6), 1e-15);
  const dict = loadDictionary();
  // 9 words, one distinct unknown (zzqx, twice); 42 is a number and never unknown; "a" is known
  close(spellingScore('The cat sat on the mat zzqx zzqx 42', dict), 1 - 1 / 9, 1e-15);
  close(spellingScore('a dog', dict), 1, 1e-15);
  assert.equal(spellingScore('...', dict), 0);
  close(distinctN('a b a b a'), 0.5, 1e-15); // bigrams ab, ba, ab, ba: 2 unique of 4
  close(distinctN('Tom, tom TOM'), 0.5, 1e-15); // lower-cased: (tom, tom) twice, 1 unique of 2
});

test('perplexity of "Once" under stories260K = exp(lse − z_403) from MANIFEST.md; coherence of a repeated sentence is 1', async () => {
  const m = await openModel(STORIES);
  const [id, logit] = STORIES_TOP5[0];
  assert.equal(id, 403);
  close(perplexity(m, 'Once')!, Math.exp(STORIES_LSE0 - logit), 1e-4);
  close(coherence(m, 'Tom ran. Tom ran.'), 1, 1e-12);
  assert.equal(coherence(m, 'Only one sentence'), 0.5);
});

// ---- end to end: lmdyn sweep, then lmdyn analyze dmet ----------------------------------------

test('analyze dmet --sweep end to end on stories260K: files, rows, C_mean vs numpy, P vs ripser, Pearson vs numpy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-dmet-'));
  try {
    const sweep = join(dir, 'sweep');
    const s = lmdyn(
      'sweep',
      '-m',
      STORIES,
      '-z',
      TOKENIZER,
      '-i',
      'Once upon a time',
      '--temperature',
      '0.5,1.5',
      '--top-p',
      '0.9,1',
      '--samples',
      '8',
      '-n',
      '24',
      '--workers',
      '1',
      '--logits',
      'none',
      '-o',
      sweep,
    );
    assert.equal(s.code, 0, s.stderr);
    const r = lmdyn('analyze', 'dmet', '--sweep', sweep);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /dmet: 4 configuration\(s\), 32 sequences/);
    for (const f of [
      'dmet.json',
      'dmet.parquet',
      'dmet_trajectories.parquet',
      'dmet_persistence.parquet',
      'dmet-plots/trajectories.svg',
      'dmet-plots/heatmap_C_mean.svg',
      'dmet-plots/persistence_diagrams.svg',
      'dmet-plots/temperature_trend.svg',
    ]) {
      assert.ok(existsSync(join(sweep, f)), f);
    }
    const report = JSON.parse(readFileSync(join(sweep, 'dmet.json'), 'utf8')) as DmetReport;
    assert.equal(report.config.hook, 'ln_final.hook_normalized');
    assert.equal(report.seed.kmeans, 42);
    assert.equal(report.seed.recording, 42);
    assert.equal(report.metrics.C_mean.tag, 'exact');
    assert.equal(report.config.convention, 'lmdyn');
    assert.match(report.config.pca_signs, /^sklearn>=1.5/);
    assert.equal(report.metrics.coherence.tag, 'proposed');
    // perplexity by the generating model with BOS, a different dictionary: not the paper's
    assert.equal(report.metrics.log_ppl.tag, 'proposed');
    assert.equal(report.metrics.spelling.tag, 'proposed');
    assert.equal(report.metrics.diversity.tag, 'exact');
    assert.equal(report.configurations.length, 4);
    assert.equal(report.tests.per_config_pearson.tests.length, 4 * 4 * 5);
    assert.equal(report.tests.mixed_model.fits.length, 5);
    assert.ok(
      report.tests.mixed_model.fits.some((f) => f.error === null),
      'some mixed model fits with 32 rows',
    );
    assert.deepEqual(report.heatmaps.temperature, [0.5, 1.5]);

    const rows = await readParquet(join(sweep, 'dmet.parquet'));
    assert.equal(rows.length, 32);
    const row = rows.find((x) => x.config === 1 && x.sample === 3)!;
    // 24 generated tokens → steps 1..23 → 23 points (unless the sample stopped early)
    assert.equal(row.points, (row.generated_tokens as number) - 1);

    // C_mean of that sequence recomputed with numpy straight from trace.safetensors (§1.3–1.4)
    const cfg = join(sweep, report.configurations[1].dir);
    const ref = python(
      `
import json, sys, struct, numpy as np
d = json.load(sys.stdin); raw = open(d['path'], 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n]); t = h['ln_final.hook_normalized']; a, b = t['data_offsets']
X = np.frombuffer(raw[8 + n + a:8 + n + b], dtype='<f4').reshape(t['shape']).astype(np.float64)
x = X[d['sample'], d['first']:d['first'] + d['count']]
sd = x.std(0); sd[sd == 0] = 1; Z = (x - x.mean(0)) / sd
w, V = np.linalg.eigh(np.cov(Z, rowvar=False)); V = V[:, np.argsort(w)[::-1]][:, :2]
step = np.linalg.norm(np.diff(Z @ V, axis=0), axis=1)
print(json.dumps({'mean': step.mean(), 'std': step.std(ddof=1), 'max': step.max()}))`,
      {
        path: join(cfg, 'trace.safetensors'),
        sample: 3,
        first: row.prompt_tokens,
        count: row.points,
      },
    ) as { mean: number; std: number; max: number };
    close(row.C_mean as number, ref.mean, 1e-6);
    close(row.C_std as number, ref.std, 1e-6);
    close(row.C_max as number, ref.max, 1e-6);

    // P of that sequence against Debian's ripser on the exported 2-D curve
    const curve = (await readParquet(join(sweep, 'dmet_trajectories.parquet'))).filter(
      (x) => x.config === 1 && x.sample === 3,
    );
    assert.equal(curve.length, row.points);
    const cloud = join(dir, 'cloud.txt');
    writeFileSync(cloud, curve.map((p) => `${p.pc1} ${p.pc2}`).join('\n') + '\n');
    const rip = spawnSync('ripser', ['--format', 'point-cloud', '--dim', '1', cloud], {
      encoding: 'utf8',
    });
    assert.equal(rip.status, 0, rip.stderr);
    const h1 = rip.stdout.split('persistence intervals in dim 1:')[1] ?? '';
    const lifetimes = [...h1.matchAll(/\[([\d.e+-]+),([\d.e+-]+)\)/g)].map(
      (m) => Number(m[2]) - Number(m[1]),
    );
    close(row.persistence as number, lifetimes.length ? Math.max(...lifetimes) : 0, 1e-5);

    // per-configuration Pearson (C_mean vs log_ppl in configuration 2) against numpy corrcoef
    const mine = rows.filter((x) => x.config === 2);
    const test2 = report.tests.per_config_pearson.tests.find(
      (t) => t.config === 2 && t.feature === 'C_mean' && t.target === 'log_ppl',
    )!;
    const rr = python(
      'import json,sys,numpy as np; d=json.load(sys.stdin); print(json.dumps(np.corrcoef(d["x"], d["y"])[0,1]))',
      {
        x: mine.map((x) => x.C_mean),
        y: mine.map((x) => x.log_ppl),
      },
    ) as number;
    close(test2.r!, rr, 1e-10);

    // one trace folder, written elsewhere, with the pre-norm hook and the bug-compatible continuity
    const out = join(dir, 'one');
    const t = lmdyn(
      'analyze',
      'dmet',
      '--trace',
      cfg,
      '-o',
      out,
      '--hook',
      'blocks.4.hook_resid_post',
      '--bug-compatible',
      '--no-plots',
    );
    assert.equal(t.code, 0, t.stderr);
    const one = JSON.parse(readFileSync(join(out, 'dmet.json'), 'utf8')) as DmetReport;
    assert.equal(one.source.kind, 'trace');
    assert.match(one.config.hook_note, /before the final norm/);
    const oneRows = await readParquet(join(out, 'dmet.parquet'));
    assert.equal(oneRows.length, 8);
    assert.ok(oneRows.every((x) => x.C_std === null && x.C_mean === x.C_max && x.jumps === 0));

    // user errors: one line, non-zero exit
    for (const [args, pattern] of [
      [['--sweep', sweep, '--trace', cfg], /one of them/],
      [['--sweep', sweep, '--hook', 'blocks.9.hook_resid_post'], /did not record/],
      [['--sweep', sweep, '--space', 'full', '--bug-compatible'], /cannot be combined/],
      [['--sweep', cfg], /is a trace folder/],
    ] as [string[], RegExp][]) {
      const e = lmdyn('analyze', 'dmet', ...args, '--no-plots', '-o', join(dir, 'err'));
      assert.notEqual(e.code, 0);
      assert.match(e.stderr.trim(), pattern);
      assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--convention paper-code: svd_flip-signed per-sequence PCA and the released continuity match scikit-learn (fixture, both sign rules)', () => {
  const ref = JSON.parse(readFileSync(fixture('dmet', 'svd-flip.json'), 'utf8')) as {
    cases: {
      n: number;
      d: number;
      h: number[][];
      scores_u_based: number[][];
      scores_v_based: number[][];
      C_bug_u_based: number;
      C_bug_v_based: number;
    }[];
  };
  for (const c of ref.cases) {
    const h = Float64Array.from(c.h.flat());
    for (const [rule, scores, C] of [
      ['sklearn<1.5', c.scores_u_based, c.C_bug_u_based],
      ['sklearn>=1.5', c.scores_v_based, c.C_bug_v_based],
    ] as const) {
      const r = sequenceDynamics(h, c.n, c.d, { ...OPTIONS, bugCompatible: true, pcaSigns: rule });
      for (let t = 0; t < c.n; t++)
        for (let j = 0; j < 2; j++)
          assert.ok(Math.abs(r.curve[t * 2 + j] - scores[t][j]) < 1e-9, `${rule} z[${t}][${j}]`);
      assert.ok(Math.abs(r.continuity.mean - C) < 1e-10, `${rule}: ${r.continuity.mean} vs ${C}`);
      assert.ok(Number.isNaN(r.continuity.std));
    }
    // The intended continuity does not depend on the signs.
    const a = sequenceDynamics(h, c.n, c.d, { ...OPTIONS, pcaSigns: 'sklearn<1.5' });
    const b = sequenceDynamics(h, c.n, c.d, { ...OPTIONS, pcaSigns: 'sklearn>=1.5' });
    assert.ok(Math.abs(a.continuity.mean - b.continuity.mean) < 1e-12);
  }
});

test('trajectory window: a sequence ended by EOS keeps y_N (HF forwarded it to sample EOS); one cut by length does not', () => {
  // 1 sample, prompt 3 tokens, 4 generated; positions 0..6 all forwarded, width 1, value = position
  const states = Float32Array.from({ length: 7 }, (_, p) => p);
  const data = { samples: [], positions: 7, width: 1, states };
  const base = { sample: 0, seed: 0, text: '', promptLength: 3, generated: 4 };
  const window = { keepFirstStep: false, includeLastToken: false };
  // steps 1..N−1 → positions 3, 4, 5 (y_1..y_3); with EOS steps 1..N → also position 6 (y_4)
  const cut = trajectory(data, { ...base, finishReason: 'length' }, window);
  assert.deepEqual(Array.from(cut.h), [3, 4, 5]);
  const eos = trajectory(data, { ...base, finishReason: 'eos' }, window);
  assert.deepEqual(Array.from(eos.h), [3, 4, 5, 6]);
});
