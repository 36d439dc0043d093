/**
 * `npm run bench`: end-to-end speed on random-weight models with the llama2.c story-model shapes
 * (stories15M, stories110M), against llama.cpp measured in the same run on the same files.
 *
 * The random-weight checkpoints are written as GGUF (F32, and Q8_0 quantized from the f32
 * weights) by lmdyn's own writer; lmdyn and llama.cpp (node-llama-cpp, installed on demand into
 * .cache/peers, see peer.ts) then run each file alternately, 1 and 2 threads, every measurement
 * in a child process of its own: greedy decode tok/s, prefill tok/s of 64- and 256-token prompts,
 * peak RSS, and whether both produced the same greedy ids. Then the trace recorder's overhead and
 * the coupling lens's block Jacobians, and which goals of issue 23 hold. No peer figure is a
 * constant: offline, the peer is reported unavailable and lmdyn's figures stand alone.
 *
 * Then sweep throughput through the BullMQ queue with 1 and 2 local workers and the queue's cost
 * per job (bench/queue.ts; skipped without redis-server).
 *
 * Flags: --quick (fewer tokens), --matmul (also the per-kernel matmul table), --no-coupling,
 * --no-trace, --no-peer, --no-queue.
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
import { BENCH_SHAPES, benchCheckpoint, benchGguf, type BenchFormat } from './make-models.js';
import { ensurePeer, peerInChild, type PeerInfo, type PeerResult } from './peer.js';
import { benchQueue, printQueueBench } from './queue.js';
import {
  benchMatmul,
  f32Kernel,
  q80Kernel,
  type MatmulCase,
  type MatmulKernel,
  type MatmulResult,
} from './matmul.js';

/** Issue 23's goals. */
const GOALS = {
  peerRatio: 1.0, // decode and prefill ≥ 1.0× llama.cpp on the same GGUF, both shapes and formats
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

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const load0 = loadavg();
  console.log(`load average at start: ${load0.map((v) => v.toFixed(2)).join(', ')}`);
  if (process.argv.includes('--matmul')) await matmulTable(quick ? 0.1 : 0.4);
  const peer = process.argv.includes('--no-peer')
    ? ({ available: false, reason: '--no-peer' } as const)
    : ensurePeer();
  const rows = await peerTable(quick ? 50 : 200, peer);
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

/** One shape × weight format: lmdyn and the peer on the same GGUF file, each thread count. */
interface PeerRow {
  shape: string;
  format: BenchFormat;
  gguf: string;
  lmdyn: GenerationResult[];
  peer: PeerResult[];
}

const PROMPT_LENGTHS = [64, 256];

/**
 * Decode and prefill on the GGUF files lmdyn wrote from the random-weight checkpoints, lmdyn and
 * llama.cpp alternating (lmdyn 1 thread, llama.cpp 1 thread, lmdyn 2, llama.cpp 2), each in a
 * child process of its own. Without the peer (offline), lmdyn's figures alone.
 */
async function peerTable(tokens: number, peer: PeerInfo): Promise<PeerRow[]> {
  console.log(
    `\ndecode: ${tokens} greedy tokens from BOS, tok/s of the tokens after the first; prefill: ${PROMPT_LENGTHS.join(' and ')}-token prompts in one pass (best of 3); peak RSS of the process`,
  );
  console.log(
    peer.available
      ? `peer: llama.cpp through node-llama-cpp ${peer.version} (prebuilt CPU binary, llama.cpp release ${peer.llamaCpp}), same GGUF file, same run; × = lmdyn ÷ llama.cpp at its best thread count`
      : `peer: unavailable (${peer.reason}); lmdyn's figures alone`,
  );
  const rows: PeerRow[] = [];
  for (const shape of BENCH_SHAPES) {
    // the same random weights as F32, Q8_0, and F16 / BF16 kept resident as 16-bit
    for (const format of ['f32', 'q8_0', 'f16', 'bf16'] as BenchFormat[]) {
      const gguf = await benchGguf(shape, format);
      const weights = format === 'f16' || format === 'bf16' ? format : undefined;
      const row: PeerRow = { shape: shape.name, format, gguf, lmdyn: [], peer: [] };
      for (const threads of [1, 2]) {
        row.lmdyn.push(
          generationInChild(gguf, {
            tokens,
            promptLength: PROMPT_LENGTHS[0],
            promptLengths: PROMPT_LENGTHS,
            helpers: threads - 1,
            greedy: true,
            weights,
          }),
        );
        if (peer.available) {
          row.peer.push(
            peerInChild(peer, gguf, {
              tokens,
              promptLengths: PROMPT_LENGTHS,
              threads,
              vocabSize: shape.vocabSize,
            }),
          );
        }
      }
      rows.push(row);
    }
  }
  const best = (xs: number[]) => (xs.length ? Math.max(...xs) : NaN);
  const ratio = (a: number, b: number) => (Number.isFinite(b) ? (a / b).toFixed(2) : '-');
  const head = ['shape', 'weights', 'engine', 'threads', 'decode tok/s', '×'];
  for (const n of PROMPT_LENGTHS) head.push(`prefill ${n} tok/s`, '×');
  head.push('peak RSS MiB', 'same greedy ids');
  const lines: string[][] = [];
  for (const r of rows) {
    const peerDecode = best(r.peer.map((p) => p.decodeTokS));
    const peerPrefill = PROMPT_LENGTHS.map((n) => best(r.peer.map((p) => p.prefillTokS[n])));
    for (const l of r.lmdyn) {
      const same = r.peer.length ? String(r.peer[0].greedy.join() === l.greedy.join()) : '-';
      const cells = [r.shape, l.format, 'lmdyn', String(l.threads), l.generateTokS.toFixed(1)];
      cells.push(ratio(l.generateTokS, peerDecode));
      PROMPT_LENGTHS.forEach((n, i) => {
        cells.push(l.prefillByLength[n].toFixed(1), ratio(l.prefillByLength[n], peerPrefill[i]));
      });
      cells.push(l.peakRssMiB.toFixed(0), same);
      lines.push(cells);
    }
    for (const p of r.peer) {
      const cells = [
        r.shape,
        r.format,
        'llama.cpp',
        String(p.threads),
        p.decodeTokS.toFixed(1),
        '',
      ];
      for (const n of PROMPT_LENGTHS) cells.push(p.prefillTokS[n].toFixed(1), '');
      cells.push(p.peakRssMiB.toFixed(0), '');
      lines.push(cells);
    }
  }
  printTable(head, lines);
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
    for (const format of ['f32', 'q8_0'] as const) {
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
  rows: readonly PeerRow[],
  traces: readonly TraceRow[],
  coupling: readonly CouplingBenchRow[],
): void {
  console.log('\ngoals (issue 23; ratios measured in this run):');
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const best = (xs: number[]) => Math.max(...xs);
  for (const r of rows) {
    if (r.peer.length === 0) continue;
    const metrics: [string, (g: GenerationResult) => number, (p: PeerResult) => number][] = [
      ['decode', (g) => g.generateTokS, (p) => p.decodeTokS],
      ...PROMPT_LENGTHS.map(
        (n): [string, (g: GenerationResult) => number, (p: PeerResult) => number] => [
          `prefill ${n}`,
          (g) => g.prefillByLength[n],
          (p) => p.prefillTokS[n],
        ],
      ),
    ];
    for (const [name, ours, theirs] of metrics) {
      const a = best(r.lmdyn.map(ours));
      const b = best(r.peer.map(theirs));
      console.log(
        `  ${name} ${r.shape} ${r.format}: lmdyn ${a.toFixed(1)} vs llama.cpp ${b.toFixed(1)} tok/s (best thread counts) = ${(a / b).toFixed(2)}× (goal ≥ ${GOALS.peerRatio}×): ${verdict(a / b >= GOALS.peerRatio)}`,
      );
    }
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
