/**
 * Training speed: tokens per second of full steps (forward, backward, AdamW) on random data for
 * the stories260K shape (dim 64, 5 layers, 8/4 heads, hidden 172, vocab 512, seq 512) and the
 * stories15M shape (dim 288, 6 layers, 6 heads, hidden 768, vocab 32000, seq 256), on one
 * thread and with worker threads. Wall-clock and CPU-time rates are both reported: on a shared
 * machine the CPU rate says what the code does, the wall rate what the machine gave it.
 *
 * Run alone: `node dist/bench/train.js` (after `npx tsc -p .`), or call benchTrain().
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { createEngine } from '../src/train/engine.js';
import { chooseMicroBatch } from '../src/train/loop.js';
import { initParams, paramLayout, type TrainShape } from '../src/train/model.js';
import { adamwStep, DEFAULT_OPTIM } from '../src/train/optim.js';
import { allocVec } from '../src/train/tensor.js';
import { createRng } from '../src/tensor/rng.js';

export interface TrainBenchRow {
  shape: string;
  parameters: number;
  batch: number;
  seq: number;
  microBatch: number;
  threads: number;
  steps: number;
  tokensPerSecond: number; // wall clock
  cpuTokensPerSecond: number; // tokens per CPU-second of this process (all its threads)
}

const SHAPES: { name: string; shape: TrainShape; batch: number; seq: number }[] = [
  {
    name: 'stories260K',
    shape: {
      dim: 64,
      hiddenDim: 172,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 512,
      seqLen: 512,
      tied: true,
    },
    batch: 8,
    seq: 512,
  },
  {
    name: 'stories15M',
    shape: {
      dim: 288,
      hiddenDim: 768,
      nLayers: 6,
      nHeads: 6,
      nKvHeads: 6,
      vocabSize: 32000,
      seqLen: 256,
      tied: true,
    },
    batch: 4,
    seq: 256,
  },
];

/** Steps per shape after one warm-up step, on 1 thread and on all cores (at most 4). */
export async function benchTrain(
  options: { steps?: number; threads?: number[] } = {},
): Promise<TrainBenchRow[]> {
  const steps = options.steps ?? 3;
  const threadCounts = options.threads ?? [...new Set([1, Math.min(4, availableParallelism())])];
  const rows: TrainBenchRow[] = [];
  for (const { name, shape, batch, seq } of SHAPES) {
    const { total, tensors } = paramLayout(shape);
    const params = initParams(shape, 1, 'f32') as Float32Array;
    const grads = allocVec('f32', total) as Float32Array;
    const state = { m: allocVec('f32', total), v: allocVec('f32', total), t: 0 };
    const rng = createRng(2);
    const tokens = Int32Array.from({ length: batch * seq }, () =>
      Math.floor(rng.next() * shape.vocabSize),
    );
    const targets = Int32Array.from({ length: batch * seq }, () =>
      Math.floor(rng.next() * shape.vocabSize),
    );
    for (const threads of threadCounts) {
      const microBatch = chooseMicroBatch(shape, Math.ceil(batch / threads), seq, 512 * 2 ** 20);
      const engine = await createEngine(shape, seq, microBatch, batch, threads);
      const step = async () => {
        await engine.gradient(params, grads, tokens, targets, batch);
        adamwStep(params, grads, state, tensors, 1e-4, { ...DEFAULT_OPTIM, steps: 1 });
      };
      await step();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let s = 0; s < steps; s++) await step();
      const seconds = (performance.now() - t0) / 1000;
      const cu = process.cpuUsage(c0);
      const cpuSeconds = (cu.user + cu.system) / 1e6;
      await engine.close();
      const n = steps * batch * seq;
      rows.push({
        shape: name,
        parameters: total,
        batch,
        seq,
        microBatch,
        threads: engine.threads,
        steps,
        tokensPerSecond: n / seconds,
        cpuTokensPerSecond: n / cpuSeconds,
      });
    }
  }
  return rows;
}

export function printTrainTable(rows: readonly TrainBenchRow[]): void {
  const head = ['shape', 'params', 'batch×seq', 'micro', 'threads', 'steps', 'tok/s', 'tok/cpu-s'];
  const cells = rows.map((r) => [
    r.shape,
    String(r.parameters),
    `${r.batch}×${r.seq}`,
    String(r.microBatch),
    String(r.threads),
    String(r.steps),
    r.tokensPerSecond.toFixed(0),
    r.cpuTokensPerSecond.toFixed(0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => x.padStart(widths[i])).join('  ');
  console.log('\ntrain: full steps (forward, backward, AdamW) on random tokens');
  console.log(line(head));
  for (const c of cells) console.log(line(c));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  printTrainTable(await benchTrain());
  process.exit(0);
}
