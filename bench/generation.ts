/**
 * End-to-end speed of one model: generation tok/s (decode phase, llama2.c's "achieved tok/s"),
 * prefill tok/s, the matmul GFLOP/s those imply, and the process's peak RSS; and the cost of
 * recording a trace over plain generation of the same tokens. Each measurement runs in a child
 * process of its own so that its peak RSS (and its kernel threads) are its own.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generateText } from '../src/api.js';
import { fromLoaded, type Model } from '../src/model/model.js';
import { generateBatch } from '../src/decode/generate.js';
import { loadLlama2cCheckpoint } from '../src/io/llama2c.js';
import { loadModel } from '../src/io/load.js';
import type { WeightsChoice } from '../src/io/resident.js';
import type { LoadedModel } from '../src/model/types.js';
import { Transformer } from '../src/model/forward.js';
import type { ModelConfig } from '../src/model/types.js';
import { weightBytes } from '../src/model/quantize.js';
import { wasmKernels } from '../src/tensor/wasm/kernels.js';
import { startKernelThreads, stopKernelThreads } from '../src/tensor/wasm/threads.js';
import type { Tokenizer } from '../src/tokenizer/types.js';
import { recordTrace } from '../src/trace/record.js';
import { benchPrompt } from './peer.js';
import { peakRssMiB } from './rss.js';

export { peakRssMiB };

export interface GenerationResult {
  /** Weight format of the matrices as run: f32, q8_0, or both when some stayed f32. */
  format: string;
  kernels: 'wasm' | 'js';
  threads: number;
  generateTokS: number;
  /** Prompt length → prefill tok/s. */
  prefillByLength: Record<number, number>;
  /** The first generated ids (greedy runs: comparable with the peer's). */
  greedy: number[];
  /** 2 · (matmul weights) · generation tok/s: the matmul work rate while decoding. */
  gflops: number;
  /** Bytes of weight matrices read per generated token / its time (GB/s). */
  weightGBs: number;
  peakRssMiB: number;
}

export interface TraceOverheadResult {
  threads: number;
  tokens: number;
  /** Plain generation (generateText) and recordTrace of the same tokens, tok/s. */
  generateTokS: number;
  traceTokS: number;
  /** traceTime / generateTime − 1 (best of the repeats each). */
  overhead: number;
  hooks: string[];
}

const CHILD_FLAG = '--bench-child';

export interface GenerationSetup {
  tokens: number;
  promptLength: number;
  /** Several prefill lengths (default: [promptLength]). */
  promptLengths?: number[];
  /** Greedy decoding (the peer comparison) instead of softmax sampling at T = 1. */
  greedy?: boolean;
  /** Kernel helper threads besides the main thread. */
  helpers: number;
  /** Decoding for the trace-overhead runs (default: T = 1, no warper). */
  sampling?: { temperature?: number; topP?: number };
  /** How a GGUF file's matrices stay resident (--weights; default auto). */
  weights?: WeightsChoice;
}

type ChildKind = 'generation' | 'trace';

function inChild<T>(kind: ChildKind, path: string, setup: GenerationSetup): T {
  const self = fileURLToPath(import.meta.url);
  const args = [...process.execArgv, self, CHILD_FLAG, kind, path, JSON.stringify(setup)];
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`${kind} bench failed for ${path} (exit ${r.status})`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as T;
}

/** Runs `measureGeneration` on `path` in a fresh process (same loader flags as this one). */
export function generationInChild(path: string, setup: GenerationSetup): GenerationResult {
  return inChild<GenerationResult>('generation', path, setup);
}

/** Runs `measureTraceOverhead` on `path` in a fresh process. */
export function traceOverheadInChild(path: string, setup: GenerationSetup): TraceOverheadResult {
  return inChild<TraceOverheadResult>('trace', path, setup);
}

/**
 * Loads the model (a llama2.c checkpoint, whose version-2 Q8_0 matrices stay Q8_0, or a GGUF
 * file, whose Q8_0 matrices do too), prefills each of `promptLengths` (best of three), then
 * generates `tokens` tokens from [BOS] (greedy when `setup.greedy`, else softmax at T = 1; no
 * stop tokens).
 */
export async function measureGeneration(
  path: string,
  setup: GenerationSetup,
): Promise<GenerationResult> {
  const { tokens } = setup;
  const lengths = setup.promptLengths ?? [setup.promptLength];
  const helpers = setup.helpers > 0 ? await startKernelThreads({ helpers: setup.helpers }) : 0;
  const loaded = path.endsWith('.gguf')
    ? await loadModel(path, { weights: setup.weights })
    : loadLlama2cCheckpoint(path);
  // Random weights make BOS/EOS as likely as any token: no stop tokens, like the C bench.
  const model = { ...loaded, config: { ...loaded.config, bosId: null, eosId: null } };
  const tf = new Transformer(model);
  const c = model.config;
  // Warm-up: compiles the kernels and the JS forward pass.
  generateBatch(tf, [{ promptIds: [1], maxTokens: 8 }]);

  const prefillTokS: Record<number, number> = {};
  for (const n of lengths) {
    const prompt = benchPrompt(n, c.vocabSize);
    // Best of three prefills: one is short enough for a descheduling to dominate it.
    let prefillMs = Infinity;
    for (let r = 0; r < 3; r++) {
      const t = generateBatch(tf, [{ promptIds: prompt, maxTokens: 1 }]).timing;
      prefillMs = Math.min(prefillMs, t.prefillMs);
    }
    prefillTokS[n] = (n / prefillMs) * 1000;
  }
  const sampling = setup.greedy ? { temperature: 0 } : {};
  const run = generateBatch(tf, [{ promptIds: [1], maxTokens: tokens, seed: 7, sampling }]);
  const gen = run.timing;
  const bytes = weightBytes(model.weights);
  stopKernelThreads();
  return {
    format: formatOf(bytes),
    kernels: wasmKernels() ? 'wasm' : 'js',
    threads: 1 + helpers,
    generateTokS: gen.tokensPerSecond,
    prefillByLength: prefillTokS,
    gflops: (2 * matmulWeights(c) * gen.tokensPerSecond) / 1e9,
    weightGBs: (readBytesPerToken(model) * gen.tokensPerSecond) / 1e9,
    peakRssMiB: peakRssMiB(),
    greedy: run.outputs[0].ids.slice(0, 16),
  };
}

const TRACE_REPEATS = 7;

/**
 * The same `tokens` tokens generated plainly (generateText) and recorded with recordTrace
 * (default hooks: hook_embed, every resid_post, ln_final; top-20 logits), alternating, best of
 * TRACE_REPEATS each (the difference is a few percent: best of three was noisy).
 */
export async function measureTraceOverhead(
  path: string,
  setup: GenerationSetup,
): Promise<TraceOverheadResult> {
  const helpers = setup.helpers > 0 ? await startKernelThreads({ helpers: setup.helpers }) : 0;
  const model = benchModel(loadLlama2cCheckpoint(path));
  const opts = { maxTokens: setup.tokens, seed: 7, sampling: setup.sampling ?? {} };
  generateText(model, { ...opts, maxTokens: 8 }); // warm-up
  recordTrace(model, { ...opts, maxTokens: 8 });
  let genMs = Infinity;
  let traceMs = Infinity;
  let hooks: string[] = [];
  for (let r = 0; r < TRACE_REPEATS; r++) {
    const t0 = performance.now();
    const plain = generateText(model, opts);
    const t1 = performance.now();
    const trace = recordTrace(model, opts);
    const t2 = performance.now();
    if (plain.ids.join() !== trace.samples[0].ids.join()) {
      throw new Error('trace bench: recordTrace generated other tokens than generateText');
    }
    genMs = Math.min(genMs, t1 - t0);
    traceMs = Math.min(traceMs, t2 - t1);
    hooks = [...trace.states.keys()];
  }
  stopKernelThreads();
  return {
    threads: 1 + helpers,
    tokens: setup.tokens,
    generateTokS: (setup.tokens / genMs) * 1000,
    traceTokS: (setup.tokens / traceMs) * 1000,
    overhead: traceMs / genMs - 1,
    hooks,
  };
}

/** A Model over a checkpoint without a vocabulary: every prompt is [BOS], text is empty. */
export function benchModel(loaded: LoadedModel): Model {
  const tokenizer: Tokenizer = {
    kind: 'llama2c',
    vocabSize: loaded.config.vocabSize,
    bosId: null,
    eosId: null,
    encode: () => [1],
    decode: () => '',
    tokenText: (id) => `<${id}>`,
  };
  // Random weights make BOS/EOS as likely as any token: no stop tokens, like the C bench.
  const config = { ...loaded.config, bosId: null, eosId: null };
  return fromLoaded({ ...loaded, config, tokenizer });
}

function formatOf(bytes: Record<string, number>): string {
  const used = Object.entries(bytes).filter(([, b]) => b > 0);
  return used.map(([f]) => f).join('+') || 'f32';
}

/** Weights read by the matmuls of one token: every layer's projections and the classifier. */
export function matmulWeights(c: ModelConfig): number {
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const perLayer =
    2 * c.dim * q + 2 * c.dim * kv + (c.mlp === 'swiglu' ? 3 : 2) * c.dim * c.hiddenDim;
  return c.nLayers * perLayer + c.vocabSize * c.dim;
}

/** Bytes of weight matrices one decoded token reads (every matrix once; the embedding row aside). */
function readBytesPerToken(model: LoadedModel): number {
  const w = model.weights;
  const b = weightBytes({ ...w, tokenEmbedding: w.unembedding, positionEmbedding: null });
  return b.f32 + b.q8_0 + b.f16 + b.bf16;
}

if (process.argv[2] === CHILD_FLAG) {
  const [kind, path, setup] = process.argv.slice(3);
  const s = JSON.parse(setup) as GenerationSetup;
  const result =
    kind === 'trace' ? await measureTraceOverhead(path, s) : await measureGeneration(path, s);
  console.log(JSON.stringify(result));
}
