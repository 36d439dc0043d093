/**
 * GGUF models (ggml docs/gguf.md): the loader, over its parts —
 * - gguf-reader.ts: the container (header, metadata values, tensor infos; every length bounded);
 * - gguf-metadata.ts: typed metadata reads;
 * - gguf-tensors.ts: tensor data (Q8_0 kept as Q8_0, other formats dequantized or requantized);
 * - gguf-archs.ts: the architecture table (metadata prefix, tensor names, rotary row order, norms);
 * - gguf-tokenizer.ts: the embedded vocabulary.
 * Tensors of the block formats in gguf-quants.ts are read (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0, Q4_K, Q5_K, Q6_K).
 */
import { closeSync } from 'node:fs';
import { ggufArchitecture, ggufConfig, ggufWeights } from './gguf-archs.js';
import { GgufMetadata, summariseMetadata } from './gguf-metadata.js';
import { parseHeader } from './gguf-reader.js';
import { GgufTensors, type GgufLoadOptions } from './gguf-tensors.js';
import { ggufTokenizer } from './gguf-tokenizer.js';
import { openForReading } from './llama2c.js';
import type { LoadedModel } from '../model/types.js';

export { readGgufHeader, ValueType } from './gguf-reader.js';
export type { GgufHeader, GgufTensorInfo, GgufValue } from './gguf-reader.js';
export { readGgufTensor } from './gguf-tensors.js';
export type { GgufLoadOptions } from './gguf-tensors.js';

/** Loads a GGUF file of an architecture in gguf-archs.ts: config, weights and the embedded tokenizer. */
export function loadGguf(path: string, options: GgufLoadOptions = {}): LoadedModel {
  const fd = openForReading(path);
  try {
    const header = parseHeader(fd, path);
    const meta = new GgufMetadata(header.metadata, path);
    const arch = ggufArchitecture(meta);
    const tensors = new GgufTensors(fd, path, header.tensors, options);
    const config = ggufConfig(arch, meta, tensors);
    const weights = ggufWeights(arch, config, tensors);
    const tokenizer = ggufTokenizer(meta);
    const tensorTypes: Record<string, number> = {};
    for (const t of header.tensors) tensorTypes[t.typeName] = (tensorTypes[t.typeName] ?? 0) + 1;
    return {
      config,
      weights,
      tokenizer,
      source: {
        format: 'gguf',
        path,
        hubId: null,
        sha256: null,
        details: {
          version: header.version,
          alignment: header.alignment,
          dataOffset: header.dataOffset,
          tensorCount: header.tensors.length,
          tensorTypes,
          metadata: summariseMetadata(header.metadata),
        },
      },
    };
  } finally {
    closeSync(fd);
  }
}
