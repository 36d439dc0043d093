import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { compare, DIR, PROBE_TEXT, wideRandomLlama } from '../../bench/gguf-crosscheck.js';
import { llamaCppPeer } from '../../bench/peer-check.js';
import type { GgmlTypeName } from '../../src/io/gguf-quants.js';
import { convertToGguf, writeGgufModel } from '../../src/io/gguf-write.js';
import { loadLlama2cTokenizer } from '../../src/io/llama2c-tokenizer.js';
import { model } from '../helpers/paths.js';

// llama.cpp itself (node-llama-cpp, installed on demand into .cache/peers/ from the npm
// registry) reads the GGUF files lmdyn writes. Off by default: the main suite downloads nothing.
const enabled = process.env.LMDYN_PEER_TESTS === '1';
const skip = enabled
  ? false
  : 'set LMDYN_PEER_TESTS=1 to install node-llama-cpp@3.21.1 and run llama.cpp';

test(
  'llama.cpp decodes every block type lmdyn writes as lmdyn does (|Δ log p| < 1e-4)',
  { skip },
  async (t) => {
    const peer = await llamaCppPeer();
    if (!peer.ok) return t.skip(`llama.cpp peer unavailable: ${peer.reason}`);
    mkdirSync(DIR, { recursive: true });
    const tok = loadLlama2cTokenizer(model('stories260K', 'tok512.bin'));
    // every layer writes zeros, so no activation is quantized on either side (bench/gguf-crosscheck.ts)
    const probe = wideRandomLlama(11, { silentLayers: true });
    const f32 = join(DIR, 'test-probe-F32.gguf');
    for (const type of ['F32', 'Q8_0', 'Q4_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'] as GgmlTypeName[]) {
      const out = join(DIR, `test-probe-${type}.gguf`);
      const w = writeGgufModel(
        out,
        { ...probe, tokenizer: tok },
        { type: 'F32', embeddingType: type },
      );
      const r = await compare(peer.peer, 'probe', out, f32, w, PROBE_TEXT, 16);
      assert.ok(r.maxLogProbDiff < 1e-4, `${type}: llama.cpp vs lmdyn ${r.maxLogProbDiff}`);
      if (type !== 'F32')
        assert.ok(
          r.quantizationEffect > 100 * r.maxLogProbDiff,
          `${type}: ${r.quantizationEffect}`,
        );
    }
  },
);

test(
  'llama.cpp continues stories260K greedily as lmdyn does from lmdyn’s F32 and Q8_0 GGUF',
  { skip },
  async (t) => {
    const peer = await llamaCppPeer();
    if (!peer.ok) return t.skip(`llama.cpp peer unavailable: ${peer.reason}`);
    mkdirSync(DIR, { recursive: true });
    const f32 = join(DIR, 'test-stories-F32.gguf');
    for (const type of ['F32', 'Q8_0'] as GgmlTypeName[]) {
      const out = join(DIR, `test-stories-${type}.gguf`);
      const w = await convertToGguf(model('stories260K', 'stories260K.bin'), out, { type });
      const r = await compare(peer.peer, 'stories260K', out, f32, w, 'Once upon a time', 64);
      assert.equal(r.agree, 64, `${type}: ${r.lmdyn.join(' ')} vs ${r.llamaCpp.join(' ')}`);
    }
  },
);
