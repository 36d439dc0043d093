/**
 * Telling a model path's format before loading it: a Hugging Face folder (config.json), GGUF
 * (magic), llama2.c (magic "ak42", or the legacy header that has none), and the one-line refusals
 * of folders and files that are none of these. load.ts and resident.ts both ask it.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LmdynError } from '../errors.js';

/** What a model can be, for error messages. */
export const EXPECTED_FORMATS =
  'expected a llama2.c .bin checkpoint, a .gguf file, a Hugging Face folder with config.json, or a hub id (hf:owner/name, or bare: Qwen/Qwen2.5-0.5B, gpt2)';

export type DetectedFormat = 'llama2c' | 'gguf' | 'hf-folder';

/**
 * Which loader a path needs: folders with config.json are HF; files are told by magic (GGUF,
 * llama2.c's ak42) or, for legacy llama2.c checkpoints that have none, by not being text.
 */
export function detectFormat(path: string): DetectedFormat {
  const st = statSync(path);
  if (st.isDirectory()) {
    if (existsSync(join(path, 'config.json'))) return 'hf-folder';
    throw new LmdynError(
      'not_found',
      `${path} is a folder without config.json or one model file (${EXPECTED_FORMATS})`,
    );
  }
  if (!st.isFile()) {
    // a FIFO or a device would block the read or never end
    throw new LmdynError('bad_argument', `${path} is not a regular file or folder`);
  }
  const head = readHead(path, LEGACY_HEADER_BYTES);
  if (head.length >= 4 && head.toString('latin1', 0, 4) === 'GGUF') return 'gguf';
  if (/^[\t\n\r ]*[{[][\x20-\x7e\t\n\r]*$/.test(head.toString('latin1'))) {
    throw new LmdynError(
      'bad_format',
      `${path} is a JSON file, not model weights; give a llama2.c .bin, a .gguf file, or a Hugging Face folder (config.json + *.safetensors)`,
    );
  }
  if (head.length >= 4 && head.readUInt32LE(0) !== LLAMA2C_MAGIC && isText(head)) {
    throw new LmdynError(
      'bad_format',
      `${path} is a text file, not a llama2.c checkpoint (${EXPECTED_FORMATS})`,
    );
  }
  return 'llama2c';
}

/** Bytes of llama2.c's legacy header (7 × int32). */
const LEGACY_HEADER_BYTES = 28;

/** llama2.c's versioned checkpoints start with uint32 0x616b3432 ("ak42"), little-endian. */
const LLAMA2C_MAGIC = 0x616b3432;

export function hasLlama2cMagic(path: string): boolean {
  const head = readHead(path, 4);
  return head.length === 4 && head.readUInt32LE(0) === LLAMA2C_MAGIC;
}

/** Printable ASCII, tabs and newlines only (a legacy llama2.c header is 7 small int32s: zeros). */
function isText(head: Buffer): boolean {
  for (const b of head)
    if (!((b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d)) return false;
  return true;
}

function readHead(path: string, n: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
