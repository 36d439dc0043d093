/**
 * Qwen3ForCausalLM, Gemma2ForCausalLM and Gemma3ForCausalLM against float64 references.
 *
 * Independent reference: scripts/reference/qwen3_gemma_fixtures.py, a float64 PyTorch forward
 * written from transformers' modeling_qwen3.py / modeling_gemma2.py / modeling_gemma3.py
 * conventions (per-head q/k RMSNorm before RoPE; Gemma's 1 + weight norms, √d embedding scale in
 * the weights' dtype, GeGLU, post-norms, soft-capped scores and logits, sliding layers with their
 * own RoPE base, query_pre_attn_scalar), which wrote the three model folders under
 * test/fixtures/arch/ and, beside them, the logits at every position of a teacher-forced text, the
 * hidden states, and the block Jacobians from autograd. The tests read those arrays with their own
 * safetensors parser.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after } from 'node:test';
import { LmdynError } from '../../src/errors.js';
import { loadHfFolder } from '../../src/io/hf.js';
import { Transformer } from '../../src/model/forward.js';
import { absentHookPoints, extraHookPoints } from '../../src/model/hooks.js';
import { initialWeights } from '../../src/model/init.js';
import { ROOT } from '../helpers/paths.js';
import { blockJacobians, crossTokenJacobians, recordBlockStates } from '../../src/model/jvp.js';

const ARCH = resolve(ROOT, 'test', 'fixtures', 'arch');
const CASES = ['qwen3', 'gemma2', 'gemma3'] as const;
type Case = (typeof CASES)[number];
const TMP = mkdtempSync(join(tmpdir(), 'lmdyn-arch-gemma-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

interface Reference {
  text: string;
  ids: number[];
  greedyPrompt: string;
  greedyIds: number[];
  jacobianPosition: number;
  crossLayer: number;
  crossFrom: number;
  logits: Float64Array; // [n, vocab]
  hidden: Float64Array; // [L + 1, n, d]
  jacobians: Float64Array; // [L, d, d]
  cross: Float64Array; // [d, d]
}

/**
 * The F64, F32 and I32 tensors of a safetensors file (8-byte header length, JSON header, raw
 * little-endian data), as float64.
 */
function readTensors(path: string): Map<string, Float64Array> {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const out = new Map<string, Float64Array>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [s, e] = t.data_offsets;
    const raw = b.buffer.slice(b.byteOffset + 8 + n + s, b.byteOffset + 8 + n + e);
    const typed = { F64: Float64Array, F32: Float32Array, I32: Int32Array }[t.dtype];
    assert.ok(typed, `${name}: dtype ${t.dtype}`);
    out.set(name, Float64Array.from(new typed(raw)));
  }
  return out;
}

function reference(name: Case): Reference {
  const meta = JSON.parse(readFileSync(join(ARCH, `${name}.reference.json`), 'utf8')) as {
    text: string;
    ids: number[];
    jacobian_position: number;
    cross_layer: number;
    cross_from: number;
    greedy_prompt: string;
    greedy_ids: number[];
  };
  const t = readTensors(join(ARCH, `${name}.reference.safetensors`));
  const get = (k: string): Float64Array => t.get(k) ?? assert.fail(`reference has no ${k}`);
  assert.deepEqual([...get('ids')], meta.ids);
  return {
    text: meta.text,
    ids: meta.ids,
    greedyPrompt: meta.greedy_prompt,
    greedyIds: meta.greedy_ids,
    jacobianPosition: meta.jacobian_position,
    crossLayer: meta.cross_layer,
    crossFrom: meta.cross_from,
    logits: get('logits'),
    hidden: get('hidden'),
    jacobians: get('jacobians'),
    cross: get('cross'),
  };
}

/** max |a − r| / max |r| over one row (the relative error of a logit vector or a state). */
function relErr(a: ArrayLike<number>, r: ArrayLike<number>, from = 0, len = r.length): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < len; i++) {
    num = Math.max(num, Math.abs(a[i] - r[from + i]));
    den = Math.max(den, Math.abs(r[from + i]));
  }
  return num / den;
}

function lmdyn(...args: string[]) {
  const r = spawnSync(process.execPath, [resolve('bin', 'lmdyn.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, LMDYN_MODEL: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function open(name: Case): Transformer {
  return new Transformer(loadHfFolder(join(ARCH, name)));
}

/** A copy of fixture `name` with config.json patched (keys set to undefined are removed). */
function variant(
  name: Case,
  patch: Record<string, unknown>,
  tag = Object.keys(patch).join('-'),
): string {
  const dir = join(TMP, `${name}-${tag}`);
  cpSync(join(ARCH, name), dir, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, ...patch }));
  return dir;
}

/** Teacher-forced logits [n, vocab] and every X^l [n, d] (l = 0..L) of one forward pass. */
function run(tf: Transformer, ids: number[]): { logits: Float32Array; states: Float32Array[] } {
  const { dim: d, nLayers: L } = tf.config;
  const n = ids.length;
  const states: Float32Array[] = Array.from({ length: L + 1 }, () => new Float32Array(n * d));
  const out = tf.forward(tf.newCache(1, n), [{ seq: 0, tokens: ids }], {
    logits: 'all',
    hooks: [
      {
        filter: (h) => h === 'blocks.0.hook_resid_pre' || h.endsWith('hook_resid_post'),
        fn: (act, ctx) =>
          states[ctx.layer === null || ctx.name.endsWith('pre') ? 0 : ctx.layer + 1].set(act),
      },
    ],
  });
  return { logits: out.logits, states };
}

function worstLogitError(logits: ArrayLike<number>, ref: Reference, V: number): number {
  let worst = 0;
  for (let t = 0; t < ref.ids.length; t++) {
    const row = Array.prototype.slice.call(logits, t * V, (t + 1) * V) as number[];
    worst = Math.max(worst, relErr(row, ref.logits, t * V, V));
  }
  return worst;
}

for (const name of CASES) {
  test(`${name}: logits at every position and every hook_resid_post within 1e-4 of the float64 reference`, () => {
    const ref = reference(name);
    const tf = open(name);
    const { dim: d, vocabSize: V, nLayers: L } = tf.config;
    const n = ref.ids.length;
    assert.equal(ref.logits.length, n * V);
    const { logits, states } = run(tf, ref.ids);
    const worst = worstLogitError(logits, ref, V);
    assert.ok(worst < 1e-4, `logits: worst relative error ${worst.toExponential(2)}`);
    for (let l = 0; l <= L; l++) {
      for (let t = 0; t < n; t++) {
        const e = relErr(states[l].subarray(t * d, (t + 1) * d), ref.hidden, (l * n + t) * d, d);
        assert.ok(e < 1e-4, `hidden[${l}] at ${t}: ${e.toExponential(2)}`);
      }
    }
    for (let t = 0; t < n; t++) {
      const row = ref.logits.subarray(t * V, (t + 1) * V);
      const sorted = [...row].sort((a, b) => b - a);
      if (sorted[0] - sorted[1] < 1e-3) continue;
      const mine = logits.subarray(t * V, (t + 1) * V);
      assert.equal(mine.indexOf(Math.max(...mine)), row.indexOf(sorted[0]), `argmax at ${t}`);
    }
  });

  test(`${name}: one token at a time through the KV cache gives the same logits as the whole text`, () => {
    const ref = reference(name);
    const tf = open(name);
    const V = tf.config.vocabSize;
    const cache = tf.newCache(1, ref.ids.length);
    ref.ids.forEach((id, t) => {
      const { logits } = tf.forward(cache, [{ seq: 0, tokens: [id] }]);
      const e = relErr(logits, ref.logits, t * V, V);
      assert.ok(e < 1e-4, `position ${t}: ${e.toExponential(2)}`);
    });
  });

  test(`${name}: block Jacobians J^l at T and one cross-token Jacobian match autograd (1e-4 of max |J|)`, () => {
    const ref = reference(name);
    const tf = open(name);
    const { dim: d, nLayers: L } = tf.config;
    const states = recordBlockStates(tf, ref.ids);
    const T = ref.jacobianPosition;
    const jac = blockJacobians(tf, states, T);
    for (let l = 0; l < L; l++) {
      const e = relErr(jac[l], ref.jacobians, l * d * d, d * d);
      assert.ok(e < 1e-4, `J^${l}: relative error ${e.toExponential(2)}`);
    }
    const [cross] = crossTokenJacobians(tf, states, ref.crossLayer, [ref.crossFrom], T);
    const e = relErr(cross, ref.cross);
    assert.ok(e < 1e-4, `cross J^${ref.crossLayer}_{${ref.crossFrom},${T}}: ${e.toExponential(2)}`);
  });

  test(`${name}: tokenizer.json encodes the reference text to the reference ids (BOS as HF adds it) and decodes it back`, () => {
    const ref = reference(name);
    const m = loadHfFolder(join(ARCH, name));
    assert.ok(m.tokenizer);
    assert.deepEqual(m.tokenizer.encode(ref.text), ref.ids);
    assert.equal(m.tokenizer.decode(ref.ids), ref.text);
  });
}

test('the JS kernels (LMDYN_KERNELS=js, a child process) give the same reference logits as the wasm ones', () => {
  const api = new URL('../../src/index.js', import.meta.url).href;
  for (const name of CASES) {
    const ref = reference(name);
    const script = `
      const { openModel, runWithCache } = await import(${JSON.stringify(api)});
      const m = await openModel(${JSON.stringify(join(ARCH, name))});
      const { logits } = runWithCache(m, ${JSON.stringify(ref.ids)}, 'logits');
      process.stdout.write(JSON.stringify(Array.from(logits.data)));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, LMDYN_KERNELS: 'js' },
      maxBuffer: 1 << 26,
    });
    assert.equal(r.status, 0, r.stderr);
    const logits = JSON.parse(r.stdout) as number[];
    const e = worstLogitError(logits, ref, logits.length / ref.ids.length);
    assert.ok(e < 1e-4, `${name}: ${e.toExponential(2)}`);
  }
});

test('gemma2 / gemma3: sliding layers attend to the last sliding_window positions only (hook_pattern), global ones to all', () => {
  for (const [name, window, sliding] of [
    ['gemma2', 5, [true, false, true]],
    ['gemma3', 6, [true, true, false, true]],
  ] as const) {
    const ref = reference(name);
    const tf = open(name);
    const { nHeads, nLayers } = tf.config;
    const n = ref.ids.length;
    const patterns: Float32Array[] = [];
    tf.forward(tf.newCache(1, n), [{ seq: 0, tokens: ref.ids }], {
      logits: 'none',
      hooks: [
        {
          filter: 'blocks.*.attn.hook_pattern',
          fn: (act, ctx) => void (patterns[ctx.layer as number] = act.slice()),
        },
      ],
    });
    assert.equal(patterns.length, nLayers);
    const kLen = patterns[0].length / (n * nHeads);
    const T = n - 1;
    for (let l = 0; l < nLayers; l++) {
      for (let h = 0; h < nHeads; h++) {
        const row = patterns[l].subarray((T * nHeads + h) * kLen, (T * nHeads + h + 1) * kLen);
        const attended = [...row].map((a, t) => (a > 0 ? t : -1)).filter((t) => t >= 0);
        assert.equal(attended[0], sliding[l] ? T - window + 1 : 0, `${name} layer ${l} head ${h}`);
        assert.equal(attended.at(-1), T);
      }
    }
    // A sliding layer's cross-token Jacobian vanishes from outside its window.
    const states = recordBlockStates(tf, ref.ids);
    const [outside] = crossTokenJacobians(tf, states, 0, [T - window], T);
    assert.equal(Math.max(...outside.map(Math.abs)), 0);
  }
});

test('gemma2: soft-capping is active, |logits| < final cap 3 and the scores pass through cap 2', () => {
  const ref = reference('gemma2');
  const tf = open('gemma2');
  assert.equal(tf.config.attnSoftcap, 2);
  assert.equal(tf.config.finalSoftcap, 3);
  const { logits } = run(tf, ref.ids);
  const max = Math.max(...logits.map(Math.abs));
  assert.ok(max < 3 && max > 2.5, `max |logit| ${max}`); // tanh far from linear at the top
  // Without the caps the same weights give other logits (the reference would not match).
  const uncapped = new Transformer(
    loadHfFolder(
      variant('gemma2', { attn_logit_softcapping: null, final_logit_softcapping: null }),
    ),
  );
  const e = worstLogitError(run(uncapped, ref.ids).logits, ref, tf.config.vocabSize);
  assert.ok(e > 0.1, `uncapped error ${e}`);
});

test('gemma3: layer_types and the per-layer-type rope_parameters of newer transformers give the same model', () => {
  const ref = reference('gemma3');
  const V = open('gemma3').config.vocabSize;
  const explicit = variant(
    'gemma3',
    {
      layer_types: [
        'sliding_attention',
        'sliding_attention',
        'full_attention',
        'sliding_attention',
      ],
      sliding_window_pattern: undefined,
      rope_theta: undefined,
      rope_local_base_freq: undefined,
      rope_scaling: undefined,
      rope_parameters: {
        full_attention: { rope_type: 'default', rope_theta: 10000 },
        sliding_attention: { rope_type: 'default', rope_theta: 100 },
      },
    },
    'new-config',
  );
  const tf = new Transformer(loadHfFolder(explicit));
  const e = worstLogitError(run(tf, ref.ids).logits, ref, V);
  assert.ok(e < 1e-4, `${e}`);
  // Swapping the two bases changes the model: the local base reaches the sliding layers only.
  const swapped = new Transformer(
    loadHfFolder(variant('gemma3', { rope_theta: 100, rope_local_base_freq: 10000 }, 'swapped')),
  );
  assert.ok(worstLogitError(run(swapped, ref.ids).logits, ref, V) > 1e-2);
});

test('hook points: q/k norms (Qwen3, Gemma 3) and post-norms (Gemma) fire, and hook_attn_out is what joins the residual', () => {
  const qwen = open('qwen3');
  const g2 = open('gemma2');
  const g3 = open('gemma3');
  assert.ok(qwen.hookPointNames().includes('blocks.1.attn.q_norm.hook_normalized'));
  assert.ok(!qwen.hookPointNames().some((h) => h.includes('_post.')));
  assert.ok(!g2.hookPointNames().some((h) => h.includes('q_norm')));
  assert.ok(g2.hookPointNames().includes('blocks.2.ln2_post.hook_normalized'));
  assert.ok(g3.hookPointNames().includes('blocks.3.attn.k_norm.hook_normalized'));
  assert.ok(g3.hookPointNames().includes('blocks.3.ln1_post.hook_normalized'));
  for (const tf of [qwen, g2, g3])
    assert.deepEqual(
      absentHookPoints(tf.config).map((h) => h.name),
      ['hook_pos_embed'],
    );
  assert.deepEqual(
    extraHookPoints(g3.config).map((h) => h.name),
    [
      'blocks.{l}.attn.q_norm.hook_normalized, blocks.{l}.attn.k_norm.hook_normalized',
      'blocks.{l}.ln1_post.hook_normalized, blocks.{l}.ln2_post.hook_normalized',
    ],
  );
  // resid_mid = resid_pre + attn_out and resid_post = resid_mid + mlp_out, where attn_out and
  // mlp_out are the post-normed outputs (ln1_post / ln2_post); each q_norm head has RMS ≈ |w| scale.
  const d = g3.config.dim;
  const ids = reference('gemma3').ids.slice(0, 6);
  const got: Record<string, Float32Array> = {};
  g3.forward(g3.newCache(1, ids.length), [{ seq: 0, tokens: ids }], {
    logits: 'none',
    hooks: [
      { filter: 'blocks.1.*', fn: (act, ctx) => void (got[ctx.name.slice(9)] = act.slice()) },
    ],
  });
  for (let i = 0; i < ids.length * d; i++) {
    assert.ok(
      Math.abs(got.hook_resid_pre[i] + got.hook_attn_out[i] - got.hook_resid_mid[i]) < 1e-4,
    );
    assert.ok(
      Math.abs(got.hook_resid_mid[i] + got.hook_mlp_out[i] - got.hook_resid_post[i]) < 1e-4,
    );
  }
  assert.deepEqual(got['ln1_post.hook_normalized'], got.hook_attn_out);
  assert.deepEqual(got['ln2_post.hook_normalized'], got.hook_mlp_out);
  // The embedding hook is scaled by √d in bfloat16 (5.65625), as HF's hidden_states[0].
  assert.equal(g3.config.embedScale, 5.65625);
  assert.equal(g2.config.embedScale, Math.fround(Math.sqrt(32)));
});

test('config errors are one-line LmdynErrors: rope scaling, activation, layer types, unsupported settings', () => {
  const rejects = (dir: string, code: string, pattern: RegExp) =>
    assert.throws(
      () => loadHfFolder(dir),
      (e: unknown) =>
        e instanceof LmdynError &&
        e.code === code &&
        pattern.test(e.message) &&
        !e.message.includes('\n'),
    );
  rejects(
    variant('gemma3', { rope_scaling: { rope_type: 'linear', factor: 8 } }),
    'unsupported',
    /Gemma3ForCausalLM: rope_scaling .*linear.* is not supported/,
  );
  rejects(
    variant('gemma2', { hidden_activation: 'relu' }),
    'unsupported',
    /hidden_activation relu/,
  );
  rejects(variant('gemma2', { attention_bias: true }), 'unsupported', /attention_bias/);
  rejects(variant('gemma2', { sliding_window: null }), 'unsupported', /sliding_window null/);
  rejects(variant('gemma3', { use_bidirectional_attention: true }), 'unsupported', /bidirectional/);
  rejects(variant('gemma3', { layer_types: ['full_attention'] }), 'bad_format', /layer_types/);
  rejects(variant('gemma3', { sliding_window_pattern: 0 }), 'bad_format', /sliding_window_pattern/);
  rejects(
    variant('gemma2', { final_logit_softcapping: -1 }),
    'bad_format',
    /final_logit_softcapping/,
  );
  rejects(variant('qwen3', { use_sliding_window: true }), 'unsupported', /use_sliding_window/);
  rejects(
    variant('qwen3', { rope_scaling: { rope_type: 'yarn', factor: 4 } }),
    'unsupported',
    /rope_scaling/,
  );
  rejects(variant('qwen3', { head_dim: 12 }), 'bad_format', /q_proj.weight has shape/);
});

for (const name of CASES) {
  test(`${name} from the CLI: generate (greedy ids of the float64 reference), trace and analyze coupling (states and Jacobians of the reference)`, () => {
    const ref = reference(name);
    const folder = join(ARCH, name);
    const gen = lmdyn(
      'generate',
      '--model',
      folder,
      '--prompt',
      ref.greedyPrompt,
      '--temperature',
      '0',
      '--max-tokens',
      String(ref.greedyIds.length),
      '--json',
    );
    assert.equal(gen.code, 0, gen.stderr);
    assert.deepEqual((JSON.parse(gen.stdout) as { ids: number[] }).ids, ref.greedyIds);

    const texts = join(TMP, `${name}-text.txt`);
    writeFileSync(texts, ref.text + '\n');
    const traceDir = join(TMP, `${name}-trace`);
    const tr = lmdyn(
      'trace',
      '--model',
      folder,
      '--text-file',
      texts,
      '--hooks',
      'blocks.*.hook_resid_post',
      '--out',
      traceDir,
    );
    assert.equal(tr.code, 0, tr.stderr);
    const trace = readTensors(join(traceDir, 'trace.safetensors'));
    const n = ref.ids.length;
    assert.deepEqual([...(trace.get('tokens') ?? [])].slice(0, n), ref.ids);
    const m = loadHfFolder(folder).config;
    const d = m.dim;
    for (let l = 0; l < m.nLayers; l++) {
      const got =
        trace.get(`blocks.${l}.hook_resid_post`) ?? assert.fail(`no blocks.${l}.hook_resid_post`);
      for (let t = 0; t < n; t++) {
        const e = relErr(got.subarray(t * d, (t + 1) * d), ref.hidden, ((l + 1) * n + t) * d, d);
        assert.ok(e < 1e-4, `trace blocks.${l}.hook_resid_post at ${t}: ${e.toExponential(2)}`);
      }
    }

    const out = join(TMP, `${name}-coupling`);
    const an = lmdyn(
      'analyze',
      'coupling',
      '--model',
      folder,
      '--prompt',
      ref.text,
      '--k',
      '5,10',
      '--random-twin',
      '--save-jacobians',
      '--out',
      out,
    );
    assert.equal(an.code, 0, an.stderr);
    const jac = readTensors(join(out, 'jacobians.safetensors'));
    for (let l = 0; l < m.nLayers; l++) {
      const got = jac.get(`blocks.${l}.jacobian`) ?? assert.fail(`no blocks.${l}.jacobian`);
      const e = relErr(got, ref.jacobians, l * d * d, d * d);
      assert.ok(e < 1e-4, `analyze coupling J^${l}: ${e.toExponential(2)}`);
    }
    const report = JSON.parse(readFileSync(join(out, 'coupling.json'), 'utf8')) as {
      model: { config: { sourceArchitecture: string } };
    };
    assert.equal(report.model.config.sourceArchitecture, m.sourceArchitecture);
  });
}

test('lmdyn info names the architecture, its norms, soft caps, RoPE bases, and the hooks it has and lacks', () => {
  const r = lmdyn('info', '--model', join(ARCH, 'gemma2'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /source_architecture\s+Gemma2ForCausalLM/);
  assert.match(
    r.stdout,
    /norm\s+rmsnorm \(eps 0\.000001\); post-norms of the attention and MLP outputs/,
  );
  assert.match(
    r.stdout,
    /attention\s+causal, q·k × 0\.2041\d+, soft-capped at 2, local windows \(layer: positions\) 0: 5, 2: 5, others global/,
  );
  assert.match(r.stdout, /logits\s+soft-capped, 3·tanh\(logits \/ 3\)/);
  assert.match(r.stdout, /hooks_absent\s+hook_pos_embed \(rotary/);
  assert.match(r.stdout, /hooks_extra\s+blocks\.\{l\}\.ln1_post\.hook_normalized/);
  const g3 = lmdyn('info', '--model', join(ARCH, 'gemma3'), '--json');
  assert.equal(g3.code, 0, g3.stderr);
  const info = JSON.parse(g3.stdout) as Record<string, unknown>;
  assert.equal(info.architecture, 'gemma');
  assert.equal(info.mlp, 'geglu');
  assert.equal(info.positional, 'rope (theta 10000; sliding layers theta 100)');
  assert.match(String(info.embed_scale), /^5\.65625 \(√32 = 5\.6568\d+ in the weights' dtype\)$/);
  // 4 layers × (q 64·32 + k,v 2·32·32 + o 32·64 + MLP 3·64·32 + 4 norms·32 + q/k norms 2·16)
  // + tied embedding 339·32 + final norm 32, counted by hand.
  const V = open('gemma3').config.vocabSize;
  assert.equal(info.parameters, 4 * (2048 + 2048 + 2048 + 6144 + 128 + 32) + V * 32 + 32);
  const q = JSON.parse(lmdyn('info', '--model', join(ARCH, 'qwen3'), '--json').stdout) as Record<
    string,
    unknown
  >;
  assert.equal(q.head_dim, 16);
  assert.match(String(q.norm), /q\/k norms per head/);
});

test('random twin: Gemma (HF init, every gain 1 including post-norms and q/k norms) and Qwen3 (its q/k norms present)', () => {
  for (const name of ['gemma3', 'qwen3'] as const) {
    const tf = open(name);
    const twin = initialWeights(tf.config, 7, tf.weights);
    for (const l of twin.layers) {
      assert.ok(l.qNorm?.every((v) => v === 1) && l.kNorm?.every((v) => v === 1));
      if (name === 'gemma3')
        assert.ok(l.attnPostNorm?.every((v) => v === 1) && l.mlpPostNorm?.every((v) => v === 1));
      assert.ok(l.wGate && !l.bq && !l.bo);
    }
    const model = new Transformer({ ...loadHfFolder(join(ARCH, name)), weights: twin });
    const { logits } = run(model, reference(name).ids);
    assert.ok(logits.every(Number.isFinite));
  }
});

test('logit lens on gemma2: the last row is the model’s own soft-capped logits; gravity and the llama2.c / GGUF writers refuse what they cannot represent', async () => {
  const api = await import('../../src/index.js');
  const ref = reference('gemma2');
  const model = await api.openModel(join(ARCH, 'gemma2'));
  const run = api.runWithCache(model, ref.ids, 'blocks.*.hook_resid_*');
  const lens = api.logitLens(model, run.cache);
  const V = model.config.vocabSize;
  const last = lens.logits.at(lens.labels.length - 1).data;
  const e = relErr(last, ref.logits, (ref.ids.length - 1) * V, V);
  assert.ok(e < 1e-4, `lens final_post vs reference: ${e.toExponential(2)}`);
  const oneLine = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(
      fn,
      (err: unknown) =>
        err instanceof LmdynError && pattern.test(err.message) && !err.message.includes('\n'),
    );
  oneLine(
    () => api.analyzeGravity(model, { prompts: ['Once upon a time,'] } as never),
    /soft-caps/,
  );
  const qwen = loadHfFolder(join(ARCH, 'qwen3'));
  const { writeLlama2cCheckpoint } = await import('../../src/io/llama2c.js');
  const { writeGgufModel } = await import('../../src/io/gguf-write.js');
  oneLine(
    () =>
      writeLlama2cCheckpoint(join(TMP, 'q.bin'), qwen.config, qwen.weights, {
        version: 0,
      } as never),
    /q\/k norms/,
  );
  oneLine(() => writeGgufModel(join(TMP, 'q.gguf'), qwen as never), /q\/k norms/);
});
