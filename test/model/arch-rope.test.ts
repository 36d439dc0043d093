/**
 * Scaled RoPE (Llama 3.x / SmolLM2: llama3, linear, dynamic), MistralForCausalLM's sliding window
 * and Phi3ForCausalLM (fused projections, partial rotary, longrope) against float64 references.
 *
 * Independent reference: scripts/reference/rope_fixtures.py, a float64 PyTorch forward written
 * from transformers' modeling_llama.py / modeling_mistral.py / modeling_phi3.py and
 * modeling_rope_utils.py conventions (rotate_half RoPE with each rope type's inv_freq, the
 * sliding-window mask kv > q − W, Phi-3's q|k|v and gate|up splits, generate's KV cache and
 * Phi-3's cache drop at the longrope switch), which wrote the model folders under
 * test/fixtures/arch-rope/ and, beside them, the logits at every position of a teacher-forced
 * text, the hidden states, the block Jacobians from autograd and the greedy continuation. The
 * tests read those arrays with their own safetensors parser.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LmdynError } from '../../src/errors.js';
import { loadHfFolder } from '../../src/io/hf.js';
import { Transformer } from '../../src/model/forward.js';
import { absentHookPoints } from '../../src/model/hooks.js';
import { ropeFrequencies } from '../../src/model/rope.js';
import type { ModelConfig } from '../../src/model/types.js';
import { blockJacobians, crossTokenJacobians, recordBlockStates } from '../../src/model/jvp.js';
import { ROOT } from '../helpers/paths.js';

const DIR = resolve(ROOT, 'test', 'fixtures', 'arch-rope');
const CASES = [
  'llama-rope-llama3',
  'llama-rope-linear',
  'llama-rope-dynamic',
  'mistral-window',
  'phi3',
  'phi3-longrope',
] as const;
type Case = (typeof CASES)[number];
const SCALED: Case[] = [
  'llama-rope-llama3',
  'llama-rope-linear',
  'llama-rope-dynamic',
  'phi3-longrope',
];
const TMP = mkdtempSync(join(tmpdir(), 'lmdyn-arch-rope-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

interface Reference {
  text: string;
  ids: number[];
  greedyPrompt: string;
  greedyIds: number[];
  crossLayer: number;
  crossFrom: number;
  unscaledDiff: number;
  logits: Float64Array; // [n, vocab]
  stepLogits: Float64Array | null; // [n, vocab], one token per call through the cache
  hidden: Float64Array; // [L + 1, n, d]
  jacobians: Float64Array; // [L, d, d]
  cross: Float64Array; // [d, d]
}

/** The F64, F32 and I32 tensors of a safetensors file, as float64. */
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

const refs = new Map<Case, Reference>();
function reference(name: Case): Reference {
  const hit = refs.get(name);
  if (hit) return hit;
  const meta = JSON.parse(readFileSync(join(DIR, `${name}.reference.json`), 'utf8')) as {
    text: string;
    ids: number[];
    cross_layer: number;
    cross_from: number;
    greedy_prompt: string;
    greedy_ids: number[];
    unscaled_logits_max_diff: number;
  };
  const t = readTensors(join(DIR, `${name}.reference.safetensors`));
  const get = (k: string): Float64Array => t.get(k) ?? assert.fail(`reference has no ${k}`);
  assert.deepEqual([...get('ids')], meta.ids);
  const ref: Reference = {
    text: meta.text,
    ids: meta.ids,
    greedyPrompt: meta.greedy_prompt,
    greedyIds: meta.greedy_ids,
    crossLayer: meta.cross_layer,
    crossFrom: meta.cross_from,
    unscaledDiff: meta.unscaled_logits_max_diff,
    logits: get('logits'),
    stepLogits: t.get('step_logits') ?? null,
    hidden: get('hidden'),
    jacobians: get('jacobians'),
    cross: get('cross'),
  };
  refs.set(name, ref);
  return ref;
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

function open(name: Case, patch?: (c: ModelConfig) => ModelConfig): Transformer {
  const m = loadHfFolder(join(DIR, name));
  return new Transformer(patch ? { ...m, config: patch(m.config) } : m);
}

/** Logits at every position of one forward over `ids`: [n, vocab]. */
function wholeText(tf: Transformer, ids: number[]): Float32Array {
  return tf.forward(tf.newCache(1, ids.length), [{ seq: 0, tokens: ids }], { logits: 'all' })
    .logits;
}

for (const name of CASES) {
  test(`${name}: logits at every position and every hook_resid_post within 1e-5 of the float64 reference`, () => {
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
      worst = Math.max(
        worst,
        relErr(out.logits.subarray(t * V, (t + 1) * V), ref.logits, t * V, V),
      );
    }
    assert.ok(worst < 1e-5, `logits: worst relative error ${worst.toExponential(2)}`);
    for (let l = 0; l <= L; l++) {
      for (let t = 0; t < n; t++) {
        const e = relErr(states[l].subarray(t * d, (t + 1) * d), ref.hidden, (l * n + t) * d, d);
        assert.ok(e < 1e-5, `hidden[${l}] at ${t}: ${e.toExponential(2)}`);
      }
    }
  });

  test(`${name}: one token at a time through the KV cache gives the reference's cached logits`, () => {
    // Dynamic NTK: each step rotates with its own base, the cached keys keep theirs (HF's
    // dynamic_rope_update); longrope: short factors up to the original context, then the cache is
    // recomputed with the long ones (Phi3's prepare_inputs_for_generation). Otherwise the cached
    // logits are the whole text's.
    const ref = reference(name);
    const tf = open(name);
    const V = tf.config.vocabSize;
    const expected = ref.stepLogits ?? ref.logits;
    const cache = tf.newCache(1, ref.ids.length);
    ref.ids.forEach((id, t) => {
      const { logits } = tf.forward(cache, [{ seq: 0, tokens: [id] }]);
      const e = relErr(logits, expected, t * V, V);
      assert.ok(e < 1e-5, `position ${t}: ${e.toExponential(2)}`);
    });
  });

  test(`${name}: block Jacobians J^l at T and one cross-token Jacobian match autograd (1e-5 of max |J|)`, () => {
    const ref = reference(name);
    const tf = open(name);
    const { dim: d, nLayers: L } = tf.config;
    const states = recordBlockStates(tf, ref.ids);
    const T = ref.ids.length - 1;
    const jac = blockJacobians(tf, states, T);
    for (let l = 0; l < L; l++) {
      const e = relErr(jac[l], ref.jacobians, l * d * d, d * d);
      assert.ok(e < 1e-5, `J^${l}: relative error ${e.toExponential(2)}`);
    }
    const [cross] = crossTokenJacobians(tf, states, ref.crossLayer, [ref.crossFrom], T);
    const e = relErr(cross, ref.cross);
    assert.ok(e < 1e-5, `cross J^${ref.crossLayer}_{${ref.crossFrom},${T}}: ${e.toExponential(2)}`);
  });
}

for (const name of SCALED) {
  test(`${name}: the scaling is exercised (plain RoPE on the same weights misses the reference)`, () => {
    const ref = reference(name);
    assert.ok(ref.unscaledDiff > 1, `the reference's own unscaled difference ${ref.unscaledDiff}`);
    const plain = open(name, (c) => ({ ...c, ropeScaling: undefined }));
    const V = plain.config.vocabSize;
    const logits = wholeText(plain, ref.ids);
    let worst = 0;
    for (let t = 0; t < ref.ids.length; t++) {
      worst = Math.max(worst, relErr(logits.subarray(t * V, (t + 1) * V), ref.logits, t * V, V));
    }
    assert.ok(worst > 0.01, `plain RoPE is within ${worst.toExponential(2)}`);
  });
}

test('model/rope.ts: inv_freq of Llama 3.1 (llama3 ×8) and of dynamic NTK at 1× and 2× the context equal the float64 reference (1e-12)', () => {
  const cases = JSON.parse(readFileSync(join(DIR, 'frequencies.json'), 'utf8')) as Record<
    string,
    { seq_len: number; inv_freq: number[] }
  >;
  const base: ModelConfig = { ...loadHfFolder(join(DIR, 'llama-rope-llama3')).config };
  const llama31: ModelConfig = {
    ...base,
    ropeTheta: 500000,
    headDim: 128,
    ropeDim: 128,
    ropeScaling: {
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalContext: 8192,
    },
  };
  const dynamic: ModelConfig = {
    ...base,
    ropeTheta: 10000,
    headDim: 64,
    ropeDim: 64,
    ropeScaling: { type: 'dynamic', factor: 2, originalContext: 2048 },
  };
  const check = (c: ModelConfig, key: string) => {
    const want = cases[key];
    const got = ropeFrequencies(c, 0, want.seq_len);
    assert.equal(got.length, want.inv_freq.length);
    want.inv_freq.forEach((f, i) =>
      assert.ok(Math.abs(got[i] - f) <= 1e-12 * f, `${key} [${i}]: ${got[i]} vs ${f}`),
    );
  };
  check(llama31, 'llama3.1');
  check(dynamic, 'dynamic@2048');
  check(dynamic, 'dynamic@4096');
});

test('llama-rope-dynamic: each sequence of a batch uses its own length (a short and a long sequence in one call equal their single runs)', () => {
  const ref = reference('llama-rope-dynamic');
  const tf = open('llama-rope-dynamic');
  const V = tf.config.vocabSize;
  const short = ref.ids.slice(0, 10); // within max_position_embeddings 16: plain RoPE
  const cache = tf.newCache(2, ref.ids.length);
  const out = tf.forward(
    cache,
    [
      { seq: 0, tokens: short },
      { seq: 1, tokens: ref.ids },
    ],
    { logits: 'last' },
  );
  const alone = wholeText(tf, short);
  assert.ok(relErr(out.logits.subarray(0, V), alone, (short.length - 1) * V, V) < 1e-6);
  const n = ref.ids.length;
  assert.ok(relErr(out.logits.subarray(V, 2 * V), ref.logits, (n - 1) * V, V) < 1e-5);
});

test('mistral-window and phi3: every layer attends to the last sliding_window positions, its own included (hook_pattern)', () => {
  for (const [name, W] of [
    ['mistral-window', 5],
    ['phi3', 6],
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
    const kLen = patterns[0].length / (n * nHeads);
    const T = n - 1;
    for (let l = 0; l < nLayers; l++) {
      for (let h = 0; h < nHeads; h++) {
        const row = patterns[l].subarray((T * nHeads + h) * kLen, (T * nHeads + h + 1) * kLen);
        const attended = [...row].map((a, t) => (a > 0 ? t : -1)).filter((t) => t >= 0);
        assert.deepEqual([attended[0], attended.at(-1)], [T - W + 1, T], `${name} layer ${l}`);
      }
    }
    const states = recordBlockStates(tf, ref.ids);
    const [outside] = crossTokenJacobians(tf, states, nLayers - 1, [T - W], T);
    assert.equal(Math.max(...outside.map(Math.abs)), 0);
  }
});

test('config errors are one-line LmdynErrors: unknown or misplaced rope_scaling types, bad factors, sliding_window', () => {
  const variant = (name: Case, patch: Record<string, unknown>, tag: string): string => {
    const dir = join(TMP, `${name}-${tag}`);
    cpSync(join(DIR, name), dir, { recursive: true });
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
  const yarn = { rope_scaling: { rope_type: 'yarn', factor: 4.0 } };
  rejects(variant('llama-rope-linear', yarn, 'yarn'), 'unsupported', /rope_scaling type "yarn"/);
  rejects(
    variant('mistral-window', { rope_scaling: { type: 'ntk', factor: 2 } }, 'ntk'),
    'unsupported',
    /MistralForCausalLM: rope_scaling type "ntk" is not supported/,
  );
  const longrope = JSON.parse(readFileSync(join(DIR, 'phi3-longrope', 'config.json'), 'utf8')) as {
    rope_scaling: Record<string, unknown>;
  };
  rejects(
    variant('llama-rope-linear', { rope_scaling: longrope.rope_scaling }, 'longrope'),
    'unsupported',
    /LlamaForCausalLM: rope_scaling type "longrope"/,
  );
  rejects(
    variant('phi3', { rope_scaling: { rope_type: 'dynamic', factor: 2.0 } }, 'dynamic'),
    'unsupported',
    /Phi3ForCausalLM: rope_scaling type "dynamic"/,
  );
  rejects(
    variant(
      'phi3-longrope',
      { rope_scaling: { ...longrope.rope_scaling, short_factor: [1, 2] } },
      'short',
    ),
    'bad_format',
    /short_factor is not a list of 6 positive numbers/,
  );
  rejects(
    variant('phi3-longrope', { rope_scaling: { ...longrope.rope_scaling, factor: 2.0 } }, 'factor'),
    'unsupported',
    /longrope with rope_scaling.factor 2/,
  );
  rejects(
    variant(
      'llama-rope-llama3',
      {
        rope_scaling: {
          rope_type: 'llama3',
          factor: 8.0,
          low_freq_factor: 1.0,
          high_freq_factor: 4.0,
        },
      },
      'llama3',
    ),
    'bad_format',
    /rope_scaling.original_max_position_embeddings/,
  );
  rejects(
    variant('llama-rope-linear', { rope_scaling: { type: 'linear' } }, 'nofactor'),
    'bad_format',
    /rope_scaling.factor/,
  );
  rejects(
    variant('mistral-window', { sliding_window: -3 }, 'window'),
    'bad_format',
    /sliding_window/,
  );
  rejects(
    variant('phi3-longrope', { partial_rotary_factor: 0.1 }, 'partial'),
    'bad_format',
    /rotary dims per head/,
  );
});

for (const name of CASES) {
  test(`${name} from the CLI: generate gives the float64 reference's greedy ids (transformers' cached generate)`, () => {
    const ref = reference(name);
    const gen = lmdyn(
      'generate',
      '--model',
      join(DIR, name),
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
  });
}

for (const name of ['phi3-longrope', 'llama-rope-dynamic'] as const) {
  test(`${name} from the CLI: trace (states of the reference) and analyze coupling (Jacobians of the reference)`, () => {
    const ref = reference(name);
    const folder = join(DIR, name);
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
        assert.ok(e < 1e-5, `trace blocks.${l}.hook_resid_post at ${t}: ${e.toExponential(2)}`);
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
      assert.ok(e < 1e-5, `analyze coupling J^${l}: ${e.toExponential(2)}`);
    }
    const report = JSON.parse(readFileSync(join(out, 'coupling.json'), 'utf8')) as {
      model: { config: { sourceArchitecture: string } };
    };
    assert.equal(report.model.config.sourceArchitecture, m.sourceArchitecture);
  });
}

test('lmdyn info names the architecture, the RoPE scaling, the window and the hooks the llama family lacks', () => {
  const phi = lmdyn('info', '--model', join(DIR, 'phi3-longrope'), '--json');
  assert.equal(phi.code, 0, phi.stderr);
  const info = JSON.parse(phi.stdout) as Record<string, unknown>;
  assert.equal(info.source_architecture, 'Phi3ForCausalLM');
  assert.match(
    String(info.positional),
    /rope \(theta 1000, first 12 of 16 dims per head\), scaled: longrope \(short factors up to 16 positions, long beyond; cos\/sin × 1\.22474\)/,
  ); // √(1 + ln(64/16) / ln 16) = √1.5
  assert.equal(
    info.hooks_absent,
    'hook_pos_embed (rotary positions: nothing is added to the embedding)',
  );
  const dyn = lmdyn('info', '--model', join(DIR, 'llama-rope-dynamic'));
  assert.equal(dyn.code, 0, dyn.stderr);
  assert.match(dyn.stdout, /context\s+32\n/); // factor 2 × max_position_embeddings 16
  assert.match(dyn.stdout, /scaled: dynamic NTK ×2 beyond 16 positions/);
  const mis = lmdyn('info', '--model', join(DIR, 'mistral-window'), '--json');
  const mi = JSON.parse(mis.stdout) as Record<string, unknown>;
  assert.match(
    String(mi.attention),
    /every layer a sliding window of 5 positions \(its own included\)/,
  );
  for (const name of CASES) {
    assert.deepEqual(
      absentHookPoints(open(name).config).map((h) => h.name),
      ['hook_pos_embed'],
    );
  }
});

test('the JS kernels (LMDYN_KERNELS=js, a child process) give the reference logits for the window and longrope cases', () => {
  const api = new URL('../../src/index.js', import.meta.url).href;
  for (const name of ['mistral-window', 'phi3-longrope'] as const) {
    const ref = reference(name);
    const script = `
      const { openModel, runWithCache } = await import(${JSON.stringify(api)});
      const m = await openModel(${JSON.stringify(join(DIR, name))});
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
      assert.ok(e < 1e-5, `${name} position ${t}: ${e.toExponential(2)}`);
    }
  }
});
