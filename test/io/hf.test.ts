import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as r50kEncode } from 'gpt-tokenizer/encoding/r50k_base';
import { LmdynError } from '../../src/errors.js';
import { loadHfFolder } from '../../src/io/hf.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import type { ModelWeights } from '../../src/model/types.js';
import { createRng } from '../../src/tensor/rng.js';
import { loadHfTokenizer } from '../../src/tokenizer/hf.js';
import { model } from '../helpers/paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'lmdyn-hf-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const STORIES_HF = model('stories260K-hf-derived');
const TINY_GPT2 = model('tiny-gpt2');

/** llama2.c run.c's checkpoint layout (version 0), read here with DataView and slices only. */
function readStoriesBin() {
  const buf = readFileSync(model('stories260K', 'stories260K.bin'));
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const header = [0, 1, 2, 3, 4, 5, 6].map((i) => dv.getInt32(4 * i, true));
  const [dim, hidden, L, nHeads, nKv, vocab] = header;
  const kvDim = (dim / nHeads) * nKv;
  const floats = new Float32Array(
    buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.byteLength),
  );
  let off = 0;
  const take = (n: number): Float32Array => floats.subarray(off, (off += n));
  return {
    header,
    tokenEmbedding: take(vocab * dim),
    rmsAtt: take(L * dim),
    wq: take(L * dim * dim),
    wk: take(L * kvDim * dim),
    wv: take(L * kvDim * dim),
    wo: take(L * dim * dim),
    rmsFfn: take(L * dim),
    w1: take(L * hidden * dim),
    w2: take(L * dim * hidden),
    w3: take(L * hidden * dim),
    rmsFinal: take(dim),
  };
}

/** A minimal safetensors reader for F32 files (header JSON + slices), independent of src/io. */
function rawF32(path: string): Map<string, { shape: number[]; data: Float32Array }> {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { shape: number[]; data_offsets: [number, number] }
  >;
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [s, e] = t.data_offsets;
    out.set(name, {
      shape: t.shape,
      data: new Float32Array(b.buffer.slice(b.byteOffset + 8 + n + s, b.byteOffset + 8 + n + e)),
    });
  }
  return out;
}

/** Every weight array of a model with a readable name. */
function flatWeights(w: ModelWeights): [string, Float32Array | null][] {
  const out: [string, Float32Array | null][] = [
    ['tokenEmbedding', w.tokenEmbedding.data],
    ['positionEmbedding', w.positionEmbedding?.data ?? null],
    ['finalNorm', w.finalNorm],
    ['finalNormBias', w.finalNormBias],
    ['unembedding', w.unembedding.data],
  ];
  w.layers.forEach((l, i) => {
    for (const [k, v] of Object.entries(l)) {
      const data =
        v === null ? null : v instanceof Float32Array ? v : (v as { data: Float32Array }).data;
      out.push([`layers.${i}.${k}`, data]);
    }
  });
  return out;
}

function copyModel(
  name: string,
  tensors: TensorToWrite[],
  config: Record<string, unknown>,
): string {
  const dir = join(TMP, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  return dir;
}

const storiesConfig = (): Record<string, unknown> =>
  JSON.parse(readFileSync(join(STORIES_HF, 'config.json'), 'utf8'));
const storiesTensors = (): TensorToWrite[] => [
  ...readSafetensors(join(STORIES_HF, 'model.safetensors')).tensors.values(),
];

test('stories260K-hf-derived: config from MANIFEST §5; Q/K rows after the permutation equal stories260K.bin (run.c layout)', () => {
  const m = loadHfFolder(STORIES_HF);
  const c = m.config;
  assert.equal(c.architecture, 'llama');
  assert.equal(c.sourceArchitecture, 'LlamaForCausalLM');
  assert.deepEqual(
    [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.headDim, c.vocabSize, c.seqLen],
    [64, 172, 5, 8, 4, 8, 512, 512],
  );
  assert.equal(c.normEps, 1e-5);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.ropeDim, 8);
  assert.equal(c.tiedEmbeddings, true);
  assert.equal(m.weights.unembedding, m.weights.tokenEmbedding); // the same Matrix object
  assert.deepEqual([c.bosId, c.eosId], [1, 2]);
  assert.equal(m.tokenizer, null); // MANIFEST §5: no tokenizer.json
  assert.equal(m.source.format, 'safetensors');

  const bin = readStoriesBin();
  assert.deepEqual(bin.header, [64, 172, 5, 8, 4, 512, 512]);
  const raw = rawF32(join(STORIES_HF, 'model.safetensors'));
  const D = 64;
  const KV = 32;
  const H = 172;
  m.weights.layers.forEach((l, i) => {
    assert.deepEqual(l.wq.data, bin.wq.subarray(i * D * D, (i + 1) * D * D), `layer ${i} wq`);
    assert.deepEqual(l.wk.data, bin.wk.subarray(i * KV * D, (i + 1) * KV * D), `layer ${i} wk`);
    assert.deepEqual(l.wv.data, bin.wv.subarray(i * KV * D, (i + 1) * KV * D));
    assert.deepEqual(l.wo.data, bin.wo.subarray(i * D * D, (i + 1) * D * D));
    assert.deepEqual(l.wGate?.data, bin.w1.subarray(i * H * D, (i + 1) * H * D));
    assert.deepEqual(l.wDown.data, bin.w2.subarray(i * D * H, (i + 1) * D * H));
    assert.deepEqual(l.wUp.data, bin.w3.subarray(i * H * D, (i + 1) * H * D));
    assert.deepEqual(l.attnNorm, bin.rmsAtt.subarray(i * D, (i + 1) * D));
    assert.deepEqual(l.mlpNorm, bin.rmsFfn.subarray(i * D, (i + 1) * D));
    // Without the permutation the rows would not match: the file really is in rotate_half order.
    assert.notDeepEqual(raw.get(`model.layers.${i}.self_attn.q_proj.weight`)?.data, l.wq.data);
  });
  assert.deepEqual(m.weights.tokenEmbedding.data, bin.tokenEmbedding);
  assert.deepEqual(m.weights.finalNorm, bin.rmsFinal);
});

test('tiny-gpt2: MANIFEST §4 shapes; Conv1D weights transposed and c_attn split (spot checks against raw file values)', () => {
  const m = loadHfFolder(TINY_GPT2);
  const c = m.config;
  assert.equal(c.architecture, 'gpt2');
  assert.deepEqual(
    [c.dim, c.nLayers, c.nHeads, c.nKvHeads, c.headDim, c.hiddenDim, c.vocabSize, c.seqLen],
    [2, 2, 2, 2, 1, 8, 50257, 1024],
  );
  assert.deepEqual(
    [c.norm, c.mlp, c.positional, c.normEps],
    ['layernorm', 'gelu_new', 'learned', 1e-5],
  );
  assert.deepEqual([c.bosId, c.eosId], [50256, 50256]);
  assert.equal(c.tiedEmbeddings, true);
  assert.equal(m.weights.unembedding, m.weights.tokenEmbedding);
  assert.equal(m.tokenizer?.kind, 'hf');

  const raw = rawF32(join(TINY_GPT2, 'model.safetensors'));
  const get = (n: string): Float32Array => {
    const t = raw.get(`transformer.${n}`);
    assert.ok(t, n);
    return t.data;
  };
  assert.deepEqual(m.weights.tokenEmbedding.data, get('wte.weight'));
  assert.deepEqual(m.weights.positionEmbedding?.data, get('wpe.weight'));
  assert.deepEqual(
    [m.weights.positionEmbedding?.rows, m.weights.positionEmbedding?.cols],
    [1024, 2],
  );
  assert.deepEqual(m.weights.finalNormBias, get('ln_f.bias'));
  const d = 2;
  const hd = 8;
  m.weights.layers.forEach((l, i) => {
    const cAttn = get(`h.${i}.attn.c_attn.weight`); // [in 2, out 6] = q | k | v columns
    const bAttn = get(`h.${i}.attn.c_attn.bias`);
    for (const [mat, k] of [
      [l.wq, 0],
      [l.wk, 1],
      [l.wv, 2],
    ] as const) {
      assert.deepEqual([mat.rows, mat.cols], [d, d]);
      for (let o = 0; o < d; o++) {
        for (let x = 0; x < d; x++) assert.equal(mat.data[o * d + x], cAttn[x * 3 * d + k * d + o]);
      }
    }
    assert.deepEqual(l.bq, bAttn.subarray(0, d));
    assert.deepEqual(l.bk, bAttn.subarray(d, 2 * d));
    assert.deepEqual(l.bv, bAttn.subarray(2 * d, 3 * d));
    const cFc = get(`h.${i}.mlp.c_fc.weight`); // [2, 8]
    const cProj = get(`h.${i}.mlp.c_proj.weight`); // [8, 2]
    assert.deepEqual([l.wUp.rows, l.wUp.cols, l.wDown.rows, l.wDown.cols], [hd, d, d, hd]);
    for (let o = 0; o < hd; o++)
      for (let x = 0; x < d; x++) assert.equal(l.wUp.data[o * d + x], cFc[x * hd + o]);
    for (let o = 0; o < d; o++)
      for (let x = 0; x < hd; x++) assert.equal(l.wDown.data[o * hd + x], cProj[x * d + o]);
    const wo = get(`h.${i}.attn.c_proj.weight`);
    for (let o = 0; o < d; o++)
      for (let x = 0; x < d; x++) assert.equal(l.wo.data[o * d + x], wo[x * d + o]);
    assert.deepEqual(l.bUp, get(`h.${i}.mlp.c_fc.bias`));
    assert.deepEqual(l.attnNormBias, get(`h.${i}.ln_1.bias`));
    assert.equal(l.wGate, null);
  });
});

test('GPT-2 tokenizer.json gives the ids of gpt-tokenizer (r50k, an independent implementation) and round-trips', () => {
  const tok = loadHfTokenizer(TINY_GPT2);
  assert.equal(tok.kind, 'hf');
  assert.equal(tok.vocabSize, 50257);
  assert.deepEqual([tok.bosId, tok.eosId], [50256, 50256]);
  const sentences = [
    'Hello, world',
    'The quick brown fox jumps over the lazy dog.',
    '  leading spaces and\ttabs\nnew lines\n\n   trailing  ',
    "It's 2024: naïve café — déjà vu! 🚀🔥",
    '日本語のテキストと中文',
    "don't you'll I'm we've they'd",
    '1234567890 3.14159 -42 $100,000',
    '<html><body class="x">y</body></html>',
  ];
  for (const s of sentences) {
    const ids = tok.encode(s);
    assert.deepEqual(ids, r50kEncode(s), s);
    // GPT-2 adds no BOS, also when asked "BOS where the tokenizer has one" (HF behaviour).
    assert.deepEqual(tok.encode(s, { bos: true }), ids);
    assert.equal(tok.decode(ids), s);
  }
  assert.deepEqual(tok.encode('Hello', { eos: true }), [15496, 50256]);
  assert.deepEqual(tok.encode('a<|endoftext|>b'), [64, 50256, 65]);
  assert.equal(tok.decode([64, 50256, 65]), 'ab'); // special tokens skipped
  assert.equal(tok.decode([]), '');
  assert.equal(tok.tokenText(995), 'Ġworld');
  // Ids without a vocabulary entry (a model's padded rows) are skipped, as the Rust tokenizers do.
  assert.equal(tok.decode([64, 50257, -1, 65]), 'ab');
  assert.equal(tok.decode([50300]), '');
});

test('a tokenizer whose post-processor adds BOS (Llama style) keeps it by default and drops it with bos: false', () => {
  const dir = join(TMP, 'llama-tok');
  mkdirSync(dir, { recursive: true });
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  writeFileSync(
    join(dir, 'tokenizer.json'),
    JSON.stringify({
      version: '1.0',
      added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: {
        type: 'TemplateProcessing',
        single: [
          { SpecialToken: { id: '<s>', type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
        ],
        pair: [
          { SpecialToken: { id: '<s>', type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { Sequence: { id: 'B', type_id: 1 } },
        ],
        special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
      },
      decoder: null,
      model: {
        type: 'BPE',
        unk_token: '<unk>',
        vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, a: 3, b: 4, ab: 5 },
        merges: ['a b'],
      },
    }),
  );
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ bos_token: '<s>', eos_token: { content: '</s>' } }),
  );
  const tok = loadHfTokenizer(join(dir, 'tokenizer.json'));
  assert.deepEqual([tok.bosId, tok.eosId, tok.vocabSize], [1, 2, 6]);
  assert.deepEqual(tok.encode('ab'), [1, 5]);
  assert.deepEqual(tok.encode('ab', { bos: false }), [5]);
  assert.deepEqual(tok.encode('ab', { eos: true }), [1, 5, 2]);
  assert.deepEqual(tok.encode(''), [1]);
  assert.equal(tok.decode([1, 5, 2]), 'ab');
});

test('a sharded copy (index json + 3 shards written here) loads to the same tensors; BF16 weights load as their f32 values', () => {
  const tensors = storiesTensors();
  const dir = join(TMP, 'sharded');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(STORIES_HF, 'config.json'), join(dir, 'config.json'));
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < 3; s++) {
    const file = `model-0000${s + 1}-of-00003.safetensors`;
    const part = tensors.filter((_, i) => i % 3 === s);
    part.forEach((t) => (weightMap[t.name] = file));
    writeSafetensors(join(dir, file), part, { format: 'pt' });
  }
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 1040128 }, weight_map: weightMap }),
  );
  const a = loadHfFolder(STORIES_HF);
  const b = loadHfFolder(dir);
  assert.deepEqual(b.config, a.config);
  assert.equal(b.weights.unembedding, b.weights.tokenEmbedding);
  assert.equal((b.source.details.files as string[]).length, 3);
  const fa = flatWeights(a.weights);
  const fb = flatWeights(b.weights);
  assert.equal(fb.length, fa.length);
  fa.forEach(([name, data], i) => assert.deepEqual(fb[i][1], data, name));

  // BF16: the top half of each f32, so the loaded value is the f32 with its low 16 bits cleared.
  const bf16 = tensors.map((t) => {
    const bits = new Uint32Array((t.data as Float32Array).slice().buffer);
    return { ...t, dtype: 'BF16' as const, data: Uint16Array.from(bits, (x) => x >>> 16) };
  });
  const c = loadHfFolder(copyModel('bf16', bf16, storiesConfig()));
  const truncate = (x: Float32Array): Float32Array => {
    const y = x.slice();
    const u = new Uint32Array(y.buffer);
    for (let i = 0; i < u.length; i++) u[i] &= 0xffff0000;
    return y;
  };
  flatWeights(c.weights).forEach(([name, data], i) => {
    const orig = fa[i][1];
    assert.deepEqual(data, orig === null ? null : truncate(orig), name);
  });
});

test('Qwen2ForCausalLM: q/k/v biases loaded, q/k biases permuted like their rows; untied lm_head', () => {
  const rng = createRng(5);
  const tensors = storiesTensors();
  const biases: TensorToWrite[] = [];
  for (let l = 0; l < 5; l++) {
    for (const [p, n] of [
      ['q', 64],
      ['k', 32],
      ['v', 32],
    ] as const) {
      biases.push({
        name: `model.layers.${l}.self_attn.${p}_proj.bias`,
        dtype: 'F32',
        shape: [n],
        data: new Float32Array(n).map(() => rng.normal()),
      });
    }
  }
  const lmHead = new Float32Array(512 * 64).map(() => rng.normal());
  const config = {
    ...storiesConfig(),
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    tie_word_embeddings: false,
  };
  const dir = copyModel(
    'qwen2',
    [
      ...tensors,
      ...biases,
      { name: 'lm_head.weight', dtype: 'F32', shape: [512, 64], data: lmHead },
    ],
    config,
  );
  const q = loadHfFolder(dir);
  const llama = loadHfFolder(STORIES_HF);
  assert.equal(q.config.sourceArchitecture, 'Qwen2ForCausalLM');
  assert.equal(q.config.tiedEmbeddings, false);
  assert.notEqual(q.weights.unembedding, q.weights.tokenEmbedding);
  assert.deepEqual(q.weights.unembedding.data, lmHead);
  const hd = 8;
  q.weights.layers.forEach((l, i) => {
    assert.deepEqual(l.wq.data, llama.weights.layers[i].wq.data);
    const hfQ = biases[3 * i].data as Float32Array;
    const hfK = biases[3 * i + 1].data as Float32Array;
    // MANIFEST §5, inverted: interleaved index h·hd + 2i + j holds HF index h·hd + i + j·hd/2.
    for (const [ours, hf, heads] of [
      [l.bq, hfQ, 8],
      [l.bk, hfK, 4],
    ] as const) {
      assert.ok(ours);
      for (let h = 0; h < heads; h++) {
        for (let k = 0; k < hd / 2; k++) {
          for (let j = 0; j < 2; j++)
            assert.equal(ours[h * hd + 2 * k + j], hf[h * hd + k + (j * hd) / 2]);
        }
      }
    }
    assert.deepEqual(l.bv, biases[3 * i + 2].data);
    assert.equal(l.bo, null);
  });
});

test('errors: unknown architecture, missing config.json, missing tensor, wrong shape, unsupported settings', () => {
  const code = (c: string, text?: RegExp) => (e: unknown) =>
    e instanceof LmdynError &&
    e.code === c &&
    (!text || text.test(e.message)) &&
    !e.message.includes('\n');

  const falcon = copyModel('falcon', storiesTensors(), {
    ...storiesConfig(),
    architectures: ['FalconForCausalLM'],
  });
  assert.throws(
    () => loadHfFolder(falcon),
    code(
      'unsupported',
      /unknown architecture FalconForCausalLM; supported: LlamaForCausalLM, MistralForCausalLM, Phi3ForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel/,
    ),
  );
  const empty = join(TMP, 'empty');
  mkdirSync(empty, { recursive: true });
  assert.throws(() => loadHfFolder(empty), code('not_found', /config\.json/));
  writeFileSync(join(empty, 'config.json'), JSON.stringify(storiesConfig()));
  assert.throws(() => loadHfFolder(empty), code('not_found', /model\.safetensors/));

  const missing = copyModel(
    'missing',
    storiesTensors().filter((t) => t.name !== 'model.layers.3.mlp.up_proj.weight'),
    storiesConfig(),
  );
  assert.throws(
    () => loadHfFolder(missing),
    code('bad_format', /model\.layers\.3\.mlp\.up_proj\.weight/),
  );

  const untied = copyModel('untied', storiesTensors(), {
    ...storiesConfig(),
    tie_word_embeddings: false,
  });
  assert.throws(() => loadHfFolder(untied), code('bad_format', /lm_head\.weight/));

  const wide = copyModel('wide', storiesTensors(), { ...storiesConfig(), intermediate_size: 173 });
  assert.throws(
    () => loadHfFolder(wide),
    code('bad_format', /gate_proj\.weight has shape \[172, 64\], expected \[173, 64\]/),
  );
  const odd = copyModel('odd', storiesTensors(), { ...storiesConfig(), hidden_size: 65 });
  assert.throws(
    () => loadHfFolder(odd),
    code('bad_format', /not a multiple of num_attention_heads/),
  );

  const scaled = copyModel('scaled', storiesTensors(), {
    ...storiesConfig(),
    rope_scaling: { rope_type: 'yarn', factor: 8 },
  });
  assert.throws(() => loadHfFolder(scaled), code('unsupported', /rope_scaling type "yarn"/));
  const incomplete = copyModel('incomplete', storiesTensors(), {
    ...storiesConfig(),
    rope_scaling: { rope_type: 'llama3', factor: 8 },
  });
  assert.throws(
    () => loadHfFolder(incomplete),
    code('bad_format', /rope_scaling\.low_freq_factor/),
  );

  const gptDir = join(TMP, 'gpt2-relu');
  mkdirSync(gptDir, { recursive: true });
  const gptConfig = JSON.parse(readFileSync(join(TINY_GPT2, 'config.json'), 'utf8'));
  writeFileSync(
    join(gptDir, 'config.json'),
    JSON.stringify({ ...gptConfig, activation_function: 'relu' }),
  );
  copyFileSync(join(TINY_GPT2, 'model.safetensors'), join(gptDir, 'model.safetensors'));
  assert.throws(() => loadHfFolder(gptDir), code('unsupported', /relu/));
});
