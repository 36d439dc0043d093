/**
 * One commit protocol for every output folder, so nothing half-written ever looks whole.
 *
 * A unit is the set of files one run writes (a trace, a sweep, a lens report with its tables and
 * figures, a report page, a training run). It is described by `<KIND>.manifest.json` beside its
 * files: every file's relative path, size and sha256, and `complete: true`. The manifest is
 * renamed in last, so a unit without one (or whose files do not match it) is unfinished, and
 * every reader refuses it through `requireCommitted` with one line naming the folder.
 *
 * Two ways to write a unit:
 *  - `commitFolder(dir, kind, fill)`: the unit owns its folder (a trace, a sweep configuration).
 *    `fill` writes into a temporary sibling `.NAME.tmp-PID-R`, the manifest is written there last,
 *    and the sibling is renamed to `dir`. With `force` an existing `dir` is first renamed aside
 *    (`.NAME.old-PID-R`), then removed: the folder is replaced as a whole, never mixed.
 *  - `commitBeside(dir, kind, fill)`: the unit shares its folder with others (a lens written into
 *    the trace or sweep folder it read). `fill` writes into `dir/.KIND.tmp-PID-R/`; then the old
 *    manifest is removed (the unit reads as unfinished from here on), the old unit's files are
 *    removed, the new ones renamed in, and the manifest renamed in last.
 *  - `sealUnit(dir, kind, files)` writes the manifest of files already in place (a sweep, whose
 *    configurations are committed one by one and which is sealed when all are there).
 *
 * Temporaries of killed runs (`.NAME.tmp-PID-…`, `.NAME.old-PID-…`, `FILE.tmp-PID-…`) whose
 * process is gone are removed by the next commit into the same folder.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { LmdynError } from '../errors.js';
import { VERSION } from '../version.js';
import { ioError, writeFileAtomic } from './atomic.js';

export const MANIFEST_FORMAT = 'lmdyn-manifest';

export interface ManifestFile {
  path: string; // relative to the unit's folder, '/'-separated
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  kind: string;
  lmdyn: string;
  files: ManifestFile[];
  complete: true;
}

/** How a reader checks a unit: sizes only (listings, resume), or sizes and sha256 (analysis). */
export type Verify = 'size' | 'full';

export const manifestName = (kind: string): string => `${kind}.manifest.json`;

/** How to make a unit again, for the refusal of a folder from an older lmdyn or a killed run. */
const REGENERATE: Record<string, string> = {
  trace: 'record it again with lmdyn trace … --out DIR --force',
  sweep: 're-run the same lmdyn sweep (it finishes what is missing)',
  train: 'train it again with lmdyn train … --force',
};
const regenerate = (kind: string): string =>
  REGENERATE[kind] ?? `run lmdyn analyze ${kind} (or lmdyn ${kind}) again with --force`;

export interface CommitOptions {
  /** Replace an existing unit (commitFolder: the whole folder) instead of refusing. */
  force?: boolean;
}

/**
 * Writes a unit that owns folder `dir`: `fill` gets the temporary folder to write into. A
 * non-empty `dir` is refused unless `force`, then replaced as a whole. Returns the manifest.
 */
export async function commitFolder(
  dir: string,
  kind: string,
  fill: (tmp: string) => void | Promise<void>,
  options: CommitOptions = {},
): Promise<Manifest> {
  const { target, tmp } = stageFolder(dir, options);
  let manifest: Manifest;
  try {
    await fill(tmp);
    manifest = writeManifest(tmp, kind, listFiles(tmp));
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  swapIn(tmp, target, options.force ?? false);
  return manifest;
}

/** The synchronous form of commitFolder, for writers that are synchronous (traces). */
export function commitFolderSync(
  dir: string,
  kind: string,
  fill: (tmp: string) => void,
  options: CommitOptions = {},
): Manifest {
  const { target, tmp } = stageFolder(dir, options);
  let manifest: Manifest;
  try {
    fill(tmp);
    manifest = writeManifest(tmp, kind, listFiles(tmp));
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  swapIn(tmp, target, options.force ?? false);
  return manifest;
}

/** commitFolder's first step: clean stale temporaries, refuse an occupied target, make the staging sibling. */
function stageFolder(dir: string, options: CommitOptions): { target: string; tmp: string } {
  const target = resolve(dir);
  const parent = dirname(target);
  const name = basename(target);
  ensureDir(parent);
  cleanStale(parent, name);
  refuseOccupied(target, options.force ?? false);
  const tmp = join(parent, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  ensureDir(tmp);
  return { target, tmp };
}

/**
 * Writes a unit into folder `dir` beside other units (created if missing): `fill` gets a staging
 * folder and writes the unit's files there under their final relative names. An earlier unit of
 * the same kind is replaced as a whole (its files, listed by its manifest, are removed).
 * Returns the committed files' absolute paths, in the order written.
 */
export async function commitBeside(
  dir: string,
  kind: string,
  fill: (stage: string) => void | Promise<void>,
): Promise<string[]> {
  const root = resolve(dir);
  ensureDir(root);
  cleanStale(root, kind);
  const stage = join(root, `.${kind}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  ensureDir(stage);
  let files: ManifestFile[];
  try {
    await fill(stage);
    files = listFiles(stage);
    writeManifest(stage, kind, files);
  } catch (err) {
    rmSync(stage, { recursive: true, force: true });
    throw err;
  }
  const manifestPath = join(root, manifestName(kind));
  const old = readManifestQuietly(manifestPath);
  rmSync(manifestPath, { force: true }); // from here the unit reads as unfinished
  const keep = new Set(files.map((f) => f.path));
  for (const f of old?.files ?? []) {
    if (!keep.has(f.path) && safeRelative(f.path)) removeFile(root, f.path);
  }
  try {
    for (const f of files) {
      const to = join(root, f.path);
      ensureDir(dirname(to));
      if (existsSync(to) && lstatSync(to).isDirectory()) {
        throw new LmdynError('io', `cannot write ${to}: a folder of that name is in the way`);
      }
      renameSync(join(stage, f.path), to);
    }
    renameSync(join(stage, manifestName(kind)), manifestPath);
  } catch (err) {
    throw err instanceof LmdynError ? err : ioError(err, root);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return files.map((f) => join(root, f.path));
}

/** Writes the manifest of files already in `dir` (relative paths), renamed in last. */
export function sealUnit(dir: string, kind: string, paths: readonly string[]): Manifest {
  const root = resolve(dir);
  const files = paths.map((p) => describe(root, p));
  return writeManifest(root, kind, files);
}

/**
 * Seals every file now under `dir` (recursively, but not temporaries, other units' manifests or
 * what `skip` names, relative paths) as one unit: for a folder written over a long run that
 * resumes in place (a training run), sealed when the run ends.
 */
export function sealFolder(
  dir: string,
  kind: string,
  skip: (rel: string) => boolean = () => false,
): Manifest {
  const root = resolve(dir);
  const files = listFiles(root).filter(
    (f) =>
      !skip(f.path) &&
      !f.path.endsWith('.manifest.json') &&
      !f.path.split('/').some((part) => stalePid(part) !== null),
  );
  return writeManifest(root, kind, files);
}

/** Removes a unit's manifest (it reads as unfinished again), e.g. before a sweep grows. */
export function unsealUnit(dir: string, kind: string): void {
  rmSync(join(resolve(dir), manifestName(kind)), { force: true });
}

/**
 * The reader check: the unit's manifest exists, is complete and every file it lists has its
 * size (and with 'full', its sha256). Throws a one-line LmdynError naming the folder.
 */
export function requireCommitted(dir: string, kind: string, verify: Verify = 'full'): Manifest {
  const problem = committedProblem(dir, kind, verify);
  if (typeof problem === 'string') throw new LmdynError('bad_format', problem);
  return problem;
}

/** True when `dir` holds a committed, matching unit of `kind`. */
export function isCommitted(dir: string, kind: string, verify: Verify = 'size'): boolean {
  return typeof committedProblem(dir, kind, verify) !== 'string';
}

/** The manifest, or why the unit is refused (a one-line message naming the folder). */
export function committedProblem(dir: string, kind: string, verify: Verify): Manifest | string {
  const root = resolve(dir);
  const path = join(root, manifestName(kind));
  if (!existsSync(path)) {
    return `${root} holds no complete ${kind} (no ${manifestName(kind)}: an unfinished or interrupted write, or a folder from an older lmdyn); ${regenerate(kind)}`;
  }
  const manifest = readManifestQuietly(path);
  if (!manifest || manifest.kind !== kind || manifest.complete !== true) {
    return `${path} is not a complete ${kind} manifest; ${regenerate(kind)}`;
  }
  for (const f of manifest.files) {
    if (!safeRelative(f.path)) return `${path} lists a file outside its folder: '${f.path}'`;
    const file = join(root, f.path);
    let size: number;
    try {
      const st = lstatSync(file);
      if (!st.isFile()) return `${root}: ${f.path} is not a file; ${regenerate(kind)}`;
      size = st.size;
    } catch {
      return `${root}: ${f.path} is missing (the ${kind} there is incomplete); ${regenerate(kind)}`;
    }
    if (size !== f.bytes) {
      return `${root}: ${f.path} has ${size} bytes, its manifest says ${f.bytes} (changed or mixed with another run); ${regenerate(kind)}`;
    }
    if (verify === 'full' && sha256File(file) !== f.sha256) {
      return `${root}: ${f.path} does not match its manifest's sha256 (changed or mixed with another run); ${regenerate(kind)}`;
    }
  }
  return manifest;
}

/**
 * Removes the temporaries of killed runs in `dir`: `.NAME.tmp-PID-…` / `.NAME.old-PID-…`
 * folders (for one `name`, or all when omitted) and `FILE.tmp-PID-…` files, when process PID is
 * gone. Those of live processes (another run writing now) are left alone.
 */
export function cleanStale(dir: string, name?: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = stalePid(entry, name);
    if (pid === null || pid === process.pid || processAlive(pid)) continue;
    rmSync(join(dir, entry), { recursive: true, force: true });
  }
}

function stalePid(entry: string, name?: string): number | null {
  const folder = /^\.(.+)\.(?:tmp|old)-(\d+)-[0-9a-f]+$/.exec(entry);
  if (folder) return name === undefined || folder[1] === name ? Number(folder[2]) : null;
  const file = /\.tmp-(\d+)-\d+$/.exec(entry) ?? /\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(entry);
  return file ? Number(file[1]) : null;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function refuseOccupied(target: string, force: boolean): void {
  if (force || !existsSync(target)) return;
  if (!statSync(target).isDirectory() || readdirSync(target).length > 0) {
    throw new LmdynError(
      'bad_argument',
      `${target} is not empty; use --force to overwrite it or choose another --out`,
    );
  }
}

/** Renames the finished temporary folder to `target`, moving an existing one aside first. */
function swapIn(tmp: string, target: string, force: boolean): void {
  let aside: string | null = null;
  try {
    if (existsSync(target)) {
      const empty = statSync(target).isDirectory() && readdirSync(target).length === 0;
      if (!empty && !force) {
        throw new LmdynError('bad_argument', `${target} is not empty; use --force to overwrite it`);
      }
      if (empty) rmdirSync(target);
      else {
        aside = join(
          dirname(target),
          `.${basename(target)}.old-${process.pid}-${randomBytes(4).toString('hex')}`,
        );
        renameSync(target, aside);
      }
    }
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err instanceof LmdynError ? err : ioError(err, target);
  }
  if (aside) rmSync(aside, { recursive: true, force: true });
}

function writeManifest(dir: string, kind: string, files: ManifestFile[]): Manifest {
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: 1,
    kind,
    lmdyn: VERSION,
    files,
    complete: true,
  };
  writeFileAtomic(join(dir, manifestName(kind)), JSON.stringify(manifest, null, 1) + '\n');
  return manifest;
}

function readManifestQuietly(path: string): Manifest | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
    return v && v.format === MANIFEST_FORMAT && Array.isArray(v.files) ? v : null;
  } catch {
    return null;
  }
}

/** Every file below `dir` (recursively, sorted), described for a manifest. */
function listFiles(dir: string): ManifestFile[] {
  const out: ManifestFile[] = [];
  const walk = (sub: string): void => {
    for (const name of readdirSync(join(dir, sub)).sort()) {
      const rel = sub ? `${sub}/${name}` : name;
      const st = lstatSync(join(dir, rel));
      if (st.isDirectory()) walk(rel);
      else if (st.isFile()) out.push(describe(dir, rel));
    }
  };
  walk('');
  return out;
}

function describe(root: string, rel: string): ManifestFile {
  const file = join(root, rel);
  return { path: rel.split(sep).join('/'), bytes: statSync(file).size, sha256: sha256File(file) };
}

export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

function safeRelative(rel: string): boolean {
  if (rel === '' || rel.startsWith('/') || rel.includes('\\')) return false;
  return rel.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

function removeFile(root: string, rel: string): void {
  rmSync(join(root, rel), { force: true });
  // drop folders the unit emptied (a lens's plot folder), up to the unit's folder
  let d = dirname(join(root, rel));
  while (d !== root && relative(root, d) !== '' && !relative(root, d).startsWith('..')) {
    try {
      if (readdirSync(d).length > 0) break;
      rmdirSync(d);
    } catch {
      break;
    }
    d = dirname(d);
  }
}

function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw ioError(err, dir);
  }
}
