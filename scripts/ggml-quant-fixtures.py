#!/usr/bin/env python3
"""Reference blocks for test/io/gguf-quants.test.ts, made by ggml itself.

Loads libggml-base.so from the llama.cpp binary that node-llama-cpp ships (bench/peer.ts installs
it into .cache/peers/ on demand) with ctypes, quantizes a seeded set of 1024 f32 values with
ggml's reference quantizers (quantize_row_*_ref, ggml_fp32_to_fp16_row, ggml_fp32_to_bf16_row_ref)
and dequantizes the blocks with ggml's dequantize_row_*. Writes into test/fixtures/ggml-quants/:
  input.f32            the 1024 values (little-endian f32)
  TYPE.blocks          ggml's bytes for TYPE
  TYPE.values.f32      ggml's dequantization of those bytes
  manifest.json        the library used, its sha256, and the sha256 of every file

Usage: /usr/bin/python3 scripts/ggml-quant-fixtures.py [path/to/libggml-base.so]
"""
import ctypes
import glob
import hashlib
import json
import math
import os
import random
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'ggml-quants')
N = 1024

# type: (block size, block bytes, quantize symbol, dequantize symbol)
TYPES = {
    'F16': (1, 2, 'ggml_fp32_to_fp16_row', None),
    'BF16': (1, 2, 'ggml_fp32_to_bf16_row_ref', None),
    'Q4_0': (32, 18, 'quantize_row_q4_0_ref', 'dequantize_row_q4_0'),
    'Q4_1': (32, 20, 'quantize_row_q4_1_ref', 'dequantize_row_q4_1'),
    'Q5_0': (32, 22, 'quantize_row_q5_0_ref', 'dequantize_row_q5_0'),
    'Q5_1': (32, 24, 'quantize_row_q5_1_ref', 'dequantize_row_q5_1'),
    'Q8_0': (32, 34, 'quantize_row_q8_0_ref', 'dequantize_row_q8_0'),
    'Q4_K': (256, 144, 'quantize_row_q4_K_ref', 'dequantize_row_q4_K'),
    'Q5_K': (256, 176, 'quantize_row_q5_K_ref', 'dequantize_row_q5_K'),
    'Q6_K': (256, 210, 'quantize_row_q6_K_ref', 'dequantize_row_q6_K'),
}


def values():
    """Four 256-value super-blocks: weight-like Gaussian with outliers, all positive, a narrow
    band around a non-zero mean, and a wide range with one all-zero 32-value block."""
    rng = random.Random(20261207)
    x = [rng.gauss(0, 0.02) for _ in range(256)]
    for _ in range(6):
        x[rng.randrange(256)] = rng.uniform(-0.3, 0.3)
    x += [abs(rng.gauss(0, 0.05)) for _ in range(256)]
    x += [0.5 + rng.gauss(0, 0.01) for _ in range(256)]
    wide = [rng.uniform(-4, 4) * 10 ** rng.uniform(-3, 0) for _ in range(256)]
    wide[64:96] = [0.0] * 32
    x += wide
    return [struct.unpack('<f', struct.pack('<f', v))[0] for v in x]  # exactly f32


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    lib_path = sys.argv[1] if len(sys.argv) > 1 else (
        glob.glob(os.path.join(ROOT, '.cache', 'peers', 'node_modules', '@node-llama-cpp', '*', 'bins', '*', 'libggml-base.so')) or [None])[0]
    if not lib_path:
        sys.exit('no libggml-base.so: run `npm run bench:gguf` once (it installs node-llama-cpp into .cache/peers/)')
    lib = ctypes.CDLL(lib_path)
    os.makedirs(OUT, exist_ok=True)
    x = values()
    xs = (ctypes.c_float * N)(*x)
    files = {}

    def write(name, data):
        path = os.path.join(OUT, name)
        with open(path, 'wb') as f:
            f.write(data)
        files[name] = sha256(path)

    write('input.f32', struct.pack('<%df' % N, *x))
    for name, (bs, bb, q, dq) in TYPES.items():
        blocks = (ctypes.c_uint8 * (N // bs * bb))()
        getattr(lib, q)(xs, blocks, ctypes.c_int64(N))
        out = (ctypes.c_float * N)()
        if dq:
            getattr(lib, dq)(blocks, out, ctypes.c_int64(N))
        elif name == 'F16':
            lib.ggml_fp16_to_fp32_row(blocks, out, ctypes.c_int64(N))
        else:
            lib.ggml_bf16_to_fp32_row(blocks, out, ctypes.c_int64(N))
        write(name + '.blocks', bytes(blocks))
        write(name + '.values.f32', bytes(out))
    nlc = os.path.join(ROOT, '.cache', 'peers', 'node_modules', 'node-llama-cpp', 'package.json')
    manifest = {
        'made_by': 'scripts/ggml-quant-fixtures.py',
        'library': os.path.relpath(lib_path, ROOT),
        'library_sha256': sha256(lib_path),
        'node_llama_cpp': json.load(open(nlc))['version'] if os.path.exists(nlc) else None,
        'values': N,
        'files': files,
    }
    with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')
    print('wrote', len(files), 'files to', os.path.relpath(OUT, ROOT))


if __name__ == '__main__':
    main()
