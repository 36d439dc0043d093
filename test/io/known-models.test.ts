/**
 * `lmdyn models` (src/io/known-models.ts). Independent references: the parameter counts the
 * model cards publish — Pythia's exact non-embedding counts (the "Pythia model" table of
 * huggingface.co/EleutherAI/pythia-*: 14M 1,189,888; 70M 18,915,328; 160M 85,056,000;
 * 410M 302,311,424), Qwen2.5-0.5B's "0.49B (0.36B non-embedding)", Phi-3-mini's "3.8 billion",
 * SmolLM2-135M's 135M — and the loader's own verdict on each config.json.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { KNOWN_MODELS, knownModelCounts, knownModelRows, probeLoader } from '../../src/io/known-models.js';

const model = (id: string) => KNOWN_MODELS.find((m) => m.hubId === id) ?? assert.fail(`no ${id}`);
const num = (m: ReturnType<typeof model>, k: string) => m.config[k] as number;

test('Pythia: computed non-embedding parameter counts equal the model cards’ exact counts', () => {
  const published: [string, number][] = [
    ['EleutherAI/pythia-14m', 1_189_888],
    ['EleutherAI/pythia-70m', 18_915_328],
    ['EleutherAI/pythia-160m', 85_056_000],
    ['EleutherAI/pythia-410m', 302_311_424],
  ];
  for (const [id, nonEmbedding] of published) {
    const m = model(id);
    const { parameters } = knownModelCounts(m);
    // untied embed_in and embed_out: two vocab × d matrices
    const embeddings = 2 * num(m, 'vocab_size') * num(m, 'hidden_size');
    assert.equal(parameters - embeddings, nonEmbedding, id);
  }
});

test('Qwen2.5-0.5B, Phi-3-mini and SmolLM2-135M match their model cards’ rounded counts', () => {
  const qwen = model('Qwen/Qwen2.5-0.5B');
  const q = knownModelCounts(qwen).parameters;
  assert.equal((q / 1e9).toFixed(2), '0.49');
  const tiedEmbedding = num(qwen, 'vocab_size') * num(qwen, 'hidden_size');
  assert.equal(((q - tiedEmbedding) / 1e9).toFixed(2), '0.36');
  assert.equal((knownModelCounts(model('microsoft/Phi-3-mini-4k-instruct')).parameters / 1e9).toFixed(1), '3.8');
  assert.equal(Math.round(knownModelCounts(model('HuggingFaceTB/SmolLM2-135M')).parameters / 1e6), 135);
});

test('rows: sizes follow the counts; support is the loader’s own verdict on each config.json', () => {
  const rows = knownModelRows();
  assert.equal(rows.length, KNOWN_MODELS.length);
  for (const r of rows) {
    assert.equal(r.bytes.f32, 4 * r.parameters);
    assert.ok(r.bytes['16-bit'] < r.bytes.f32 && r.bytes.q8_0 < r.bytes['16-bit']);
    assert.equal(r.supported, r.why === null);
  }
  // architectures the loader has today (each with float64-reference tests)
  for (const id of ['EleutherAI/pythia-70m', 'roneneldan/TinyStories-33M', 'Qwen/Qwen2.5-0.5B', 'openai-community/gpt2']) {
    assert.equal(rows.find((r) => r.hubId === id)?.supported, true, id);
  }
  // an architecture no loader knows is never claimed
  const made = probeLoader({ architectures: ['MadeUpForCausalLM'], hidden_size: 8 });
  assert.match(made ?? '', /unknown architecture MadeUpForCausalLM/);
});

test('lmdyn models prints the table and --json the rows', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [resolve('bin', 'lmdyn.js'), 'models', ...args], { encoding: 'utf8' });
  const text = run();
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /EleutherAI\/pythia-70m +GPTNeoXForCausalLM +70\.4M +281\.7 MB +140\.9 MB +79\.3 MB +yes/);
  const json = run('--json');
  const parsed = JSON.parse(json.stdout) as { models: { hubId: string; parameters: number }[] };
  // the card's non-embedding count plus embed_in and embed_out (50304 × 1024 each)
  assert.equal(parsed.models.find((m) => m.hubId === 'EleutherAI/pythia-410m')?.parameters, 302_311_424 + 2 * 50304 * 1024);
});
