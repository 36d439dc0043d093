/**
 * GPTNeoXForCausalLM (Pythia) and GPTNeoForCausalLM (TinyStories) against float64 references.
 *
 * Independent reference: scripts/reference/neox_neo_fixtures.py, a float64 PyTorch forward written
 * from transformers' modeling_gpt_neox.py / modeling_gpt_neo.py conventions (fused per-head
 * query_key_value, partial rotate_half rotary, parallel and sequential residual; unscaled scores
 * and local windows), which wrote the three model folders under test/fixtures/arch/ and, beside
 * them, the logits at every position of a teacher-forced text, the hidden states, and the block
 * Jacobians from autograd. The tests read those arrays with their own safetensors parser.
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
import { absentHookPoints } from '../../src/model/hooks.js';
import { INIT_STD, initialWeights } from '../../src/model/init.js';
import { ROOT } from '../helpers/paths.js';
import { blockJacobians, crossTokenJacobians, recordBlockStates } from '../../src/model/jvp.js';

const ARCH = resolve(ROOT, 'test', 'fixtures', 'arch');
const CASES = ['neox-parallel', 'neox-sequential', 'neo-local'] as const;
type Case = (typeof CASES)[number];
const TMP = mkdtempSync(join(tmpdir(), 'lmdyn-arch-'));
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

for (const name of CASES) {
  test(`${name}: logits at every position and every hook_resid_post within 1e-4 of the float64 reference`, () => {
    const ref = reference(name);
    const tf = open(name);
    const { dim: d, vocabSize: V, nLayers: L } = tf.config;
    const n = ref.ids.length;
    assert.equal(ref.logits.length, n * V);
    const states: Float32Array[] = Array.from({ length: L + 1 }, () => new Float32Array(n * d));
    const out = tf.forward(tf.newCache(1, n), [{ seq: 0, tokens: ref.ids }], {
      logits: 'all',
      hooks: [
        {
          filter: (h) => h === 'blocks.0.hook_resid_pre' || h.endsWith('hook_resid_post'),
          fn: (act, ctx) =>
            states[ctx.layer === null || ctx.name.endsWith('pre') ? 0 : ctx.layer + 1].set(act),
        },
      ],
    });
    let worst = 0;
    for (let t = 0; t < n; t++) {
      const e = relErr(out.logits.subarray(t * V, (t + 1) * V), ref.logits, t * V, V);
      worst = Math.max(worst, e);
    }
    assert.ok(worst < 1e-4, `logits: worst relative error ${worst.toExponential(2)}`);
    for (let l = 0; l <= L; l++) {
      for (let t = 0; t < n; t++) {
        const e = relErr(states[l].subarray(t * d, (t + 1) * d), ref.hidden, (l * n + t) * d, d);
        assert.ok(e < 1e-4, `hidden[${l}] at ${t}: ${e.toExponential(2)}`);
      }
    }
    // Greedy choices agree everywhere the reference has a clear winner.
    for (let t = 0; t < n; t++) {
      const row = ref.logits.subarray(t * V, (t + 1) * V);
      const sorted = [...row].sort((a, b) => b - a);
      if (sorted[0] - sorted[1] < 1e-3) continue;
      const mine = out.logits.subarray(t * V, (t + 1) * V);
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

  test(`${name}: tokenizer.json encodes the reference text to the reference ids and decodes it back`, () => {
    const ref = reference(name);
    const m = loadHfFolder(join(ARCH, name));
    assert.ok(m.tokenizer);
    assert.deepEqual(m.tokenizer.encode(ref.text, { bos: false }), ref.ids);
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
    const V = logits.length / ref.ids.length;
    for (let t = 0; t < ref.ids.length; t++) {
      const e = relErr(logits.slice(t * V, (t + 1) * V), ref.logits, t * V, V);
      assert.ok(e < 1e-4, `${name} position ${t}: ${e.toExponential(2)}`);
    }
  }
});

test('neo-local: the local layer attends to the last window_size positions only (hook_pattern), the global ones to all', () => {
  const ref = reference('neo-local');
  const tf = open('neo-local');
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
      const sum = row.reduce((s, a) => s + a, 0);
      assert.ok(Math.abs(sum - 1) < 1e-5);
      assert.deepEqual(attended[0], l === 1 ? T - 3 : 0, `layer ${l} head ${h}`); // window_size 4
      assert.equal(attended.at(-1), T);
    }
  }
  // Cross-token Jacobians of the local layer vanish for a position outside its window.
  const states = recordBlockStates(tf, ref.ids);
  const [outside] = crossTokenJacobians(tf, states, 1, [T - 4], T);
  assert.equal(Math.max(...outside.map(Math.abs)), 0);
});

test('hook points: no hook_resid_mid with a parallel residual (and lmdyn says so); GPT-NeoX has rot_q/rot_k, GPT-Neo pos_embed', () => {
  const par = open('neox-parallel');
  const seq = open('neox-sequential');
  const neo = open('neo-local');
  assert.ok(!par.hookPointNames().some((h) => h.endsWith('hook_resid_mid')));
  assert.ok(seq.hookPointNames().includes('blocks.1.hook_resid_mid'));
  assert.ok(par.hookPointNames().includes('blocks.2.attn.hook_rot_q'));
  assert.ok(neo.hookPointNames().includes('hook_pos_embed'));
  assert.deepEqual(
    absentHookPoints(par.config).map((h) => h.name),
    ['hook_pos_embed', 'blocks.{l}.hook_resid_mid'],
  );
  assert.deepEqual(
    absentHookPoints(seq.config).map((h) => h.name),
    ['hook_pos_embed'],
  );
  // With a parallel residual, hook_mlp_out's MLP reads hook_resid_pre: resid_post = pre + attn + mlp.
  const d = par.config.dim;
  const ids = reference('neox-parallel').ids.slice(0, 5);
  const got: Record<string, Float32Array> = {};
  par.forward(par.newCache(1, ids.length), [{ seq: 0, tokens: ids }], {
    logits: 'none',
    hooks: [
      { filter: 'blocks.1.*', fn: (act, ctx) => void (got[ctx.name.slice(9)] = act.slice()) },
    ],
  });
  for (let i = 0; i < ids.length * d; i++) {
    const sum = got.hook_resid_pre[i] + got.hook_attn_out[i] + got.hook_mlp_out[i];
    assert.ok(Math.abs(sum - got.hook_resid_post[i]) < 1e-4);
  }
});

test('config errors are one-line LmdynErrors: rope scaling, activation, attention_types, rotary dims', () => {
  const variant = (name: Case, patch: Record<string, unknown>): string => {
    const dir = join(TMP, `${name}-${Object.keys(patch).join('-')}`);
    cpSync(join(ARCH, name), dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, ...patch }));
    return dir;
  };
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
    variant('neox-parallel', { rope_scaling: { type: 'linear', factor: 2 } }),
    'unsupported',
    /rope scaling/,
  );
  rejects(variant('neox-parallel', { hidden_act: 'relu' }), 'unsupported', /hidden_act relu/);
  rejects(variant('neox-parallel', { rotary_pct: 0.01 }), 'bad_format', /rotary dims/);
  rejects(
    variant('neo-local', {
      attention_types: [
        [['global', 'sparse'], 1],
        [['global'], 1],
      ],
    }),
    'bad_format',
    /attention_types/,
  );
  rejects(
    variant('neo-local', { attention_types: [[['global', 'local'], 2]] }),
    'bad_format',
    /4 layers, num_layers is 3/,
  );
  rejects(
    variant('neo-local', { activation_function: 'relu' }),
    'unsupported',
    /activation_function relu/,
  );
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

    // trace, teacher-forcing the reference text: tokens and every hook_resid_post.
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

    // analyze coupling at the last position of the text, with the Jacobians written out.
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

test('lmdyn info names the architecture, the residual form and the hooks it lacks', () => {
  const r = lmdyn('info', '--model', join(ARCH, 'neox-parallel'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /source_architecture\s+GPTNeoXForCausalLM/);
  assert.match(r.stdout, /positional\s+rope \(theta 10000, first 4 of 16 dims per head\)/);
  assert.match(r.stdout, /residual\s+parallel/);
  assert.match(r.stdout, /hooks_absent.*blocks\.\{l\}\.hook_resid_mid \(parallel residual/);
  assert.match(r.stdout, /parameters\s+58,656/); // 2·320·32 + 3·12,704 + 64, counted by hand
  const neo = lmdyn('info', '--model', join(ARCH, 'neo-local'), '--json');
  assert.equal(neo.code, 0, neo.stderr);
  const info = JSON.parse(neo.stdout) as Record<string, unknown>;
  assert.equal(info.source_architecture, 'GPTNeoForCausalLM');
  assert.match(String(info.attention), /q·k × 1, local windows \(layer: positions\) 1: 4/);
  assert.equal(info.parameters, 36_960); // 297·32 + 64·32 + 3·(4·1024 + 32 + 2·2048 + 64 + 32 + 128) + 64
});

test('random twin: Pythia init (GPT-NeoX small_init √(2/(5d)), wang_init 2/(L√d) on attention.dense and dense_4h_to_h) and GPT-Neo init (HF N(0, 0.02²))', () => {
  const std = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
  const near = (a: number, b: number) => Math.abs(a - b) < 0.08 * b;
  // d = 256 and 2 layers: every matrix has ≥ 65k draws, so the sample std is within 1% of σ.
  const neoxConfig = {
    ...open('neox-parallel').config,
    dim: 256,
    hiddenDim: 1024,
    headDim: 128,
    nLayers: 2,
  };
  const x = initialWeights(neoxConfig, 5, undefined);
  const small = Math.sqrt(2 / (5 * 256));
  const wang = 2 / (2 * Math.sqrt(256));
  for (const l of x.layers) {
    assert.ok(near(std(l.wq.data), small) && near(std(l.wUp.data), small));
    assert.ok(near(std(l.wo.data), wang) && near(std(l.wDown.data), wang));
    assert.ok(l.bq?.every((v) => v === 0) && l.mlpNormBias?.every((v) => v === 0));
  }
  assert.ok(near(std(x.tokenEmbedding.data), small) && near(std(x.unembedding.data), small));
  assert.notEqual(x.unembedding, x.tokenEmbedding); // embed_out is its own draw
  const neoConfig = { ...open('neo-local').config, dim: 256, hiddenDim: 1024, headDim: 64 };
  const o = initialWeights(neoConfig, 5, undefined);
  for (const l of o.layers) {
    for (const m of [l.wq, l.wk, l.wv, l.wo, l.wUp, l.wDown])
      assert.ok(near(std(m.data), INIT_STD));
  }
  assert.ok(near(std((o.positionEmbedding as { data: Float32Array }).data), INIT_STD));
  assert.equal(o.unembedding, o.tokenEmbedding);
});
