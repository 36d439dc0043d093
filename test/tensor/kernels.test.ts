import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newMatrix, type Matrix } from '../../src/model/types.js';
import { allocF32, freeF32, inArena, wasmMemory } from '../../src/tensor/memory.js';
import { matmul, matmulJs } from '../../src/tensor/ops.js';
import { createRng, type Rng } from '../../src/tensor/rng.js';
import { matmulWasm, wasmKernels } from '../../src/tensor/wasm/kernels.js';
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

test('the arena and the SIMD kernels are available in Node', () => {
  assert.ok(wasmMemory(), 'shared wasm memory');
  assert.ok(wasmKernels(), 'kernels instantiated (unset LMDYN_KERNELS=js to run this test)');
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
  test(`matmul ${name} matches a float64 reference on awkward shapes`, () =>
    checkShapes(name, run));
}

test('matmul threaded (a helper thread claims row chunks) matches the reference', async () => {
  // minWork 0: split even the 1×1 product, so every shape goes through the helper protocol.
  const helpers = await startKernelThreads({ helpers: 1, minWork: 0 });
  try {
    assert.equal(helpers, 1);
    checkShapes('threaded', variants[1][1]);
  } finally {
    stopKernelThreads();
  }
});

test('matmul on plain Float32Arrays runs the JS loop and agrees with the reference', () => {
  const rng = createRng(5);
  const w = newMatrix(9, 11, fillNormal(new Float32Array(99), rng));
  const x = fillNormal(new Float32Array(33), rng);
  const out = new Float32Array(27);
  assert.equal(matmulWasm(out, x, w.data, 9, 11, 3), false);
  matmul(out, x, w, 3);
  assertClose(out, reference(x, w, 3), 'plain arrays');
});

test('the wasm kernel refuses buffers shorter than their shape', () => {
  const w = allocF32(4 * 4);
  assert.equal(matmulWasm(allocF32(3), allocF32(4), w, 4, 4, 1), false);
  assert.equal(matmulWasm(allocF32(4), allocF32(3), w, 4, 4, 1), false);
});

test('a large prefill spanning several x blocks matches the reference', () => {
  // 300 rows of x × 768 cols is ~0.9 MiB: more than one 256 KiB block of x rows.
  const rng = createRng(99);
  const n = 300;
  const w = newMatrix(37, 768, fillNormal(allocF32(37 * 768), rng));
  const x = fillNormal(allocF32(n * 768), rng);
  const out = allocF32(n * 37);
  assert.ok(matmulWasm(out, x, w.data, 37, 768, n));
  assertClose(out, reference(x, w, n), 'blocked prefill');
});

test('arena: blocks are aligned, zeroed on reuse, and coalesce when freed', () => {
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
