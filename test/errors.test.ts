/**
 * Bad arguments to the library's exported functions are LmdynErrors (code bad_argument), which
 * the CLI prints as one line with exit 2, not internal errors (exit 70). Each call below breaks
 * the documented contract in one way; the CLI validates its flags before reaching any of them
 * (test/cli/bounds.test.ts), so these are checked at the library level.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LmdynError } from '../src/errors.js';
import { kramersMoyal } from '../src/lenses/sde/km.js';
import { fitSde } from '../src/lenses/sde/model.js';
import { PooledFit, stateContinuity } from '../src/lenses/dmet/dynamics.js';
import { newMatrix } from '../src/tensor/matrix.js';
import { createMlp } from '../src/nn/mlp.js';
import { kmeans, silhouetteScore } from '../src/stats/cluster.js';
import { ols } from '../src/stats/regression.js';
import { pca, singularValues, svd, symEig } from '../src/tensor/linalg.js';
import { createRng } from '../src/tensor/rng.js';

function badArgument(f: () => unknown, message: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof LmdynError, `not an LmdynError: ${String(e)}`);
    assert.equal(e.code, 'bad_argument');
    assert.match(e.message, message);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

test('shape mismatches in the exported linear algebra and statistics are bad_argument', () => {
  badArgument(() => svd([1, 2, 3], 2, 2), /svd: 3 values for a 2×2 matrix/);
  badArgument(() => singularValues([1, 2, 3], 2, 2), /singularValues: 3 values/);
  badArgument(() => symEig([1, 2, 3], 2), /symEig: 3 values/);
  badArgument(() => pca([1, 2, 3], 2, 2, 1), /pca: 3 values for 2 samples of 2/);
  badArgument(() => newMatrix(2, 2, new Float32Array(3)), /matrix data has 3 values, expected 2x2/);
  badArgument(() => kmeans([1, 2, 3], 2, 2, { k: 2, seed: 1 }), /kmeans: 3 values for 2×2/);
  badArgument(() => kmeans([], 0, 2, { k: 2, seed: 1 }), /kmeans: no points/);
  badArgument(() => silhouetteScore([0, 0, 1, 1], 2, 2, [0]), /silhouette: 1 labels for 2 points/);
  badArgument(() => ols([1, 2, 3], [[1, 2]], ['x']), /regression: column 0 has 2 values, y has 3/);
});

test('lens and network options outside their contract are bad_argument', () => {
  const set = {
    k: 1,
    n: 1,
    dt: 1,
    x: new Float64Array(1),
    t: new Float64Array(1),
    dx: new Float64Array(1),
    path: new Int32Array(1),
    step: new Int32Array(1),
  };
  badArgument(() => fitSde(set, set), /fewer than 2 training increments/);
  badArgument(() => kramersMoyal(set, { axes: [3] }), /kramersMoyal: axes \[3\] for k = 1/);
  badArgument(() => stateContinuity(new Float64Array(3), 3, 1, true), /needs two components/);
  badArgument(() => new PooledFit(2).finish(), /pooled PCA needs at least two states/);
  badArgument(() => createMlp([4, 0, 1], createRng(1)), /createMlp: bad layer sizes \[4, 0, 1\]/);
});
