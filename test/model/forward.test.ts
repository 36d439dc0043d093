import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateText, openModel, runWithCache } from '../../src/api.js';
import { model as modelPath, STORIES_GREEDY_64, STORIES_LSE0, STORIES_TOP5 } from '../helpers/paths.js';

const stories = () => openModel(modelPath('stories260K', 'stories260K.bin'));

function topK(row: Float32Array, k: number): [number, number][] {
  return [...row].map((v, i) => [i, v] as [number, number]).sort((a, b) => b[1] - a[1]).slice(0, k);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('stories260K (llama2.c .bin and GGUF): greedy ids and position-0 logits match MANIFEST.md §1', async () => {
  for (const file of [modelPath('stories260K', 'stories260K.bin'), modelPath('stories260K-gguf', 'stories260K.gguf')]) {
    const m = await openModel(file);
    const out = generateText(m, { prompt: '', maxTokens: 64, sampling: { temperature: 0 } });
    assert.deepEqual(out.promptIds, [1]);
    assert.deepEqual(out.ids, STORIES_GREEDY_64, file);
    const { logits } = runWithCache(m, [1], 'logits');
    const top = topK(logits, 5);
    top.forEach(([id, v], i) => {
      assert.equal(id, STORIES_TOP5[i][0]);
      assert.ok(Math.abs(v - STORIES_TOP5[i][1]) < 1e-3, `${file}: logit ${id} = ${v}`);
    });
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    let s = 0;
    for (const v of logits) s += Math.exp(v - max);
    assert.ok(Math.abs(max + Math.log(s) - STORIES_LSE0) < 1e-3);
  }
});

test('the llama2.c, GGUF and HF-derived copies of stories260K give the same logits (max |Δ| < 1e-4)', async () => {
  const ids = [1, ...STORIES_GREEDY_64.slice(0, 40)];
  const tok = modelPath('stories260K', 'tok512.bin');
  const logits = [];
  for (const p of [modelPath('stories260K', 'stories260K.bin'), modelPath('stories260K-gguf', 'stories260K.gguf'), modelPath('stories260K-hf-derived')]) {
    const m = await openModel(p, { tokenizer: tok });
    logits.push(runWithCache(m, ids, 'logits').logits);
  }
  assert.ok(maxAbsDiff(logits[0], logits[1]) < 1e-4);
  assert.ok(maxAbsDiff(logits[0], logits[2]) < 1e-4);
});

test('cached (one token at a time) and uncached (whole sequence) forward passes agree', async () => {
  const m = await stories();
  const ids = [1, ...STORIES_GREEDY_64.slice(0, 30)];
  const tf = m.transformer;
  const full = tf.forward(tf.newCache(1, ids.length), [{ seq: 0, tokens: ids }], { logits: 'all' }).logits;
  const cache = tf.newCache(1, ids.length);
  const V = m.config.vocabSize;
  let worst = 0;
  ids.forEach((t, p) => {
    const step = tf.forward(cache, [{ seq: 0, tokens: [t] }]).logits;
    worst = Math.max(worst, maxAbsDiff(step, full.subarray(p * V, (p + 1) * V)));
  });
  assert.ok(worst < 1e-4, `max |Δ| ${worst}`);
});

test('a batch of sequences of different lengths agrees with one sequence at a time', async () => {
  const m = await stories();
  const tf = m.transformer;
  const a = [1, ...STORIES_GREEDY_64.slice(0, 9)];
  const b = [1, 385, 410, 317];
  const alone = [a, b].map((ids) => tf.forward(tf.newCache(1, 32), [{ seq: 0, tokens: ids }]).logits);
  const cache = tf.newCache(2, 32);
  const both = tf.forward(cache, [{ seq: 0, tokens: a }, { seq: 1, tokens: b }]).logits;
  const V = m.config.vocabSize;
  assert.ok(maxAbsDiff(both.subarray(0, V), alone[0]) < 1e-5);
  assert.ok(maxAbsDiff(both.subarray(V), alone[1]) < 1e-5);
  // ... and continuing the batch one step matches continuing each alone.
  const next = tf.forward(cache, [{ seq: 1, tokens: [426] }, { seq: 0, tokens: [338] }]).logits;
  const ref = tf.forward(tf.newCache(1, 32), [{ seq: 0, tokens: [...b, 426] }]).logits;
  assert.ok(maxAbsDiff(next.subarray(0, V), ref) < 1e-5);
});

test('hooks: the cache reads TransformerLens names; a replacing hook changes what follows', async () => {
  const m = await stories();
  const ids = [1, 403, 407, 261];
  const { cache, logits } = runWithCache(m, ids, ['blocks.*.hook_resid_post', 'ln_final.hook_normalized']);
  assert.deepEqual(cache.keys(), [...Array.from({ length: 5 }, (_, l) => `blocks.${l}.hook_resid_post`), 'ln_final.hook_normalized']);
  assert.deepEqual(cache.get('blocks.4.hook_resid_post').shape, [1, 4, 64]);
  // Independent reference: RMSNorm (eps 1e-5) of the last resid_post times the embedding
  // matrix (tied classifier), in float64, gives the logits.
  const w = m.transformer.weights;
  const last = cache.get('blocks.4.hook_resid_post').data;
  const V = m.config.vocabSize;
  for (const p of [0, 3]) {
    const h = Array.from(last.subarray(p * 64, p * 64 + 64));
    const rms = Math.sqrt(h.reduce((s, v) => s + v * v, 0) / 64 + 1e-5);
    const n = h.map((v, i) => (v / rms) * w.finalNorm[i]);
    let worst = 0;
    for (let v = 0; v < V; v++) {
      let z = 0;
      for (let i = 0; i < 64; i++) z += n[i] * w.unembedding.data[v * 64 + i];
      worst = Math.max(worst, Math.abs(z - logits[p * V + v]));
    }
    assert.ok(worst < 1e-4, `position ${p}: ${worst}`);
  }
  // Zeroing every attention output through hooks equals a forward whose wo matrices are zero.
  const tf = m.transformer;
  const ablated = tf.forward(tf.newCache(1, 8), [{ seq: 0, tokens: ids }], {
    hooks: [{ filter: 'blocks.*.hook_attn_out', fn: (act) => new Float32Array(act.length) }],
  }).logits;
  const saved = w.layers.map((l) => l.wo.data.slice());
  w.layers.forEach((l) => l.wo.data.fill(0));
  const zeroWo = tf.forward(tf.newCache(1, 8), [{ seq: 0, tokens: ids }]).logits;
  w.layers.forEach((l, i) => l.wo.data.set(saved[i]));
  assert.ok(maxAbsDiff(ablated, zeroWo) === 0);
  const plain = tf.forward(tf.newCache(1, 8), [{ seq: 0, tokens: ids }]).logits;
  assert.ok(maxAbsDiff(ablated, plain) > 0.1);
});

test('tiny-gpt2 forward matches a float64 GPT-2 written here from the raw safetensors file', async () => {
  const dir = modelPath('tiny-gpt2');
  const m = await openModel(dir);
  const ids = [15496, 11, 995, 0, 314, 1101, 257, 3797];
  const { logits } = runWithCache(m, ids, 'logits');
  const ref = gpt2Reference(readSafetensorsF64(`${dir}/model.safetensors`), ids);
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    worst = Math.max(worst, Math.abs(ref[i] - logits[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  assert.ok(worst < 1e-5 * Math.max(1, scale), `max |Δ| ${worst} (logit scale ${scale})`);
});

// ---- independent float64 reference (GPT-2, HF GPT2LMHeadModel semantics) -------------------

type Tensors = Map<string, { shape: number[]; data: Float64Array }>;

function readSafetensorsF64(path: string): Tensors {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out: Tensors = new Map();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    assert.equal(t.dtype, 'F32');
    const [a, b] = t.data_offsets;
    const data = new Float64Array((b - a) / 4);
    for (let i = 0; i < data.length; i++) data[i] = buf.readFloatLE(8 + n + a + 4 * i);
    out.set(name.replace(/^transformer\./, ''), { shape: t.shape, data });
  }
  return out;
}

function gpt2Reference(w: Tensors, ids: number[]): Float64Array {
  const get = (k: string) => {
    const t = w.get(k);
    assert.ok(t, k);
    return t;
  };
  const wte = get('wte.weight');
  const [V, d] = wte.shape;
  const T = ids.length;
  let nl = 0;
  while (w.has(`h.${nl}.ln_1.weight`)) nl++;
  const nh = 2; // config.json: n_head 2
  const hd = d / nh;
  const ln = (x: number[], g: Float64Array, b: Float64Array) => {
    const mu = x.reduce((s, v) => s + v, 0) / d;
    const va = x.reduce((s, v) => s + (v - mu) ** 2, 0) / d;
    return x.map((v, i) => ((v - mu) / Math.sqrt(va + 1e-5)) * g[i] + b[i]);
  };
  // Conv1D: y = x W + b with W stored [in, out].
  const conv = (x: number[], W: { shape: number[]; data: Float64Array }, b: Float64Array) => {
    const [nin, nout] = W.shape;
    const y = Array.from(b);
    for (let o = 0; o < nout; o++) for (let i = 0; i < nin; i++) y[o] += x[i] * W.data[i * nout + o];
    return y;
  };
  const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  let h = ids.map((t, p) => Array.from({ length: d }, (_, i) => wte.data[t * d + i] + get('wpe.weight').data[p * d + i]));
  for (let l = 0; l < nl; l++) {
    const p = `h.${l}.`;
    const qkv = h.map((x) => conv(ln(x, get(p + 'ln_1.weight').data, get(p + 'ln_1.bias').data), get(p + 'attn.c_attn.weight'), get(p + 'attn.c_attn.bias').data));
    const z = h.map(() => new Array<number>(d).fill(0));
    for (let t = 0; t < T; t++) {
      for (let hh = 0; hh < nh; hh++) {
        const sc: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qkv[t][hh * hd + i] * qkv[s][d + hh * hd + i];
          sc.push(dot / Math.sqrt(hd));
        }
        const mx = Math.max(...sc);
        const e = sc.map((v) => Math.exp(v - mx));
        const se = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++) for (let i = 0; i < hd; i++) z[t][hh * hd + i] += (e[s] / se) * qkv[s][2 * d + hh * hd + i];
      }
    }
    h = h.map((x, t) => {
      const a = conv(z[t], get(p + 'attn.c_proj.weight'), get(p + 'attn.c_proj.bias').data);
      const mid = x.map((v, i) => v + a[i]);
      const f = conv(ln(mid, get(p + 'ln_2.weight').data, get(p + 'ln_2.bias').data), get(p + 'mlp.c_fc.weight'), get(p + 'mlp.c_fc.bias').data).map(gelu);
      const o = conv(f, get(p + 'mlp.c_proj.weight'), get(p + 'mlp.c_proj.bias').data);
      return mid.map((v, i) => v + o[i]);
    });
  }
  const out = new Float64Array(T * V);
  h.forEach((x, t) => {
    const n = ln(x, get('ln_f.weight').data, get('ln_f.bias').data);
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += n[i] * wte.data[v * d + i];
      out[t * V + v] = s;
    }
  });
  return out;
}

