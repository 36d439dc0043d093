import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { ROOT } from './helpers/paths.js';

// The layering of src/ (docs/architecture.md), checked by reading every file's import lines
// the way farm-studio checks a tree: the reference is the source text itself.
//
// A unit is a folder directly under src/ (src/lenses/* counts as one unit, `lenses`) or a
// top-level file by its stem. A unit may import units of its own rank or lower, never higher.

const RANK: Record<string, number> = {
  // leaves: typed errors, the version string, the papers' citation table
  errors: 0,
  version: 0,
  papers: 0,
  // the kernels and the matrix types they work on
  tensor: 1,
  // what the kernels compose into: the transformer, tokenizers, statistics, small networks
  model: 2,
  tokenizer: 2,
  stats: 2,
  nn: 2,
  // files in and out (loaders, writers, run-folder commits); sampling and the generation loop;
  // TransformerLens's vocabulary over the forward pass
  io: 3,
  decode: 3,
  hooked: 3,
  // the library's front door: open a model from a path or hub id, generate text
  api: 4,
  // run folders: recording, sweeps, the run-folder store
  trace: 5,
  // the five papers' measurements: pure functions of traces, models and values
  lenses: 6,
  // jobs that write whole run folders with their figures: rendering lens reports, the queue that
  // runs lens units, the results pages, training (checkpoints, loss table and loss curve)
  report: 7,
  queue: 7,
  results: 7,
  train: 7,
  // the thin clients
  cli: 8,
  server: 8,
  // the package entry point re-exports everything
  index: 9,
};

/** Units of one rank that still may not import the other (the server is not a client of the CLI). */
const FORBIDDEN_PAIRS: [string, string][] = [['server', 'cli']];

/** Imports a lens file may not make even though they point downward (a lens does no I/O). */
const LENS_FORBIDDEN = [
  /^node:fs(\/promises)?$/,
  /^fs(\/promises)?$/,
  /^src\/io\//,
  /^src\/report\//,
  /^src\/api\.ts$/,
];

/**
 * Today's violations, each with why it stays. The test fails when one disappears as well as when
 * one appears, so the list shrinks as they are fixed. Keys: "from -> to" (files, or a module).
 */
const ALLOWED: Record<string, string> = {
};

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

// import … from '…', export … from '…', import '…', import('…'), new URL('…', import.meta.url)
// (the last names a worker's entry file: a dependency for layering, but a separate module graph,
// so it is left out of the cycle check)
const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|new URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url/g;

/** Every import of a file: relative ones resolved to repository paths (src/x/y.ts), others as written. */
export function importsOf(file: string, text: string, workers = true): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    if (!workers && m[3] !== undefined) continue;
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec.startsWith('.')) {
      out.push(spec);
      continue;
    }
    let target = normalize(join(dirname(file), spec));
    if (target.endsWith('.js')) target = target.slice(0, -3) + '.ts';
    out.push(target);
  }
  return out;
}

function unitOf(file: string): string | null {
  const parts = file.split('/');
  if (parts[0] !== 'src') return null;
  if (parts.length === 2) return parts[1].replace(/\.ts$/, '');
  return parts[1];
}

function graph(workers = true): Map<string, string[]> {
  const files = walk(join(ROOT, 'src')).map((f) => relative(ROOT, f).split('\\').join('/'));
  const g = new Map<string, string[]>();
  for (const f of files) g.set(f, importsOf(f, readFileSync(join(ROOT, f), 'utf8'), workers));
  return g;
}

/** Strongly connected components with more than one file (or a file importing itself): Tarjan. */
function cycles(g: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

function violations(g: Map<string, string[]>): string[] {
  const out = new Set<string>();
  for (const [file, imports] of g) {
    const from = unitOf(file)!;
    for (const target of imports) {
      if (from === 'lenses' && LENS_FORBIDDEN.some((re) => re.test(target))) {
        out.add(`${file} -> ${target}`);
        continue;
      }
      const to = unitOf(target);
      if (to === null || to === from) continue;
      if (!(to in RANK)) continue; // outside src/ (web/) is checked below
      if (RANK[to] > RANK[from] || FORBIDDEN_PAIRS.some(([a, b]) => a === from && b === to)) {
        out.add(`${file} -> ${target}`);
      }
    }
  }
  return [...out].sort();
}

test('the import reader finds static, type-only, re-export and dynamic imports', () => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from '../model/b.js';",
    "export { c } from './c.js';",
    "export * from '../errors.js';",
    "import {\n  d,\n  e,\n} from 'node:fs';",
    "const w = new URL('./worker.js', import.meta.url);",
    "const m = await import('./late.js');",
    'const s = \'import x from "./not-an-import.js"\';',
  ].join('\n');
  assert.deepEqual(importsOf('src/trace/x.ts', text), [
    'src/trace/a.ts',
    'src/model/b.ts',
    'src/trace/c.ts',
    'src/errors.ts',
    'node:fs',
    'src/trace/worker.ts',
    'src/trace/late.ts',
  ]);
});

test('every unit under src/ has a rank in the layer order (docs/architecture.md)', () => {
  const units = new Set([...graph().keys()].map((f) => unitOf(f)!));
  const missing = [...units].filter((u) => !(u in RANK));
  assert.deepEqual(missing, [], 'give these a rank in RANK and in docs/architecture.md');
});

test('no import points from a lower layer to a higher one, and no lens does I/O (allow-list empty or reasoned)', () => {
  const found = violations(graph());
  const extra = found.filter((v) => !(v in ALLOWED));
  const fixed = Object.keys(ALLOWED).filter((v) => !v.startsWith('cycle: ') && !found.includes(v));
  assert.deepEqual(extra, [], 'new layering violations');
  assert.deepEqual(fixed, [], 'fixed violations still on the allow-list: remove them');
});

test('no import cycles among the files under src/ (allow-list empty or reasoned)', () => {
  const found = cycles(graph(false)).map((c) => `cycle: ${c.join(' | ')}`);
  const allowed = Object.keys(ALLOWED).filter((k) => k.startsWith('cycle: '));
  assert.deepEqual(
    found.filter((c) => !(c in ALLOWED)),
    [],
    'new import cycles',
  );
  assert.deepEqual(
    allowed.filter((c) => !found.includes(c)),
    [],
    'fixed cycles still on the allow-list: remove them',
  );
});
