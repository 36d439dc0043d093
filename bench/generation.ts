/**
 * End-to-end speed of one model: generation tok/s (decode phase, llama2.c's "achieved tok/s"),
 * prefill tok/s, the matmul GFLOP/s those imply, and the process's peak RSS. Each model runs in
 * a child process of its own so that its peak RSS is its own.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generateBatch } from '../src/decode/generate.js';
import { loadLlama2cCheckpoint } from '../src/io/llama2c.js';
import { Transformer } from '../src/model/forward.js';
import type { ModelConfig } from '../src/model/types.js';
import { wasmKernels } from '../src/tensor/wasm/kernels.js';
import { startKernelThreads } from '../src/tensor/wasm/threads.js';

export interface GenerationResult {
  format: string; // weight format
  kernels: 'wasm' | 'js';
  threads: number;
  generateTokS: number;
  prefillTokS: number;
  /** 2 · (matmul weights) · generation tok/s: the matmul work rate while decoding. */
  gflops: number;
  peakRssMiB: number;
}

const CHILD_FLAG = '--generation-child';

export interface GenerationSetup {
  tokens: number;
  promptLength: number;
  /** Kernel helper threads besides the main thread. */
  helpers: number;
}

/** Runs `measureGeneration` on `path` in a fresh process (same loader flags as this one). */
export function generationInChild(path: string, setup: GenerationSetup): GenerationResult {
  const self = fileURLToPath(import.meta.url);
  const args = [...process.execArgv, self, CHILD_FLAG, path, JSON.stringify(setup)];
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`generation bench failed for ${path} (exit ${r.status})`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as GenerationResult;
}

/**
 * Loads the checkpoint, prefills a `promptLength`-token prompt, then generates `tokens` tokens
 * from the BOS prompt with the default sampling (softmax at temperature 1, no stop tokens).
 */
export async function measureGeneration(
  path: string,
  setup: GenerationSetup,
): Promise<GenerationResult> {
  const { tokens, promptLength } = setup;
  const helpers = setup.helpers > 0 ? await startKernelThreads({ helpers: setup.helpers }) : 0;
  const model = loadLlama2cCheckpoint(path);
  const tf = new Transformer(model);
  const c = model.config;
  // Warm-up: compiles the kernels and the JS forward pass.
  generateBatch(tf, [{ promptIds: [1], maxTokens: 8 }]);

  const prompt = Array.from(
    { length: promptLength },
    (_, i) => 1 + ((i * 7919) % (c.vocabSize - 1)),
  );
  const prefill = generateBatch(tf, [{ promptIds: prompt, maxTokens: 1 }]).timing;
  const gen = generateBatch(tf, [{ promptIds: [1], maxTokens: tokens, seed: 7 }]).timing;
  return {
    format: 'f32',
    kernels: wasmKernels() ? 'wasm' : 'js',
    threads: 1 + helpers,
    generateTokS: gen.tokensPerSecond,
    prefillTokS: (promptLength / prefill.prefillMs) * 1000,
    gflops: (2 * matmulWeights(c) * gen.tokensPerSecond) / 1e9,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

/** Weights read by the matmuls of one token: every layer's projections and the classifier. */
export function matmulWeights(c: ModelConfig): number {
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const perLayer =
    2 * c.dim * q + 2 * c.dim * kv + (c.mlp === 'swiglu' ? 3 : 2) * c.dim * c.hiddenDim;
  return c.nLayers * perLayer + c.vocabSize * c.dim;
}

if (process.argv[2] === CHILD_FLAG) {
  const [path, setup] = process.argv.slice(3);
  console.log(JSON.stringify(await measureGeneration(path, JSON.parse(setup) as GenerationSetup)));
}
