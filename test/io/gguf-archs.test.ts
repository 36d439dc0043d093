/**
 * GGUF architectures beyond llama (src/io/gguf-archs.ts): gpt2, gptneox (Pythia) and qwen2.
 *
 * Each Hugging Face fixture folder is converted by `lmdyn convert` and read back. Independent
 * references: the float64 PyTorch forwards that wrote the folders (scripts/reference/
 * neox_neo_fixtures.py, scripts/reference/gguf_arch_fixtures.py: logits at every position of a
 * teacher-forced text and a greedy continuation), the HF tokenizer.json of the same folder run by
 * the HF loader (tokenization of the GGUF's embedded vocabulary), and, under LMDYN_PEER_TESTS=1,
 * llama.cpp itself reading the same GGUF files (test at the end).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openModel } from '../../src/api.js';
import { LmdynError } from '../../src/errors.js';
import { loadGguf, readGgufHeader } from '../../src/io/gguf.js';
import { convertToGguf } from '../../src/io/gguf-write.js';
import { loadHfFolder } from '../../src/io/hf.js';
import type { LoadedModel } from '../../src/model/types.js';
import { Transformer } from '../../src/model/forward.js';
import { createRng } from '../../src/tensor/rng.js';
import { applyChatTemplate } from '../../src/tokenizer/chat.js';
import { ROOT, fixture } from '../helpers/paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'lmdyn-gguf-archs-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

/** Fixture folder → the GGUF architecture llama.cpp's converter writes it as. */
const CASES = [
  { name: 'gpt2', arch: 'gpt2' },
  { name: 'neox-parallel', arch: 'gptneox' },
  { name: 'neox-sequential', arch: 'gptneox' },
  { name: 'qwen2', arch: 'qwen2' },
] as const;
type Case = (typeof CASES)[number]['name'];

function lmdyn(...args: string[]) {
  const r = spawnSync(process.execPath, [resolve(ROOT, 'bin', 'lmdyn.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, LMDYN_MODEL: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function isLmdyn(code?: string) {
  return (e: unknown): boolean =>
    e instanceof LmdynError && (code === undefined || e.code === code);
}

/** The float64 reference: ids and logits [n, vocab] (read with a parser of its own). */
function reference(name: Case): {
  text: string;
  ids: number[];
  greedy: number[];
  prompt: number[];
  logits: Float64Array;
} {
  const meta = JSON.parse(readFileSync(fixture('arch', `${name}.reference.json`), 'utf8')) as {
    text: string;
    ids: number[];
    greedy_ids: number[];
    greedy_prompt_ids?: number[];
    greedy_prompt: string;
  };
  const b = readFileSync(fixture('arch', `${name}.reference.safetensors`));
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const t = header.logits!;
  assert.equal(t.dtype, 'F64');
  const [s, e] = t.data_offsets;
  const logits = new Float64Array(
    b.buffer.slice(b.byteOffset + 8 + n + s, b.byteOffset + 8 + n + e),
  );
  return {
    text: meta.text,
    ids: meta.ids,
    greedy: meta.greedy_ids,
    prompt: meta.greedy_prompt_ids ?? [],
    logits,
  };
}

function allLogits(m: LoadedModel, ids: number[]): Float32Array {
  const tf = new Transformer(m);
  return tf.forward(tf.newCache(1, ids.length), [{ seq: 0, tokens: ids }], { logits: 'all' })
    .logits;
}

function greedy(m: LoadedModel, prompt: number[], n: number): number[] {
  const tf = new Transformer(m);
  const cache = tf.newCache(1, prompt.length + n);
  let logits = tf.forward(cache, [{ seq: 0, tokens: prompt }]).logits;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let v = 1; v < logits.length; v++) if (logits[v]! > logits[best]!) best = v;
    out.push(best);
    logits = tf.forward(cache, [{ seq: 0, tokens: [best] }]).logits;
  }
  return out;
}

const converted = new Map<string, string>();
/** `lmdyn convert` of a fixture folder (once per case and type). */
function convert(name: Case, type = 'f32'): string {
  const key = `${name}-${type}`;
  const out = join(TMP, `${key}.gguf`);
  if (!converted.has(key)) {
    const r = lmdyn('convert', '--model', fixture('arch', name), '--out', out, '--type', type);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^wrote /);
    converted.set(key, out);
  }
  return out;
}

for (const { name, arch } of CASES) {
  test(`${name}: lmdyn convert → GGUF ${arch} → logits equal the HF load's and the float64 reference's`, () => {
    const ref = reference(name);
    const path = convert(name);
    const header = readGgufHeader(path);
    assert.equal(header.metadata['general.architecture'], arch);
    assert.equal(header.metadata['tokenizer.ggml.model'], 'gpt2');
    const hf = loadHfFolder(fixture('arch', name));
    const gguf = loadGguf(path);
    assert.equal(gguf.config.sourceArchitecture, arch);
    assert.deepEqual(
      { ...gguf.config, sourceArchitecture: '' },
      { ...hf.config, sourceArchitecture: '' },
    );
    // the embedded vocabulary tokenizes the text as the HF tokenizer.json and the reference do
    assert.deepEqual(gguf.tokenizer!.encode(ref.text), ref.ids);
    assert.deepEqual(hf.tokenizer!.encode(ref.text), ref.ids);
    assert.equal(gguf.tokenizer!.decode(ref.ids), ref.text);
    const a = allLogits(hf, ref.ids);
    const b = allLogits(gguf, ref.ids);
    let vsHf = 0;
    let vsRef = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      vsHf = Math.max(vsHf, Math.abs(a[i]! - b[i]!));
      vsRef = Math.max(vsRef, Math.abs(b[i]! - ref.logits[i]!));
      scale = Math.max(scale, Math.abs(ref.logits[i]!));
    }
    assert.ok(vsHf <= 1e-5, `GGUF vs HF load: max |Δ logit| ${vsHf}`);
    assert.ok(vsRef / scale < 1e-4, `GGUF vs float64: max |Δ| ${vsRef} of ${scale}`);
    assert.deepEqual(greedy(gguf, ref.prompt, ref.greedy.length), ref.greedy);
  });
}

test('quantized GGUF of every architecture: rows of fused and rotary q/k keep their order (Q8_0 and Q4_K logits close to F32’s)', () => {
  for (const { name } of CASES) {
    const ref = reference(name);
    const f32 = allLogits(loadGguf(convert(name)), ref.ids);
    for (const type of ['q8_0', 'q4_k']) {
      const m = loadGguf(convert(name, type));
      const q = allLogits(m, ref.ids);
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < q.length; i++) {
        worst = Math.max(worst, Math.abs(q[i]! - f32[i]!));
        scale = Math.max(scale, Math.abs(f32[i]!));
      }
      // a misplaced row (a q/k permutation or a q|k|v split gone wrong) moves logits by O(scale)
      const bound = type === 'q8_0' ? 0.05 : 0.25;
      assert.ok(worst / scale < bound, `${name} ${type}: max |Δ logit| ${worst} of ${scale}`);
    }
  }
});

test('the GGUF BPE vocabulary tokenizes as the HF tokenizer.json: GPT-2’s real 50,257 tokens and Qwen2’s pre-tokenizer', async () => {
  const texts = [
    'Hello world! It’s 2026 — naïve café, 12345 numbers,\n\n  spaces\tand tabs.',
    "Don't stop: we'll see THEY'RE here... <|endoftext|> after the end",
    'Ünïcödé 漢字 emoji 🙂 and 3.14159 and x=y+z;',
    '',
  ];
  const gpt2 = await convertToGguf(fixture('models', 'tiny-gpt2'), join(TMP, 'tiny-gpt2.gguf'));
  const qwen = convert('qwen2');
  for (const [hfDir, path] of [
    [fixture('models', 'tiny-gpt2'), gpt2.path],
    [fixture('arch', 'qwen2'), qwen],
  ] as const) {
    const hf = loadHfFolder(hfDir).tokenizer!;
    const gg = loadGguf(path).tokenizer!;
    assert.equal(gg.kind, 'gguf');
    assert.equal(gg.eosId, hf.eosId);
    for (const text of texts) {
      const ids = hf.encode(text);
      assert.deepEqual(gg.encode(text), ids, `${path}: ${JSON.stringify(text)}`);
      assert.equal(gg.decode(ids), hf.decode(ids));
    }
  }
  // GPT-2's pre-tokenizer name and its merges as llama.cpp's converter writes them
  const h = readGgufHeader(gpt2.path);
  assert.equal(h.metadata['tokenizer.ggml.pre'], 'gpt-2');
  assert.equal((h.metadata['tokenizer.ggml.merges'] as string[]).length, 50000);
  assert.equal((h.metadata['tokenizer.ggml.merges'] as string[])[0], 'Ġ t');
  assert.equal(readGgufHeader(qwen).metadata['tokenizer.ggml.pre'], 'qwen2');
});

test('GPT-NeoX GGUF: fused [q; k; v] rows as llama.cpp regroups them, parallel-residual flag, padded vocabulary', () => {
  const h = readGgufHeader(convert('neox-parallel'));
  const md = h.metadata;
  assert.equal(md['gptneox.use_parallel_residual'], true);
  assert.equal(md['gptneox.rope.dimension_count'], 4); // rotary_pct 0.25 of head size 16
  assert.equal(
    readGgufHeader(convert('neox-sequential')).metadata['gptneox.use_parallel_residual'],
    false,
  );
  const qkv = h.tensors.find((t) => t.name === 'blk.0.attn_qkv.weight')!;
  assert.deepEqual(qkv.dims, [32, 96]);
  const tokens = md['tokenizer.ggml.tokens'] as string[];
  assert.equal(tokens.length, 320); // the model's rows, beyond the tokenizer's 298 tokens
  assert.equal(tokens[319], '[PAD319]');
  assert.equal((md['tokenizer.ggml.token_type'] as Int32Array)[319], 5);
  assert.equal((md['tokenizer.ggml.token_type'] as Int32Array)[0], 3); // <|endoftext|>: control
});

test('truncated or corrupted GGUF of every architecture: a one-line LmdynError, never a crash', () => {
  const p = join(TMP, 'cut.gguf');
  for (const { name } of CASES) {
    const full = readFileSync(convert(name, 'q8_0'));
    const h = readGgufHeader(convert(name, 'q8_0'));
    const cuts = [0, 3, 4, 24, 200, h.dataOffset - 1, h.dataOffset + 7, full.length - 1];
    for (let n = 1000; n < h.dataOffset; n += 9973) cuts.push(n);
    for (const n of cuts) {
      writeFileSync(p, full.subarray(0, n));
      assert.throws(() => loadGguf(p), isLmdyn(), `${name} cut at ${n}`);
    }
    const rng = createRng(29);
    for (let trial = 0; trial < 60; trial++) {
      const copy = Buffer.from(full);
      for (let k = 0; k < 4; k++)
        copy[Math.floor(rng.next() * h.dataOffset)] ^= 1 << Math.floor(rng.next() * 8);
      writeFileSync(p, copy);
      try {
        loadGguf(p);
      } catch (e) {
        assert.ok(e instanceof LmdynError, `${name} flip trial ${trial}: ${String(e)}`);
        assert.ok(!(e as Error).message.includes('\n'), (e as Error).message);
      }
    }
  }
});

test('an unknown GGUF architecture or tensor type is a one-line error naming what is supported', () => {
  const full = readFileSync(convert('neox-parallel', 'q8_0'));
  const at = full.indexOf(Buffer.from('gptneox'));
  const renamed = Buffer.from(full);
  renamed.write('gptneoz', at, 'latin1');
  const p = join(TMP, 'renamed.gguf');
  writeFileSync(p, renamed);
  assert.throws(
    () => loadGguf(p),
    (e) =>
      isLmdyn('unsupported')(e) &&
      /GGUF architecture 'gptneoz' \(supported: llama, qwen2, gpt2, gptneox\)/.test(
        (e as Error).message,
      ),
  );
  const r = lmdyn('info', '--model', p);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  // a tensor type lmdyn does not read (IQ2_XXS = 16)
  const name = 'blk.0.attn_qkv.weight';
  const typeAt = full.indexOf(Buffer.from(name)) + name.length + 4 + 16;
  assert.equal(full.readUInt32LE(typeAt), 8); // Q8_0
  const iq = Buffer.from(full);
  iq.writeUInt32LE(16, typeAt);
  writeFileSync(p, iq);
  assert.throws(
    () => loadGguf(p),
    (e) =>
      isLmdyn('unsupported')(e) &&
      /has type IQ2_XXS; the types read are F32, F16, .*Q6_K, BF16$/.test((e as Error).message),
  );
});

test('an unknown BPE pre-tokenizer name is refused in one line', () => {
  const full = readFileSync(convert('qwen2', 'q8_0'));
  const key = full.indexOf(Buffer.from('tokenizer.ggml.pre'));
  const value = full.indexOf(Buffer.from('qwen2'), key);
  const p = join(TMP, 'pre.gguf');
  const patched = Buffer.from(full);
  patched.write('qwenX', value, 'latin1');
  writeFileSync(p, patched);
  assert.throws(
    () => loadGguf(p),
    (e) =>
      isLmdyn('unsupported')(e) &&
      /tokenizer\.ggml\.pre 'qwenX' \(the BPE pre-tokenizers read are gpt-2, qwen2, llama-bpe, mpt, olmo/.test(
        (e as Error).message,
      ),
  );
});

test('lmdyn convert refuses, in one line, a model no GGUF architecture here holds (GPT-Neo)', () => {
  const r = lmdyn(
    'convert',
    '--model',
    fixture('arch', 'neo-local'),
    '--out',
    join(TMP, 'neo.gguf'),
  );
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /GGUF export writes llama, qwen2, gpt2, gptneox; GPTNeoForCausalLM \(gpt_neo\) is none of them/,
  );
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test('the chat template travels: tokenizer_config.json → GGUF tokenizer.chat_template → the same chat prompt', async () => {
  const path = convert('qwen2');
  const template = readGgufHeader(path).metadata['tokenizer.chat_template'];
  const config = JSON.parse(
    readFileSync(fixture('arch', 'qwen2', 'tokenizer_config.json'), 'utf8'),
  ) as {
    chat_template: string;
  };
  assert.equal(template, config.chat_template);
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Once upon a time?' },
  ];
  const fromGguf = applyChatTemplate(await openModel(path), messages);
  const fromHf = applyChatTemplate(await openModel(fixture('arch', 'qwen2')), messages);
  assert.equal(
    fromGguf.text,
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nOnce upon a time?<|im_end|>\n<|im_start|>assistant\n',
  );
  assert.deepEqual(fromGguf, fromHf);
  // a GGUF without one says where templates come from
  const none = convert('gpt2');
  await assert.rejects(
    async () => applyChatTemplate(await openModel(none), messages),
    (e) => isLmdyn('not_found')(e) && /GGUF tokenizer\.chat_template/.test((e as Error).message),
  );
});

// llama.cpp itself (node-llama-cpp, installed on demand into .cache/peers/ from the npm registry,
// as bench/peer.ts does) reads the same files. Off by default: the main suite downloads nothing.
const peerSkip =
  process.env.LMDYN_PEER_TESTS === '1'
    ? false
    : 'set LMDYN_PEER_TESTS=1 to install node-llama-cpp@3.21.1 and run llama.cpp';

test(
  'llama.cpp reads lmdyn’s gpt2 / gptneox / qwen2 GGUF: same tokens, same greedy ids, close log-probabilities',
  { skip: peerSkip },
  async (t) => {
    const { llamaCppPeer, llamaCppGreedy, llamaCppDistributions } =
      await import('../../bench/peer-check.js');
    const peer = await llamaCppPeer();
    if (!peer.ok) return t.skip(`llama.cpp peer unavailable: ${peer.reason}`);
    const rows: string[] = [];
    for (const { name } of CASES) {
      const ref = reference(name);
      for (const type of ['f32', 'q8_0']) {
        const path = convert(name, type);
        const ours = loadGguf(path);
        const theirs = await peer.peer.loadModel(path);
        try {
          assert.deepEqual(theirs.tokenize(ref.text), ref.ids, `${name}: llama.cpp's tokens`);
          const n = ref.greedy.length;
          const lmdynIds = greedy(ours, ref.prompt, n);
          const cppIds = await llamaCppGreedy(theirs, ref.prompt, n);
          assert.deepEqual(cppIds, lmdynIds, `${name} ${type}: greedy ids`);
          // teacher-forced next-token log-probabilities over the reference text
          const V = ours.config.vocabSize;
          const logits = allLogits(ours, ref.ids);
          const dists = await llamaCppDistributions(theirs, ref.ids);
          let worst = 0;
          for (let p = 0; p < ref.ids.length; p++) {
            const row = logits.subarray(p * V, (p + 1) * V);
            let max = -Infinity;
            for (const v of row) max = Math.max(max, v);
            let sum = 0;
            for (const v of row) sum += Math.exp(v - max);
            const lse = max + Math.log(sum);
            const top = [...row.keys()].sort((a, b) => row[b]! - row[a]!).slice(0, 10);
            for (const id of top) {
              worst = Math.max(worst, Math.abs(row[id]! - lse - Math.log(dists[p]!.get(id) ?? 0)));
            }
          }
          rows.push(
            `${name} ${type}: ${n}/${n} greedy ids, max |Δ log p| ${worst.toExponential(2)}`,
          );
          // F32: llama.cpp's GELU is the tanh form through an f16 table (gpt2 ~4e-3, gptneox
          // ~1e-3 where Pythia's is exact erf); SwiGLU (qwen2) agrees to ~1e-5. Q8_0: llama.cpp
          // also quantizes the activations to Q8_0 in its matmuls (lmdyn keeps them f32).
          const bound = type === 'q8_0' ? 0.5 : ours.config.mlp === 'swiglu' ? 1e-4 : 1e-2;
          assert.ok(worst < bound, `${name} ${type}: max |Δ log p| ${worst}`);
        } finally {
          await theirs.dispose();
        }
      }
    }
    t.diagnostic(rows.join('; '));
  },
);
