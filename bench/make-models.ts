/**
 * Random-weight llama2.c checkpoints with the shapes of stories15M and stories110M, for timing
 * generation without downloading the trained models (speed does not depend on the values).
 * Written once into .lmdyn-tmp/bench/ and reused: fp32 (llama2.c version 0) and Q8_0 (version 2,
 * group size 32 as GGUF's Q8_0, quantized by export.py's rule from the same fp32 values). Initialised like llama2.c's model.py: every
 * linear and the embedding ~ N(0, 0.02²), the residual projections (wo, w3) ~ N(0, (0.02/√(2L))²),
 * norms = 1; tied classifier; seeded.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeGgufModel } from '../src/io/gguf-write.js';
import { writeLlama2cCheckpoint } from '../src/io/llama2c.js';
import { loadModel } from '../src/io/load.js';
import type { LayerWeights, ModelConfig } from '../src/model/types.js';
import { newMatrix, type Matrix } from '../src/tensor/matrix.js';
import { createRng, type Rng } from '../src/tensor/rng.js';

export interface BenchShape {
  name: string;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  vocabSize: number;
  seqLen: number;
}

export const BENCH_SHAPES: BenchShape[] = [
  {
    name: 'stories15M',
    dim: 288,
    hiddenDim: 768,
    nLayers: 6,
    nHeads: 6,
    vocabSize: 32000,
    seqLen: 256,
  },
  {
    name: 'stories110M',
    dim: 768,
    hiddenDim: 2048,
    nLayers: 12,
    nHeads: 12,
    vocabSize: 32000,
    seqLen: 1024,
  },
];

export const BENCH_DIR = join('.lmdyn-tmp', 'bench');

/** Weight formats of the bench models (f16 / bf16: GGUF only, kept resident as 16-bit). */
export type BenchFormat = 'f32' | 'q8_0' | 'f16' | 'bf16';

/** GGUF tensor type of each bench format. */
const GGUF_TYPE = { f32: 'F32', q8_0: 'Q8_0', f16: 'F16', bf16: 'BF16' } as const;

/** Q8_0 group size of the version-2 bench checkpoints. */
export const BENCH_GROUP_SIZE = 32;

/**
 * The checkpoint for `shape` in `format` (llama2.c version 0 for f32, version 2 for Q8_0),
 * written on first use.
 */
export function benchCheckpoint(shape: BenchShape, seed = 1, format: 'f32' | 'q8_0' = 'f32'): string {
  const suffix = format === 'f32' ? '' : `-q80g${BENCH_GROUP_SIZE}`;
  const path = join(BENCH_DIR, `${shape.name}-random-s${seed}${suffix}.bin`);
  if (existsSync(path)) return path;
  mkdirSync(BENCH_DIR, { recursive: true });
  const config = benchConfig(shape);
  const rng = createRng(seed);
  const std = 0.02;
  const residualStd = std / Math.sqrt(2 * shape.nLayers); // model.py: wo and w3
  const { dim, hiddenDim } = shape;
  const ones = () => new Float32Array(dim).fill(1);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < shape.nLayers; l++) {
    layers.push({
      attnNorm: ones(),
      attnNormBias: null,
      wq: normalMatrix(dim, dim, std, rng),
      wk: normalMatrix(dim, dim, std, rng),
      wv: normalMatrix(dim, dim, std, rng),
      wo: normalMatrix(dim, dim, residualStd, rng),
      bq: null,
      bk: null,
      bv: null,
      bo: null,
      mlpNorm: ones(),
      mlpNormBias: null,
      wGate: normalMatrix(hiddenDim, dim, std, rng),
      wUp: normalMatrix(hiddenDim, dim, residualStd, rng),
      bUp: null,
      wDown: normalMatrix(dim, hiddenDim, std, rng),
      bDown: null,
    });
  }
  const embedding = normalMatrix(shape.vocabSize, dim, std, rng);
  writeLlama2cCheckpoint(
    path,
    config,
    {
      tokenEmbedding: embedding,
      positionEmbedding: null,
      layers,
      finalNorm: ones(),
      finalNormBias: null,
      unembedding: embedding,
      unembeddingBias: null,
    },
    format === 'f32' ? { version: 0 } : { version: 2, groupSize: BENCH_GROUP_SIZE },
  );
  return path;
}

function benchConfig(s: BenchShape): ModelConfig {
  return {
    architecture: 'llama',
    sourceArchitecture: 'llama2.c',
    dim: s.dim,
    hiddenDim: s.hiddenDim,
    nLayers: s.nLayers,
    nHeads: s.nHeads,
    nKvHeads: s.nHeads,
    headDim: s.dim / s.nHeads,
    vocabSize: s.vocabSize,
    seqLen: s.seqLen,
    norm: 'rmsnorm',
    normEps: 1e-5,
    mlp: 'swiglu',
    positional: 'rope',
    ropeTheta: 10000,
    ropeDim: s.dim / s.nHeads,
    tiedEmbeddings: true,
    bosId: 1,
    eosId: 2,
  };
}

function normalMatrix(rows: number, cols: number, std: number, rng: Rng): Matrix {
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
  return newMatrix(rows, cols, data);
}

/** The Llama 2 vocabulary (32,000 tokens, llama2.c format) of the test fixtures: the shapes' own. */
const TOKENIZER_32K = resolve(
  fileURLToPath(new URL('../../', import.meta.url)),
  'test/fixtures/models/llama2c-tokenizer-32k/tokenizer.bin',
);

/**
 * The f32 bench checkpoint of `shape` written as GGUF by lmdyn's own writer (F32, or Q8_0 / F16 /
 * BF16 from the f32 weights), with the Llama 2 vocabulary: the one file both engines run.
 */
export async function benchGguf(shape: BenchShape, format: BenchFormat): Promise<string> {
  const path = join(BENCH_DIR, `${shape.name}-random-s1-${format}.gguf`);
  if (existsSync(path)) return path;
  const model = await loadModel(benchCheckpoint(shape, 1, 'f32'), { tokenizer: TOKENIZER_32K });
  writeGgufModel(path, model, { type: GGUF_TYPE[format] });
  return path;
}
