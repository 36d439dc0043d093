import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateText, openModel } from '../src/api.js';
import type { Model } from '../src/model/model.js';
import { LmdynError } from '../src/errors.js';
import {
  applyFinalNorm,
  logitLens,
  patchActivation,
  residPatchingGrid,
  runWithCache,
  runWithHooks,
  steeringHook,
  Tensor,
  toStrTokens,
  toString,
  toTokens,
  unembed,
} from '../src/hooked.js';
import { arenaBytesInUse } from '../src/tensor/memory.js';
import { model as modelPath } from './helpers/paths.js';

// References, by test: float64 softmax of cached rotated q·k (patterns), float64 RMSNorm /
// LayerNorm and unembedding written here from the weights (logit lens, patches, steering), exact
// identities of patching (identical inputs; a position whose embedding is all that differs),
// the tokenizer's vocabulary entries, and the model's parameter count (dispose).

const STORIES = modelPath('stories260K', 'stories260K.bin');
const GPT2 = modelPath('tiny-gpt2');
const IDS = [1, 403, 407, 261, 378, 432]; // BOS + MANIFEST.md §1's first greedy ids

let storiesModel: Model | null = null;
async function stories(): Promise<Model> {
  storiesModel ??= await openModel(STORIES);
  return storiesModel;
}

/** Float64 final norm and unembedding of one d-vector, from the weights (independent of src/). */
function refLogits(m: Model, h: ArrayLike<number>): Float64Array {
  const { dim, vocabSize, norm, normEps } = m.config;
  const w = m.transformer.weights;
  const x = Array.from(h);
  let n: number[];
  if (norm === 'rmsnorm') {
    const rms = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / dim + normEps);
    n = x.map((v, i) => (v / rms) * w.finalNorm[i]);
  } else {
    const mean = x.reduce((s, v) => s + v, 0) / dim;
    const sd = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / dim + normEps);
    n = x.map((v, i) => ((v - mean) / sd) * w.finalNorm[i] + (w.finalNormBias?.[i] ?? 0));
  }
  const out = new Float64Array(vocabSize);
  const W = w.unembedding.data;
  for (let v = 0; v < vocabSize; v++) {
    let z = w.unembeddingBias?.[v] ?? 0;
    for (let i = 0; i < dim; i++) z += n[i] * W[v * dim + i];
    out[v] = z;
  }
  return out;
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('runWithCache shapes are TransformerLens shapes: [batch, pos, d], q [batch, pos, head, d_head], pattern [batch, head, q, k], logits [batch, pos, vocab]', async () => {
  const m = await stories();
  const { logits, cache } = runWithCache(m, IDS);
  const P = IDS.length;
  assert.deepEqual(logits.shape, [1, P, 512]);
  assert.deepEqual(cache.get('blocks.2.hook_resid_pre').shape, [1, P, 64]);
  assert.deepEqual(cache.get('resid_post', 4).shape, [1, P, 64]);
  assert.deepEqual(cache.get('blocks.0.attn.hook_q').shape, [1, P, 8, 8]);
  assert.deepEqual(cache.get('blocks.0.attn.hook_k').shape, [1, P, 4, 8]); // 4 key/value heads
  assert.deepEqual(cache.get('pattern', 3).shape, [1, 8, P, P]);
  assert.deepEqual(cache.get('blocks.1.mlp.hook_post').shape, [1, P, 172]);
  assert.deepEqual(cache.get('logits').shape, [1, P, 512]);
  assert.deepEqual(cache.removeBatchDim().get('blocks.0.hook_resid_pre').shape, [P, 64]);
  assert.equal(cache.get('logits').get(0, 2, 17), logits.get(0, 2, 17));
  assert.throws(() => cache.get('blocks.9.hook_resid_pre'), LmdynError);
});

test('attn.hook_pattern rows sum to 1, vanish above the diagonal, and equal a float64 softmax of the cached rotated q·k/√d_head (GQA: head h reads kv head h/2)', async () => {
  const m = await stories();
  const P = IDS.length;
  const { cache } = runWithCache(m, IDS, [
    'blocks.*.attn.hook_rot_q',
    'blocks.*.attn.hook_rot_k',
    'blocks.*.attn.hook_pattern',
  ]);
  let worst = 0;
  for (let l = 0; l < 5; l++) {
    const q = cache.get('rot_q', l);
    const k = cache.get('rot_k', l);
    const pat = cache.get('pattern', l);
    for (let h = 0; h < 8; h++) {
      for (let i = 0; i < P; i++) {
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let e = 0; e < 8; e++) dot += q.get(0, i, h, e) * k.get(0, j, Math.floor(h / 2), e);
          scores.push(dot / Math.sqrt(8));
        }
        const mx = Math.max(...scores);
        const z = scores.reduce((s, v) => s + Math.exp(v - mx), 0);
        let rowSum = 0;
        for (let j = 0; j < P; j++) {
          const p = pat.get(0, h, i, j);
          rowSum += p;
          if (j > i) assert.equal(p, 0);
          else worst = Math.max(worst, Math.abs(p - Math.exp(scores[j] - mx) / z));
        }
        assert.ok(Math.abs(rowSum - 1) < 1e-6, `row sum ${rowSum}`);
      }
    }
  }
  assert.ok(worst < 1e-6, `pattern vs float64 softmax: ${worst}`);
});

for (const [label, path] of [
  ['stories260K (RMSNorm, tied)', STORIES],
  ['tiny-gpt2 (LayerNorm, learned positions)', GPT2],
] as const) {
  test(`logit lens on ${label}: final norm + unembed of the cached final state equals the logits, and every layer's row equals a float64 norm + unembed of its resid_pre`, async () => {
    const m = path === STORIES ? await stories() : await openModel(path);
    const ids = path === STORIES ? IDS : toTokens(m, 'Hello world, this is', { prependBos: false });
    const { logits, cache } = runWithCache(m, ids, 'blocks.*.hook_resid_*');
    const L = m.config.nLayers;
    const P = ids.length;
    const V = m.config.vocabSize;
    const { resid, labels } = cache.accumulatedResid();
    assert.deepEqual(resid.shape, [L + 1, 1, P, m.config.dim]);
    assert.deepEqual(labels, [...Array.from({ length: L }, (_, l) => `${l}_pre`), 'final_post']);
    const final = unembed(m, applyFinalNorm(m, cache.get('resid_post', L - 1)));
    assert.deepEqual(final.shape, [1, P, V]);
    assert.ok(
      maxAbs(final.data, logits.data) < 1e-5,
      `unembed(final) vs logits ${maxAbs(final.data, logits.data)}`,
    );
    const lens = logitLens(m, cache, { topK: 3 });
    assert.deepEqual(lens.logits.shape, [L + 1, V]);
    assert.equal(lens.pos, P - 1);
    for (let c = 0; c <= L; c++) {
      const ref = refLogits(
        m,
        resid
          .at(c)
          .at(0)
          .at(P - 1).data,
      );
      assert.ok(maxAbs(lens.logits.at(c).data, ref) < 1e-4, `${labels[c]}`);
    }
    // the last row is the model's prediction: its top token is the logits' argmax
    const last = logits.at(0).at(P - 1).data;
    const argmax = last.indexOf(Math.max(...last));
    assert.equal(lens.layers[L].top[0].id, argmax);
    const { resid: mid, labels: midLabels } = cache.accumulatedResid({ layer: 1, inclMid: true });
    assert.deepEqual(midLabels, ['0_pre', '0_mid']);
    assert.deepEqual(mid.shape, [2, 1, P, m.config.dim]);
    assert.deepEqual(mid.at(1).data, cache.get('resid_mid', 0).data);
  });
}

test('activation patching: identical inputs give the clean logits; the whole last resid_post reproduces the clean run; a last-position mlp_out patch equals a float64 hand computation', async () => {
  const m = await stories();
  const clean = IDS;
  const corrupted = [1, 403, 407, 261, 378, 300];
  const same = patchActivation(m, { clean, corrupted: clean, hook: 'blocks.2.hook_resid_mid' });
  assert.deepEqual(same.patched.data, same.clean.data);
  const whole = patchActivation(m, { clean, corrupted, hook: 'blocks.4.hook_resid_post' });
  assert.deepEqual(whole.patched.data, whole.clean.data);
  assert.ok(maxAbs(whole.corrupted.data, whole.clean.data) > 0.1);

  const P = clean.length;
  const last = P - 1;
  const r = patchActivation(m, {
    clean,
    corrupted,
    hook: 'blocks.4.hook_mlp_out',
    positions: [last],
  });
  const cleanCache = runWithCache(m, clean, 'blocks.4.hook_mlp_out').cache;
  const corruptCache = runWithCache(m, corrupted, 'blocks.4.hook_resid_mid').cache;
  const mlp = cleanCache.get('mlp_out', 4).at(0).at(last).data;
  const mid = corruptCache.get('resid_mid', 4).at(0).at(last).data;
  const h = Array.from(mid, (v, i) => v + mlp[i]);
  const ref = refLogits(m, h);
  assert.ok(maxAbs(r.patched.at(0).at(last).data, ref) < 1e-4);
  // positions before the patch are the corrupted run's, bit for bit
  for (let p = 0; p < last; p++)
    assert.deepEqual(r.patched.at(0).at(p).data, r.corrupted.at(0).at(p).data);

  // per-head patch of attn.hook_z touches only that head's slice
  const z = patchActivation(m, { clean, corrupted, hook: 'blocks.3.attn.hook_z', heads: [2] });
  assert.ok(maxAbs(z.patched.data, z.corrupted.data) > 0);
  assert.throws(
    () => patchActivation(m, { clean, corrupted: [1, 2], hook: 'blocks.0.hook_resid_pre' }),
    LmdynError,
  );
  assert.throws(
    () => patchActivation(m, { clean, corrupted, hook: 'blocks.0.attn.hook_pattern' }),
    LmdynError,
  );
});

test('residPatchingGrid: at layer 0 patching the one position whose token differs gives the clean metric, every other position the corrupted metric', async () => {
  const m = await stories();
  const clean = IDS;
  const corrupted = [1, 403, 300, 261, 378, 432]; // differs at position 2 only
  const V = 512;
  const metric = (logits: Tensor) => {
    const row = logits.at(0).at(-1).data;
    return row[417] - row[V - 1];
  };
  const grid = residPatchingGrid(m, { clean, corrupted, metric });
  assert.deepEqual(grid.shape, [5, 6]);
  const cleanMetric = metric(runWithHooks(m, clean).logits);
  const corruptMetric = metric(runWithHooks(m, corrupted).logits);
  assert.notEqual(cleanMetric, corruptMetric);
  for (let p = 0; p < 6; p++) {
    assert.equal(
      grid.get(0, p),
      Math.fround(p === 2 ? cleanMetric : corruptMetric),
      `position ${p}`,
    );
  }
});

test('runWithHooks: a hook that adds a vector to the final residual gives float64 norm + unembed of the shifted state; in-place and returned replacements agree; patterns are read-only', async () => {
  const m = await stories();
  const P = IDS.length;
  const v = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i + 1) * 3);
  const base = runWithCache(m, IDS, 'blocks.4.hook_resid_post').cache.get('resid_post', 4);
  const inPlace = runWithHooks(m, IDS, {
    fwdHooks: [
      [
        'blocks.4.hook_resid_post',
        (act) => {
          assert.deepEqual(act.shape, [1, P, 64]);
          for (let p = 0; p < P; p++) for (let i = 0; i < 64; i++) act.data[p * 64 + i] += v[i];
        },
      ],
    ],
  }).logits;
  const returned = runWithHooks(m, IDS, {
    fwdHooks: [
      [
        (name: string) => name === 'blocks.4.hook_resid_post',
        (act) =>
          new Tensor(
            act.data.map((x, j) => x + v[j % 64]),
            act.shape,
          ),
      ],
    ],
  }).logits;
  assert.deepEqual(inPlace.data, returned.data);
  for (const p of [0, P - 1]) {
    const h = Array.from(base.at(0).at(p).data, (x, i) => x + v[i]);
    assert.ok(maxAbs(inPlace.at(0).at(p).data, refLogits(m, h)) < 1e-4);
  }
  assert.throws(
    () =>
      runWithHooks(m, IDS, {
        fwdHooks: [['blocks.0.attn.hook_pattern', (a) => void a.data.fill(0)]],
      }),
    /read-only/,
  );
  assert.throws(() => runWithHooks(m, IDS, { fwdHooks: [['x' as never, 3 as never]] }), LmdynError);
});

test('steeringHook during generation: the first step’s logits are float64 norm + unembed of (final state + scale·v); a zero vector changes nothing', async () => {
  const m = await stories();
  const prompt = IDS.slice(0, 4);
  const v = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i) * 2);
  const base = runWithCache(m, prompt, 'blocks.4.hook_resid_post').cache.get('resid_post', 4);
  let first: Float32Array | null = null;
  const steered = generateText(m, {
    promptIds: prompt,
    maxTokens: 12,
    sampling: { temperature: 0 },
    hooks: [steeringHook(m, 'blocks.4.hook_resid_post', v, { scale: 1.5 })],
    onStep: (s) => {
      if (s.step === 0) first = s.logits.slice();
    },
  });
  const h = Array.from(base.at(0).at(3).data, (x, i) => x + 1.5 * v[i]);
  assert.ok(first && maxAbs(first, refLogits(m, h)) < 1e-4);
  const plain = generateText(m, { promptIds: prompt, maxTokens: 12, sampling: { temperature: 0 } });
  const zero = generateText(m, {
    promptIds: prompt,
    maxTokens: 12,
    sampling: { temperature: 0 },
    hooks: [steeringHook(m, 'blocks.4.hook_resid_post', new Float32Array(64))],
  });
  assert.deepEqual(zero.ids, plain.ids);
  assert.notDeepEqual(steered.ids, plain.ids);
  assert.throws(() => steeringHook(m, 'blocks.9.hook_resid_post', v), LmdynError);
});

test('a batch of two prompts gives each prompt’s own logits and cache rows', async () => {
  const m = await stories();
  const a = IDS;
  const b = [1, 403, 407, 261, 378, 300];
  const both = runWithCache(m, [a, b], 'blocks.1.hook_resid_post');
  assert.deepEqual(both.logits.shape, [2, 6, 512]);
  const one = runWithCache(m, b, 'blocks.1.hook_resid_post');
  assert.ok(maxAbs(both.logits.at(1).data, one.logits.at(0).data) < 1e-5);
  assert.ok(
    maxAbs(both.cache.get('resid_post', 1).at(1).data, one.cache.get('resid_post', 1).at(0).data) <
      1e-5,
  );
  assert.throws(() => runWithCache(m, [a, [1, 2]]), /same number of tokens/);
});

test('toTokens / toStrTokens / toString: BOS first, one piece per token (MANIFEST.md §1 ids; GPT-2 byte-level pieces), the text back', async () => {
  const m = await stories();
  const ids = toTokens(m, 'Once upon a time');
  assert.deepEqual(ids, [1, 403, 407, 261, 378]); // the greedy text's first tokens, MANIFEST.md §1
  assert.deepEqual(toTokens(m, 'Once upon a time', { prependBos: false }), ids.slice(1));
  // SentencePiece's dummy prefix makes the first word ' Once'
  assert.deepEqual(toStrTokens(m, 'Once upon a time'), ['<s>', ' Once', ' upon', ' a', ' time']);
  assert.equal(toString(m, ids), 'Once upon a time');
  assert.equal(toTokens(m, ['a b', 'c']).length, 2);
  const g = await openModel(GPT2);
  const text = 'Hello world, this is';
  const gids = toTokens(g, text, { prependBos: false });
  assert.deepEqual(gids, [15496, 995, 11, 428, 318]); // GPT-2's vocabulary (tiktoken gpt2 ids)
  assert.deepEqual(toStrTokens(g, gids), ['Hello', ' world', ',', ' this', ' is']);
  assert.equal(toStrTokens(g, gids).join(''), text);
});

test('model.dispose() returns the weights to the arena (at least 4 bytes per parameter) and later calls fail with a one-line error', async () => {
  const m = await openModel(STORIES);
  runWithCache(m, IDS, 'logits');
  const before = arenaBytesInUse();
  m.dispose();
  const freed = before - arenaBytesInUse();
  assert.ok(freed >= 260_032 * 4, `freed ${freed} bytes`);
  assert.equal(m.disposed, true);
  assert.throws(() => generateText(m, { prompt: 'Once', maxTokens: 2 }), /disposed/);
  m.dispose(); // idempotent
});
