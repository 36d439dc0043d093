/**
 * Demo step: training (issue 11) and the coupling lens over its checkpoints (papers.md §5.9
 * item 4). A few dozen documents are sampled from the demo model (distillation), a tiny llama is
 * trained on their text with the 512-token tokenizer lmdyn ships (any teacher's text can be
 * re-tokenized with it), keeping a checkpoint every 20 steps, and each checkpoint is analysed.
 * Minutes of training on one core are far from the paper's Pythia runs: the section shows the
 * pipeline, not evidence for or against the claim; README has a longer run.
 */
import { readTrainingRun } from '../io/training-run.js';
import { dirname, join } from 'node:path';
import { DEFAULT_OPTIM } from '../train/optim.js';
import { distillCorpus, readCorpus } from '../train/data.js';
import { train } from '../train/loop.js';
import { parseConfig } from './train.js';
import { analyzeCouplingOverTraining } from '../lenses/coupling/training.js';
import { writeTrainingDynamics } from '../report/lenses/coupling.js';
import { openModel } from '../api.js';
import { loadTokenizer } from '../io/load.js';
import { shippedModel } from '../io/discover.js';
import type { DemoStep } from './demo-step.js';
import { cite } from '../papers.js';

const PROMPTS = [
  'Once upon a time, there was a little girl named Lily.',
  'The cat sat on the mat and looked at the bird.',
];
const STEPS = 80;
const SEED = 1;

export const trainDemo: DemoStep = {
  name: 'train',
  async run({ label, out, say, record }) {
    const dir = join(out, 'train');
    const shipped = shippedModel();
    if (!shipped) {
      record('Training', 'skipped: models-shipped/ (its tokenizer) is not in this installation');
      return;
    }
    const tokenizerPath = join(dirname(shipped), 'tokenizer.bin');
    say('train: sampling 48 documents from the demo model …');
    const corpus = await distillCorpus({
      teacher: label,
      samples: 48,
      seed: SEED,
      temperature: 1,
      maxTokens: 128,
      out: join(dir, 'distill.jsonl'),
    });
    const tokenizer = loadTokenizer(tokenizerPath);
    const data = readCorpus(corpus.path, tokenizer, { valFraction: 0.1, seed: SEED });
    const shape = parseConfig('dim=32,layers=3,heads=4,kv_heads=2', tokenizer.vocabSize, 64);
    say(`train: ${STEPS} steps of a ${shape.nLayers}-layer, d = ${shape.dim} model …`);
    const run = join(dir, 'run');
    const result = await train({
      shape,
      optim: { ...DEFAULT_OPTIM, lr: 3e-3, minLr: 3e-4, warmup: 8, steps: STEPS },
      batch: 8,
      seq: 64,
      seed: SEED,
      out: run,
      tokenizerPath,
      data,
      info: { demo: true, teacher: label },
      evalEvery: 20,
      valTokens: 4096,
      checkpointEvery: 20,
      keepCheckpoints: true,
      resume: false,
      threads: 1,
      sampleTokens: 0,
    });
    say('train: the coupling lens on each checkpoint …');
    const dyn = await analyzeCouplingOverTraining(await readTrainingRun(run), (p) => openModel(p), {
      prompts: PROMPTS,
      k: [10],
      seed: SEED,
    });
    await writeTrainingDynamics(join(dir, 'coupling'), dyn);
    const rows = dyn.report.rows.map(
      (r) =>
        `step ${String(r.step).padStart(3)}  val loss ${fmt(r.val_loss)}  coupling m_K (K=10) ${fmt(r.coupling)}  ` +
        `LSS ${fmt(r.lss_mean)}  growth rate ${fmt(r.growth_rate)}`,
    );
    const c = dyn.report.shapes.find((s) => s.quantity === 'coupling');
    record(
      `Training (lmdyn train) and the coupling lens over its checkpoints (${cite('coupling')})`,
      `${corpus.meta.samples} documents (${corpus.meta.tokens} tokens) sampled from the demo model → ${data.train.length} training and ` +
        `${data.val.length} validation tokens with lmdyn's 512-token tokenizer; ${shape.nLayers} layers, d = ${shape.dim}, ` +
        `${STEPS} steps, seed ${SEED}: validation loss ${fmt(dyn.report.rows[0].val_loss)} → ${fmt(result.finalValLoss)} → ${run}\n\n` +
        rows.join('\n') +
        (c && c.peak_retained !== null
          ? `\n\ncoupling m_K (lower = more coupled) ${fmt(c.initial)} → ${fmt(c.final)}; farthest from step 0: ` +
            `${fmt(c.peak)} at ${pct(c.peak_at)} of training, ${pct(c.peak_retained)} of that move kept at the end (proposed shape statistics)`
          : '') +
        `\n\n${STEPS} steps of a toy model show the pipeline, not the paper's Pythia-scale claim; ` +
        `\`lmdyn analyze coupling --checkpoints RUN\` on a longer run (README) → ${dir}/coupling`,
    );
  },
};

function pct(v: number | null): string {
  return v === null ? '–' : `${(100 * v).toFixed(0)}%`;
}

function fmt(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '–' : v.toFixed(3);
}
