import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdynError } from '../../src/errors.js';
import {
  closeSafetensors,
  createSafetensorsWriter,
  openSafetensors,
  readSafetensors,
  readTensorData,
  readTensorF32,
  writeSafetensors,
  type TensorToWrite,
} from '../../src/io/safetensors.js';
import { createRng } from '../../src/tensor/rng.js';
import { model } from '../helpers/paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'lmdyn-safetensors-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const TINY_GPT2 = model('tiny-gpt2', 'model.safetensors');

/** Runs a Python snippet (json/struct/numpy only) and parses its JSON output. */
function python(code: string, ...args: string[]): unknown {
  const r = spawnSync('python3', ['-c', code, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Every failure must be an LmdynError: anything else would be a crash on a user's bad file. */
function openAndReadAll(path: string): void {
  const f = openSafetensors(path);
  try {
    for (const t of f.tensors) readTensorData(f, t.name);
  } finally {
    closeSafetensors(f);
  }
}

function assertOnlyLmdynErrors(path: string, codes: string[]): void {
  try {
    openAndReadAll(path);
  } catch (err) {
    assert.ok(err instanceof LmdynError, `${path}: ${String(err)}`);
    assert.ok(codes.includes(err.code), `${err.code}: ${err.message}`);
    assert.ok(!err.message.includes('\n'), 'one-line message');
  }
}

test('tiny-gpt2 model.safetensors parses as MANIFEST.md §4 describes', () => {
  const f = openSafetensors(TINY_GPT2);
  try {
    // MANIFEST §4: 2,432-byte header, __metadata__ {"format":"pt"}, 28 F32 tensors, 102,714 floats.
    assert.equal(f.headerLength, 2432);
    assert.deepEqual(f.metadata, { format: 'pt' });
    assert.equal(f.tensors.length, 28);
    assert.ok(f.tensors.every((t) => t.dtype === 'F32'));
    const floats = f.tensors.reduce((a, t) => a + t.shape.reduce((x, d) => x * d, 1), 0);
    assert.equal(floats, 102714);
    assert.deepEqual(f.byName.get('transformer.wte.weight')?.shape, [50257, 2]);
    assert.deepEqual(f.byName.get('transformer.wpe.weight')?.shape, [1024, 2]);
    assert.deepEqual(f.byName.get('transformer.h.1.attn.c_attn.weight')?.shape, [2, 6]);
    assert.deepEqual(f.byName.get('transformer.h.0.mlp.c_proj.weight')?.shape, [8, 2]);
    assert.equal(f.byName.has('lm_head.weight'), false);

    // Independent reference: numpy.frombuffer on the raw bytes.
    const ref = python(
      `import json, struct, sys, numpy as np
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
out = {}
for k in ['transformer.h.1.attn.c_attn.weight', 'transformer.ln_f.bias', 'transformer.wpe.weight']:
    s, e = h[k]['data_offsets']
    out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype='<f4').astype(float).tolist()
print(json.dumps(out))`,
      TINY_GPT2,
    ) as Record<string, number[]>;
    for (const [name, values] of Object.entries(ref)) {
      assert.deepEqual([...readTensorF32(f, name)], values, name);
    }
  } finally {
    closeSafetensors(f);
  }
});

function sampleTensors(): TensorToWrite[] {
  return [
    {
      name: 'f32',
      dtype: 'F32',
      shape: [2, 3],
      data: new Float32Array([1.5, -2, 3.25, 0, -0.125, 1e-3]),
    },
    {
      name: 'f64',
      dtype: 'F64',
      shape: [3],
      data: new Float64Array([Math.PI, -1e300, 2 ** -1074]),
    },
    {
      name: 'i64',
      dtype: 'I64',
      shape: [2],
      data: new BigInt64Array([-(2n ** 62n), 12345678901234n]),
    },
    { name: 'i32', dtype: 'I32', shape: [3], data: new Int32Array([-7, 0, 2 ** 31 - 1]) },
    { name: 'u8', dtype: 'U8', shape: [5], data: new Uint8Array([0, 1, 127, 128, 255]) },
    {
      name: 'f16',
      dtype: 'F16',
      shape: [4],
      data: new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]),
    },
    { name: 'bf16', dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0xc000]) },
    { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    { name: 'scalar', dtype: 'F32', shape: [], data: new Float32Array([42]) },
    { name: '7', dtype: 'I32', shape: [1], data: new Int32Array([7]) }, // integer-like key
    { name: 'blocks.0.hook_résidu', dtype: 'F32', shape: [1, 1], data: new Float32Array([-1]) },
  ];
}

test('writer round trip: every dtype, empty and scalar tensors, metadata; padded, aligned, no temp files', () => {
  const dir = mkdtempSync(join(TMP, 'rt-'));
  const path = join(dir, 'rt.safetensors');
  const tensors = sampleTensors();
  writeSafetensors(path, tensors, { format: 'lmdyn', note: 'ünï "quoted"' });
  assert.deepEqual(readdirSync(dir), ['rt.safetensors']);

  const back = readSafetensors(path);
  assert.deepEqual(back.metadata, { format: 'lmdyn', note: 'ünï "quoted"' });
  assert.equal(back.tensors.size, tensors.length);
  for (const t of tensors) {
    const got = back.tensors.get(t.name);
    assert.ok(got, t.name);
    assert.equal(got.dtype, t.dtype);
    assert.deepEqual(got.shape, t.shape);
    assert.deepEqual([...got.data], [...t.data], t.name);
  }

  const f = openSafetensors(path);
  try {
    // safetensors README: the reference writer pads the header to 8; each tensor then sits on
    // a multiple of its element size because tensors are ordered by decreasing element size.
    assert.equal(f.headerLength % 8, 0);
    for (const t of f.tensors) {
      const width =
        t.dtype === 'F64' || t.dtype === 'I64'
          ? 8
          : t.dtype.endsWith('16')
            ? 2
            : t.dtype === 'U8'
              ? 1
              : 4;
      assert.equal(t.begin % width, 0, `${t.name} aligned`);
    }
    assert.equal(statSync(path).size, f.tensors[f.tensors.length - 1].end);
  } finally {
    closeSafetensors(f);
  }
  // Same input, same bytes.
  const again = join(dir, 'again.safetensors');
  writeSafetensors(again, [...tensors].reverse(), { note: 'ünï "quoted"', format: 'lmdyn' });
  assert.deepEqual(readFileSync(again), readFileSync(path));
});

test('a written file is read by an independent Python/numpy parser (json + struct + numpy.frombuffer)', () => {
  const path = join(TMP, 'py.safetensors');
  const tensors = sampleTensors();
  writeSafetensors(path, tensors, { format: 'pt' });
  const out = python(
    `import json, struct, sys, numpy as np
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
raw = b[8:8 + n].decode('utf-8')
assert n % 8 == 0 and raw.rstrip(' ') == raw.strip() and raw.startswith('{')
h = json.loads(raw)
meta = h.pop('__metadata__')
kinds = {'F32': '<f4', 'F64': '<f8', 'I64': '<i8', 'I32': '<i4', 'U8': 'u1', 'F16': '<f2'}
out, cursor = {}, 0
for name, info in sorted(h.items(), key=lambda kv: kv[1]['data_offsets']):
    s, e = info['data_offsets']
    assert s == cursor, (name, s, cursor)
    cursor = e
    buf = b[8 + n + s:8 + n + e]
    if info['dtype'] == 'BF16':
        v = (np.frombuffer(buf, dtype='<u2').astype(np.uint32) << 16).view(np.float32)
    else:
        v = np.frombuffer(buf, dtype=kinds[info['dtype']])
    vals = [str(x) for x in v.tolist()] if info['dtype'] == 'I64' else v.astype(float).tolist()
    out[name] = {'dtype': info['dtype'], 'shape': info['shape'], 'values': vals}
assert 8 + n + cursor == len(b)
print(json.dumps({'meta': meta, 'tensors': out}))`,
    path,
  ) as {
    meta: Record<string, string>;
    tensors: Record<string, { dtype: string; shape: number[]; values: (number | string)[] }>;
  };
  assert.deepEqual(out.meta, { format: 'pt' });
  assert.equal(Object.keys(out.tensors).length, tensors.length);
  const expected: Record<string, (number | string)[]> = {
    f16: [1, -2, 65504, 2 ** -24], // numpy float16 of 0x3C00, 0xC000, 0x7BFF, 0x0001
    bf16: [1, -2],
    i64: ['-4611686018427387904', '12345678901234'],
  };
  for (const t of tensors) {
    const py = out.tensors[t.name];
    assert.equal(py.dtype, t.dtype);
    assert.deepEqual(py.shape, t.shape);
    const want =
      expected[t.name] ??
      [...(t.data as Float32Array)].map((x) => (t.dtype === 'F32' ? Math.fround(x) : x));
    assert.deepEqual(py.values, want, t.name);
  }
});

test('F16 and BF16 decode: hand-computed bit patterns, all 65,536 F16 values against numpy, BF16 against the closed form', () => {
  const path = join(TMP, 'half.safetensors');
  const all = new Uint16Array(65536).map((_, i) => i);
  const hand = new Uint16Array([
    0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x3555,
  ]);
  const bfHand = new Uint16Array([0x3f80, 0xc000, 0x7f80, 0x0001, 0x4049]);
  writeSafetensors(path, [
    { name: 'all_f16', dtype: 'F16', shape: [65536], data: all },
    { name: 'all_bf16', dtype: 'BF16', shape: [65536], data: all },
    { name: 'hand', dtype: 'F16', shape: [hand.length], data: hand },
    { name: 'bf_hand', dtype: 'BF16', shape: [bfHand.length], data: bfHand },
  ]);
  const f = openSafetensors(path);
  try {
    // IEEE binary16: 1, −2, 65504 (max), 2^−24 (min subnormal), 1023·2^−24, 2^−14 (min normal), −0, ±Inf, 0x3555.
    const h = readTensorF32(f, 'hand');
    assert.deepEqual(
      [...h],
      [1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, -0, Infinity, -Infinity, 0.333251953125],
    );
    assert.ok(Object.is(h[6], -0));
    // bfloat16 = the top 16 bits of binary32: 1, −2, Inf, 2^−133 (subnormal), 3.140625.
    assert.deepEqual([...readTensorF32(f, 'bf_hand')], [1, -2, Infinity, 2 ** -133, 3.140625]);

    const ours = readTensorF32(f, 'all_f16');
    const ref = join(TMP, 'f16.f32');
    python(
      `import sys, numpy as np
np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).tofile(sys.argv[1])
print('{}')`,
      ref,
    );
    const numpy = new Float32Array(readFileSync(ref).buffer.slice(0));
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(numpy[i])) assert.ok(Number.isNaN(ours[i]), `f16 0x${i.toString(16)}`);
      else
        assert.ok(
          Object.is(ours[i], numpy[i]),
          `f16 0x${i.toString(16)}: ${ours[i]} vs ${numpy[i]}`,
        );
    }

    // Closed form for bfloat16 (8-bit exponent, bias 127, 7-bit mantissa).
    const bf = readTensorF32(f, 'all_bf16');
    for (let i = 0; i < 65536; i++) {
      const sign = i & 0x8000 ? -1 : 1;
      const e = (i >> 7) & 0xff;
      const m = i & 0x7f;
      const want =
        e === 255
          ? m
            ? NaN
            : sign * Infinity
          : e === 0
            ? sign * m * 2 ** -133
            : sign * (1 + m / 128) * 2 ** (e - 127);
      if (Number.isNaN(want)) assert.ok(Number.isNaN(bf[i]));
      else assert.ok(Object.is(bf[i], want), `bf16 0x${i.toString(16)}`);
    }
  } finally {
    closeSafetensors(f);
  }
});

test('F64 reads as f32 (Math.fround); integer tensors are unsupported as f32 and name the tensor and dtype', () => {
  const path = join(TMP, 'types.safetensors');
  const big = new Float64Array(3_000_000).map((_, i) => Math.sin(i) * 1e3); // spans several chunks
  writeSafetensors(path, [
    { name: 'big', dtype: 'F64', shape: [big.length], data: big },
    { name: 'ids', dtype: 'I32', shape: [2], data: new Int32Array([1, 2]) },
  ]);
  const f = openSafetensors(path);
  try {
    const got = readTensorF32(f, 'big');
    for (let i = 0; i < big.length; i += 997) assert.equal(got[i], Math.fround(big[i]));
    assert.equal(got[big.length - 1], Math.fround(big[big.length - 1]));
    assert.throws(
      () => readTensorF32(f, 'ids'),
      (e: unknown) =>
        e instanceof LmdynError &&
        e.code === 'unsupported' &&
        /ids/.test(e.message) &&
        /I32/.test(e.message),
    );
    assert.throws(
      () => readTensorF32(f, 'nope'),
      (e: unknown) => e instanceof LmdynError && /nope/.test(e.message),
    );
  } finally {
    closeSafetensors(f);
  }
});

test('streaming writer: chunked appends give the same bytes; misuse is an LmdynError and leaves no file', () => {
  const dir = mkdtempSync(join(TMP, 'stream-'));
  const whole = join(dir, 'whole.safetensors');
  const streamed = join(dir, 'streamed.safetensors');
  const h = new Float32Array(6 * 4).map((_, i) => i / 7); // h: [steps 6, d 4]
  const ids = new Int32Array([5, 4, 3, 2, 1, 0]);
  const specs = [
    { name: 'hidden', dtype: 'F32' as const, shape: [6, 4] },
    { name: 'ids', dtype: 'I32' as const, shape: [6] },
  ];
  writeSafetensors(
    whole,
    [
      { ...specs[0], data: h },
      { ...specs[1], data: ids },
    ],
    { run: 'x' },
  );
  const w = createSafetensorsWriter(streamed, specs, { run: 'x' });
  for (let step = 0; step < 6; step++) w.append(h.subarray(step * 4, step * 4 + 4));
  w.append(ids.subarray(0, 2));
  w.append(ids.subarray(2));
  w.close();
  assert.deepEqual(readFileSync(streamed), readFileSync(whole));

  const isArg = (e: unknown) => e instanceof LmdynError && e.code === 'bad_argument';
  const bad = join(dir, 'bad.safetensors');
  const w2 = createSafetensorsWriter(bad, specs);
  assert.throws(() => w2.append(new Float64Array(4)), isArg); // wrong dtype
  assert.throws(() => w2.append(new Float32Array(25)), isArg); // overruns the tensor
  w2.append(h);
  assert.throws(() => w2.close(), isArg); // ids never written
  assert.throws(
    () =>
      writeSafetensors(bad, [{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }]),
    isArg,
  );
  assert.throws(
    () =>
      writeSafetensors(bad, [
        { name: '__metadata__', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      ]),
    isArg,
  );
  assert.deepEqual(readdirSync(dir).sort(), ['streamed.safetensors', 'whole.safetensors']);
});

/** A file from a header object and a data length, for targeted corruptions. */
function craft(name: string, header: unknown, dataBytes: number, headerText?: string): string {
  const json = Buffer.from(headerText ?? JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const path = join(TMP, name);
  writeFileSync(path, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return path;
}

test('bad headers give the right LmdynError code', () => {
  const t = (dtype: string, shape: number[], offsets: number[]) => ({
    dtype,
    shape,
    data_offsets: offsets,
  });
  const cases: [string, string, () => string][] = [
    ['bad_format', 'not JSON', () => craft('notjson', null, 0, '{"a": ')],
    ['bad_format', 'array header', () => craft('array', null, 0, '[1, 2, 3]')],
    [
      'bad_format',
      'overlap',
      () => craft('overlap', { a: t('F32', [2], [0, 8]), b: t('F32', [2], [4, 12]) }, 12),
    ],
    [
      'bad_format',
      'hole',
      () => craft('hole', { a: t('F32', [1], [0, 4]), b: t('F32', [1], [8, 12]) }, 12),
    ],
    ['bad_format', 'trailing bytes', () => craft('trailing', { a: t('F32', [1], [0, 4]) }, 8)],
    ['truncated', 'data past the end', () => craft('past', { a: t('F32', [4], [0, 16]) }, 8)],
    ['bad_format', 'shape vs offsets', () => craft('shape', { a: t('F32', [3], [0, 8]) }, 8)],
    ['bad_format', 'negative dim', () => craft('neg', { a: t('F32', [-1], [0, 0]) }, 0)],
    ['bad_format', 'begin > end', () => craft('rev', { a: t('F32', [0], [4, 0]) }, 4)],
    ['unsupported', 'unknown dtype', () => craft('dtype', { a: t('Q4_K', [1], [0, 1]) }, 1)],
    ['bad_format', 'metadata value', () => craft('meta', { __metadata__: { a: 1 } }, 0)],
  ];
  for (const [code, what, make] of cases) {
    assert.throws(
      () => openAndReadAll(make()),
      (e: unknown) => e instanceof LmdynError && e.code === code,
      what,
    );
  }
  // No room for the length; a header length beyond the 100 MB limit; one beyond the file.
  writeFileSync(join(TMP, 'short'), Buffer.from([1, 2, 3]));
  assert.throws(
    () => openSafetensors(join(TMP, 'short')),
    (e: unknown) => e instanceof LmdynError && e.code === 'truncated',
  );
  const huge = Buffer.alloc(16);
  huge.writeBigUInt64LE(2n ** 40n);
  writeFileSync(join(TMP, 'huge'), huge);
  assert.throws(
    () => openSafetensors(join(TMP, 'huge')),
    (e: unknown) => e instanceof LmdynError && e.code === 'bad_format',
  );
  const long = Buffer.alloc(16);
  long.writeBigUInt64LE(1000n);
  writeFileSync(join(TMP, 'long'), long);
  assert.throws(
    () => openSafetensors(join(TMP, 'long')),
    (e: unknown) => e instanceof LmdynError && e.code === 'truncated',
  );
  assert.throws(
    () => openSafetensors(join(TMP, 'missing')),
    (e: unknown) => e instanceof LmdynError && e.code === 'not_found',
  );
});

test('every truncation length (coarse sweep) and random seeded byte flips only ever throw LmdynError', () => {
  const bytes = readFileSync(TINY_GPT2);
  const headerEnd = 8 + 2432;
  const lengths = new Set<number>();
  for (let n = 0; n <= 16; n++) lengths.add(n);
  for (let n = 17; n < headerEnd + 16; n += 29) lengths.add(n);
  for (let n = headerEnd; n < bytes.length; n += 4099) lengths.add(n);
  lengths.add(bytes.length - 1);
  const path = join(TMP, 'fuzz.safetensors');
  for (const n of lengths) {
    writeFileSync(path, bytes.subarray(0, n));
    assert.throws(
      () => openAndReadAll(path),
      (e: unknown) => e instanceof LmdynError,
      `truncated to ${n}`,
    );
  }

  const rng = createRng(20240611);
  const header = bytes.subarray(0, headerEnd);
  for (let trial = 0; trial < 400; trial++) {
    const copy = Buffer.from(header);
    const flips = 1 + Math.floor(rng.next() * 4);
    for (let k = 0; k < flips; k++) {
      const at = Math.floor(rng.next() * copy.length);
      copy[at] ^= 1 << Math.floor(rng.next() * 8);
    }
    writeFileSync(path, Buffer.concat([copy, bytes.subarray(headerEnd)]));
    assertOnlyLmdynErrors(path, ['truncated', 'bad_format', 'unsupported']);
  }
});
