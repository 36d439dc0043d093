import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import assert from 'node:assert/strict';
import { newMatrix, type F32Matrix as Matrix } from '../../src/tensor/matrix.js';
import {
  allocF32,
  allocF32Collected,
  allocI8,
  arenaBytesInUse,
  freeF32,
  freeI8,
  inArena,
  wasmMemory,
} from '../../src/tensor/memory.js';
import { matmul, matmulJs } from '../../src/tensor/ops.js';
import {
  matmulQ80,
  matmulQ80Js,
  newQ80Matrix,
  quantizeMatrixQ80,
  quantizeQ80Js,
} from '../../src/tensor/q80.js';
import type { Q80Matrix } from '../../src/tensor/matrix.js';
import { createRng, type Rng } from '../../src/tensor/rng.js';
import {
  expShiftWasm,
  softmaxStatsWasm,
  filterGtWasm,
  matmulQ80Wasm,
  matmulWasm,
  quantizeQ80Wasm,
  wasmKernels,
} from '../../src/tensor/wasm/kernels.js';
import { startKernelThreads, stopKernelThreads } from '../../src/tensor/wasm/threads.js';

// Awkward shapes [rows, cols]: scalars, tails of every length mod 4 and mod 8, tiny-gpt2 (dim
// 2), stories260K (dim 64, hidden 172), stories15M (dim 288, hidden 768).
const SHAPES: [number, number][] = [
  [1, 1],
  [2, 3],
  [3, 2],
  [5, 7],
  [7, 13],
  [64, 172],
  [172, 64],
  [288, 768],
];
const ROWS_OF_X = [1, 2, 3, 17];

/**
 * Independent reference: the same product in float64. A float32 dot product of length c carries
 * a rounding error of at most ~c·2⁻²⁴·Σ|wⱼxⱼ|, so each entry is compared relative to Σ|wⱼxⱼ|
 * (cancellation can make the entry itself arbitrarily small).
 */
function reference(
  x: Float32Array,
  w: Matrix,
  n: number,
): { value: Float64Array; scale: Float64Array } {
  const value = new Float64Array(n * w.rows);
  const scale = new Float64Array(n * w.rows);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < w.rows; i++) {
      let s = 0;
      let a = 0;
      for (let j = 0; j < w.cols; j++) {
        const p = x[t * w.cols + j] * w.data[i * w.cols + j];
        s += p;
        a += Math.abs(p);
      }
      value[t * w.rows + i] = s;
      scale[t * w.rows + i] = a;
    }
  }
  return { value, scale };
}

function fillNormal(a: Float32Array, rng: Rng): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  return a;
}

function assertClose(got: Float32Array, ref: ReturnType<typeof reference>, label: string): void {
  let worst = 0;
  for (let i = 0; i < ref.value.length; i++) {
    const err = Math.abs(got[i] - ref.value[i]) / Math.max(ref.scale[i], 1e-30);
    if (!(err <= worst)) worst = err; // NaN-propagating max
  }
  assert.ok(worst < 1e-5, `${label}: relative error ${worst}`);
}

type Variant = (out: Float32Array, x: Float32Array, w: Matrix, n: number) => void;

const variants: [string, Variant][] = [
  ['js', matmulJs],
  [
    'wasm',
    (out, x, w, n) => assert.ok(matmulWasm(out, x, w.data, w.rows, w.cols, n), 'wasm kernel ran'),
  ],
  ['dispatch', matmul],
];

// LMDYN_KERNELS=js runs the whole suite on the JS loops; the wasm-only tests are skipped then.
const wasm = { skip: process.env.LMDYN_KERNELS === 'js' ? 'LMDYN_KERNELS=js' : false };

test('the arena and the SIMD kernels are available in Node', wasm, () => {
  assert.ok(wasmMemory(), 'shared wasm memory');
  assert.ok(wasmKernels(), 'kernels instantiated');
  assert.ok(inArena(allocF32(3)));
  assert.ok(!inArena(new Float32Array(3)));
});

function checkShapes(name: string, run: Variant): void {
  const rng = createRng(1234);
  for (const [rows, cols] of SHAPES) {
    for (const n of ROWS_OF_X) {
      const w = newMatrix(rows, cols, fillNormal(allocF32(rows * cols), rng));
      const x = fillNormal(allocF32(n * cols), rng);
      const out = allocF32(n * rows);
      out.fill(NaN); // every entry must be written
      run(out, x, w, n);
      assertClose(out, reference(x, w, n), `${name} ${rows}x${cols} n=${n}`);
      for (const a of [w.data, x, out]) freeF32(a);
    }
  }
}

for (const [name, run] of variants) {
  test(
    `matmul ${name} matches a float64 reference on awkward shapes`,
    name === 'wasm' ? wasm : {},
    () => checkShapes(name, run),
  );
}

test(
  'matmul threaded (a helper thread claims row chunks) matches the reference',
  wasm,
  async () => {
    // minWork 0: split even the 1×1 product, so every shape goes through the helper protocol.
    const helpers = await startKernelThreads({ helpers: 1, minWork: 0 });
    try {
      assert.equal(helpers, 1);
      checkShapes('threaded', variants[1][1]);
    } finally {
      stopKernelThreads();
    }
  },
);

test(
  'threaded matmul is bit-identical to one thread over many calls, under contention',
  wasm,
  async () => {
    // Every row is computed by the same kernel code on the same tile boundaries whichever thread
    // (or a caller taking a late helper's chunk back) computes it, so the results are identical.
    // Two busy threads compete for the cores so that the helper is descheduled mid-chunk and the
    // caller takes chunks back.
    const hogs = [0, 1].map(
      () => new Worker('const end = Date.now() + 3000; while (Date.now() < end);', { eval: true }),
    );
    const rng = createRng(31);
    const cases = [
      { rows: 516, cols: 300, n: 1 },
      { rows: 203, cols: 77, n: 5 },
    ].map(({ rows, cols, n }) => {
      const w = fillNormal(allocF32(rows * cols), rng);
      const x = fillNormal(allocF32(n * cols), rng);
      const expected = allocF32(n * rows);
      assert.ok(matmulWasm(expected, x, w, rows, cols, n));
      return { rows, cols, n, w, x, expected, out: allocF32(n * rows) };
    });
    await startKernelThreads({ helpers: 1, minWork: 0 });
    try {
      for (let call = 0; call < 2000; call++) {
        const c = cases[call % cases.length];
        c.out.fill(NaN);
        assert.ok(matmulWasm(c.out, c.x, c.w, c.rows, c.cols, c.n));
        assert.deepEqual(c.out, c.expected, `call ${call}`);
      }
    } finally {
      stopKernelThreads();
      await Promise.all(hogs.map((h) => h.terminate()));
    }
  },
);

test('matmul on plain Float32Arrays runs the JS loop and agrees with the reference', () => {
  const rng = createRng(5);
  const w = newMatrix(9, 11, fillNormal(new Float32Array(99), rng));
  const x = fillNormal(new Float32Array(33), rng);
  const out = new Float32Array(27);
  assert.equal(matmulWasm(out, x, w.data, 9, 11, 3), false);
  matmul(out, x, w, 3);
  assertClose(out, reference(x, w, 3), 'plain arrays');
});

test('the wasm kernel refuses buffers shorter than their shape', wasm, () => {
  const w = allocF32(4 * 4);
  assert.equal(matmulWasm(allocF32(3), allocF32(4), w, 4, 4, 1), false);
  assert.equal(matmulWasm(allocF32(4), allocF32(3), w, 4, 4, 1), false);
});

test('a large prefill spanning several x blocks matches the reference', wasm, () => {
  // 300 rows of x × 768 cols is ~0.9 MiB: more than one 256 KiB block of x rows.
  const rng = createRng(99);
  const n = 300;
  const w = newMatrix(37, 768, fillNormal(allocF32(37 * 768), rng));
  const x = fillNormal(allocF32(n * 768), rng);
  const out = allocF32(n * 37);
  assert.ok(matmulWasm(out, x, w.data, 37, 768, n));
  assertClose(out, reference(x, w, n), 'blocked prefill');
});

test('arena: blocks are aligned, zeroed on reuse, and coalesce when freed', wasm, () => {
  const a = allocF32(10);
  const b = allocF32(10);
  assert.equal(a.byteOffset % 64, 0);
  assert.equal(b.byteOffset % 64, 0);
  a.fill(7);
  b.fill(7);
  freeF32(a);
  freeF32(b);
  const c = allocF32(20); // the two freed neighbours merged into one block
  assert.equal(c.byteOffset, a.byteOffset);
  assert.ok(c.every((v) => v === 0));
  freeF32(c);
  assert.throws(() => freeF32(c.subarray(1)));
});

// ---- Q8_0 -------------------------------------------------------------------------------------

// [rows, cols, group size]: runq.c picks 64 halved until it divides dim (288 → 32), GGUF uses 32.
const Q80_SHAPES: [number, number, number][] = [
  [1, 32, 32],
  [2, 64, 64],
  [5, 96, 32],
  [7, 288, 32],
  [64, 192, 64],
  [288, 768, 64],
  [768, 288, 32],
];

/**
 * llama2.c export.py's quantize_q80, restated as the independent reference: per group,
 * scale = max|w| / 127 in float32 and q = torch.round(w / scale) (halfway cases to even).
 */
function quantizeQ80(w: Float32Array, gs: number): { q: Int8Array; scales: Float32Array } {
  const q = new Int8Array(w.length);
  const scales = new Float32Array(w.length / gs);
  for (let g = 0; g < scales.length; g++) {
    const group = w.subarray(g * gs, (g + 1) * gs);
    const scale = Math.fround(group.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 127);
    scales[g] = scale;
    group.forEach((v, j) => {
      const r = scale === 0 ? 0 : Math.fround(v / scale);
      const fl = Math.floor(r);
      const diff = r - fl;
      q[g * gs + j] = diff > 0.5 || (diff === 0.5 && fl % 2 !== 0) ? fl + 1 : fl;
    });
  }
  return { q, scales };
}

/** Arena copies of quantizeQ80(v). */
function q80Of(v: Float32Array, gs: number): { q: Int8Array; s: Float32Array } {
  const { q, scales } = quantizeQ80(v, gs);
  const qa = allocI8(q.length);
  qa.set(q);
  const sa = allocF32(scales.length);
  sa.set(scales);
  return { q: qa, s: sa };
}

/**
 * Independent reference: W and x quantized by export.py's rule (the checkpoint writer's
 * quantizeQ80), dequantized, multiplied in float64: Σ_j (q_W·s_W)(q_x·s_x).
 */
function referenceQ80(x: Float32Array, w: Q80Matrix, n: number): ReturnType<typeof reference> {
  const { rows, cols, groupSize: gs } = w;
  const xq = quantizeQ80(x.subarray(0, n * cols), gs);
  const value = new Float64Array(n * rows);
  const scale = new Float64Array(n * rows);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < rows; i++) {
      let s = 0;
      let a = 0;
      for (let j = 0; j < cols; j++) {
        const wv = w.q[i * cols + j] * w.scales[((i * cols + j) / gs) | 0];
        const xv = xq.q[t * cols + j] * xq.scales[((t * cols + j) / gs) | 0];
        s += wv * xv;
        a += Math.abs(wv * xv);
      }
      value[t * rows + i] = s;
      scale[t * rows + i] = a;
    }
  }
  return { value, scale };
}

type Q80Variant = (out: Float32Array, x: Float32Array, w: Q80Matrix, n: number) => void;

const q80Variants: [string, Q80Variant][] = [
  ['js', matmulQ80Js],
  ['wasm', (out, x, w, n) => assert.ok(matmulQ80Wasm(out, x, w, n), 'wasm kernel ran')],
  ['dispatch', matmulQ80],
];

function checkQ80Shapes(name: string, run: Q80Variant): void {
  const rng = createRng(4321);
  for (const [rows, cols, gs] of Q80_SHAPES) {
    for (const n of ROWS_OF_X) {
      const wf = fillNormal(new Float32Array(rows * cols), rng);
      const { q, s } = q80Of(wf, gs);
      const w = newQ80Matrix(rows, cols, gs, q, s);
      const x = fillNormal(allocF32(n * cols), rng);
      x.fill(0, 0, Math.min(gs, x.length)); // a group of zeros: scale 0
      const out = allocF32(n * rows);
      out.fill(NaN);
      run(out, x, w, n);
      assertClose(out, referenceQ80(x, w, n), `q80 ${name} ${rows}x${cols}/${gs} n=${n}`);
      for (const a of [x, out, s]) freeF32(a);
      freeI8(q);
    }
  }
}

for (const [name, run] of q80Variants) {
  test(
    `matmulQ80 ${name} matches a dequantize-then-float64 reference`,
    name === 'wasm' ? wasm : {},
    () => checkQ80Shapes(name, run),
  );
}

test('matmulQ80 threaded matches the reference', wasm, async () => {
  await startKernelThreads({ helpers: 1, minWork: 0 });
  try {
    checkQ80Shapes('threaded', q80Variants[1][1]);
  } finally {
    stopKernelThreads();
  }
});

test('Q8_0 quantization of activations is bit-identical to export.py rounding', wasm, () => {
  const rng = createRng(77);
  const gs = 32;
  const v = fillNormal(allocF32(4 * gs), rng);
  // A group whose scale is exactly 1 (max 127) holding halfway values: ties go to even.
  v.set([127, 2.5, 3.5, -2.5, -3.5, 0.5, -0.5, 126.5], 2 * gs);
  v.fill(0, 3 * gs); // and a group of zeros
  const ref = quantizeQ80(v, gs);
  for (const [name, quantize] of [
    ['wasm', quantizeQ80Wasm],
    [
      'js',
      (a: Float32Array, c: number, g: number, q: Int8Array, s: Float32Array) => {
        quantizeQ80Js(a, c, g, q, s);
        return true;
      },
    ],
  ] as const) {
    const q = allocI8(v.length);
    const s = allocF32(v.length / gs);
    assert.ok(quantize(v, v.length, gs, q, s));
    assert.deepEqual([...q], [...ref.q], `${name} values`);
    assert.deepEqual([...s], [...ref.scales], `${name} scales`);
  }
  assert.deepEqual([...ref.q.subarray(2 * gs, 2 * gs + 8)], [127, 2, 4, -2, -4, 0, 0, 126]);
});

test('quantizeMatrixQ80 then matmulQ80 stays within Q8_0 error of the fp32 product', () => {
  const rng = createRng(8);
  const w = newMatrix(96, 288, fillNormal(allocF32(96 * 288), rng));
  const x = fillNormal(allocF32(288), rng);
  const exact = allocF32(96);
  const approx = allocF32(96);
  matmul(exact, x, w, 1);
  matmulQ80(approx, x, quantizeMatrixQ80(w, 32), 1);
  // Each factor carries ≤ ½ step of 1/127 of its group's max: ~1% of Σ|w x| at most.
  const ref = reference(x, w, 1);
  for (let i = 0; i < 96; i++) assert.ok(Math.abs(approx[i] - exact[i]) < 0.01 * ref.scale[i]);
});

// ---- attention --------------------------------------------------------------------------------

test(
  'attn_scores and attn_mix match a float64 reference (head dims 1..80, GQA strides)',
  wasm,
  () => {
    const k = wasmKernels()!.exports;
    const rng = createRng(2024);
    for (const hd of [1, 3, 4, 5, 8, 12, 16, 17, 48, 64, 80]) {
      for (const n of [1, 2, 7, 33]) {
        const ld = 3 * hd + 1; // rows wider than a head, and not a multiple of 4
        const off = hd + 1; // the head's values start inside the row
        const q = fillNormal(allocF32(hd), rng);
        const kc = fillNormal(allocF32(n * ld), rng);
        const vc = fillNormal(allocF32(n * ld), rng);
        const att = allocF32(n);
        const z = allocF32(hd + 2);
        z.fill(NaN);
        const scale = 1 / Math.sqrt(hd);
        k.attn_scores(att.byteOffset, q.byteOffset, kc.byteOffset + 4 * off, ld, hd, n, scale);
        for (let t = 0; t < n; t++) {
          let s = 0;
          let a = 0;
          for (let i = 0; i < hd; i++) {
            s += q[i] * kc[t * ld + off + i];
            a += Math.abs(q[i] * kc[t * ld + off + i]);
          }
          assert.ok(
            Math.abs(att[t] - s * scale) <= 1e-6 * a * scale,
            `scores hd=${hd} n=${n} t=${t}`,
          );
        }
        for (let t = 0; t < n; t++) att[t] = rng.normal();
        k.attn_mix(z.byteOffset, att.byteOffset, vc.byteOffset + 4 * off, ld, hd, n);
        for (let i = 0; i < hd; i++) {
          let s = 0;
          let a = 0;
          for (let t = 0; t < n; t++) {
            s += att[t] * vc[t * ld + off + i];
            a += Math.abs(att[t] * vc[t * ld + off + i]);
          }
          assert.ok(Math.abs(z[i] - s) <= 1e-6 * a, `mix hd=${hd} n=${n} i=${i}: ${z[i]} vs ${s}`);
        }
        assert.ok(Number.isNaN(z[hd]) && Number.isNaN(z[hd + 1]), 'writes only hd values');
        for (const b of [q, kc, vc, att, z]) freeF32(b);
      }
    }
  },
);

test(
  'allocF32Collected: the block returns to the arena once the array is collected',
  wasm,
  async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const before = arenaBytesInUse();
    (() => {
      allocF32Collected(1 << 16);
    })();
    assert.ok(arenaBytesInUse() > before);
    for (let i = 0; i < 20 && arenaBytesInUse() > before; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(arenaBytesInUse(), before);
  },
);

test(
  'exp_f64: within 2 ulp of Math.exp from 0 to −708, 0 below and at −∞, sums exact to 1e-15, every tail length',
  wasm,
  () => {
    const rng = createRng(17);
    const ulp = (v: number) => Math.max(Number.MIN_VALUE, v * Number.EPSILON);
    for (const n of [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 100, 32000]) {
      const src = new Float32Array(n);
      for (let i = 0; i < n; i++) src[i] = -rng.next() * (n === 32000 ? 740 : 30);
      if (n > 4) src[3] = -Infinity;
      const shift = n === 1 ? -0.25 : 1.5; // the argument is src − shift
      const got = expShiftWasm(src, shift)!;
      let sum = 0;
      let weighted = 0;
      for (let i = 0; i < n; i++) {
        const x = src[i] - shift;
        const want = Math.exp(x);
        if (x < -708) assert.equal(got.values[i], 0, `n ${n} i ${i} x ${x}`);
        else
          assert.ok(
            Math.abs(got.values[i] - want) <= 2 * ulp(want),
            `n ${n} i ${i} x ${x}: ${got.values[i]} vs ${want}`,
          );
        sum += got.values[i];
        if (got.values[i] > 0) weighted += got.values[i] * x;
      }
      assert.ok(Math.abs(got.sum - sum) <= 1e-15 * sum, `sum n ${n}`);
      assert.ok(
        Math.abs(got.weighted - weighted) <= 1e-14 * Math.abs(weighted) + 1e-300,
        `weighted n ${n}`,
      );
      const dst = new Float64Array(n);
      expShiftWasm(src, shift, dst);
      assert.deepEqual([...dst], [...got.values]);
    }
    // Just above and below the cut, and exact points.
    const edge = Float32Array.from([0, -1, -707.9, -708.1, -Math.LN2 * 1021]);
    const e = expShiftWasm(edge, 0)!;
    assert.equal(e.values[0], 1);
    assert.ok(Math.abs(e.values[1] - Math.exp(-1)) <= 2 * ulp(Math.exp(-1)));
    assert.ok(Math.abs(e.values[2] - Math.exp(edge[2])) <= 2 * ulp(Math.exp(edge[2])));
    assert.equal(e.values[3], 0);
    assert.ok(Math.abs(e.values[4] - Math.exp(edge[4])) <= 2 * ulp(Math.exp(edge[4])));
  },
);

test(
  'filter_gt_f32: the indices above t in increasing order, as a plain loop finds them; NaN and ±∞; every tail length',
  wasm,
  () => {
    const rng = createRng(23);
    for (const n of [1, 3, 7, 8, 9, 15, 16, 17, 31000]) {
      const z = new Float32Array(n);
      for (let i = 0; i < n; i++) z[i] = Math.floor(rng.next() * 40) - 20; // ties at t
      if (n > 2) z[1] = NaN;
      if (n > 5) z[4] = Infinity;
      if (n > 6) z[5] = -Infinity;
      for (const t of [-Infinity, -20, 0, 18.5, 19, Infinity]) {
        const want: number[] = [];
        for (let i = 0; i < n; i++) if (z[i] > t) want.push(i);
        assert.deepEqual(Array.from(filterGtWasm(z, t)!), want, `n ${n} t ${t}`);
      }
    }
  },
);

test(
  'softmax_stats_f32: max exact, Σ e and Σ e·x within the f32 error bound of a float64 reference, −∞ as 0, every tail length',
  wasm,
  () => {
    const rng = createRng(19);
    for (const n of [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 100, 32000, 151936]) {
      const z = new Float32Array(n);
      for (let i = 0; i < n; i++) z[i] = (rng.next() - 0.5) * (n === 32000 ? 200 : 24);
      if (n > 4) z[3] = -Infinity;
      if (n > 9) z[n - 1] = 40; // the maximum in the tail
      // float64 reference; x_i = z_i − m is rounded to f32 in the kernel (relative 2⁻²⁴, so
      // e^x is off by up to |x|·2⁻²⁴ relative) and e^x carries ≤ 2 f32 ulp: a bound per term.
      let m = -Infinity;
      for (let i = 0; i < n; i++) m = Math.max(m, z[i]);
      let S = 0;
      let W = 0;
      let tolS = 0;
      let tolW = 0;
      for (let i = 0; i < n; i++) {
        const x = z[i] - m;
        if (x === -Infinity) continue;
        const e = Math.exp(x);
        const rel = 2 ** -22 + Math.abs(x) * 2 ** -23;
        S += e;
        W += e * x;
        tolS += e * rel;
        tolW += e * Math.abs(x) * (rel + 2 ** -23);
      }
      const got = softmaxStatsWasm(z)!;
      assert.equal(got.max, m, `max n ${n}`);
      assert.ok(Math.abs(got.sum - S) <= tolS + 1e-30, `sum n ${n}: ${got.sum} vs ${S}`);
      assert.ok(
        Math.abs(got.weighted - W) <= tolW + 1e-30,
        `weighted n ${n}: ${got.weighted} vs ${W}`,
      );
      // log Z and the entropy that the trace stores as f32
      const H = Math.log(S) - W / S;
      assert.ok(Math.abs(Math.log(got.sum) - got.weighted / got.sum - H) < 1e-6 * Math.max(1, H));
    }
    // Exact points: e^0 = 1, e^−ln2·k = 2^−k; −87.4 (under the cut, true value 1e-38) adds 0.
    const edge = Float32Array.from([0, -Math.LN2, -Math.LN2 * 10, -87.4, -Infinity]);
    const e = softmaxStatsWasm(edge)!;
    const want = 1 + 0.5 + 2 ** -10;
    assert.ok(Math.abs(e.sum - want) <= 3e-7 * want, `${e.sum}`);
  },
);
