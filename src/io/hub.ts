/**
 * Hugging Face Hub downloads into the cache layout of huggingface_hub (file_download.py,
 * hf_hub_download; constants.py):
 *
 *   $HF_HUB_CACHE (default $HF_HOME/hub, $HF_HOME default $XDG_CACHE_HOME/huggingface or
 *   ~/.cache/huggingface)
 *   └── models--{owner}--{name}/
 *       ├── blobs/{etag}                  file contents, named by git sha1 or LFS sha256
 *       ├── refs/{revision}               the commit hash a branch or tag resolved to
 *       ├── snapshots/{commit}/{file}     relative symlinks ../../blobs/{etag}
 *       └── .no_exist/{commit}/{file}     empty markers for files the repo does not have
 *
 * Each file is resolved with a HEAD on `{endpoint}/{repo}/resolve/{revision}/{file}` without
 * following absolute redirects: `X-Repo-Commit` gives the commit, `X-Linked-Etag` (LFS) or
 * `ETag` the blob name, `X-Linked-Size` or `Content-Length` the size, and an absolute `Location`
 * (LFS files on a CDN) the address to GET, without the Authorization header. The GET writes
 * `blobs/{etag}.incomplete`, resumes it with a Range request after a dropped connection, checks
 * the size and, when the etag is a sha256 (LFS), the hash, then renames it into place.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { LmdynError } from '../errors.js';
import { VERSION } from '../version.js';
import { WEIGHT_FILES } from './hf.js';

export interface HubOptions {
  /** Default $HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** The hub cache (huggingface_hub's `cache_dir`); default from $HF_HUB_CACHE / $HF_HOME. */
  cacheDir?: string;
  /** Resolve from the cache only; default $HF_HUB_OFFLINE. */
  offline?: boolean;
  /** Bearer token; default $HF_TOKEN. */
  token?: string;
  fetch?: typeof fetch;
  onProgress?: (progress: HubProgress) => void;
  /** Resumed attempts after a dropped or stalled connection, per file; default 3. */
  retries?: number;
  /** A download that receives nothing for this long is resumed; default 10 s. */
  readTimeoutMs?: number;
  /**
   * A file's download (all its attempts) ends with an error after this long, however slowly
   * data keeps trickling in; default 60 s + 1 s per 100 KB announced (1 h when none is).
   */
  downloadTimeoutMs?: number;
}

export interface HubProgress {
  file: string;
  received: number;
  total: number | null;
}

export interface HubId {
  owner: string;
  name: string;
  revision: string;
  /** A single file to fetch, or null for a whole model folder. */
  file: string | null;
}

/**
 * Resolves `hf:owner/name[@revision][/file]` to a local path in the cache, downloading what is
 * missing: the file itself, or for a model the snapshot folder holding config.json, the weights
 * (the first of model.safetensors, its index and shards, pytorch_model.bin, its index and shards)
 * and the tokenizer files the repo has.
 */
export async function resolveHubModel(id: string, options: HubOptions = {}): Promise<string> {
  const hub = parseHubId(id);
  const ctx = hubContext(hub, options);
  if (ctx.offline) return resolveFromCache(ctx, id);
  if (hub.file !== null) return (await fetchFile(ctx, hub.revision, hub.file, true)).path;

  // Pin every later request to the commit config.json resolved to, as snapshot_download does.
  const { commit } = await fetchFile(ctx, hub.revision, 'config.json', true);
  // The weights: the first of WEIGHT_FILES the repo has (an index brings its shards).
  let weights: string | null = null;
  for (const name of WEIGHT_FILES) {
    const got = await fetchFile(ctx, commit, name, false);
    if (got === null) continue;
    if (name.endsWith('.index.json')) {
      for (const shard of shardNames(got.path)) await fetchFile(ctx, commit, shard, true);
    }
    weights = name;
    break;
  }
  if (weights === null) {
    throw new LmdynError('not_found', `${id} has none of ${WEIGHT_FILES.join(', ')}`);
  }
  for (const optional of OPTIONAL_FILES) await fetchFile(ctx, commit, optional, false);
  return join(ctx.storage, 'snapshots', commit);
}

/** Splits a hub id; the owner and name follow the Hub's repo-id rules. */
export function parseHubId(id: string): HubId {
  const m = /^hf:([^/@]+)\/([^/@]+)(?:@([^/]+))?(?:\/(.+))?$/.exec(id);
  const bad = (why: string): never => {
    throw new LmdynError(
      'bad_argument',
      `bad hub id ${id}: ${why} (expected hf:owner/name[@revision][/file])`,
    );
  };
  if (!m) return bad('cannot parse');
  const [, owner, name, revision = 'main', file = null] = m;
  for (const part of [owner, name]) {
    if (
      !/^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/.test(part) ||
      part.includes('--') ||
      part.includes('..')
    ) {
      bad(`${part} is not a valid repo owner or name`);
    }
  }
  if (!/^[A-Za-z0-9._-]+$/.test(revision) || revision === '.' || revision === '..') {
    bad(`${revision} is not a branch, tag or commit`);
  }
  if (file !== null) checkRepoPath(file, id);
  return { owner, name, revision, file };
}

/** huggingface_hub's hub cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const hubCache = env.HF_HUB_CACHE ?? env.HUGGINGFACE_HUB_CACHE;
  if (hubCache) return expandHome(hubCache);
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(expandHome(home), 'hub');
}

// ---- context --------------------------------------------------------------------------------------

const OPTIONAL_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
];
const COMMIT_RE = /^[0-9a-f]{40}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
const HEAD_TIMEOUT_MS = 10_000; // huggingface_hub's DEFAULT_ETAG_TIMEOUT
const MAX_REDIRECTS = 10;

interface HubContext {
  hub: HubId;
  repo: string;
  endpoint: string;
  storage: string;
  offline: boolean;
  token: string | null;
  fetch: typeof fetch;
  onProgress: ((p: HubProgress) => void) | null;
  retries: number;
  readTimeoutMs: number;
  downloadTimeoutMs: number | null;
}

function hubContext(hub: HubId, o: HubOptions): HubContext {
  const env = process.env;
  const repo = `${hub.owner}/${hub.name}`;
  return {
    hub,
    repo,
    endpoint: (o.endpoint ?? env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, ''),
    storage: join(o.cacheDir ?? hubCacheDir(env), `models--${hub.owner}--${hub.name}`),
    // constants.py: HF_HUB_OFFLINE is true for 1/ON/YES/TRUE (any case).
    offline:
      o.offline ?? ['1', 'ON', 'YES', 'TRUE'].includes((env.HF_HUB_OFFLINE ?? '').toUpperCase()),
    token: o.token ?? env.HF_TOKEN ?? null,
    fetch: o.fetch ?? globalThis.fetch,
    onProgress: o.onProgress ?? null,
    retries: o.retries ?? 3,
    // huggingface_hub's DEFAULT_DOWNLOAD_TIMEOUT
    readTimeoutMs: o.readTimeoutMs ?? 10_000,
    downloadTimeoutMs: o.downloadTimeoutMs ?? null,
  };
}

// ---- one file -----------------------------------------------------------------------------------

interface CachedFile {
  /** snapshots/{commit}/{file} */
  path: string;
  commit: string;
}

interface FileMetadata {
  commit: string;
  etag: string;
  /** Where to GET the bytes: the resolve URL, or the CDN address an LFS redirect named. */
  location: string;
  size: number | null;
}

/**
 * hf_hub_download for one file: HEAD for the metadata, then the blob if it is not cached yet and
 * the snapshot symlink. A missing file is `not_found` when required, else null (and recorded in
 * .no_exist as huggingface_hub does).
 */
async function fetchFile(
  ctx: HubContext,
  revision: string,
  file: string,
  required: true,
): Promise<CachedFile>;
async function fetchFile(
  ctx: HubContext,
  revision: string,
  file: string,
  required: false,
): Promise<CachedFile | null>;
async function fetchFile(
  ctx: HubContext,
  revision: string,
  file: string,
  required: boolean,
): Promise<CachedFile | null> {
  const cached = fromCache(ctx, revision, file);
  if (COMMIT_RE.test(revision)) {
    if (cached) return { path: cached, commit: revision };
    if (!required && existsSync(join(ctx.storage, '.no_exist', revision, ...file.split('/'))))
      return null;
  }
  const url = `${ctx.endpoint}/${ctx.repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
  let meta: FileMetadata | { missing: true; commit: string | null };
  try {
    meta = await fileMetadata(ctx, url, file);
  } catch (err) {
    // As hf_hub_download: when the Hub cannot be reached, a cached copy of the revision will do.
    if (err instanceof LmdynError && err.code === 'network' && cached) {
      return { path: cached, commit: readRef(ctx, revision) ?? revision };
    }
    throw err;
  }
  if ('missing' in meta) {
    if (meta.commit) {
      const marker = join(ctx.storage, '.no_exist', meta.commit, ...file.split('/'));
      mkdirSync(dirname(marker), { recursive: true });
      writeFileSync(marker, '');
      writeRef(ctx, revision, meta.commit);
    }
    if (required)
      throw new LmdynError('not_found', `hf:${ctx.repo}@${revision} has no file ${file}`);
    return null;
  }

  const { commit, etag } = meta;
  const blob = join(ctx.storage, 'blobs', etag);
  const pointer = join(ctx.storage, 'snapshots', commit, ...file.split('/'));
  writeRef(ctx, revision, commit);
  if (existsSync(pointer)) return { path: pointer, commit };
  if (!existsSync(blob)) {
    mkdirSync(dirname(blob), { recursive: true });
    await downloadBlob(ctx, meta, url, blob, file);
  }
  mkdirSync(dirname(pointer), { recursive: true });
  linkPointer(blob, pointer);
  return { path: pointer, commit };
}

/** get_hf_file_metadata: a HEAD that follows only relative redirects (renamed repos). */
async function fileMetadata(
  ctx: HubContext,
  url: string,
  file: string,
): Promise<FileMetadata | { missing: true; commit: string | null }> {
  let target = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await request(ctx, target, {
      method: 'HEAD',
      redirect: 'manual',
      headers: hubHeaders(ctx, { 'Accept-Encoding': 'identity' }),
      signal: AbortSignal.timeout(HEAD_TIMEOUT_MS),
    });
    await res.body?.cancel();
    const commit = res.headers.get('x-repo-commit');
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location && isRelativeUrl(location)) {
      target = new URL(location, target).toString();
      continue;
    }
    if (res.status === 404) {
      const code = res.headers.get('x-error-code');
      if (code === 'RepoNotFound' || code === 'RevisionNotFound') {
        throw new LmdynError(
          'not_found',
          `hf:${ctx.repo}: ${code === 'RepoNotFound' ? 'no such repository' : 'no such revision'} (or it is private; set HF_TOKEN)`,
        );
      }
      return { missing: true, commit: commit && COMMIT_RE.test(commit) ? commit : null };
    }
    if (res.status === 401 || res.status === 403) {
      throw new LmdynError(
        'network',
        `hf:${ctx.repo}/${file}: access denied (HTTP ${res.status}); a gated or private repo needs HF_TOKEN`,
      );
    }
    if (!(res.status >= 200 && res.status < 400)) {
      throw new LmdynError('network', `hf:${ctx.repo}/${file}: HTTP ${res.status} from ${target}`);
    }
    const etag = normalizeEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    if (!commit || !COMMIT_RE.test(commit) || !etag || !/^[A-Za-z0-9._-]+$/.test(etag)) {
      throw new LmdynError(
        'network',
        `${target} did not answer like the Hugging Face Hub (no X-Repo-Commit or ETag)`,
      );
    }
    const size = Number(
      res.headers.get('x-linked-size') ?? res.headers.get('content-length') ?? NaN,
    );
    return {
      commit,
      etag,
      location: location ? new URL(location, target).toString() : target,
      size: Number.isSafeInteger(size) && size >= 0 ? size : null,
    };
  }
  throw new LmdynError('network', `${url}: more than ${MAX_REDIRECTS} redirects`);
}

/**
 * _download_to_tmp_and_move + http_get: append to `{blob}.incomplete` (resuming with
 * `Range: bytes={n}-` after a dropped connection, up to `retries` times in this call and across
 * calls through the file), check the size and the sha256 of LFS blobs, then rename.
 */
async function downloadBlob(
  ctx: HubContext,
  meta: FileMetadata,
  resolveUrl: string,
  blob: string,
  file: string,
): Promise<void> {
  const incomplete = `${blob}.incomplete`;
  const expected = meta.size;
  // The Authorization header goes to the Hub only, not to the CDN an LFS redirect points at.
  const headers = meta.location === resolveUrl ? hubHeaders(ctx, {}) : { 'User-Agent': USER_AGENT };
  const budget = ctx.downloadTimeoutMs ?? (expected !== null ? 60_000 + expected / 100 : 3_600_000);
  const deadline = Date.now() + budget;
  for (let attempt = 0; ; attempt++) {
    const fd = openSync(incomplete, 'a');
    let outcome: { interrupted: string | null };
    try {
      let have = fstatSync(fd).size;
      if (expected !== null && have > expected) {
        ftruncateSync(fd, 0);
        have = 0;
      }
      outcome =
        expected !== null && have === expected
          ? { interrupted: null }
          : await receive(ctx, meta.location, headers, fd, have, expected, file, deadline);
    } finally {
      closeSync(fd);
    }
    if (outcome.interrupted === null) break;
    if (attempt >= ctx.retries) {
      throw new LmdynError('network', `${file}: ${outcome.interrupted}; run again to resume`);
    }
  }
  verifyBlob(incomplete, meta.etag, expected, file);
  renameSync(incomplete, blob);
}

/**
 * One GET from byte `start`, appended to `fd`. A connection that drops or stalls mid-body (no
 * data for `readTimeoutMs`) is not an error here: `interrupted` says what happened, and the
 * caller resumes from what was written.
 */
async function receive(
  ctx: HubContext,
  url: string,
  baseHeaders: Record<string, string>,
  fd: number,
  start: number,
  expected: number | null,
  file: string,
  deadline: number,
): Promise<{ interrupted: string | null }> {
  const headers = start > 0 ? { ...baseHeaders, Range: `bytes=${start}-` } : baseHeaders;
  const watchdog = new AbortController();
  // the whole download's deadline, which a trickle of data does not move
  const overall = setTimeout(() => watchdog.abort('deadline'), Math.max(0, deadline - Date.now()));
  let timer = setTimeout(() => watchdog.abort(), ctx.readTimeoutMs);
  const alive = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => watchdog.abort(), ctx.readTimeoutMs);
  };
  try {
    const res = await request(ctx, url, { headers, redirect: 'follow', signal: watchdog.signal });
    let offset = start;
    if (res.status === 200 && start > 0) {
      ftruncateSync(fd, 0); // the server ignored Range: start over
      offset = 0;
    } else if (res.status === 206) {
      const range = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== start) {
        await res.body?.cancel();
        throw new LmdynError(
          'network',
          `${file}: the server answered Range ${start}- with ${res.headers.get('content-range')}`,
        );
      }
    } else if (res.status !== 200) {
      await res.body?.cancel();
      throw new LmdynError('network', `${file}: HTTP ${res.status} from ${url}`);
    }
    const length = Number(res.headers.get('content-length') ?? NaN);
    const total = Number.isSafeInteger(length) ? offset + length : expected;
    if (!res.body) throw new LmdynError('network', `${file}: empty response from ${url}`);
    const reader = res.body.getReader();
    const after = (): string =>
      `download interrupted after ${offset}${total !== null ? ` of ${total}` : ''} bytes`;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        alive();
        // never past the size the hub announced: an endless body does not fill the disk
        const room = expected !== null ? Math.max(0, expected - offset) : value.length;
        const chunk = value.subarray(0, Math.min(value.length, room));
        let written = 0;
        while (written < chunk.length) {
          written += writeSync(fd, chunk, written, chunk.length - written);
        }
        offset += chunk.length;
        if (chunk.length < value.length) {
          await reader.cancel().catch(() => undefined);
          throw new LmdynError(
            'network',
            `${file}: the server sent more than the ${expected} bytes it announced; stopped there`,
          );
        }
        ctx.onProgress?.({ file, received: offset, total });
      }
    } catch (err) {
      if (err instanceof LmdynError) throw err;
      await reader.cancel().catch(() => undefined);
      if (watchdog.signal.reason === 'deadline') {
        throw new LmdynError(
          'network',
          `${file}: ${after()}; the download went past its time limit (a trickle of data does not extend it); run again to resume`,
        );
      }
      const why = watchdog.signal.aborted
        ? `no data for ${ctx.readTimeoutMs / 1000} s`
        : errorText(err);
      return { interrupted: `${after()} (${why})` };
    }
    return { interrupted: total !== null && offset < total ? after() : null };
  } finally {
    clearTimeout(timer);
    clearTimeout(overall);
  }
}

/** Size against the HEAD's size; LFS blobs (64-hex etag) against their sha256. Bad data is deleted. */
function verifyBlob(path: string, etag: string, expected: number | null, file: string): void {
  const size = statSync(path).size;
  if (expected !== null && size !== expected) {
    rmSync(path, { force: true });
    throw new LmdynError(
      'network',
      `${file}: downloaded ${size} bytes, expected ${expected}; the partial file was removed`,
    );
  }
  if (!SHA256_RE.test(etag)) return;
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const chunk = new Uint8Array(1 << 22);
    for (let pos = 0; pos < size;) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  const got = hash.digest('hex');
  if (got !== etag) {
    rmSync(path, { force: true });
    throw new LmdynError(
      'network',
      `${file}: sha256 ${got} does not match the Hub's ${etag}; the download was discarded`,
    );
  }
}

// ---- cache --------------------------------------------------------------------------------------

/** HF_HUB_OFFLINE: the snapshot of `revision` must hold everything a load needs. */
function resolveFromCache(ctx: HubContext, id: string): string {
  const { hub } = ctx;
  const offline = (what: string): never => {
    throw new LmdynError(
      'offline',
      `${id}: ${what} in the Hugging Face cache (${ctx.storage}) and offline mode is on`,
    );
  };
  if (hub.file !== null)
    return fromCache(ctx, hub.revision, hub.file) ?? offline(`${hub.file} is not`);
  const commit = COMMIT_RE.test(hub.revision) ? hub.revision : readRef(ctx, hub.revision);
  if (commit === null) return offline(`revision ${hub.revision} is not`);
  const snapshot = join(ctx.storage, 'snapshots', commit);
  if (!existsSync(join(snapshot, 'config.json'))) return offline('config.json is not');
  const weights = WEIGHT_FILES.find((f) => existsSync(join(snapshot, f)));
  if (weights === undefined) return offline(`none of ${WEIGHT_FILES.join(', ')} is`);
  if (weights.endsWith('.index.json')) {
    for (const shard of shardNames(join(snapshot, weights))) {
      if (!existsSync(join(snapshot, ...shard.split('/')))) offline(`shard ${shard} is not`);
    }
  }
  return snapshot;
}

/** The cached snapshot file of `revision` (a commit, or a ref recorded in refs/), if any. */
function fromCache(ctx: HubContext, revision: string, file: string): string | null {
  const commit = COMMIT_RE.test(revision) ? revision : readRef(ctx, revision);
  if (commit === null) return null;
  const pointer = join(ctx.storage, 'snapshots', commit, ...file.split('/'));
  return existsSync(pointer) ? pointer : null;
}

function readRef(ctx: HubContext, revision: string): string | null {
  const ref = join(ctx.storage, 'refs', ...revision.split('/'));
  if (!existsSync(ref)) return null;
  const commit = readFileSync(ref, 'utf8').trim();
  return COMMIT_RE.test(commit) ? commit : null;
}

/** _cache_commit_hash_for_specific_revision: refs/{revision} holds the commit (not for commits). */
function writeRef(ctx: HubContext, revision: string, commit: string): void {
  if (revision === commit) return;
  const ref = join(ctx.storage, 'refs', ...revision.split('/'));
  if (existsSync(ref) && readFileSync(ref, 'utf8') === commit) return;
  mkdirSync(dirname(ref), { recursive: true });
  writeFileSync(ref, commit);
}

/** _create_symlink: a relative link, or a copy where symlinks are not allowed. */
function linkPointer(blob: string, pointer: string): void {
  rmSync(pointer, { force: true });
  try {
    symlinkSync(relative(dirname(pointer), blob), pointer);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP') throw err;
    copyFileSync(blob, pointer);
  }
}

function shardNames(indexPath: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (err) {
    throw new LmdynError('bad_format', `${indexPath}: not valid JSON (${(err as Error).message})`);
  }
  const map =
    typeof parsed === 'object' && parsed !== null
      ? (parsed as { weight_map?: unknown }).weight_map
      : null;
  if (typeof map !== 'object' || map === null) {
    throw new LmdynError('bad_format', `${indexPath}: weight_map is missing`);
  }
  const shards = [...new Set(Object.values(map))];
  for (const s of shards) {
    if (typeof s !== 'string')
      throw new LmdynError('bad_format', `${indexPath}: weight_map has a non-string shard`);
    checkRepoPath(s, indexPath);
  }
  return shards as string[];
}

// ---- HTTP ---------------------------------------------------------------------------------------

const USER_AGENT = `lmdyn/${VERSION}`;

function hubHeaders(ctx: HubContext, extra: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = { 'User-Agent': USER_AGENT, ...extra };
  if (ctx.token) headers.Authorization = `Bearer ${ctx.token}`;
  return headers;
}

/** fetch, with failures to connect turned into one-line `network` errors. */
async function request(ctx: HubContext, url: string, init: RequestInit): Promise<Response> {
  try {
    return await ctx.fetch(url, init);
  } catch (err) {
    throw new LmdynError('network', `cannot reach ${new URL(url).origin}: ${errorText(err)}`);
  }
}

function errorText(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** _normalize_etag: drop a weak `W/` prefix and the quotes. */
function normalizeEtag(etag: string | null): string | null {
  return etag === null ? null : etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

function isRelativeUrl(location: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(location) && !location.startsWith('//');
}

/** A path inside a repo: no empty, `.` or `..` segments, no backslashes. */
function checkRepoPath(path: string, where: string): void {
  const parts = path.split('/');
  if (path.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new LmdynError(
      'bad_argument',
      `${where}: ${path} is not a file path inside a repository`,
    );
  }
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith(`~${sep}`) || p.startsWith('~/')
    ? join(homedir(), p.slice(1))
    : p;
}
