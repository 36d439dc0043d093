/**
 * ggml's tensor block formats (ggml-common.h block_*, ggml-quants.c), read and written byte for
 * byte. A row of a tensor is a whole number of blocks; each block holds `blockSize` values in
 * `blockBytes` bytes, little-endian, f16 scales as IEEE binary16:
 *
 *   F32   1 value,  4 B   the value
 *   F16   1 value,  2 B   binary16
 *   BF16  1 value,  2 B   the top 16 bits of the f32
 *   Q4_0  32,      18 B   d:f16, qs[16]            x = d·(q − 8),          q = 4 bits
 *   Q4_1  32,      20 B   d:f16, m:f16, qs[16]     x = d·q + m,            q = 4 bits
 *   Q5_0  32,      22 B   d:f16, qh[4], qs[16]     x = d·(q − 16),         q = 4 + 1 bits
 *   Q5_1  32,      24 B   d:f16, m:f16, qh[4], qs  x = d·q + m,            q = 4 + 1 bits
 *   Q8_0  32,      34 B   d:f16, qs[32] int8       x = d·q
 *   Q4_K  256,    144 B   d, dmin:f16, scales[12], qs[128]
 *                         8 sub-blocks of 32: x = d·sc_j·q − dmin·m_j, sc_j and m_j 6 bits
 *   Q5_K  256,    176 B   d, dmin, scales[12], qh[32], qs[128]   as Q4_K with q = 4 + 1 bits
 *   Q6_K  256,    210 B   ql[128], qh[64], scales[16] int8, d:f16
 *                         16 sub-blocks of 16: x = d·sc_j·(q − 32), q = 4 + 2 bits
 *
 * In the 32-value formats value j < 16 sits in the low nibble of qs[j] and value j + 16 in its
 * high nibble; the fifth bit of value j is bit j of the little-endian uint32 qh. The K formats'
 * nibble and bit orders are spelled out beside their code.
 *
 * Dequantization follows ggml's dequantize_row_* and gives the same f32 values: every product
 * there is exact in f32, so computing in f64 and rounding once on the store rounds the same way.
 * Quantization follows ggml's quantize_row_*_ref (the rules llama.cpp's `llama-quantize` applies
 * when no importance matrix is given) with every operation rounded to f32 in ggml's order: on the
 * fixture ggml itself wrote (test/fixtures/ggml-quants) every block is byte-identical to ggml's
 * but one of four Q5_K super-blocks, whose fitted mins differ in their last bits.
 */
import { LmdynError } from '../errors.js';

export type GgmlTypeName =
  'F32' | 'F16' | 'BF16' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q4_K' | 'Q5_K' | 'Q6_K';

export interface GgmlBlockFormat {
  name: GgmlTypeName;
  /** The ggml_type enum value written in tensor infos. */
  id: number;
  blockSize: number;
  blockBytes: number;
}

const QK = 32; // QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0
const QK_K = 256;

/** The formats lmdyn reads and writes, by name (ggml_type ids from ggml.h). */
export const BLOCK_FORMATS: Readonly<Record<GgmlTypeName, GgmlBlockFormat>> = {
  F32: { name: 'F32', id: 0, blockSize: 1, blockBytes: 4 },
  F16: { name: 'F16', id: 1, blockSize: 1, blockBytes: 2 },
  Q4_0: { name: 'Q4_0', id: 2, blockSize: QK, blockBytes: 2 + QK / 2 },
  Q4_1: { name: 'Q4_1', id: 3, blockSize: QK, blockBytes: 4 + QK / 2 },
  Q5_0: { name: 'Q5_0', id: 6, blockSize: QK, blockBytes: 2 + 4 + QK / 2 },
  Q5_1: { name: 'Q5_1', id: 7, blockSize: QK, blockBytes: 4 + 4 + QK / 2 },
  Q8_0: { name: 'Q8_0', id: 8, blockSize: QK, blockBytes: 2 + QK },
  Q4_K: { name: 'Q4_K', id: 12, blockSize: QK_K, blockBytes: 4 + 12 + QK_K / 2 },
  Q5_K: { name: 'Q5_K', id: 13, blockSize: QK_K, blockBytes: 4 + 12 + QK_K / 8 + QK_K / 2 },
  Q6_K: { name: 'Q6_K', id: 14, blockSize: QK_K, blockBytes: QK_K / 2 + QK_K / 4 + QK_K / 16 + 2 },
  BF16: { name: 'BF16', id: 30, blockSize: 1, blockBytes: 2 },
};

const BY_ID = new Map(Object.values(BLOCK_FORMATS).map((f) => [f.id, f]));

/** The block format of a ggml_type id, or null for a type lmdyn does not read. */
export function blockFormatOf(typeId: number): GgmlBlockFormat | null {
  return BY_ID.get(typeId) ?? null;
}

/** The format named `name` (case-insensitive: q4_k, Q4_K), or a one-line error listing them. */
export function blockFormatNamed(name: string): GgmlBlockFormat {
  const f = (BLOCK_FORMATS as Record<string, GgmlBlockFormat>)[name.toUpperCase()];
  if (!f) {
    const names = Object.keys(BLOCK_FORMATS).map((n) => n.toLowerCase());
    throw new LmdynError(
      'bad_argument',
      `unknown GGUF type '${name}' (one of ${names.join(', ')})`,
    );
  }
  return f;
}

/**
 * out[0 .. count) = the values of `count` elements stored in `raw` as `format` (count a multiple
 * of the block size; raw holds count / blockSize blocks).
 */
export function dequantize(
  format: GgmlBlockFormat,
  raw: Uint8Array,
  count: number,
  out: Float32Array,
): void {
  const nb = count / format.blockSize;
  if (!Number.isInteger(nb) || raw.length < nb * format.blockBytes || out.length < count) {
    throw new Error(`dequantize ${format.name}: ${count} values, ${raw.length} bytes`);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (format.name === 'F32') {
    for (let k = 0; k < count; k++) out[k] = view.getFloat32(4 * k, true);
    return;
  }
  if (format.name === 'F16' || format.name === 'BF16') {
    const table = format.name === 'F16' ? halfTable() : bf16Table();
    for (let k = 0; k < count; k++) out[k] = table[view.getUint16(2 * k, true)]!;
    return;
  }
  const dq = DEQUANTIZE[format.name];
  for (let b = 0; b < nb; b++) dq(raw, view, b * format.blockBytes, out, b * format.blockSize);
}

/**
 * The bytes of `x` stored as `format` (x.length a multiple of the block size; blocks follow each
 * other, so a [rows, cols] matrix with cols a multiple of the block size is quantized row by row).
 */
export function quantize(format: GgmlBlockFormat, x: Float32Array): Uint8Array {
  const nb = x.length / format.blockSize;
  if (!Number.isInteger(nb)) {
    throw new Error(`quantize ${format.name}: ${x.length} values is not whole blocks`);
  }
  const raw = new Uint8Array(nb * format.blockBytes);
  const view = new DataView(raw.buffer);
  const q = QUANTIZE[format.name];
  for (let b = 0; b < nb; b++) q(x, b * format.blockSize, raw, view, b * format.blockBytes);
  return raw;
}

// --- binary16 and bfloat16 ----------------------------------------------------------------------

let halfToFloat: Float32Array | null = null;

/** IEEE 754 binary16 → f32 for all 65536 bit patterns (subnormals, ±inf and NaN included). */
export function halfTable(): Float32Array {
  if (halfToFloat) return halfToFloat;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) table[h] = sign * mant * 2 ** -24;
    else if (exp === 31) table[h] = mant === 0 ? sign * Infinity : NaN;
    else table[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  halfToFloat = table;
  return table;
}

const f32Bits = new Float32Array(1);
const u32Bits = new Uint32Array(f32Bits.buffer);

/**
 * The binary16 bits nearest to `v` (ties to even, as ggml's GGML_FP32_TO_FP16): with e the
 * binade of |v| (at least −14, the subnormal binade) the quantum is 2^(e−10) and
 * m = round(|v| / 2^(e−10)) ∈ [0, 2048]; the bits ((e + 14) << 10) + m carry m = 2048 into the
 * next exponent and a subnormal m < 1024 into exponent 0 by themselves. Past 65504 + ½ulp: ±inf.
 */
export function f32ToHalf(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  f32Bits[0] = v;
  const bits = u32Bits[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const a = Math.abs(f32Bits[0]!);
  const e = Math.max(((bits >>> 23) & 0xff) - 127, -14);
  if (e > 15) return sign | 0x7c00;
  const m = roundHalfEven(a * 2 ** (10 - e)); // exact scaling by a power of two
  const h = ((e + 14) << 10) + m;
  return sign | Math.min(h, 0x7c00);
}

/** The f32 value of the binary16 nearest to v. */
export function roundToHalf(v: number): number {
  return halfTable()[f32ToHalf(v)]!;
}

/** bfloat16 bits of v, ties to even; NaN stays a quiet NaN (ggml's GGML_FP32_TO_BF16). */
export function f32ToBf16(v: number): number {
  f32Bits[0] = v;
  const u = u32Bits[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

let bf16ToFloat: Float32Array | null = null;

/** bfloat16 → f32 for all 65536 bit patterns: the bits are the f32's top half. */
function bf16Table(): Float32Array {
  if (bf16ToFloat) return bf16ToFloat;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) bits[h] = h << 16;
  bf16ToFloat = new Float32Array(bits.buffer);
  return bf16ToFloat;
}

/** Round half to even (nearest_int in ggml-quants.c adds 1.5·2²³ in f32, which does this). */
function roundHalfEven(v: number): number {
  const r = Math.round(v); // ties toward +∞
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** ggml's nearest_int on an f32 argument. */
function nearestInt(v: number): number {
  return roundHalfEven(Math.fround(v));
}

// --- dequantization (ggml-quants.c dequantize_row_*) --------------------------------------------

type BlockReader = (
  raw: Uint8Array,
  view: DataView,
  at: number,
  out: Float32Array,
  o: number,
) => void;

const DEQUANTIZE: Record<GgmlTypeName, BlockReader> = {
  // F32, F16 and BF16 are whole-tensor loops in dequantize()
  F32: () => undefined,
  F16: () => undefined,
  BF16: () => undefined,
  Q4_0: (raw, view, at, out, o) => {
    const d = half(view, at);
    for (let j = 0; j < 16; j++) {
      const q = raw[at + 2 + j]!;
      out[o + j] = d * ((q & 0x0f) - 8);
      out[o + j + 16] = d * ((q >> 4) - 8);
    }
  },
  Q4_1: (raw, view, at, out, o) => {
    const d = half(view, at);
    const m = half(view, at + 2);
    for (let j = 0; j < 16; j++) {
      const q = raw[at + 4 + j]!;
      out[o + j] = d * (q & 0x0f) + m;
      out[o + j + 16] = d * (q >> 4) + m;
    }
  },
  Q5_0: (raw, view, at, out, o) => {
    const d = half(view, at);
    const qh = view.getUint32(at + 2, true);
    for (let j = 0; j < 16; j++) {
      const q = raw[at + 6 + j]!;
      out[o + j] = d * (((q & 0x0f) | (((qh >>> j) & 1) << 4)) - 16);
      out[o + j + 16] = d * (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16);
    }
  },
  Q5_1: (raw, view, at, out, o) => {
    const d = half(view, at);
    const m = half(view, at + 2);
    const qh = view.getUint32(at + 4, true);
    for (let j = 0; j < 16; j++) {
      const q = raw[at + 8 + j]!;
      out[o + j] = d * ((q & 0x0f) | (((qh >>> j) & 1) << 4)) + m;
      out[o + j + 16] = d * ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) + m;
    }
  },
  Q8_0: (raw, view, at, out, o) => {
    const d = half(view, at);
    for (let j = 0; j < 32; j++) out[o + j] = d * ((raw[at + 2 + j]! << 24) >> 24);
  },
  Q4_K: (raw, view, at, out, o) => {
    // sub-blocks 2i and 2i+1 share qs[32i .. 32i+32): low nibbles, then high nibbles
    const d = half(view, at);
    const dmin = half(view, at + 2);
    const scales = at + 4;
    const qs = at + 16;
    for (let i = 0; i < 4; i++) {
      const [sc1, m1] = scaleMinK4(raw, scales, 2 * i);
      const [sc2, m2] = scaleMinK4(raw, scales, 2 * i + 1);
      const d1 = d * sc1;
      const d2 = d * sc2;
      const min1 = dmin * m1;
      const min2 = dmin * m2;
      for (let l = 0; l < 32; l++) {
        const q = raw[qs + 32 * i + l]!;
        out[o + 64 * i + l] = d1 * (q & 0x0f) - min1;
        out[o + 64 * i + 32 + l] = d2 * (q >> 4) - min2;
      }
    }
  },
  Q5_K: (raw, view, at, out, o) => {
    // as Q4_K; the fifth bit of value 64i + l is bit 2i of qh[l], of 64i + 32 + l bit 2i + 1
    const d = half(view, at);
    const dmin = half(view, at + 2);
    const scales = at + 4;
    const qh = at + 16;
    const qs = at + 48;
    for (let i = 0; i < 4; i++) {
      const [sc1, m1] = scaleMinK4(raw, scales, 2 * i);
      const [sc2, m2] = scaleMinK4(raw, scales, 2 * i + 1);
      const d1 = d * sc1;
      const d2 = d * sc2;
      const min1 = dmin * m1;
      const min2 = dmin * m2;
      for (let l = 0; l < 32; l++) {
        const q = raw[qs + 32 * i + l]!;
        const h = raw[qh + l]!;
        out[o + 64 * i + l] = d1 * ((q & 0x0f) + (((h >> (2 * i)) & 1) << 4)) - min1;
        out[o + 64 * i + 32 + l] = d2 * ((q >> 4) + (((h >> (2 * i + 1)) & 1) << 4)) - min2;
      }
    }
  },
  Q6_K: (raw, view, at, out, o) => {
    // per half (128 values, n = 0/1): ql[64n + l] holds the low 4 bits of values l (low nibble)
    // and l + 64 (high nibble), ql[64n + 32 + l] those of l + 32 and l + 96; qh[32n + l] holds
    // the top 2 bits of l, l + 32, l + 64, l + 96 at bits 0, 2, 4, 6; scale of value v: v / 16
    const d = half(view, at + 208);
    for (let n = 0; n < 2; n++) {
      const ql = at + 64 * n;
      const qh = at + 128 + 32 * n;
      const sc = at + 192 + 8 * n;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = raw[qh + l]!;
        const a = raw[ql + l]!;
        const b = raw[ql + 32 + l]!;
        const base = o + 128 * n + l;
        out[base] = d * int8(raw[sc + is]!) * (((a & 0x0f) | ((h & 3) << 4)) - 32);
        out[base + 32] = d * int8(raw[sc + is + 2]!) * (((b & 0x0f) | (((h >> 2) & 3) << 4)) - 32);
        out[base + 64] = d * int8(raw[sc + is + 4]!) * (((a >> 4) | (((h >> 4) & 3) << 4)) - 32);
        out[base + 96] = d * int8(raw[sc + is + 6]!) * (((b >> 4) | (((h >> 6) & 3) << 4)) - 32);
      }
    }
  },
};

function half(view: DataView, at: number): number {
  return halfTable()[view.getUint16(at, true)]!;
}

function int8(b: number): number {
  return (b << 24) >> 24;
}

/**
 * The 6-bit scale and min of Q4_K/Q5_K sub-block j from scales[12] (ggml's get_scale_min_k4):
 * j < 4: low 6 bits of bytes j and j + 4; j ≥ 4: the nibbles of byte j + 4 with the top 2 bits
 * of bytes j − 4 (scale) and j (min) above them.
 */
function scaleMinK4(raw: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [raw[at + j]! & 63, raw[at + j + 4]! & 63];
  const sc = (raw[at + j + 4]! & 0x0f) | ((raw[at + j - 4]! >> 6) << 4);
  const m = (raw[at + j + 4]! >> 4) | ((raw[at + j]! >> 6) << 4);
  return [sc, m];
}

// --- quantization (ggml-quants.c quantize_row_*_ref) --------------------------------------------

type BlockWriter = (
  x: Float32Array,
  i: number,
  raw: Uint8Array,
  view: DataView,
  at: number,
) => void;

const QUANTIZE: Record<GgmlTypeName, BlockWriter> = {
  F32: (x, i, _raw, view, at) => view.setFloat32(at, x[i]!, true),
  F16: (x, i, _raw, view, at) => view.setUint16(at, f32ToHalf(x[i]!), true),
  BF16: (x, i, _raw, view, at) => view.setUint16(at, f32ToBf16(x[i]!), true),
  Q4_0: (x, i, raw, view, at) => {
    // d = max / −8 with max the value of largest magnitude, so max itself maps to q = 0
    const max = signedAbsMax(x, i, QK);
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    view.setUint16(at, f32ToHalf(d), true);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[i + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[i + j + 16]! * id) + 8.5)));
      raw[at + 2 + j] = q0 | (q1 << 4);
    }
  },
  Q4_1: (x, i, raw, view, at) => {
    const [min, max] = minMax(x, i, QK);
    const d = Math.fround((max - min) / 15);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    view.setUint16(at, f32ToHalf(d), true);
    view.setUint16(at + 2, f32ToHalf(min), true);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(
        15,
        Math.trunc(Math.fround(Math.fround(Math.fround(x[i + j]! - min) * id) + 0.5)),
      );
      const q1 = Math.min(
        15,
        Math.trunc(Math.fround(Math.fround(Math.fround(x[i + j + 16]! - min) * id) + 0.5)),
      );
      raw[at + 4 + j] = q0 | (q1 << 4);
    }
  },
  Q5_0: (x, i, raw, view, at) => {
    const max = signedAbsMax(x, i, QK);
    const d = Math.fround(max / -16);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    view.setUint16(at, f32ToHalf(d), true);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, Math.trunc(Math.fround(Math.fround(x[i + j]! * id) + 16.5)));
      const q1 = Math.min(31, Math.trunc(Math.fround(Math.fround(x[i + j + 16]! * id) + 16.5)));
      raw[at + 6 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= ((q0 >> 4) << j) | ((q1 >> 4) << (j + 16));
    }
    view.setUint32(at + 2, qh >>> 0, true);
  },
  Q5_1: (x, i, raw, view, at) => {
    const [min, max] = minMax(x, i, QK);
    const d = Math.fround((max - min) / 31);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    view.setUint16(at, f32ToHalf(d), true);
    view.setUint16(at + 2, f32ToHalf(min), true);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(
        31,
        Math.trunc(Math.fround(Math.fround(Math.fround(x[i + j]! - min) * id) + 0.5)),
      );
      const q1 = Math.min(
        31,
        Math.trunc(Math.fround(Math.fround(Math.fround(x[i + j + 16]! - min) * id) + 0.5)),
      );
      raw[at + 8 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= ((q0 >> 4) << j) | ((q1 >> 4) << (j + 16));
    }
    view.setUint32(at + 4, qh >>> 0, true);
  },
  Q8_0: (x, i, raw, view, at) => {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[i + j]!));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    view.setUint16(at, f32ToHalf(d), true);
    for (let j = 0; j < QK; j++) {
      raw[at + 2 + j] = roundHalfAway(Math.fround(x[i + j]! * id)) & 0xff; // roundf
    }
  },
  Q4_K: (x, i, raw, view, at) => quantizeKWithMins(x, i, raw, view, at, 15, -1, 0.1, 20),
  Q5_K: (x, i, raw, view, at) => quantizeKWithMins(x, i, raw, view, at, 31, -0.5, 0.1, 15),
  Q6_K: quantizeQ6K,
};

/** The value of largest magnitude (the first one on ties), signed. */
function signedAbsMax(x: Float32Array, i: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[i + j]!;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

function minMax(x: Float32Array, i: number, n: number): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let j = 0; j < n; j++) {
    min = Math.min(min, x[i + j]!);
    max = Math.max(max, x[i + j]!);
  }
  return [min, max];
}

/** C's roundf: half away from zero. */
function roundHalfAway(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

/**
 * Q4_K (nmax 15) and Q5_K (nmax 31), quantize_row_q{4,5}_K_ref: each sub-block of 32 gets a
 * scale and a min by make_qkx2_quants (weights av_x + |x|), the eight scales and eight mins are
 * quantized to 6 bits against the super-block's d = max scale / 63 and dmin = max min / 63,
 * then every value is requantized with the stored (rounded) scale and min.
 */
function quantizeKWithMins(
  x: Float32Array,
  i: number,
  raw: Uint8Array,
  view: DataView,
  at: number,
  nmax: number,
  rmin: number,
  rdelta: number,
  nstep: number,
): void {
  const L = new Uint8Array(QK_K);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  const weights = new Float32Array(32);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const o = i + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[o + l]! * x[o + l]!));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = avX + Math.abs(x[o + l]!);
    const fit = makeQkx2Quants(x, o, nmax, weights, L, 32 * j, rmin, rdelta, nstep);
    scales[j] = fit.scale;
    mins[j] = fit.min;
    maxScale = Math.max(maxScale, fit.scale);
    maxMin = Math.max(maxMin, fit.min);
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  const sc = at + 4;
  raw.fill(0, sc, sc + 12);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(invScale * scales[j]!));
    const lm = Math.min(63, nearestInt(invMin * mins[j]!));
    if (j < 4) {
      raw[sc + j] = ls;
      raw[sc + j + 4] = lm;
    } else {
      raw[sc + j + 4] = (ls & 0x0f) | ((lm & 0x0f) << 4);
      raw[sc + j - 4]! |= (ls >> 4) << 6;
      raw[sc + j]! |= (lm >> 4) << 6;
    }
  }
  view.setUint16(at, f32ToHalf(f(maxScale / 63)), true);
  view.setUint16(at + 2, f32ToHalf(f(maxMin / 63)), true);
  const d = half(view, at);
  const dmin = half(view, at + 2);
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(raw, sc, j);
    const dj = Math.fround(d * s);
    if (dj === 0) continue;
    const mj = Math.fround(dmin * m);
    for (let l = 0; l < 32; l++) {
      L[32 * j + l] = clamp(nearestInt(f(x[i + 32 * j + l]! + mj) / dj), 0, nmax);
    }
  }
  if (nmax === 15) {
    const qs = at + 16;
    for (let n = 0; n < 4; n++) {
      for (let l = 0; l < 32; l++)
        raw[qs + 32 * n + l] = L[64 * n + l]! | (L[64 * n + 32 + l]! << 4);
    }
    return;
  }
  const qh = at + 16;
  const qs = at + 48;
  raw.fill(0, qh, qh + 32);
  for (let n = 0; n < 4; n++) {
    for (let l = 0; l < 32; l++) {
      const l1 = L[64 * n + l]!;
      const l2 = L[64 * n + 32 + l]!;
      raw[qh + l]! |= ((l1 >> 4) << (2 * n)) | ((l2 >> 4) << (2 * n + 1));
      raw[qs + 32 * n + l] = (l1 & 0x0f) | ((l2 & 0x0f) << 4);
    }
  }
}

/**
 * ggml's make_qkx2_quants: the affine fit x ≈ scale·l − min, l ∈ [0, nmax], min ≥ 0 (the
 * sub-block's minimum, never above 0), that minimises the weighted squared error over
 * nstep + 1 trial inverse scales (rmin + rdelta·k + nmax) / (max − min), each followed by the
 * weighted least-squares scale and offset for the levels it picked. L[lOff ..] gets the levels.
 * Every operation is rounded to f32 in ggml's order, so the result is ggml's to the bit.
 */
function makeQkx2Quants(
  x: Float32Array,
  o: number,
  nmax: number,
  weights: Float32Array,
  L: Uint8Array,
  lOff: number,
  rmin: number,
  rdelta: number,
  nstep: number,
): { scale: number; min: number } {
  const n = 32;
  let min = x[o]!;
  let max = x[o]!;
  let sumW = weights[0]!;
  let sumX = f(sumW * x[o]!);
  for (let k = 1; k < n; k++) {
    const v = x[o + k]!;
    min = Math.min(min, v);
    max = Math.max(max, v);
    sumW = f(sumW + weights[k]!);
    sumX = f(sumX + f(weights[k]! * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lOff, lOff + n);
    return { scale: 0, min: -min };
  }
  const range = f(max - min);
  let iscale = f(nmax / range);
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let k = 0; k < n; k++) {
    const l = clamp(nearestInt(iscale * f(x[o + k]! - min)), 0, nmax);
    L[lOff + k] = l;
    const diff = f(f(f(scale * l) + min) - x[o + k]!);
    bestError = f(bestError + f(weights[k]! * f(diff * diff)));
  }
  const aux = new Uint8Array(n);
  const rd = f(rdelta);
  for (let is = 0; is <= nstep; is++) {
    iscale = f(f(f(rmin + f(rd * is)) + nmax) / range);
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let k = 0; k < n; k++) {
      const l = clamp(nearestInt(iscale * f(x[o + k]! - min)), 0, nmax);
      aux[k] = l;
      const wl = f(weights[k]! * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[o + k]!));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let err = 0;
      for (let k = 0; k < n; k++) {
        const diff = f(f(f(thisScale * aux[k]!) + thisMin) - x[o + k]!);
        err = f(err + f(weights[k]! * f(diff * diff)));
      }
      if (err < bestError) {
        L.set(aux, lOff);
        bestError = err;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return { scale, min: -min };
}

/**
 * Q6_K, quantize_row_q6_K_ref: each sub-block of 16 gets a signed scale by make_qx_quants
 * (nmax 32, weights x²); the 16 scales are quantized to int8 against d = −max scale / 128 (the
 * scale of largest magnitude maps to −128, clamped to 127 on the other side); then every value
 * is requantized to l ∈ [−32, 31] with its stored scale and stored as l + 32.
 */
function quantizeQ6K(
  x: Float32Array,
  i: number,
  raw: Uint8Array,
  view: DataView,
  at: number,
): void {
  const L = new Uint8Array(QK_K);
  const scales = new Float32Array(16);
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    const s = makeQxQuants(x, i + 16 * ib, 32, L, 16 * ib);
    scales[ib] = s;
    if (Math.abs(s) > maxAbsScale) {
      maxAbsScale = Math.abs(s);
      maxScale = s;
    }
  }
  raw.fill(0, at, at + BLOCK_FORMATS.Q6_K.blockBytes);
  if (maxAbsScale < GROUP_MAX_EPS) return; // all zero: d = 0
  const iscale = f(-128 / maxScale);
  view.setUint16(at + 208, f32ToHalf(f(1 / iscale)), true);
  const sc = at + 192;
  for (let ib = 0; ib < 16; ib++)
    raw[sc + ib] = Math.min(127, nearestInt(iscale * scales[ib]!)) & 0xff;
  const d = half(view, at + 208);
  for (let j = 0; j < 16; j++) {
    const dj = Math.fround(d * int8(raw[sc + j]!));
    if (dj === 0) continue;
    for (let l = 0; l < 16; l++) {
      L[16 * j + l] = clamp(nearestInt(x[i + 16 * j + l]! / dj), -32, 31) + 32;
    }
  }
  for (let n = 0; n < 2; n++) {
    const ql = at + 64 * n;
    const qh = at + 128 + 32 * n;
    const v = 128 * n;
    for (let l = 0; l < 32; l++) {
      const q1 = L[v + l]!;
      const q2 = L[v + l + 32]!;
      const q3 = L[v + l + 64]!;
      const q4 = L[v + l + 96]!;
      raw[ql + l] = (q1 & 0x0f) | ((q3 & 0x0f) << 4);
      raw[ql + l + 32] = (q2 & 0x0f) | ((q4 & 0x0f) << 4);
      raw[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
}

const GROUP_MAX_EPS = 1e-15;

/**
 * ggml's make_qx_quants with rmse_type 1 and no importance weights (weights x²): levels
 * l ∈ [−nmax, nmax − 1] for inverse scales −(nmax + 0.1·k) / max, k = −9..9, keeping the
 * weighted least-squares scale Σwxl / Σwl² of the best; L gets l + nmax. Returns the scale.
 * Every operation is rounded to f32 in ggml's order.
 */
function makeQxQuants(
  x: Float32Array,
  o: number,
  nmax: number,
  L: Uint8Array,
  lOff: number,
): number {
  const n = 16;
  let max = 0;
  let amax = 0;
  for (let k = 0; k < n; k++) {
    const ax = Math.abs(x[o + k]!);
    if (ax > amax) {
      amax = ax;
      max = x[o + k]!;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lOff, lOff + n);
    return 0;
  }
  const levels = (iscale: number, store: boolean): [number, number] => {
    let sumlx = 0;
    let suml2 = 0;
    for (let k = 0; k < n; k++) {
      const v = x[o + k]!;
      const l = clamp(nearestInt(iscale * v), -nmax, nmax - 1);
      if (store) L[lOff + k] = l + nmax;
      const w = f(v * v);
      sumlx = f(sumlx + f(f(w * v) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = levels(f(-nmax / max), true);
  let scale = suml2 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  const tenth = f(0.1);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = f(-f(nmax + f(tenth * is)) / max);
    [sumlx, suml2] = levels(iscale, false);
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      levels(iscale, true);
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/** Rounds to f32: ggml's float arithmetic, one operation at a time. */
const f = Math.fround;

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
