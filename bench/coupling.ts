/**
 * Speed of the coupling lens's core: every block Jacobian at one position (forward-mode
 * tangents, d directions at once) plus the top-10 singular triplets of each, on random-weight
 * models of the stories15M and stories110M shapes built in memory (the random twin's
 * initialiser; speed does not depend on the values). Target (issue 4): the 110M case under 10 s
 * on the 2-core machine.
 *
 * Run alone: `node dist/bench/coupling.js` (after `npm run build`), or call benchCoupling().
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initialWeights } from '../src/model/init.js';
import { disposeWeights } from '../src/model/dispose.js';
import { Transformer } from '../src/model/forward.js';
import { blockJacobians, recordBlockStates } from '../src/model/jvp.js';
import type { ModelConfig } from '../src/model/types.js';
import { matrixOperator, topSvd } from '../src/tensor/linalg.js';
import { startKernelThreads, stopKernelThreads } from '../src/tensor/wasm/threads.js';

export interface CouplingBenchRow {
  shape: string;
  dim: number;
  layers: number;
  promptLength: number;
  threads: number;
  /** The forward pass that records every block's input and the KV cache. */
  statesSeconds: number;
  /** All block Jacobians at the last position. */
  jacobianSeconds: number;
  /** Top-10 singular triplets of each Jacobian (randomized subspace iteration). */
  svdSeconds: number;
  totalSeconds: number;
}

const SHAPES = [
  { name: 'stories15M', dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6 },
  { name: 'stories110M', dim: 768, hiddenDim: 2048, nLayers: 12, nHeads: 12 },
];

/** Best of `repeats` timings per shape, on one thread and then with the kernel helper threads. */
export async function benchCoupling(
  options: { promptLength?: number; repeats?: number } = {},
): Promise<CouplingBenchRow[]> {
  const promptLength = options.promptLength ?? 32;
  const repeats = options.repeats ?? 2;
  const rows: CouplingBenchRow[] = [];
  for (const shape of SHAPES) {
    const config = shapeConfig(shape);
    const weights = initialWeights(config, 1);
    const tf = new Transformer({
      config,
      weights,
      tokenizer: null,
      source: {
        format: 'llama2c',
        path: `random ${shape.name}`,
        hubId: null,
        sha256: null,
        details: {},
      },
    });
    const ids = Array.from(
      { length: promptLength },
      (_, i) => 1 + ((i * 7919) % (config.vocabSize - 1)),
    );
    for (const threaded of [false, true]) {
      const helpers = threaded ? await startKernelThreads() : 0;
      if (threaded && helpers === 0) continue;
      let best: CouplingBenchRow | null = null;
      for (let r = 0; r < repeats; r++) {
        const row = {
          shape: shape.name,
          dim: shape.dim,
          layers: shape.nLayers,
          promptLength,
          threads: 1 + helpers,
          ...timeOnce(tf, ids),
        };
        if (!best || row.totalSeconds < best.totalSeconds) best = row;
      }
      if (best) rows.push(best);
      if (threaded) stopKernelThreads();
    }
    disposeWeights(weights);
  }
  return rows;
}

function timeOnce(
  tf: Transformer,
  ids: number[],
): Pick<CouplingBenchRow, 'statesSeconds' | 'jacobianSeconds' | 'svdSeconds' | 'totalSeconds'> {
  const d = tf.config.dim;
  const t0 = performance.now();
  const states = recordBlockStates(tf, ids);
  const t1 = performance.now();
  const js = blockJacobians(tf, states, ids.length - 1);
  const t2 = performance.now();
  for (const j of js) {
    const op = matrixOperator(j, d, d);
    topSvd(op, 10, 1);
    op.free();
  }
  const t3 = performance.now();
  return {
    statesSeconds: (t1 - t0) / 1000,
    jacobianSeconds: (t2 - t1) / 1000,
    svdSeconds: (t3 - t2) / 1000,
    totalSeconds: (t3 - t0) / 1000,
  };
}

function shapeConfig(s: (typeof SHAPES)[number]): ModelConfig {
  return {
    architecture: 'llama',
    sourceArchitecture: s.name,
    dim: s.dim,
    hiddenDim: s.hiddenDim,
    nLayers: s.nLayers,
    nHeads: s.nHeads,
    nKvHeads: s.nHeads,
    headDim: s.dim / s.nHeads,
    vocabSize: 32000,
    seqLen: 256,
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

export function printCouplingTable(rows: readonly CouplingBenchRow[]): void {
  const head = [
    'shape',
    'd',
    'layers',
    'prompt',
    'threads',
    'states s',
    'jacobians s',
    'top-10 svd s',
    'total s',
  ];
  const cells = rows.map((r) => [
    r.shape,
    String(r.dim),
    String(r.layers),
    String(r.promptLength),
    String(r.threads),
    r.statesSeconds.toFixed(2),
    r.jacobianSeconds.toFixed(2),
    r.svdSeconds.toFixed(2),
    r.totalSeconds.toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => x.padStart(widths[i])).join('  ');
  console.log(
    '\ncoupling: all block Jacobians + top-10 singular triplets at the last position (best of 2)',
  );
  console.log(line(head));
  for (const c of cells) console.log(line(c));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  printCouplingTable(await benchCoupling());
}
