import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/io/load.js';
import { loadTokenizer } from '../../src/io/load.js';
import { Transformer } from '../../src/model/forward.js';
import { readCorpus, sampleBatch, batchRng, splitDocuments } from '../../src/train/data.js';
import { train, readRows, type TrainOptions } from '../../src/train/loop.js';
import {
  initParams,
  paramLayout,
  paramViews,
  TrainGraph,
  type TrainShape,
} from '../../src/train/model.js';
import { adamwStep, type OptimConfig } from '../../src/train/optim.js';
import { allocVec } from '../../src/train/tensor.js';
import { createRng } from '../../src/tensor/rng.js';
import { model } from '../helpers/paths.js';

const TOK = model('stories260K', 'tok512.bin');
const tiny: TrainShape = {
  dim: 32,
  hiddenDim: 64,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 512,
  seqLen: 32,
  tied: true,
};

test('a tiny model overfits one batch to near-zero loss (exact targets: random tokens)', () => {
  const shape: TrainShape = { ...tiny, vocabSize: 64, seqLen: 24 };
  const m = 4;
  const T = 24;
  const rng = createRng(5);
  const tokens = Array.from({ length: m * T }, () => Math.floor(rng.next() * 64));
  const targets = Array.from({ length: m * T }, () => Math.floor(rng.next() * 64));
  const graph = new TrainGraph(shape, 'f32', m, T);
  const params = initParams(shape, 1, 'f32');
  const grads = allocVec('f32', params.length);
  const pv = paramViews(params, shape);
  const gv = paramViews(grads, shape);
  const c: OptimConfig = {
    lr: 1e-2,
    minLr: 1e-2,
    warmup: 0,
    steps: 300,
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    weightDecay: 0,
    gradClip: 1,
  };
  const state = { m: allocVec('f32', params.length), v: allocVec('f32', params.length), t: 0 };
  const { tensors } = paramLayout(shape);
  let loss = NaN;
  const first = (() => {
    graph.prepare(pv);
    return graph.loss(pv, tokens, targets, m) / (m * T);
  })();
  for (let step = 0; step < 300; step++) {
    graph.prepare(pv);
    grads.fill(0);
    loss = graph.lossAndGrad(pv, gv, tokens, targets, m, 1 / (m * T)) / (m * T);
    adamwStep(params, grads, state, tensors, c.lr, c);
  }
  graph.prepare(pv);
  loss = graph.loss(pv, tokens, targets, m) / (m * T);
  assert.ok(Math.abs(first - Math.log(64)) < 0.05, `initial loss ${first} ≈ ln 64`);
  if (process.env.LMDYN_GRAD_REPORT) process.stderr.write(`overfit: ${first} → ${loss}\n`);
  assert.ok(loss < 0.02, `final loss ${loss}`);
  graph.free();
});

/** A stream where every token has one successor (a fixed cycle through 100 ids). */
function cycleData(): {
  train: Int32Array;
  val: Int32Array;
  documents: { train: number; val: number };
  from: 'ids';
} {
  const rng = createRng(9);
  const cycle = Array.from({ length: 100 }, (_, i) => i + 3);
  for (let i = cycle.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [cycle[i], cycle[j]] = [cycle[j], cycle[i]];
  }
  const stream = (n: number, start: number) =>
    Int32Array.from({ length: n }, (_, i) => cycle[(start + i) % 100]);
  return {
    train: stream(3000, 0),
    val: stream(400, 37),
    documents: { train: 1, val: 1 },
    from: 'ids',
  };
}

function options(out: string, steps: number): TrainOptions {
  return {
    shape: tiny,
    optim: {
      lr: 2e-2,
      minLr: 2e-3,
      warmup: 5,
      steps,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0.1,
      gradClip: 1,
    },
    batch: 6,
    seq: 32,
    seed: 11,
    out,
    tokenizerPath: TOK,
    data: cycleData(),
    evalEvery: 10,
    valTokens: 256,
    checkpointEvery: 10,
    keepCheckpoints: true,
    resume: false,
    microBatch: 4, // two micro-batches per step: the gradient accumulates
  };
}

test('the loop learns a deterministic stream (near-zero loss); a run resumed (on 2 threads) equals an uninterrupted one bit for bit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-train-'));
  try {
    const a = await train(options(join(dir, 'a'), 60));
    assert.ok(a.finalValLoss < 0.05, `val loss ${a.finalValLoss}`);
    assert.ok(a.rows[0].val_loss > 5, 'step-0 validation loss is near ln 512');

    const bOpts = options(join(dir, 'b'), 60);
    const b1 = await train({ ...bOpts, stopAfter: 30 });
    assert.equal(b1.steps, 30);
    await assert.rejects(train(bOpts), /already holds a training run/);
    const b = await train({ ...bOpts, resume: true, threads: 2 }); // a worker thread takes half the micro-batches
    assert.equal(b.steps, 60);
    const rowsA = await readRows(join(dir, 'a', 'train.parquet'));
    const rowsB = await readRows(join(dir, 'b', 'train.parquet'));
    assert.equal(rowsB.length, 61);
    for (let i = 0; i < rowsA.length; i++) {
      assert.ok(Object.is(rowsA[i].train_loss, rowsB[i].train_loss), `train loss at step ${i}`);
      assert.ok(Object.is(rowsA[i].val_loss, rowsB[i].val_loss), `val loss at step ${i}`);
      assert.ok(Object.is(rowsA[i].grad_norm, rowsB[i].grad_norm));
    }
    assert.deepEqual(
      readFileSync(join(dir, 'a', 'model.bin')),
      readFileSync(join(dir, 'b', 'model.bin')),
    );
    assert.deepEqual(
      readFileSync(join(dir, 'a', 'checkpoints', 'step-00000050.bin')),
      readFileSync(join(dir, 'b', 'checkpoints', 'step-00000050.bin')),
    );

    // every output loads in the other commands' loaders and gives the same logits
    const bin = await loadModel(join(dir, 'a', 'model.bin'));
    const hf = await loadModel(join(dir, 'a', 'hf'));
    const ck = await loadModel(join(dir, 'a', 'checkpoints', 'step-00000060.bin'));
    assert.equal(bin.tokenizer?.vocabSize, 512);
    assert.equal(hf.tokenizer?.vocabSize, 512);
    const ids = [
      1,
      ...Array.from(a.rows.keys())
        .slice(0, 9)
        .map((i) => 3 + i),
    ];
    const logits = (m: typeof bin) => {
      const tf = new Transformer(m);
      return tf.forward(tf.newCache(1, ids.length), [{ seq: 0, tokens: ids }], { logits: 'all' })
        .logits;
    };
    const lb = logits(bin);
    assert.deepEqual(logits(hf), lb);
    assert.deepEqual(logits(ck), lb);
    const run = JSON.parse(readFileSync(join(dir, 'a', 'run.json'), 'utf8'));
    assert.equal(run.seed, 11);
    assert.equal(run.steps_done, 60);
    assert.equal(run.final.val_loss.tag, 'exact');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('corpus: documents split at <|endoftext|>, BOS first, a seeded held-out split; windows shift targets by one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-corpus-'));
  try {
    const tok = loadTokenizer(TOK);
    const docs = ['Once upon a time.', 'The cat sat.', 'A dog ran home.', 'Lily was happy.'];
    writeFileSync(join(dir, 'c.txt'), docs.join('\n<|endoftext|>\n'));
    const s = readCorpus(join(dir, 'c.txt'), tok, { valFraction: 0.25, seed: 3 });
    assert.deepEqual(s.documents, { train: 3, val: 1 });
    assert.equal(s.from, 'text');
    const all = docs.map((d) => tok.encode(d, { bos: true }));
    assert.equal(s.train.length + s.val.length, all.flat().length);
    assert.equal(s.val[0], 1);
    assert.ok(
      all.some((d) => d.length === s.val.length && d.every((v, i) => v === s.val[i])),
      'the held-out split is one whole document',
    );
    // JSONL reads the same documents
    writeFileSync(join(dir, 'c.jsonl'), docs.map((d) => JSON.stringify({ text: d })).join('\n'));
    const j = readCorpus(join(dir, 'c.jsonl'), tok, { valFraction: 0.25, seed: 3 });
    assert.deepEqual(j.train, s.train);
    // windows
    const stream = Int32Array.from({ length: 50 }, (_, i) => i);
    const tokens = new Int32Array(3 * 8);
    const targets = new Int32Array(3 * 8);
    sampleBatch(stream, 3, 8, batchRng(1, 0), tokens, targets);
    for (let i = 0; i < tokens.length; i++) assert.equal(targets[i], tokens[i] + 1);
    const again = new Int32Array(24);
    sampleBatch(stream, 3, 8, batchRng(1, 0), again, new Int32Array(24));
    assert.deepEqual(again, tokens);
    assert.equal(
      splitDocuments([[1, 2, 3, 4]], { valFraction: 0.25, seed: 1 }, 'ids').val.length,
      1,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
