/**
 * The texts the gravity lens ships (data/, provenance in data/README.md): the reference corpus
 * for densities and the paraphrase sets for sensitivity. Found at run time relative to this
 * module: dist/src/io → ../../../data (compiled), src/io → ../../data.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LmdynError } from '../errors.js';

/** The package's data/ folder (absolute path, ending without a separator). */
export function dataDir(): string {
  for (const rel of ['../../../data/', '../../data/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, 'corpus', 'reference.txt'))) return dir.replace(/[\\/]$/, '');
  }
  throw new LmdynError('not_found', 'the lmdyn data/ folder is missing from this installation');
}

/** data/corpus/reference.txt: the default reference corpus, one prompt per line. */
export function defaultReferencePath(): string {
  return join(dataDir(), 'corpus', 'reference.txt');
}

/** data/paraphrases/{tinystories,general}.jsonl. */
export function defaultParaphrasePaths(): string[] {
  return ['tinystories.jsonl', 'general.jsonl'].map((f) => join(dataDir(), 'paraphrases', f));
}

/**
 * Reads a JSONL file of {"id", "paraphrases": [≥ 2 strings], "domain"?} lines into the gravity
 * lens's ParaphraseSets (lenses/gravity/sensitivity.ts).
 */
export function readParaphrases(
  path: string,
): { id: string; domain: string; paraphrases: string[] }[] {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch {
    throw new LmdynError('not_found', `cannot read paraphrase file ${path}`);
  }
  const fallback = basename(path, extname(path));
  const sets: { id: string; domain: string; paraphrases: string[] }[] = [];
  raw.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new LmdynError('bad_argument', `${where}: not a JSON line`);
    }
    const o = (v ?? {}) as { id?: unknown; domain?: unknown; paraphrases?: unknown };
    const list = o.paraphrases;
    if (
      !Array.isArray(list) ||
      list.length < 2 ||
      list.some((s) => typeof s !== 'string' || s.trim() === '')
    ) {
      throw new LmdynError(
        'bad_argument',
        `${where}: "paraphrases" must be a list of at least 2 non-empty strings`,
      );
    }
    sets.push({
      id: typeof o.id === 'string' ? o.id : `${fallback}-${sets.length + 1}`,
      domain: typeof o.domain === 'string' ? o.domain : fallback,
      paraphrases: list as string[],
    });
  });
  if (sets.length === 0) throw new LmdynError('bad_argument', `${path} holds no paraphrase set`);
  return sets;
}
