/**
 * `npm run bench`: end-to-end speed on random-weight models with the llama2.c story-model shapes,
 * against llama2.c's own figures, and the goals of issue 10.
 *
 * One table: per shape × weight format × threads, generation tok/s (200 tokens from BOS),
 * prefill tok/s (a 64-token prompt as one batched forward pass), matmul GFLOP/s and weight GB/s
 * while decoding, and peak RSS; every row runs in a child process of its own, so its peak RSS is
 * its own. Then the coupling lens's block Jacobians and the trace recorder's overhead, and which
 * goals hold.
 *
 * Reference (llama2.c run.c, fp32, -Ofast -march=native, OpenMP, 2 threads, random weights, 200
 * tokens, this 2-core machine): 93 tok/s on stories15M shapes, 27 tok/s on stories110M shapes.
 *
 * Then sweep throughput through the BullMQ queue with 1 and 2 local workers and the queue's cost
 * per job (bench/queue.ts; skipped without redis-server).
 *
 * Flags: --quick (fewer tokens), --matmul (also the per-kernel matmul table), --no-coupling,
 * --no-trace, --no-queue.
 */
import { loadavg } from 'node:os';
import { matmulJs } from '../src/tensor/ops.js';
import { matmulQ80Js } from '../src/tensor/q80.js';
import { matmulQ80Wasm, matmulWasm, wasmKernels } from '../src/tensor/wasm/kernels.js';
import { startKernelThreads, stopKernelThreads } from '../src/tensor/wasm/threads.js';
import { benchCoupling, type CouplingBenchRow } from './coupling.js';
import {
  generationInChild,
  traceOverheadInChild,
  type GenerationResult,
  type TraceOverheadResult,
} from './generation.js';
import { BENCH_SHAPES, benchCheckpoint, type BenchFormat } from './make-models.js';
import { benchQueue, printQueueBench } from './queue.js';
import {
  benchMatmul,
  f32Kernel,
  q80Kernel,
  type MatmulCase,
  type MatmulKernel,
  type MatmulResult,
} from './matmul.js';

/** llama2.c run.c, fp32, 2 threads (OpenMP), generation tok/s on random weights. */
export const LLAMA2C_TOKS: Record<string, number> = { stories15M: 93, stories110M: 27 };

/** Issue 10's goals. */
const GOALS = {
  f32Ratio: 1.0, // fp32 generation ≥ 1.0× llama2.c on both shapes
  q80Ratio110M: 1.5, // compressed weights ≥ 1.5× llama2.c on the 110M shape
  traceOverhead: 0.1, // recordTrace ≤ 10% slower than plain generation
  couplingSeconds: 3, // 110M block Jacobians + top-10 SVD at one position
};

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

interface Row {
  shape: string;
  result: GenerationResult;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const load0 = loadavg();
  console.log(`load average at start: ${load0.map((v) => v.toFixed(2)).join(', ')}`);
  if (process.argv.includes('--matmul')) await matmulTable(quick ? 0.1 : 0.4);
  const rows = generationTable(quick ? 50 : 200);
  const traces = process.argv.includes('--no-trace') ? [] : traceRows(quick ? 30 : 100);
  const coupling = process.argv.includes('--no-coupling')
    ? []
    : await benchCoupling({ repeats: quick ? 1 : 2 });
  printExtras(traces, coupling);
  printGoals(rows, traces, coupling);
  if (!process.argv.includes('--no-queue')) printQueueBench(await benchQueue({ quick }));
  const load1 = loadavg();
  console.log(`\nload average at end: ${load1.map((v) => v.toFixed(2)).join(', ')}`);
}

/** Generation on random-weight checkpoints with the story models' shapes, one child per row. */
function generationTable(tokens: number): Row[] {
  const promptLength = 64;
  console.log(
    `\ngeneration: ${tokens} tokens from BOS (decode tok/s, temperature 1); prefill: a ${promptLength}-token prompt in one forward pass (best of 3)`,
  );
  console.log(
    'llama2.c: run.c fp32, OpenMP 2 threads, same shapes (reference figures); × = gen tok/s ÷ llama2.c',
  );
  const rows: Row[] = [];
  for (const shape of BENCH_SHAPES) {
    for (const format of ['f32', 'q8_0'] as BenchFormat[]) {
      const path = benchCheckpoint(shape, 1, format);
      for (const helpers of [0, 1]) {
        rows.push({
          shape: shape.name,
          result: generationInChild(path, { tokens, promptLength, helpers }),
        });
      }
    }
  }
  printTable(
    [
      'shape',
      'weights',
      'kernels',
      'threads',
      'gen tok/s',
      'llama2.c tok/s',
      '×',
      'prefill tok/s',
      'GFLOP/s',
      'weights GB/s',
      'peak RSS MiB',
    ],
    rows.map(({ shape, result: r }) => [
      shape,
      r.format,
      r.kernels,
      String(r.threads),
      r.generateTokS.toFixed(1),
      String(LLAMA2C_TOKS[shape] ?? '-'),
      LLAMA2C_TOKS[shape] ? (r.generateTokS / LLAMA2C_TOKS[shape]).toFixed(2) : '-',
      r.prefillTokS.toFixed(1),
      r.gflops.toFixed(2),
      r.weightGBs.toFixed(2),
      r.peakRssMiB.toFixed(0),
    ]),
  );
  return rows;
}

interface TraceRow {
  shape: string;
  format: BenchFormat;
  decoding: string;
  result: TraceOverheadResult;
}

const TRACE_DECODINGS: [string, { temperature?: number; topP?: number }][] = [
  ['T 1', {}],
  ['T 0.8, top-p 0.95', { temperature: 0.8, topP: 0.95 }],
];

/** recordTrace against plain generation of the same tokens, all cores, both formats. */
function traceRows(tokens: number): TraceRow[] {
  const out: TraceRow[] = [];
  for (const shape of BENCH_SHAPES) {
    for (const format of ['f32', 'q8_0'] as BenchFormat[]) {
      const path = benchCheckpoint(shape, 1, format);
      // T = 1 without warpers: the sampled distribution is the model's own, one set of
      // statistics serves both; T 0.8 + top-p 0.95 needs the model's own softmax as well.
      for (const [decoding, sampling] of TRACE_DECODINGS) {
        out.push({
          shape: shape.name,
          format,
          decoding,
          result: traceOverheadInChild(path, { tokens, promptLength: 0, helpers: 1, sampling }),
        });
      }
    }
  }
  return out;
}

function printExtras(traces: readonly TraceRow[], coupling: readonly CouplingBenchRow[]): void {
  if (traces.length > 0) {
    console.log(
      `\ntrace overhead: recordTrace (${traces[0].result.hooks.length} hooks: hook_embed, every resid_post, ln_final; top-20 logits) vs generateText, same ${traces[0].result.tokens} tokens, alternating, best of 7 each`,
    );
    printTable(
      ['shape', 'weights', 'decoding', 'threads', 'generate tok/s', 'trace tok/s', 'overhead'],
      traces.map(({ shape, format, decoding, result: r }) => [
        shape,
        format,
        decoding,
        String(r.threads),
        r.generateTokS.toFixed(1),
        r.traceTokS.toFixed(1),
        `${(100 * r.overhead).toFixed(1)}%`,
      ]),
    );
  }
  if (coupling.length > 0) {
    console.log(
      `\ncoupling: every block Jacobian at the last of ${coupling[0].promptLength} positions + top-10 singular triplets of each (f32 weights, best of the repeats)`,
    );
    printTable(
      ['shape', 'd', 'layers', 'threads', 'states s', 'jacobians s', 'top-10 svd s', 'total s'],
      coupling.map((r) => [
        r.shape,
        String(r.dim),
        String(r.layers),
        String(r.threads),
        r.statesSeconds.toFixed(2),
        r.jacobianSeconds.toFixed(2),
        r.svdSeconds.toFixed(2),
        r.totalSeconds.toFixed(2),
      ]),
    );
  }
}

function printGoals(
  rows: readonly Row[],
  traces: readonly TraceRow[],
  coupling: readonly CouplingBenchRow[],
): void {
  console.log('\ngoals (issue 10):');
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const best = (shape: string, format: string) =>
    rows
      .filter((r) => r.shape === shape && r.result.format.startsWith(format))
      .reduce<GenerationResult | null>(
        (b, r) => (!b || r.result.generateTokS > b.generateTokS ? r.result : b),
        null,
      );
  for (const shape of Object.keys(LLAMA2C_TOKS)) {
    const r = best(shape, 'f32');
    if (!r) continue;
    const ratio = r.generateTokS / LLAMA2C_TOKS[shape];
    console.log(
      `  fp32 ${shape}: ${r.generateTokS.toFixed(1)} tok/s (${r.threads} threads) = ${ratio.toFixed(2)}× llama2.c's ${LLAMA2C_TOKS[shape]} (goal ≥ ${GOALS.f32Ratio}×): ${verdict(ratio >= GOALS.f32Ratio)}`,
    );
  }
  const q = best('stories110M', 'q8_0');
  if (q) {
    const ratio = q.generateTokS / LLAMA2C_TOKS.stories110M;
    console.log(
      `  q8_0 stories110M: ${q.generateTokS.toFixed(1)} tok/s (${q.threads} threads) = ${ratio.toFixed(2)}× llama2.c fp32 (goal ≥ ${GOALS.q80Ratio110M}×): ${verdict(ratio >= GOALS.q80Ratio110M)}`,
    );
  }
  for (const t of traces) {
    console.log(
      `  trace overhead ${t.shape} ${t.format} ${t.decoding}: ${(100 * t.result.overhead).toFixed(1)}% (goal ≤ ${100 * GOALS.traceOverhead}%): ${verdict(t.result.overhead <= GOALS.traceOverhead)}`,
    );
  }
  const c = coupling
    .filter((r) => r.shape === 'stories110M')
    .reduce<CouplingBenchRow | null>(
      (b, r) => (!b || r.totalSeconds < b.totalSeconds ? r : b),
      null,
    );
  if (c) {
    console.log(
      `  coupling stories110M: ${c.totalSeconds.toFixed(2)} s (${c.threads} threads; goal ≤ ${GOALS.couplingSeconds} s): ${verdict(c.totalSeconds <= GOALS.couplingSeconds)}`,
    );
  }
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

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

await main();
