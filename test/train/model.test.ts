import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadLlama2cCheckpoint } from '../../src/io/llama2c.js';
import { Transformer } from '../../src/model/forward.js';
import {
  copyWeightsInto,
  paramLayout,
  paramViews,
  shapeOfConfig,
  TrainGraph,
} from '../../src/train/model.js';
import { allocVec } from '../../src/train/tensor.js';
import { adamwStep, clipGradNorm, learningRate, type OptimConfig } from '../../src/train/optim.js';
import { parameterCount } from '../../src/model/types.js';
import { model, STORIES_GREEDY_64, STORIES_LSE0, STORIES_TOP5 } from '../helpers/paths.js';

// References: the inference forward pass (src/model/forward.ts, itself checked against an
// independent NumPy forward in MANIFEST.md §1), MANIFEST.md's logits, and closed forms.

test('the training forward pass gives the inference logits on stories260K (and MANIFEST’s position-0 logits)', () => {
  const loaded = loadLlama2cCheckpoint(model('stories260K', 'stories260K.bin'));
  const shape = shapeOfConfig(loaded.config);
  assert.equal(paramLayout(shape).total, parameterCount(loaded.config));
  const ids = [1, ...STORIES_GREEDY_64.slice(0, 39)]; // 40 positions
  const T = ids.length;
  const flat = allocVec('f32', paramLayout(shape).total);
  copyWeightsInto(flat, shape, loaded.weights);
  const graph = new TrainGraph(shape, 'f32', 1, T);
  const targets = [...ids.slice(1), STORIES_GREEDY_64[39]];
  const p = paramViews(flat, shape);
  const loss = graph.loss(p, ids, targets, 1);
  const logits = graph.lastLogits(1);

  const tf = new Transformer(loaded);
  const ref = tf.forward(tf.newCache(1, T), [{ seq: 0, tokens: ids }], { logits: 'all' }).logits;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ref[i] - logits[i]));
  assert.ok(maxDiff < 2e-4, `max |Δlogit| = ${maxDiff}`);
  for (const [id, v] of STORIES_TOP5) assert.ok(Math.abs(logits[id] - v) < 1e-3);
  let lse0 = 0;
  for (let i = 0; i < 512; i++) lse0 += Math.exp(logits[i]);
  assert.ok(Math.abs(Math.log(lse0) - STORIES_LSE0) < 1e-3);
  // the loss is the mean −log p of the targets under the reference logits
  let refLoss = 0;
  for (let r = 0; r < T; r++) {
    const row = ref.subarray(r * 512, (r + 1) * 512);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let s = 0;
    for (const v of row) s += Math.exp(v - max);
    refLoss += max + Math.log(s) - row[targets[r]];
  }
  assert.ok(Math.abs(loss - refLoss) / refLoss < 1e-5);
  graph.free();
});

test('learning rate: linear warm-up, cosine midpoint (lr + minLr)/2, floor at the last step', () => {
  const c: OptimConfig = {
    lr: 1e-3,
    minLr: 1e-4,
    warmup: 10,
    steps: 111,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0,
    gradClip: 0,
  };
  assert.equal(learningRate(0, c), 1e-4);
  assert.equal(learningRate(9, c), 1e-3);
  assert.ok(Math.abs(learningRate(10, c) - 1e-3) < 1e-15);
  assert.ok(Math.abs(learningRate(60, c) - 5.5e-4) < 1e-12);
  assert.ok(Math.abs(learningRate(110, c) - 1e-4) < 1e-15);
});

test('gradient clipping scales to the max norm (closed form) and leaves small gradients alone', () => {
  const g = Float64Array.from([3, 4]);
  assert.equal(clipGradNorm(g, 1), 5);
  assert.ok(Math.abs(Math.hypot(g[0], g[1]) - 1) < 1e-6);
  assert.ok(Math.abs(g[0] / g[1] - 0.75) < 1e-12);
  const h = Float64Array.from([0.3, 0.4]);
  clipGradNorm(h, 1);
  assert.deepEqual([...h], [0.3, 0.4]);
});

test('AdamW: two steps by hand (bias correction, decoupled decay on matrices only)', () => {
  const c: OptimConfig = {
    lr: 0.1,
    minLr: 0,
    warmup: 0,
    steps: 2,
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    weightDecay: 0.5,
    gradClip: 0,
  };
  const tensors = [
    { name: 'w', offset: 0, rows: 1, cols: 1, decay: true },
    { name: 'g', offset: 1, rows: 1, cols: 1, decay: false },
  ];
  const p = Float64Array.from([1, 1]);
  const state = { m: new Float64Array(2), v: new Float64Array(2), t: 0 };
  adamwStep(p, Float64Array.from([2, 2]), state, tensors, c.lr, c);
  // step 1: m̂ = g, v̂ = g², update = lr·g/(|g| + eps) ≈ lr; decay: θ·(1 − lr·λ)
  assert.ok(Math.abs(p[0] - (1 * (1 - 0.05) - 0.1 * (2 / (2 + 1e-8)))) < 1e-12);
  assert.ok(Math.abs(p[1] - (1 - 0.1 * (2 / (2 + 1e-8)))) < 1e-12);
  adamwStep(p, Float64Array.from([-1, -1]), state, tensors, c.lr, c);
  // step 2 by hand: m = 0.9·0.2 + 0.1·(−1) = 0.08, v = 0.99·0.04 + 0.01·1 = 0.0496
  const mhat = 0.08 / (1 - 0.81);
  const vhat = 0.0496 / (1 - 0.9801);
  const upd = (0.1 * mhat) / (Math.sqrt(vhat) + 1e-8);
  const p0 = 1 * 0.95 - 0.1 * (2 / (2 + 1e-8));
  const p1 = 1 - 0.1 * (2 / (2 + 1e-8));
  assert.ok(Math.abs(p[0] - (p0 * 0.95 - upd)) < 1e-9);
  assert.ok(Math.abs(p[1] - (p1 - upd)) < 1e-9);
});
