import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadHfFolder } from '../../src/io/hf.js';
import { loadLlama2cCheckpoint } from '../../src/io/llama2c.js';
import { Transformer } from '../../src/model/forward.js';
import {
  blockJacobians,
  blockJvp,
  createWorkspace,
  crossTokenJacobians,
  finalNormJacobian,
  freeWorkspace,
  recordBlockStates,
  type BlockStates,
} from '../../src/model/jvp.js';
import type { ModelConfig } from '../../src/model/types.js';
import { initialWeights } from '../../src/model/init.js';
import { linearisedState } from '../../src/lenses/coupling/metrics.js';
import { allocF32, freeF32 } from '../../src/tensor/memory.js';
import { createRng } from '../../src/tensor/rng.js';
import { model } from '../helpers/paths.js';

// Independent reference: central finite differences of the real forward pass (forward.ts), with
// x^{l−1} perturbed through a hook on blocks.{l}.hook_resid_pre at one position and x^l read at
// the query position from blocks.{l}.hook_resid_post. Errors are relative Frobenius norms.

const STORIES_IDS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376]; // BOS + greedy text

function stories(): Transformer {
  return new Transformer(loadLlama2cCheckpoint(model('stories260K', 'stories260K.bin')));
}

/**
 * (∂x_read/∂x_write)[o, i] by central differences: x_write (position `from`) gets ±ε·e_i at the
 * hook `write`, the hook `read` is read at position `pos`. ε = rel·rms(x_write).
 */
function finiteDifferenceJacobian(
  tf: Transformer,
  ids: number[],
  write: string,
  read: string,
  from: number,
  pos: number,
  rel: number,
): Float64Array {
  const d = tf.config.dim;
  let x: Float32Array | null = null;
  const run = (i: number, eps: number): Float32Array => {
    let out = new Float32Array(d);
    tf.forward(tf.newCache(1, ids.length), [{ seq: 0, tokens: ids }], {
      logits: 'none',
      hooks: [
        {
          filter: write,
          fn: (act) => {
            if (!x) x = act.slice(from * d, (from + 1) * d);
            if (i >= 0) act[from * d + i] += eps;
          },
        },
        { filter: read, fn: (act) => void (out = act.slice(pos * d, (pos + 1) * d)) },
      ],
    });
    return out;
  };
  run(-1, 0);
  const xs = x as unknown as Float32Array;
  const eps = rel * Math.sqrt(xs.reduce((a, v) => a + v * v, 0) / d);
  const j = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    const plus = run(i, eps);
    const minus = run(i, -eps);
    for (let o = 0; o < d; o++) j[o * d + i] = (plus[o] - minus[o]) / (2 * eps);
  }
  return j;
}

function relativeError(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  subtractIdentityFromRef = 0,
): number {
  const d = Math.round(Math.sqrt(ref.length));
  let err = 0;
  let norm = 0;
  for (let o = 0; o < d; o++) {
    for (let i = 0; i < d; i++) {
      const r = ref[o * d + i] - (o === i ? subtractIdentityFromRef : 0);
      err += (got[o * d + i] - r) ** 2;
      norm += r * r;
    }
  }
  return Math.sqrt(err / norm);
}

test('stories260K: J^l = ∂x^l_T/∂x^{l−1}_T − I of every block matches central differences (< 1e-3)', () => {
  const tf = stories();
  const T = STORIES_IDS.length - 1;
  const states = recordBlockStates(tf, STORIES_IDS);
  const js = blockJacobians(tf, states, T);
  assert.equal(js.length, tf.config.nLayers);
  js.forEach((j, l) => {
    const fd = finiteDifferenceJacobian(
      tf,
      STORIES_IDS,
      `blocks.${l}.hook_resid_pre`,
      `blocks.${l}.hook_resid_post`,
      T,
      T,
      0.03,
    );
    const err = relativeError(j, fd, 1);
    assert.ok(err < 1e-3, `block ${l}: relative error ${err}`);
  });
});

test('stories260K: cross-token J^l_{t1,T} (key/value path, grouped heads) matches central differences (< 1e-2)', () => {
  const tf = stories();
  const T = STORIES_IDS.length - 1;
  const states = recordBlockStates(tf, STORIES_IDS);
  for (const l of [0, 2, 4]) {
    const froms = [0, 3, T - 1];
    const js = crossTokenJacobians(tf, states, l, froms, T);
    froms.forEach((t1, i) => {
      const fd = finiteDifferenceJacobian(
        tf,
        STORIES_IDS,
        `blocks.${l}.hook_resid_pre`,
        `blocks.${l}.hook_resid_post`,
        t1,
        T,
        0.1,
      );
      const err = relativeError(js[i], fd);
      assert.ok(err < 1e-2, `block ${l}, t1 = ${t1}: relative error ${err}`);
    });
  }
});

test('stories260K: the final-norm Jacobian ∂ln_final(x^L_T)/∂x^L_T matches central differences', () => {
  const tf = stories();
  const T = 4;
  const ids = STORIES_IDS.slice(0, T + 1);
  const L = tf.config.nLayers;
  const j = finalNormJacobian(tf, recordBlockStates(tf, ids), T);
  const fd = finiteDifferenceJacobian(
    tf,
    ids,
    `blocks.${L - 1}.hook_resid_post`,
    'ln_final.hook_normalized',
    T,
    T,
    0.03,
  );
  const err = relativeError(j, fd);
  assert.ok(err < 1e-3, `relative error ${err}`);
});

test('tiny-gpt2 (LayerNorm, gelu_new, biases, d = 2): J^l matches central differences (< 1e-2)', () => {
  const tf = new Transformer(loadHfFolder(model('tiny-gpt2')));
  const ids = [464, 3290, 3332, 319, 262, 2603, 13];
  const T = ids.length - 1;
  const js = blockJacobians(tf, recordBlockStates(tf, ids), T);
  js.forEach((j, l) => {
    const fd = finiteDifferenceJacobian(
      tf,
      ids,
      `blocks.${l}.hook_resid_pre`,
      `blocks.${l}.hook_resid_post`,
      T,
      T,
      0.03,
    );
    const err = relativeError(j, fd, 1);
    assert.ok(err < 1e-2, `block ${l}: relative error ${err}`);
  });
});

test('GPT-2 architecture, d = 16, random non-zero biases and LayerNorm gains: own and cross-token J^l match central differences', () => {
  const tf = smallGpt2();
  const ids = [5, 17, 3, 44, 9, 21];
  const T = ids.length - 1;
  const states = recordBlockStates(tf, ids);
  const own = blockJacobians(tf, states, T);
  for (let l = 0; l < tf.config.nLayers; l++) {
    const fd = finiteDifferenceJacobian(
      tf,
      ids,
      `blocks.${l}.hook_resid_pre`,
      `blocks.${l}.hook_resid_post`,
      T,
      T,
      0.03,
    );
    const err = relativeError(own[l], fd, 1);
    assert.ok(err < 1e-3, `block ${l} own: relative error ${err}`);
    const [cross] = crossTokenJacobians(tf, states, l, [2], T);
    const fdc = finiteDifferenceJacobian(
      tf,
      ids,
      `blocks.${l}.hook_resid_pre`,
      `blocks.${l}.hook_resid_post`,
      2,
      T,
      0.1,
    );
    const errc = relativeError(cross, fdc);
    assert.ok(errc < 1e-2, `block ${l} cross: relative error ${errc}`);
  }
});

test('blockJvp with m arbitrary directions equals the full Jacobian times those directions', () => {
  const tf = stories();
  const d = tf.config.dim;
  const T = STORIES_IDS.length - 1;
  const states = recordBlockStates(tf, STORIES_IDS);
  const [j] = blockJacobians(tf, states, T).slice(2, 3);
  const m = 3;
  const rng = createRng(4);
  const dirs = allocF32(m * d);
  for (let i = 0; i < dirs.length; i++) dirs[i] = rng.normal();
  const ws = createWorkspace(tf.config, m, T + 1);
  try {
    const out = blockJvp(tf, states, 2, T, T, dirs, m, ws);
    for (let r = 0; r < m; r++) {
      for (let o = 0; o < d; o++) {
        let s = 0;
        for (let i = 0; i < d; i++) s += j[o * d + i] * dirs[r * d + i];
        assert.ok(
          Math.abs(out[r * d + o] - s) < 1e-4 * (1 + Math.abs(s)),
          `direction ${r}, output ${o}`,
        );
      }
    }
  } finally {
    freeWorkspace(ws);
    freeF32(dirs);
  }
});

test('Π(I + J^l) predicts the change of the last state to first order: the error shrinks 4× when ε halves', () => {
  const tf = stories();
  const d = tf.config.dim;
  const L = tf.config.nLayers;
  const T = STORIES_IDS.length - 1;
  const states: BlockStates = recordBlockStates(tf, STORIES_IDS);
  const js = blockJacobians(tf, states, T);
  const rng = createRng(5);
  const u = Float64Array.from({ length: d }, () => rng.normal());
  const x0 = states.resid[0].subarray(T * d, (T + 1) * d);
  const scale = Math.hypot(...x0) / Math.hypot(...u);
  for (let i = 0; i < d; i++) u[i] *= scale; // ‖u‖ = ‖x^0_T‖
  const predicted = linearisedState(js, u, d);
  const lastState = (eps: number): Float32Array => {
    let out = new Float32Array(d);
    tf.forward(tf.newCache(1, STORIES_IDS.length), [{ seq: 0, tokens: STORIES_IDS }], {
      logits: 'none',
      hooks: [
        {
          filter: 'blocks.0.hook_resid_pre',
          fn: (act) => void u.forEach((v, i) => (act[T * d + i] += eps * v)),
        },
        {
          filter: `blocks.${L - 1}.hook_resid_post`,
          fn: (act) => void (out = act.slice(T * d, (T + 1) * d)),
        },
      ],
    });
    return out;
  };
  const base = lastState(0);
  const errors = [0.1, 0.05, 0.025].map((eps) => {
    const x = lastState(eps);
    return Math.hypot(...Array.from(x, (v, i) => v - base[i] - eps * predicted[i]));
  });
  for (let i = 1; i < errors.length; i++) {
    const ratio = errors[i - 1] / errors[i];
    assert.ok(ratio > 3.5 && ratio < 4.5, `error ratio ${ratio} (errors ${errors.join(', ')})`);
  }
});

/** A GPT-2-architecture model (d = 16, 4 heads, 2 layers) with every bias and gain randomised. */
function smallGpt2(): Transformer {
  const config: ModelConfig = {
    architecture: 'gpt2',
    sourceArchitecture: 'test',
    dim: 16,
    hiddenDim: 64,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 4,
    headDim: 4,
    vocabSize: 50,
    seqLen: 32,
    norm: 'layernorm',
    normEps: 1e-5,
    mlp: 'gelu_new',
    positional: 'learned',
    ropeTheta: 10000,
    ropeDim: 4,
    tiedEmbeddings: true,
    bosId: null,
    eosId: null,
  };
  const weights = initialWeights(config, 3);
  const rng = createRng(8);
  const fill = (b: Float32Array | null, mean: number, std: number) =>
    b?.forEach((_, i) => (b[i] = mean + std * rng.normal()));
  for (const m of [weights.tokenEmbedding, weights.positionEmbedding])
    m?.data.forEach((_, i, a) => (a[i] = rng.normal()));
  for (const lw of weights.layers) {
    for (const w of [lw.wq, lw.wk, lw.wv, lw.wo, lw.wUp, lw.wDown])
      w.data.forEach((_, i, a) => (a[i] = rng.normal() * 0.3));
    for (const b of [lw.attnNormBias, lw.mlpNormBias, lw.bq, lw.bk, lw.bv, lw.bo, lw.bUp, lw.bDown])
      fill(b, 0, 0.3);
    fill(lw.attnNorm, 1, 0.3);
    fill(lw.mlpNorm, 1, 0.3);
  }
  return new Transformer({
    config,
    weights,
    tokenizer: null,
    source: { format: 'safetensors', path: 'test', hubId: null, sha256: null, details: {} },
  });
}
