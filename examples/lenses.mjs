// Every lens from the library, on the model lmdyn ships: a small decoding sweep, then
// DMET (§1), SDE (§2), gravity (§3, proposed), simplex (§4) and Vietoris–Rips persistence.
// Run from the repository root: node examples/lenses.mjs [model]   (a few seconds)
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  openModel,
  runSweep,
  readSweepIndex,
  readTrace,
  openDmetSource,
  analyzeDmet,
  loadDictionary,
  analyzeSde,
  analyzeSimplex,
  analyzeGravity,
  ripsPersistence,
} from 'lmdyn';

// The model lmdyn ships (models-shipped/lmdyn-tiny-260K), or the one named on the command line.
const spec = process.argv[2] ?? fileURLToPath(new URL('../models-shipped/lmdyn-tiny-260K/model.bin', import.meta.url));
const model = await openModel(spec);
const fmt = (v) => (v === null || !Number.isFinite(v) ? '–' : v.toPrecision(3));

// A decoding sweep: T ∈ {0.5, 1} × top-p ∈ {0.9, 1}, 4 samples of 48 tokens each (both cores).
const sweepDir = 'runs/example-sweep';
await runSweep(
  {
    model: spec,
    tokenizer: null,
    prompt: 'Once upon a time',
    samples: 4,
    maxTokens: 48,
    seed: 1,
    hooks: ['hook_embed', 'blocks.*.hook_resid_post', 'ln_final.hook_normalized'],
    logits: { kind: 'none' },
    grid: { temperature: [0.5, 1], topP: [0.9, 1], topK: [0], repetitionPenalty: [1] },
  },
  sweepDir,
  { force: true },
);

// DMET (§1): continuity, clustering and persistence of the last-layer trajectory per configuration.
const dmet = analyzeDmet(openDmetSource(sweepDir), {
  scorer: model,
  scorerSpec: spec,
  dictionary: loadDictionary(),
});
for (const c of dmet.report.configurations) {
  console.log(
    `dmet T ${c.temperature} top-p ${c.top_p}: C_mean ${fmt(c.mean.C_mean)} silhouette ${fmt(c.mean.silhouette)} ` +
      `persistence ${fmt(c.mean.persistence)} log ppl ${fmt(c.mean.log_ppl)}`,
  );
}

// SDE (§2): drift and diffusion networks per configuration in a shared 4-D PCA, then simulated.
const index = readSweepIndex(sweepDir);
const inputs = index.configs.map((c) => ({
  label: c.dir,
  dir: join(sweepDir, c.dir),
  trace: readTrace(join(sweepDir, c.dir)),
}));
const { report: sde } = analyzeSde(
  inputs,
  { kind: 'sweep', dir: sweepDir },
  {
    dims: 4,
    seed: 1,
    replicas: 8,
    fit: { hidden: [32, 32], maxEpochs: 60, patience: 10, lr: 3e-3 },
  },
);
for (const d of sde.datasets) {
  console.log(
    `sde T ${d.sampling.temperature} top-p ${d.sampling.topP}: test NLL ${fmt(d.validation.nll.model.test)} ` +
      `(constant ${fmt(d.validation.nll.constant_test)}), SNR ${fmt(d.analyses.along_trajectories.mean.snr)}`,
  );
}

// Simplex (§4): the two replicator flows on one next-token distribution.
const simplex = analyzeSimplex(model, {
  prompt: 'Once upon a time, there was a little girl named Lily.',
  topK: 10,
  starts: 2,
  seed: 1,
});
console.log(
  `simplex: paper's flow at t = ${simplex.flows.paper.long_run.t}: top probability ${simplex.flows.paper.long_run.top_probability.toFixed(6)}; ` +
    `entropic flow ‖p − π_T‖₁ = ${simplex.flows.entropic.long_run.l1_to_equilibrium.toExponential(1)} (${simplex.flows.entropic.tag})`,
);

// Gravity (§3, every metric proposed): potential, mass and curvature of a few queries.
const gravity = analyzeGravity(model, {
  prompts: ['The cat sat on the', 'Quantum chromodynamics predicts that'],
  reference: {
    texts: [
      'Once upon a time there was a dog.',
      'The girl went to the park to play.',
      'Tom had a red ball.',
    ],
    source: 'inline',
  },
  paraphrases: null,
  samples: 2,
  maxTokens: 12,
  seed: 1,
});
for (const p of gravity.prompts) {
  console.log(
    `gravity (proposed) ${JSON.stringify(p.text)}: M_info ${fmt(p.M_info)} κ ${fmt(p.kappa_t1)} void ${fmt(p.void_score)}`,
  );
}

// Persistence: 12 points on a unit circle have one H1 class born at the chord 2 sin(π/12) and
// dying at √3 (the triangle of every fourth point).
const n = 12;
const circle = Float64Array.from({ length: 2 * n }, (_, i) =>
  (i % 2 ? Math.sin : Math.cos)((2 * Math.PI * (i >> 1)) / n),
);
const h1 = ripsPersistence(circle, n, 2, { maxDim: 1 }).pairs.filter((p) => p.dim === 1);
console.log(
  `rips circle: H1 ${h1.map((p) => `[${p.birth.toFixed(4)}, ${p.death.toFixed(4)})`).join(' ')}`,
);
