/**
 * Finds the results under a folder: traces (trace.json), sweeps (sweep.json), lens reports (a
 * JSON file named after its lens, or any JSON whose top-level `lens` field names one), and the
 * figures beside them (NAME.vl.json, as report/plot.ts writes them). Nothing here knows what a
 * lens measures; report/sections.ts decides how each kind is drawn.
 *
 * Every result is checked against its unit's manifest (io/commit.ts, sizes only: a listing must
 * stay fast): one without a matching manifest (an interrupted write, a run mixed with another,
 * a folder from an older lmdyn) is listed with `refused` saying why, and is not drawn. Figures
 * are those the folder's manifests list (a stale figure of an earlier run is not shown).
 */
import { existsSync, lstatSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { LmdynError } from '../errors.js';
import { committedProblem, type Manifest } from '../io/commit.js';

/** Lens report files recognised by name (papers.md order), besides any JSON with a `lens` field. */
export const LENS_FILES = [
  'dmet.json',
  'sde.json',
  'gravity.json',
  'simplex.json',
  'coupling.json',
] as const;

export interface FoundResult {
  /** 'trace', 'sweep', or the lens name (the JSON's `lens` field, else its file name). */
  kind: string;
  /** Folder holding the result (absolute) and relative to the scanned root ('' for the root). */
  dir: string;
  rel: string;
  /** The result's JSON file (absolute). */
  file: string;
  /** The parsed JSON (a sweep's sweep.json, a trace's trace.json, a lens report). */
  json: Record<string, unknown>;
  /** Figures in the same folder: NAME.vl.json files (absolute), sorted by name. */
  plots: string[];
  /** Set on traces that are configurations of a sweep folder (the sweep draws them). */
  inSweep?: string;
  /** Why the result is not shown: its unit is not committed (one line naming the folder). */
  refused?: string;
}

export interface ScanOptions {
  /** Deepest folder level looked at below the root (default 6). */
  maxDepth?: number;
  /** JSON files bigger than this are skipped (default 64 MiB). */
  maxJsonBytes?: number;
}

const SKIP_DIRS = new Set(['node_modules', '.git']);

/** Every result under `root` (the root included), folders in sorted order. */
export function scanResults(root: string, options: ScanOptions = {}): FoundResult[] {
  const top = resolve(root);
  if (!existsSync(top) || !statSync(top).isDirectory()) {
    throw new LmdynError('not_found', `${root} is not a folder`);
  }
  const maxDepth = options.maxDepth ?? 6;
  const maxBytes = options.maxJsonBytes ?? 64 * 2 ** 20;
  const found: FoundResult[] = [];
  const walk = (dir: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return; // unreadable folder: nothing to show
    }
    const manifests = committedHere(dir, names);
    const listed = listedFiles(manifests);
    for (const m of manifests.values()) if (typeof m !== 'string') governed.add(dir);
    const plots = names
      .filter((n) => n.endsWith('.vl.json'))
      .map((n) => join(dir, n))
      .filter((p) => isFile(p) && shownFigure(p, listed)); // a symbolic link is never followed
    const rel = relative(top, dir);
    const add = (kind: string, name: string, json: Record<string, unknown>): void => {
      const unit = UNIT_OF[name] ?? name.slice(0, -'.json'.length);
      const m = manifests.get(unit);
      const refused =
        kind === 'figures'
          ? undefined
          : m === undefined
            ? (committedProblem(dir, unit, 'size') as string)
            : typeof m === 'string'
              ? m
              : undefined;
      found.push({
        kind,
        dir,
        rel,
        file: join(dir, name),
        json,
        plots,
        ...(refused ? { refused } : {}),
      });
    };
    for (const name of names) {
      if (!name.endsWith('.json') || name.endsWith('.vl.json') || name.endsWith('.manifest.json'))
        continue;
      const path = join(dir, name);
      if (!isFile(path) || statSync(path).size > maxBytes) continue;
      if (name === 'trace.json') {
        const json = readJson(path);
        if (json && json.format === 'lmdyn-trace') add('trace', name, json);
      } else if (name === 'sweep.json') {
        const json = readJson(path);
        if (json && Array.isArray(json.configs) && json.plan) add('sweep', name, json);
      } else if (name === 'run.json') {
        // a `lmdyn train` folder: its shape, schedule and tagged final losses
        const json = readJson(path);
        if (json && json.shape && json.optim && json.final) add('training', name, json);
      } else {
        const json = readJson(path);
        if (!json) continue;
        const lens = typeof json.lens === 'string' ? json.lens : null;
        if (lens) add(lens, name, json);
        else if ((LENS_FILES as readonly string[]).includes(name))
          add(name.slice(0, -'.json'.length), name, json);
      }
    }
    // figures with no result file beside them still get shown: with the lens report of the
    // folder above when there is one (a lens may keep its figures in a subfolder), else alone
    if (plots.length > 0 && !found.some((f) => f.dir === dir)) {
      const parent = found.find(
        (f) => f.dir === dirname(dir) && f.kind !== 'trace' && f.kind !== 'sweep',
      );
      if (parent && depth > 0) parent.plots = [...parent.plots, ...plots];
      else add('figures', '', {});
    }
    sharePlots(found.filter((f) => f.dir === dir));
    if (depth >= maxDepth) return;
    for (const name of names) {
      if (name.startsWith('.') || SKIP_DIRS.has(name)) continue;
      const path = join(dir, name);
      if (isDir(path)) walk(path, depth + 1);
    }
  };
  // folders holding a committed unit, and every file those units list (absolute paths)
  const governed = new Set<string>();
  const allListed = new Set<string>();
  const listedFiles = (manifests: Map<string, Manifest | string>): Set<string> => {
    for (const [, m] of manifests) {
      if (typeof m === 'string') continue;
      const at = (m as Manifest & { dir: string }).dir;
      for (const f of m.files) allListed.add(join(at, f.path));
    }
    return allListed;
  };
  /** A figure is shown when a unit lists it, or when no unit governs its folder or the one above. */
  const shownFigure = (path: string, listed: Set<string>): boolean =>
    listed.has(path) || (!governed.has(dirname(path)) && !governed.has(dirname(dirname(path))));
  walk(top, 0);
  markSweepConfigs(found);
  return found;
}

/** The result file each unit kind is found by, when it is not KIND.json. */
const UNIT_OF: Record<string, string> = { 'run.json': 'train' };

/** Each `KIND.manifest.json` in `dir`: its manifest when the unit matches it, else why not. */
function committedHere(dir: string, names: readonly string[]): Map<string, Manifest | string> {
  const out = new Map<string, Manifest | string>();
  for (const name of names) {
    if (!name.endsWith('.manifest.json')) continue;
    const kind = name.slice(0, -'.manifest.json'.length);
    const m = committedProblem(dir, kind, 'size');
    out.set(kind, typeof m === 'string' ? m : Object.assign(m, { dir }));
  }
  return out;
}

/**
 * When a folder holds several results (a lens that writes into a sweep folder), its figures
 * belong to the lens reports, not to the sweep or trace: each figure goes to the lens whose name
 * starts its file name, else to the first lens report.
 */
function sharePlots(here: FoundResult[]): void {
  const lenses = here.filter((f) => f.kind !== 'trace' && f.kind !== 'sweep');
  if (here.length < 2 || lenses.length === 0) return;
  const plots = here[0].plots;
  for (const f of here) f.plots = [];
  for (const path of plots) {
    const name = basename(path);
    const owner =
      lenses.find((f) => name.startsWith(`${f.kind}_`) || name.startsWith(`${f.kind}-`)) ??
      lenses[0];
    owner.plots.push(path);
  }
}

/** Traces listed in a sweep's configs are drawn by the sweep, not one by one. */
function markSweepConfigs(found: FoundResult[]): void {
  for (const sweep of found.filter((f) => f.kind === 'sweep')) {
    const configs = (sweep.json.configs as { dir?: unknown }[]).map((c) => String(c.dir));
    for (const f of found) {
      if (f.kind === 'trace' && configs.some((c) => resolve(sweep.dir, c) === f.dir))
        f.inSweep = sweep.rel;
    }
  }
}

function readJson(path: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** Symbolic links are not followed (a run folder never needs them; a loop would never end). */
function isDir(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
}
