/**
 * `npm run bench`: kernel throughput on the llama2.c story-model shapes.
 *
 * Reference points (llama2.c run.c, fp32, -Ofast -march=native, OpenMP, 2 threads, this
 * 2-core machine): 93 tok/s on stories15M shapes, 27 tok/s on stories110M shapes.
 */
import { matmulJs } from '../src/tensor/ops.js';
import { matmulQ80Js } from '../src/tensor/q80.js';
import { matmulQ80Wasm, matmulWasm, wasmKernels } from '../src/tensor/wasm/kernels.js';
import { startKernelThreads, stopKernelThreads } from '../src/tensor/wasm/threads.js';
import { generationInChild, type GenerationResult } from './generation.js';
import { BENCH_SHAPES, benchCheckpoint } from './make-models.js';
import {
  benchMatmul,
  f32Kernel,
  q80Kernel,
  type MatmulCase,
  type MatmulKernel,
  type MatmulResult,
} from './matmul.js';

// [rows, cols] of the matrices of stories15M (dim 288, hidden 768) and stories110M (dim 768,
// hidden 2048), and both classifiers (vocab 32000).
const SHAPES: [number, number][] = [
  [288, 288],
  [768, 288],
  [2048, 768],
  [32000, 288],
  [32000, 768],
];

const wasmF32 = f32Kernel('wasm f32', (out, x, w, n) => {
  if (!matmulWasm(out, x, w.data, w.rows, w.cols, n)) throw new Error('wasm kernel did not run');
});

const wasmQ80 = q80Kernel('wasm q8_0', 32, (out, x, w, n) => {
  if (!matmulQ80Wasm(out, x, w, n)) throw new Error('wasm kernel did not run');
});

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  if (!process.argv.includes('--no-matmul')) await matmulTable(quick ? 0.1 : 0.4);
  if (!process.argv.includes('--no-models')) generationTable(quick ? 50 : 200);
}

async function matmulTable(minSeconds: number): Promise<void> {
  console.log('\nmatmul: out[n, rows] = x[n, cols]·Wᵀ (Q8_0: group size 32, x quantized per call)');
  const single: MatmulKernel[] = [f32Kernel('js f32', matmulJs)];
  if (wasmKernels()) single.push(wasmF32, wasmQ80);
  else console.log('wasm kernels unavailable (LMDYN_KERNELS=js or no shared memory): JS only');
  single.push(q80Kernel('js q8_0', 32, matmulQ80Js));
  const results: [MatmulResult, number][] = [];
  const runAll = (kernels: MatmulKernel[], threads: number) => {
    for (const n of [1, 16]) {
      for (const [rows, cols] of SHAPES) {
        const c: MatmulCase = { rows, cols, n };
        for (const k of kernels) results.push([benchMatmul(k, c, minSeconds), threads]);
      }
    }
  };
  runAll(single, 1);
  const helpers = await startKernelThreads();
  if (helpers > 0) runAll([wasmF32, wasmQ80], 1 + helpers);
  stopKernelThreads();
  results.sort((a, b) => a[0].n - b[0].n || a[0].rows - b[0].rows || a[0].cols - b[0].cols);
  printTable(
    ['rows×cols', 'n', 'kernel', 'threads', 'GFLOP/s hot', 'GB/s hot', 'GFLOP/s cold', 'GB/s cold'],
    results.map(([r, threads]) => [
      `${r.rows}×${r.cols}`,
      String(r.n),
      r.kernel,
      String(threads),
      r.hotGflops.toFixed(2),
      r.hotGBs.toFixed(2),
      r.coldGflops.toFixed(2),
      r.coldGBs.toFixed(2),
    ]),
  );
}

/** Generation on random-weight checkpoints with the story models' shapes. */
function generationTable(tokens: number): void {
  const promptLength = 64;
  console.log(
    `\ngeneration: ${tokens} tokens from BOS (decode tok/s); prefill of a ${promptLength}-token prompt`,
  );
  const rows: [string, GenerationResult][] = [];
  for (const shape of BENCH_SHAPES) {
    const path = benchCheckpoint(shape);
    for (const helpers of [0, 1]) {
      rows.push([shape.name, generationInChild(path, { tokens, promptLength, helpers })]);
    }
  }
  printTable(
    [
      'shape',
      'weights',
      'kernels',
      'threads',
      'gen tok/s',
      'prefill tok/s',
      'GFLOP/s',
      'peak RSS MiB',
    ],
    rows.map(([name, r]) => [
      name,
      r.format,
      r.kernels,
      String(r.threads),
      r.generateTokS.toFixed(1),
      r.prefillTokS.toFixed(1),
      r.gflops.toFixed(2),
      r.peakRssMiB.toFixed(0),
    ]),
  );
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

await main();
