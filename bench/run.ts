/**
 * `npm run bench`: kernel throughput on the llama2.c story-model shapes.
 *
 * Reference points (llama2.c run.c, fp32, -Ofast -march=native, OpenMP, 2 threads, this
 * 2-core machine): 93 tok/s on stories15M shapes, 27 tok/s on stories110M shapes.
 */
import { matmulJs } from '../src/tensor/ops.js';
import { matmulWasm, wasmKernels } from '../src/tensor/wasm/kernels.js';
import { generationInChild, type GenerationResult } from './generation.js';
import { BENCH_SHAPES, benchCheckpoint } from './make-models.js';
import { benchMatmul, type MatmulCase, type MatmulKernel, type MatmulResult } from './matmul.js';

// [rows, cols] of the matrices of stories15M (dim 288, hidden 768) and stories110M (dim 768,
// hidden 2048), and both classifiers (vocab 32000).
const SHAPES: [number, number][] = [
  [288, 288],
  [768, 288],
  [2048, 768],
  [32000, 288],
  [32000, 768],
];

const wasmMatmul: MatmulKernel = (out, x, w, n) => {
  if (!matmulWasm(out, x, w.data, w.rows, w.cols, n)) throw new Error('wasm kernel did not run');
};

function main(): void {
  const quick = process.argv.includes('--quick');
  if (!process.argv.includes('--no-matmul')) matmulTable(quick ? 0.1 : 0.4);
  if (!process.argv.includes('--no-models')) generationTable(quick ? 50 : 200);
}

function matmulTable(minSeconds: number): void {
  const kernels: [string, MatmulKernel][] = [['js', matmulJs]];
  if (wasmKernels()) kernels.push(['wasm', wasmMatmul]);
  else console.log('wasm kernels unavailable (LMDYN_KERNELS=js or no shared memory): JS only');

  console.log('\nmatmul: out[n, rows] = x[n, cols]·Wᵀ, f32 weights');
  const results: MatmulResult[] = [];
  for (const n of [1, 16]) {
    for (const [rows, cols] of SHAPES) {
      const c: MatmulCase = { rows, cols, n };
      for (const [name, run] of kernels) results.push(benchMatmul(name, run, c, minSeconds));
    }
  }
  printTable(
    ['rows×cols', 'n', 'kernel', 'GFLOP/s hot', 'GB/s hot', 'GFLOP/s cold', 'GB/s cold'],
    results.map((r) => [
      `${r.rows}×${r.cols}`,
      String(r.n),
      r.kernel,
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

main();
