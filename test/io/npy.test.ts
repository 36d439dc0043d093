import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdynError } from '../../src/errors.js';
import { encodeNpy, parseNpy, readNpy } from '../../src/io/npy.js';
import { createRng } from '../../src/tensor/rng.js';

const dir = mkdtempSync(join(tmpdir(), 'lmdyn-npy-'));

/** Runs a numpy snippet (the independent reference writer/reader); `d` is the temp folder. */
function numpy(code: string): string {
  const r = spawnSync('python3', ['-c', `import numpy as np, sys\nd = sys.argv[1]\n${code}`, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('reads what numpy writes: float64 and float32, format versions 1, 2 and 3', () => {
  numpy(`
a = np.arange(12, dtype=np.float64).reshape(4, 3) / 7 - 0.5
np.save(d + '/f8.npy', a)
np.save(d + '/f4.npy', a.astype(np.float32))
for v in (2, 3):
    with open(d + f'/v{v}.npy', 'wb') as f: np.lib.format.write_array(f, a, version=(v, 0))
`);
  const expect = Array.from({ length: 12 }, (_, i) => i / 7 - 0.5);
  for (const name of ['f8', 'v2', 'v3']) {
    const m = readNpy(join(dir, `${name}.npy`));
    assert.equal(m.dtype, 'float64');
    assert.deepEqual([m.rows, m.cols], [4, 3]);
    assert.deepEqual(Array.from(m.data), expect, name);
  }
  const f4 = readNpy(join(dir, 'f4.npy'));
  assert.equal(f4.dtype, 'float32');
  assert.deepEqual(Array.from(f4.data), expect.map(Math.fround));
});

test('encodeNpy writes files numpy reads back exactly', () => {
  const data = Float64Array.from({ length: 10 }, (_, i) => Math.PI * (i - 3));
  writeFileSync(join(dir, 'ours.npy'), encodeNpy(data, 5, 2));
  writeFileSync(join(dir, 'ours4.npy'), encodeNpy(Float32Array.from(data), 2, 5));
  const out = numpy(`
a = np.load(d + '/ours.npy'); b = np.load(d + '/ours4.npy')
print(a.dtype, a.shape, a.flags['C_CONTIGUOUS'])
print(b.dtype, b.shape)
print(repr(a.ravel().tolist()))
print(repr(b.ravel().tolist()))
`).trim().split('\n');
  assert.equal(out[0], 'float64 (5, 2) True');
  assert.equal(out[1], 'float32 (2, 5)');
  assert.deepEqual(JSON.parse(out[2]), Array.from(data));
  assert.deepEqual(JSON.parse(out[3]), Array.from(data, Math.fround));
  assert.deepEqual(Array.from(readNpy(join(dir, 'ours.npy')).data), Array.from(data));
});

test('refuses big-endian, integer, Fortran-order and non-2-D arrays with one-line errors', () => {
  numpy(`
a = np.ones((3, 2))
np.save(d + '/be.npy', a.astype('>f8'))
np.save(d + '/int.npy', a.astype(np.int32))
np.save(d + '/fortran.npy', np.asfortranarray(np.ones((3, 2))))
np.save(d + '/one.npy', np.ones(3))
`);
  const cases: [string, RegExp][] = [
    ['be', /dtype ">f8" is not supported/],
    ['int', /dtype "<i4" is not supported/],
    ['fortran', /Fortran-order/],
    ['one', /want a 2-D array.*\(3\)/],
  ];
  for (const [name, pattern] of cases) {
    assert.throws(() => readNpy(join(dir, `${name}.npy`)), (e: unknown) => e instanceof LmdynError && pattern.test(e.message) && !e.message.includes('\n'));
  }
});

test('fuzz: every truncation and 2000 seeded byte corruptions give an LmdynError of one line or a consistent array', () => {
  const good = encodeNpy(Float64Array.from({ length: 6 }, (_, i) => i), 3, 2);
  const oneLine = (bytes: Uint8Array, what: string): void => {
    try {
      const m = parseNpy(bytes, 'fuzz.npy');
      assert.equal(m.data.length, m.rows * m.cols, what);
    } catch (e) {
      assert.ok(e instanceof LmdynError, `${what}: ${String(e)}`);
      assert.ok(!e.message.includes('\n') && e.message.startsWith('fuzz.npy: '), `${what}: ${JSON.stringify(e.message)}`);
    }
  };
  for (let len = 0; len < good.length; len++) {
    assert.throws(() => parseNpy(good.subarray(0, len), 'fuzz.npy'), LmdynError, `truncated to ${len}`);
  }
  const rng = createRng(7);
  for (let trial = 0; trial < 2000; trial++) {
    const bad = good.slice();
    const flips = 1 + Math.floor(rng.next() * 4);
    for (let f = 0; f < flips; f++) {
      const at = Math.floor(rng.next() * 80); // magic, version, length and header text
      bad[at] = Math.floor(rng.next() * 256);
    }
    oneLine(bad, `trial ${trial}`);
  }
  // a header that claims more data than there is
  const text = new TextDecoder().decode(good.subarray(10, 74)).replace('(3, 2)', '(9, 2)');
  const lying = good.slice();
  lying.set(new TextEncoder().encode(text), 10);
  assert.throws(() => parseNpy(lying, 'x.npy'), /data truncated: shape \(9, 2\) needs 144 bytes, file has 48/);
});

test('a file that is not .npy says so', () => {
  writeFileSync(join(dir, 'text.npy'), 'hello world, not numpy');
  assert.throws(() => readNpy(join(dir, 'text.npy')), /not a \.npy file \(bad magic\)/);
  assert.equal(readFileSync(join(dir, 'text.npy'), 'utf8').length, 22);
});
