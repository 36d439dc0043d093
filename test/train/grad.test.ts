import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attentionBackward,
  attentionForward,
  attentionProbsSize,
  attentionScratchSize,
  crossEntropyForwardBackward,
  crossEntropyLoss,
  embeddingBackward,
  embeddingForward,
  linearBackward,
  linearForward,
  rmsnormBackward,
  rmsnormForward,
  ropeApply,
  ropeTable,
  swigluBackward,
  swigluForward,
  type AttentionScratch,
  type AttentionShape,
} from '../../src/train/ops.js';
import {
  initParams,
  paramLayout,
  paramViews,
  TrainGraph,
  type TrainShape,
} from '../../src/train/model.js';
import { transpose } from '../../src/train/tensor.js';
import { createRng } from '../../src/tensor/rng.js';

// Independent reference: central finite differences (h = 1e-5) of the forward rules, in float64.
// For each op, a random upstream gradient ȳ defines the scalar f(x) = Σ ȳ ⊙ op(x); the backward
// rule's x̄ must match (f(x + h·e_i) − f(x − h·e_i)) / 2h for every input coordinate i.
// Errors are max |analytic − fd| / max |fd| over all coordinates.

const H = 1e-5;
const rng = createRng(7);
const randn = (n: number, s = 1) => Float64Array.from({ length: n }, () => s * rng.normal());

function fdGrad(f: () => number, x: Float64Array): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    x[i] = v + H;
    const up = f();
    x[i] = v - H;
    const down = f();
    x[i] = v;
    g[i] = (up - down) / (2 * H);
  }
  return g;
}

function relErr(a: Float64Array, b: Float64Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i], 0);
const TOL = 1e-7;
const report = (name: string, e: number) => {
  if (process.env.LMDYN_GRAD_REPORT) process.stderr.write(`${name}: ${e.toExponential(2)}\n`);
  return e;
};

test('rmsnorm backward matches finite differences (x and g)', () => {
  const N = 3;
  const d = 6;
  const x = randn(N * d);
  const g = randn(d);
  const ybar = randn(N * d);
  const out = new Float64Array(N * d);
  const rho = new Float64Array(N);
  const f = () => {
    rmsnormForward(out, rho, x, g, N, d, 1e-5);
    return dot(out, ybar);
  };
  f();
  const dx = new Float64Array(N * d);
  const dg = new Float64Array(d);
  rmsnormBackward(dx, dg, ybar, x, rho, g, N, d);
  assert.ok(report('dx', relErr(dx, fdGrad(f, x))) < TOL);
  assert.ok(report('dg', relErr(dg, fdGrad(f, g))) < TOL);
});

test('linear backward matches finite differences (x, and W accumulating into its gradient)', () => {
  const N = 4;
  const inD = 5;
  const outD = 3;
  const x = randn(N * inD);
  const W = randn(outD * inD);
  const ybar = randn(N * outD);
  const y = new Float64Array(N * outD);
  const f = () => {
    linearForward(y, x, W, N, outD, inD);
    return dot(y, ybar);
  };
  const wT = new Float64Array(inD * outD);
  transpose(wT, W, outD, inD);
  const s = {
    dyT: new Float64Array(99),
    xT: new Float64Array(99),
    dW: new Float64Array(99),
  };
  const dx = new Float64Array(N * inD).fill(1);
  const dW = new Float64Array(outD * inD).fill(2);
  linearBackward(dx, dW, ybar, x, wT, N, outD, inD, s);
  const fx = fdGrad(f, x);
  const fw = fdGrad(f, W).map((v) => v + 2);
  assert.ok(report('dx', relErr(dx, fx)) < TOL);
  assert.ok(report('dW', relErr(dW, fw)) < TOL);
});

test('rope backward (rotation by −angle) matches finite differences', () => {
  const T = 5;
  const N = 2 * T;
  const stride = 12;
  const table = ropeTable(T, 4, 10000);
  const x = randn(N * stride);
  const ybar = randn(N * stride);
  const f = () => {
    const y = Float64Array.from(x);
    ropeApply(y, N, stride, 2, 2, 4, table, 1); // columns 2..10: two heads of 4
    return dot(y, ybar);
  };
  const dx = Float64Array.from(ybar);
  ropeApply(dx, N, stride, 2, 2, 4, table, -1);
  assert.ok(report('dx', relErr(dx, fdGrad(f, x))) < TOL);
});

for (const hd of [4, 8]) {
  test(`causal GQA attention backward matches finite differences (q, k, v), head size ${hd}${hd === 8 ? ' (fused path)' : ''}`, () => {
    const sh: AttentionShape = { m: 2, T: 5, nHeads: 4, nKvHeads: 2, headDim: hd };
    const qDim = 4 * hd;
    const kvDim = 2 * hd;
    const stride = qDim + 2 * kvDim;
    const N = sh.m * sh.T;
    const qkv = randn(N * stride);
    const zbar = randn(N * qDim);
    const scratch = Object.fromEntries(
      Object.entries(attentionScratchSize(sh)).map(([k, n]) => [k, new Float64Array(n)]),
    ) as unknown as AttentionScratch;
    const probs = new Float64Array(attentionProbsSize(sh));
    const z = new Float64Array(N * qDim);
    const f = () => {
      attentionForward(z, probs, qkv, sh, scratch);
      return dot(z, zbar);
    };
    f();
    const dqkv = new Float64Array(N * stride);
    attentionBackward(dqkv, zbar, z, probs, qkv, sh, scratch);
    const fd = fdGrad(f, qkv);
    assert.ok(report('dqkv', relErr(dqkv, fd)) < TOL);
    // causality: the output at position 0 of each sequence does not depend on later keys/values
    const z0 = Float64Array.from(z);
    qkv[(sh.T - 1) * stride + qDim] += 1;
    f();
    for (let i = 0; i < qDim; i++) assert.equal(z[i], z0[i]);
  });
}

test('swiglu backward matches finite differences (gate and up)', () => {
  const n = 9;
  const a = randn(n, 3);
  const b = randn(n);
  const ubar = randn(n);
  const u = new Float64Array(n);
  const f = () => {
    swigluForward(u, a, b, n);
    return dot(u, ubar);
  };
  const da = new Float64Array(n);
  const db = new Float64Array(n);
  swigluBackward(da, db, ubar, a, b, n);
  assert.ok(report('da', relErr(da, fdGrad(f, a))) < TOL);
  assert.ok(report('db', relErr(db, fdGrad(f, b))) < TOL);
});

test('cross-entropy gradient matches finite differences; loss = −log softmax by hand', () => {
  const N = 3;
  const V = 5;
  const logits = randn(N * V, 2);
  const targets = [4, 0, 2];
  const f = () => crossEntropyLoss(logits, targets, N, V);
  const fd = fdGrad(f, logits);
  const g = Float64Array.from(logits);
  const loss = crossEntropyForwardBackward(g, targets, N, V, 1);
  assert.ok(report('g', relErr(g, fd)) < TOL);
  let byHand = 0;
  for (let r = 0; r < N; r++) {
    const row = Array.from(logits.subarray(r * V, (r + 1) * V));
    byHand += Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[targets[r]];
  }
  assert.ok(Math.abs(loss - byHand) < 1e-12);
});

test('embedding backward matches finite differences (repeated tokens add up)', () => {
  const V = 4;
  const d = 3;
  const tokens = [1, 3, 1, 0];
  const E = randn(V * d);
  const ybar = randn(tokens.length * d);
  const out = new Float64Array(tokens.length * d);
  const f = () => {
    embeddingForward(out, E, tokens, tokens.length, d);
    return dot(out, ybar);
  };
  const dE = new Float64Array(V * d);
  embeddingBackward(dE, ybar, tokens, tokens.length, d);
  assert.ok(report('dE', relErr(dE, fdGrad(f, E))) < TOL);
});

/** The whole model's gradient against central differences of its loss, every parameter. */
function wholeModelCheck(shape: TrainShape, m: number, T: number): number {
  const graph = new TrainGraph(shape, 'f64', m, T);
  const flat = initParams(shape, 3, 'f64') as Float64Array;
  // larger weights than the 0.02 init so every op is far from linear
  for (let i = 0; i < flat.length; i++) flat[i] += 0.3 * rng.normal();
  const p = paramViews(flat, shape);
  const tokens = Array.from({ length: m * T }, () => Math.floor(rng.next() * shape.vocabSize));
  const targets = Array.from({ length: m * T }, () => Math.floor(rng.next() * shape.vocabSize));
  const gflat = new Float64Array(flat.length);
  graph.prepare(p);
  graph.lossAndGrad(p, paramViews(gflat, shape), tokens, targets, m, 1 / (m * T));
  const fd = fdGrad(() => graph.loss(p, tokens, targets, m) / (m * T), flat);
  return report(`model ${JSON.stringify(shape)}`, relErr(gflat, fd));
}

test('whole model (2 blocks, GQA, tied classifier): gradient of every parameter matches finite differences', () => {
  const shape: TrainShape = {
    dim: 8,
    hiddenDim: 12,
    nLayers: 2,
    nHeads: 2,
    nKvHeads: 1,
    vocabSize: 7,
    seqLen: 8,
    tied: true,
  };
  const err = wholeModelCheck(shape, 2, 6);
  assert.ok(err < 1e-6, `relative error ${err}`);
});

test('whole model (untied classifier, 3 heads): gradient matches finite differences', () => {
  const shape: TrainShape = {
    dim: 12,
    hiddenDim: 10,
    nLayers: 1,
    nHeads: 3,
    nKvHeads: 3,
    vocabSize: 9,
    seqLen: 5,
    tied: false,
  };
  const err = wholeModelCheck(shape, 1, 5);
  assert.ok(err < 1e-6, `relative error ${err}`);
  assert.equal(
    paramLayout(shape).total,
    9 * 12 * 2 + 12 + (12 + 36 * 12 + 144 + 12 + 20 * 12 + 12 * 10),
  );
});
