import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { openModel } from '../../src/api.js';
import { readParquet } from '../../src/io/parquet.js';
import { nextTokenDistribution, validateSampling } from '../../src/decode/sampling.js';
import { entropy } from '../../src/stats/describe.js';
import { recordTrace, topK, TOPK_PREFIX } from '../../src/trace/record.js';
import { createRng } from '../../src/tensor/rng.js';
import { readTrace, writeTrace } from '../../src/trace/store.js';
import { model } from '../helpers/paths.js';

const STORIES = model('stories260K', 'stories260K.bin');
const BIN = resolve('bin', 'lmdyn.js');
const tmp = () => mkdtempSync(join(tmpdir(), 'lmdyn-trace-'));

test('recorded hook values equal a plain forward pass over the trace’s own tokens; logits follow from the last state', async () => {
  const m = await openModel(STORIES);
  const trace = recordTrace(m, {
    prompt: 'Once upon a time',
    samples: 3,
    maxTokens: 24,
    sampling: { temperature: 1 },
    seed: 5,
    logits: { kind: 'topk', k: 8 },
  });
  const P = trace.positions;
  const tf = m.transformer;
  const V = m.config.vocabSize;
  for (let s = 0; s < 3; s++) {
    const ids = [...trace.samples[s].promptIds, ...trace.samples[s].ids];
    // Reference: one uncached forward over the whole sequence, hooks copied here.
    const ref = new Map<string, Float32Array>();
    const out = tf.forward(tf.newCache(1, ids.length), [{ seq: 0, tokens: ids }], {
      logits: 'all',
      hooks: [{ filter: trace.meta.hooks, fn: (act, ctx) => void ref.set(ctx.name, act.slice()) }],
    });
    for (const [name, { width, data }] of trace.states) {
      const r = ref.get(name)!;
      let worst = 0;
      for (let p = 0; p < ids.length; p++)
        for (let i = 0; i < width; i++)
          worst = Math.max(worst, Math.abs(data[(s * P + p) * width + i] - r[p * width + i]));
      assert.ok(worst < 1e-5, `${name}: ${worst}`);
      // Padding past the sample's end is NaN.
      if (ids.length < P) assert.ok(Number.isNaN(data[(s * P + ids.length) * width]));
    }
    // Recorded top-k logits of step k = logits at position promptLen + k − 1; recomputed in
    // float64 from the last resid_post (RMSNorm, eps 1e-5, times the tied embedding).
    const last = trace.states.get('blocks.4.hook_resid_post')!;
    const w = tf.weights;
    const K = 8;
    for (let k = 0; k < trace.samples[s].ids.length; k++) {
      const pos = trace.samples[s].promptIds.length + k - 1;
      const h = Array.from(last.data.subarray((s * P + pos) * 64, (s * P + pos + 1) * 64));
      const rms = Math.sqrt(h.reduce((a, v) => a + v * v, 0) / 64 + 1e-5);
      for (let j = 0; j < K; j++) {
        const id = trace.topkIds![(s * trace.steps + k) * K + j];
        let z = 0;
        for (let i = 0; i < 64; i++)
          z += (h[i] / rms) * w.finalNorm[i] * w.unembedding.data[id * 64 + i];
        assert.ok(Math.abs(z - trace.topkValues![(s * trace.steps + k) * K + j]) < 1e-4);
        assert.ok(Math.abs(z - out.logits[pos * V + id]) < 1e-4);
      }
    }
  }
});

test('per-step logprob, entropy and top-1 equal −Σ p log p over a float64 softmax of the full logits, for the model and the sampled distribution', async () => {
  const m = await openModel(STORIES);
  const V = m.config.vocabSize;
  const configs = [
    {},
    { temperature: 0.7, topP: 0.9, repetitionPenalty: 1.2 },
    { temperature: 0 },
    { temperature: 1.3, topK: 40 },
    { temperature: 0.9, minP: 0.05 },
  ];
  for (const sampling of configs) {
    const trace = recordTrace(m, {
      prompt: 'Once upon a time',
      samples: 2,
      maxTokens: 12,
      sampling,
      seed: 3,
      logits: { kind: 'full' },
      hooks: ['hook_embed'],
    });
    const cfg = validateSampling(sampling);
    for (let s = 0; s < 2; s++) {
      const sample = trace.samples[s];
      for (let k = 0; k < sample.ids.length; k++) {
        const at = s * trace.steps + k;
        const z = trace.fullLogits!.subarray(at * V, (at + 1) * V);
        let max = -Infinity;
        for (const v of z) max = Math.max(max, v);
        const p = Array.from(z, (v) => Math.exp(v - max));
        const sum = p.reduce((a, b) => a + b, 0);
        const q = p.map((v) => v / sum);
        const token = sample.ids[k];
        const label = `${JSON.stringify(sampling)} sample ${s} step ${k}`;
        assert.ok(Math.abs(trace.logprob[at] - Math.log(q[token])) < 1e-5, label);
        assert.ok(Math.abs(trace.entropy[at] - entropy(q)) < 1e-5, label);
        assert.ok(Math.abs(trace.top1Prob[at] - Math.max(...q)) < 1e-6, label);
        const history = [...sample.promptIds, ...sample.ids.slice(0, k)];
        const sampled = nextTokenDistribution(z, history, cfg).probs;
        assert.ok(Math.abs(trace.sampledLogprob[at] - Math.log(sampled[token])) < 1e-5, label);
        assert.ok(Math.abs(trace.sampledEntropy[at] - entropy(sampled)) < 1e-5, label);
      }
    }
  }
});

test('trace files: bit-exact round trip, safetensors layout checked by an independent parser, parquet rows', async () => {
  const m = await openModel(STORIES);
  const trace = recordTrace(m, { prompt: 'The cat', samples: 2, maxTokens: 10, seed: 1 });
  const dir = join(tmp(), 'run');
  writeTrace(dir, trace, { tokenText: (id) => m.tokenizer.decode([id]) });
  assert.deepEqual(readdirSync(dir).sort(), [
    'steps.parquet',
    'trace.json',
    'trace.manifest.json',
    'trace.safetensors',
  ]);
  const back = readTrace(dir);
  assert.deepEqual(back.samples, trace.samples);
  // Weights fingerprint: the sha256 column of MANIFEST.md for stories260K.bin.
  assert.equal(
    JSON.parse(readFileSync(join(dir, 'trace.json'), 'utf8')).meta.model.sha256,
    'b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696',
  );
  assert.deepEqual([...back.states.keys()], [...trace.states.keys()]);
  for (const [name, s] of trace.states) {
    assert.ok(
      Buffer.from(back.states.get(name)!.data.buffer).equals(
        Buffer.from(s.data.buffer, s.data.byteOffset, s.data.byteLength),
      ),
      name,
    );
  }
  assert.deepEqual([...back.tokens], [...trace.tokens]);
  assert.deepEqual([...back.logprob].map(String), [...trace.logprob].map(String));
  // Independent minimal parser: u64 LE header length, JSON header, data_offsets into the data.
  const buf = readFileSync(join(dir, 'trace.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0);
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const P = trace.positions;
  assert.deepEqual(header['blocks.2.hook_resid_post'].shape, [2, P, 64]);
  assert.equal(header['blocks.2.hook_resid_post'].dtype, 'F32');
  assert.equal(header.tokens.dtype, 'I32');
  const [a] = header.tokens.data_offsets;
  for (let i = 0; i < P; i++) assert.equal(buf.readInt32LE(8 + n + a + 4 * i), trace.tokens[i]);
  const [b] = header['hook_embed'].data_offsets;
  assert.equal(buf.readFloatLE(8 + n + b + 4 * 70), trace.states.get('hook_embed')!.data[70]);
  // steps.parquet through hyparquet: one row per generated token.
  const rows = await readParquet(join(dir, 'steps.parquet'));
  assert.equal(rows.length, trace.samples[0].ids.length + trace.samples[1].ids.length);
  assert.equal(rows[0].token_id, trace.samples[0].ids[0]);
  assert.equal(rows[0].token_text, m.tokenizer.decode([trace.samples[0].ids[0]]));
  assert.ok(Math.abs((rows[0].logprob as number) - trace.logprob[0]) < 1e-6);
  // A non-empty folder is refused without force and left untouched.
  const before = readFileSync(join(dir, 'trace.json'));
  assert.throws(() => writeTrace(dir, trace), /not empty/);
  assert.ok(readFileSync(join(dir, 'trace.json')).equals(before));
});

test('teacher forcing: given texts are recorded with their own tokens and logprobs', async () => {
  const m = await openModel(STORIES);
  const texts = ['Lily went to the park.', 'Tom had a big red ball and he liked it.'];
  const trace = recordTrace(m, { texts });
  assert.equal(trace.samples.length, 2);
  texts.forEach((t, i) =>
    assert.deepEqual(
      [...trace.samples[i].promptIds, ...trace.samples[i].ids],
      m.tokenizer.encode(t, { bos: true }),
    ),
  );
  // logprob of step k = log softmax(logits at position k)[token k+1], from a plain forward pass.
  const ids = m.tokenizer.encode(texts[1], { bos: true });
  const tf = m.transformer;
  const V = m.config.vocabSize;
  const logits = tf.forward(tf.newCache(1, ids.length), [{ seq: 0, tokens: ids }], {
    logits: 'all',
  }).logits;
  for (let k = 0; k + 1 < ids.length; k++) {
    const row = Array.from(logits.subarray(k * V, (k + 1) * V));
    const mx = Math.max(...row);
    const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
    assert.ok(Math.abs(row[ids[k + 1]] - lse - trace.logprob[trace.steps + k]) < 1e-4);
  }
});

function lmdyn(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
}

function filesUnder(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

test('sweep: killed midway and re-run, it writes the same files as an uninterrupted run', async () => {
  const root = tmp();
  const args = [
    'sweep',
    '--model',
    STORIES,
    '--prompt',
    'Once',
    '--temperature',
    '0.5,1.0',
    '--top-p',
    '0.5,1',
    '--samples',
    '3',
    '--max-tokens',
    '30',
    '--seed',
    '9',
  ];
  const full = lmdyn(...args, '--out', join(root, 'a'));
  assert.equal(full.status, 0, full.stderr);
  const index = JSON.parse(readFileSync(join(root, 'a', 'sweep.json'), 'utf8'));
  assert.equal(index.configs.length, 4);
  // steps.parquet of a sweep names every token (the tokenizer's decode of the one id)
  const m = await openModel(STORIES);
  const rows = await readParquet(join(root, 'a', index.configs[0].dir, 'steps.parquet'));
  assert.ok(rows.length > 0);
  for (const r of rows) {
    assert.equal(r.token_text, m.tokenizer.decode([Number(r.token_id)]));
    assert.ok(String(r.token_text).length > 0, `empty token_text for id ${r.token_id}`);
  }
  // Interrupted run: kill as soon as the first configuration is finished.
  const b = join(root, 'b');
  await new Promise<void>((done) => {
    const child = spawn(process.execPath, [BIN, ...args, '--out', b, '--workers', '1']);
    const timer = setInterval(() => {
      // a configuration is finished when its folder is committed (renamed in with its manifest)
      const dirs = existsSync(b) ? readdirSync(b).filter((f) => !f.startsWith('.')) : [];
      if (dirs.some((d) => existsSync(join(b, d, 'trace.manifest.json')))) {
        child.kill('SIGKILL');
      }
    }, 5);
    child.on('exit', () => {
      clearInterval(timer);
      done();
    });
  });
  const finished = readdirSync(b).filter(
    (d) => !d.startsWith('.') && existsSync(join(b, d, 'trace.manifest.json')),
  ).length;
  assert.ok(finished >= 1 && finished < 4, `finished ${finished} before the kill`);
  const resumed = lmdyn(...args, '--out', b);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /already done/);
  const fa = filesUnder(join(root, 'a'));
  const fb = filesUnder(b);
  assert.deepEqual([...fb.keys()].sort(), [...fa.keys()].sort());
  for (const [k, v] of fa) assert.ok(v.equals(fb.get(k)!), `${k} differs`);
});

test('bad input: unknown hook pattern lists the valid names; bad grid values and occupied folders are refused', () => {
  const root = tmp();
  const hook = lmdyn(
    'trace',
    '--model',
    STORIES,
    '--hooks',
    'blocks.*.hook_nope',
    '--out',
    join(root, 't'),
  );
  assert.notEqual(hook.status, 0);
  assert.match(
    hook.stderr,
    /^error: unknown hook pattern 'blocks\.\*\.hook_nope'; valid names: hook_embed, blocks\.\{l\}\.hook_resid_pre/,
  );
  for (const bad of [
    ['--temperature', '0.5,-1'],
    ['--top-p', '0,1'],
    ['--top-p', '1.5'],
    ['--top-k', '2.5'],
    ['--temperature', '0.5,,1'],
    ['--temperature', '1,1'],
  ]) {
    const r = lmdyn('sweep', '--model', STORIES, ...bad, '--out', join(root, 's'));
    assert.notEqual(r.status, 0, bad.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^error: /);
  }
  const occupied = join(root, 'occupied');
  mkdirSync(occupied);
  writeFileSync(join(occupied, 'notes.txt'), 'mine');
  const r = lmdyn('trace', '--model', STORIES, '--out', occupied);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /not empty/);
  assert.deepEqual(readdirSync(occupied), ['notes.txt']);
  const s = lmdyn('sweep', '--model', STORIES, '--out', occupied);
  assert.notEqual(s.status, 0);
  assert.deepEqual(readdirSync(occupied), ['notes.txt']);
});

test('topK: the k largest by a full sort (value descending, lower id first on ties), k ≥ length included', () => {
  const rng = createRng(5);
  for (const [n, k] of [
    [1, 1],
    [5, 20],
    [100, 1],
    [1000, 20],
    [32000, 20],
  ] as const) {
    const z = new Float32Array(n);
    // Few distinct values, so ties cross the k-th place.
    for (let i = 0; i < n; i++) z[i] = Math.floor(rng.next() * 50) - 25;
    if (n > 3) z[2] = -Infinity;
    const want = Array.from(z, (v, i) => [i, v] as [number, number])
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, k);
    assert.deepEqual(topK(z, k), want, `n ${n} k ${k}`);
  }
  // Past the JS prefix (TOPK_PREFIX entries) the SIMD filter hands over the candidates: the
  // largest values after it, rising values (every later entry passes), and ties with the
  // prefix's k-th largest that must lose to lower ids.
  const n = 32000;
  const cases: [string, (i: number) => number][] = [
    ['continuous', () => rng.normal()],
    ['rising', (i) => i / 7],
    ['maximum after the prefix', (i) => (i < TOPK_PREFIX ? 1 : i % 97 === 0 ? 5 : 0)],
    [
      'ties with the prefix floor',
      (i) => (i < TOPK_PREFIX ? (i < 10 ? 3 : 1) : i % 5 === 0 ? 1 : 2),
    ],
  ];
  for (const [name, f] of cases) {
    const z = Float32Array.from({ length: n }, (_, i) => f(i));
    const want = Array.from(z, (v, i) => [i, v] as [number, number])
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, 20);
    assert.deepEqual(topK(z, 20), want, name);
  }
});
