/**
 * sha256 of a model's weight file(s), for provenance in trace.json and lens reports.
 *
 * One file (llama2.c `.bin`, `.gguf`, a single `model.safetensors` or `pytorch_model.bin`): the
 * hex sha256 of that file, the value `sha256sum FILE` prints and the hub's LFS etag. A sharded
 * folder: the sha256 of the text made of one line `NAME<TAB>SHA256\n` per shard, shards in
 * name order (`sha256sum` of each shard gives the lines). Computed once per loaded model and
 * kept in `source.sha256`: hashing reads the whole file (about 1 s per GB).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LmdynError } from '../errors.js';
import type { ModelSource } from '../model/types.js';
import { WEIGHT_FILES } from './hf.js';

const CHUNK = 1 << 22;

/** Hex sha256 of one file, read in 4 MiB chunks. */
export function fileSha256(path: string): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      hash.update(n === CHUNK ? buf : buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** The weight files behind a source, in the order the fingerprint uses. */
export function weightFiles(source: ModelSource): string[] {
  if (source.format !== 'safetensors') return [source.path];
  if (!statSync(source.path).isDirectory()) return [source.path];
  // The file the loader read: the first of WEIGHT_FILES present (hf.ts).
  const found = WEIGHT_FILES.find((f) => existsSync(join(source.path, f))) ?? WEIGHT_FILES[0];
  if (found.endsWith('.index.json')) {
    const map =
      (
        JSON.parse(readFileSync(join(source.path, found), 'utf8')) as {
          weight_map?: Record<string, string>;
        }
      ).weight_map ?? {};
    return [...new Set(Object.values(map))].sort().map((f) => join(source.path, f));
  }
  return [join(source.path, found)];
}

/**
 * The weights' sha256 (see the module comment), memoised in `source.sha256`. Null for a model
 * built in memory (no path) or whose files are gone since loading.
 */
export function weightsSha256(source: ModelSource): string | null {
  if (source.sha256 !== null) return source.sha256;
  if (source.path === '') return null;
  let files: string[];
  try {
    files = weightFiles(source);
    if (!files.every((f) => existsSync(f))) return null;
  } catch {
    return null;
  }
  try {
    if (files.length === 1) {
      source.sha256 = fileSha256(files[0]);
    } else {
      const lines = files.map(
        (f) => `${f.slice(source.path.length).replace(/^[\\/]/, '')}\t${fileSha256(f)}\n`,
      );
      source.sha256 = createHash('sha256').update(lines.join('')).digest('hex');
    }
  } catch (e) {
    throw new LmdynError(
      'io',
      `cannot read the weights to fingerprint them: ${(e as Error).message}`,
    );
  }
  return source.sha256;
}
