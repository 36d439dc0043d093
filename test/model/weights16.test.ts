/**
 * Resident 16-bit weights (--weights f16 / bf16 / auto) on real model folders.
 *
 * Independent references: the float64 reference logits and block Jacobians of the neox-parallel
 * fixture (scripts/reference/neox_neo_fixtures.py; the folder ships float16 weights); for bf16, the
 * same bf16 file loaded as f32 (widened at load by the safetensors reader) — the bf16 copy is
 * written here with ggml's rounding rule (io/gguf-quants f32ToBf16), not lmdyn's; the resident
 * sizes against the parameter count of the file's own shapes (4 bytes each).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, cpSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateText, openModel } from '../../src/api.js';
import { loadModel } from '../../src/io/load.js';
import { f32ToBf16 } from '../../src/io/gguf-quants.js';
import { readGgufHeader } from '../../src/io/gguf.js';
import { residentSizes } from '../../src/io/resident.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { blockJacobians, recordBlockStates } from '../../src/model/jvp.js';
import type { ModelWeights } from '../../src/model/types.js';
import type { Matrix } from '../../src/tensor/matrix.js';
import { ROOT, model } from '../helpers/paths.js';

const ARCH = resolve(ROOT, 'test', 'fixtures', 'arch');
const TMP = mkdtempSync(join(tmpdir(), 'lmdyn-w16-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

function matrices(w: ModelWeights): Matrix[] {
  const out = [w.tokenEmbedding, w.unembedding];
  for (const l of w.layers) for (const m of [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown]) if (m) out.push(m);
  return out;
}

/** The float64 arrays of a reference safetensors file (its own tiny parser: F64 only). */
function readF64(path: string): Map<string, Float64Array> {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const out = new Map<string, Float64Array>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__' || t.dtype !== 'F64') continue;
    const [s, e] = t.data_offsets;
    out.set(name, new Float64Array(b.buffer.slice(b.byteOffset + 8 + n + s, b.byteOffset + 8 + n + e)));
  }
  return out;
}

function relErr(a: ArrayLike<number>, r: ArrayLike<number>, from: number, len: number): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < len; i++) {
    num = Math.max(num, Math.abs(a[i] - r[from + i]));
    den = Math.max(den, Math.abs(r[from + i]));
  }
  return num / den;
}

test('neox-parallel kept resident as f16: logits at every position and block Jacobians within 1e-4 of the float64 reference', async () => {
  const m = await openModel(join(ARCH, 'neox-parallel'), { weights: 'f16' });
  const tf = m.transformer;
  for (const w of matrices(tf.weights)) assert.equal(w.format, 'f16');
  const meta = JSON.parse(readFileSync(join(ARCH, 'neox-parallel.reference.json'), 'utf8')) as {
    ids: number[];
    jacobian_position: number;
  };
  const ref = readF64(join(ARCH, 'neox-parallel.reference.safetensors'));
  const logits = ref.get('logits')!;
  const V = tf.config.vocabSize;
  const n = meta.ids.length;
  const out = tf.forward(tf.newCache(1, n), [{ seq: 0, tokens: meta.ids }], { logits: 'all' });
  let worst = 0;
  for (let t = 0; t < n; t++) worst = Math.max(worst, relErr(out.logits.subarray(t * V, (t + 1) * V), logits, t * V, V));
  assert.ok(worst < 1e-4, `logits: worst relative error ${worst.toExponential(2)}`);
  // the Jacobians read the matrices' lazily widened f32 `data`
  const d = tf.config.dim;
  const jac = blockJacobians(tf, recordBlockStates(tf, meta.ids), meta.jacobian_position);
  const refJ = ref.get('jacobians')!;
  for (let l = 0; l < tf.config.nLayers; l++) {
    const e = relErr(jac[l], refJ, l * d * d, d * d);
    assert.ok(e < 1e-4, `J^${l}: ${e.toExponential(2)}`);
  }
  m.dispose();
});

/** A copy of stories260K-hf-derived whose matrices are BF16 (ggml's rounding), norms F32. */
function bf16Copy(): string {
  const dir = join(TMP, 'stories-bf16');
  cpSync(model('stories260K-hf-derived'), dir, { recursive: true });
  const { metadata, tensors } = readSafetensors(join(dir, 'model.safetensors'));
  const out: TensorToWrite[] = [];
  for (const t of tensors.values()) {
    if (t.shape.length !== 2) {
      out.push(t);
      continue;
    }
    const f = t.data as Float32Array;
    const bits = new Uint16Array(f.length);
    for (let i = 0; i < f.length; i++) bits[i] = f32ToBf16(f[i]);
    out.push({ name: t.name, dtype: 'BF16', shape: t.shape, data: bits });
  }
  writeSafetensors(join(dir, 'model.safetensors'), out, metadata);
  return dir;
}

test('a bf16 llama folder kept resident as bf16 greedy-decodes the same 48 ids as its f32 load, logits within 1e-5', async () => {
  const dir = bf16Copy();
  const tokenizer = model('stories260K', 'tok512.bin');
  const f32 = await openModel(dir, { tokenizer, weights: 'f32' });
  const bf16 = await openModel(dir, { tokenizer, weights: 'bf16' });
  for (const w of matrices(f32.transformer.weights)) assert.equal(w.format, 'f32');
  for (const w of matrices(bf16.transformer.weights)) assert.equal(w.format, 'bf16');
  const greedy = { temperature: 0 };
  const a = generateText(f32, { promptIds: [1], maxTokens: 48, sampling: greedy });
  const b = generateText(bf16, { promptIds: [1], maxTokens: 48, sampling: greedy });
  assert.equal(a.ids.length, 48);
  assert.deepEqual(b.ids, a.ids);
  const ids = [1, ...a.ids.slice(0, 20)];
  const V = f32.config.vocabSize;
  const la = f32.transformer.forward(f32.transformer.newCache(1, ids.length), [{ seq: 0, tokens: ids }], { logits: 'all' }).logits.slice();
  const lb = bf16.transformer.forward(bf16.transformer.newCache(1, ids.length), [{ seq: 0, tokens: ids }], { logits: 'all' }).logits;
  for (let t = 0; t < ids.length; t++) {
    const e = relErr(lb.subarray(t * V, (t + 1) * V), la, t * V, V);
    assert.ok(e < 1e-5, `position ${t}: ${e.toExponential(2)}`);
  }
  f32.dispose();
  bf16.dispose();
});

test('--weights auto keeps f32 within the budget and the file’s own f16 beyond it; the choice is recorded', async () => {
  const dir = join(ARCH, 'neox-parallel');
  const big = await loadModel(dir, { weightsBudget: 1e9 });
  assert.ok(matrices(big.weights).every((m) => m.format === 'f32'));
  assert.equal((big.source.details.weights as { format: string }).format, 'f32');
  const small = await loadModel(dir, { weightsBudget: 1000 });
  assert.ok(matrices(small.weights).every((m) => m.format === 'f16'));
  const d = small.source.details.weights as { format: string; requested: string; why: string };
  assert.equal(d.format, 'f16');
  assert.equal(d.requested, 'auto');
  assert.match(d.why, /file's own f16/);
  await assert.rejects(loadModel(dir, { weights: 'f8' as never }), /unknown weight format 'f8'/);
  await assert.rejects(loadModel(dir, { weights: 'bf16', quantize: 'q8_0' }), /disagree/);
});

function lmdyn(...args: string[]) {
  const r = spawnSync(process.execPath, [resolve('bin', 'lmdyn.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, LMDYN_MODEL: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `path` cut to its first `keep` bytes. */
function truncatedCopy(path: string, to: string, keep: number): void {
  const b = readFileSync(path).subarray(0, keep);
  const fd = openSync(to, 'w');
  writeSync(fd, b);
  closeSync(fd);
}

test('lmdyn info prints the resident sizes from the header of a safetensors folder whose weights are absent', () => {
  const dir = join(TMP, 'neox-header-only');
  cpSync(join(ARCH, 'neox-parallel'), dir, { recursive: true });
  const st = join(dir, 'model.safetensors');
  const headerBytes = 8 + Number(readFileSync(st).readBigUInt64LE(0));
  truncatedCopy(join(ARCH, 'neox-parallel', 'model.safetensors'), st, headerBytes);
  const r = lmdyn('info', '-m', dir, '--weights-budget', '1k');
  // 58,656 parameters (the count `lmdyn info` prints for the whole file) × 4 B = 234.6 kB; the
  // 57,344 matrix values at 2 B plus 1,312 vector values at 4 B = 119.9 kB
  assert.match(r.stdout, /resident_size +f32 234\.6 kB · f16\/bf16 119\.9 kB · q8_0 69\.8 kB/);
  assert.match(r.stdout, /weights +f16 \(auto: f32 would need 234\.6 kB > the budget of 1\.0 kB; the file's own f16 kept\)/);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /truncated/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  // the full file: same header sizes, and the load succeeds
  const full = lmdyn('info', '-m', join(ARCH, 'neox-parallel'), '--json');
  assert.equal(full.code, 0, full.stderr);
  const info = JSON.parse(full.stdout) as Record<string, unknown>;
  assert.equal(info.parameters, 58656);
  assert.equal(4 * 58656, 234624);
  assert.match(String(info.resident_size), /f32 234\.6 kB/);
});

test('GGUF: resident sizes from the header alone equal the whole file’s, with the tensor data cut off', () => {
  const gguf = model('stories260K-gguf', 'stories260K.gguf');
  const cut = join(TMP, 'header-only.gguf');
  const header = readGgufHeader(gguf);
  truncatedCopy(gguf, cut, header.dataOffset); // metadata, tokenizer and tensor table only
  assert.ok(header.fileSize > header.dataOffset + 1e5);
  const whole = residentSizes(gguf);
  assert.deepEqual(residentSizes(cut), whole);
  // stories260K: 260K-ish parameters, every one f32 in this file
  assert.equal(whole.bytes.f32, 4 * (whole.matrixValues + whole.vectorValues));
  const r = lmdyn('info', '-m', cut);
  assert.match(r.stdout, /resident_size +f32 /);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /needs bytes .* but the file has/);
});
