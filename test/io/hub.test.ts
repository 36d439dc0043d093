/**
 * The hub client against a local server that answers as huggingface.co does (huggingface_hub
 * file_download.py: HEAD on /{repo}/resolve/{revision}/{file} with X-Repo-Commit and ETag; LFS
 * files as a 302 to a CDN with X-Linked-Etag = sha256 and X-Linked-Size; 404 with
 * X-Error-Code). The expected cache layout is the one hf_hub_download documents:
 * blobs/{etag}, snapshots/{commit}/{file} -> ../../blobs/{etag}, refs/{revision}. No test
 * touches the real network.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { LmdynError } from '../../src/errors.js';
import { loadHfFolder } from '../../src/io/hf.js';
import { bareHubId, loadModel } from '../../src/io/load.js';
import { hubCacheDir, parseHubId, resolveHubModel, type HubProgress } from '../../src/io/hub.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { ROOT, model } from '../helpers/paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'lmdyn-hub-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

const REPO = 'lmdyn-test/stories260K';
const SHARDED = 'lmdyn-test/sharded';
const COMMIT = createHash('sha1').update('lmdyn test commit').digest('hex');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
/** git's blob id, the ETag the Hub gives non-LFS files. */
const gitSha1 = (b: Buffer): string =>
  createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

const MODEL = readFileSync(model('stories260K-hf-derived', 'model.safetensors'));
const CONFIG = readFileSync(model('stories260K-hf-derived', 'config.json'));
const TOKENIZER = readFileSync(model('tiny-gpt2', 'tokenizer.json'));

function shardedRepo(): Map<string, Buffer> {
  const tensors = [
    ...readSafetensors(model('stories260K-hf-derived', 'model.safetensors')).tensors.values(),
  ];
  const files = new Map<string, Buffer>([['config.json', CONFIG]]);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < 2; s++) {
    const name = `model-0000${s + 1}-of-00002.safetensors`;
    const part = tensors.filter((_, i) => i % 2 === s);
    part.forEach((t) => (weightMap[t.name] = name));
    const path = join(TMP, name);
    writeSafetensors(path, part);
    files.set(name, readFileSync(path));
  }
  files.set(
    'model.safetensors.index.json',
    Buffer.from(JSON.stringify({ metadata: {}, weight_map: weightMap })),
  );
  return files;
}

const REPOS = new Map<string, Map<string, Buffer>>([
  [
    REPO,
    new Map([
      ['config.json', CONFIG],
      ['model.safetensors', MODEL],
      ['tokenizer.json', TOKENIZER],
    ]),
  ],
  [SHARDED, shardedRepo()],
]);

/**
 * A Pythia-style repo: every training checkpoint is a branch (step1000, …) with its own commit.
 * Here main holds test/fixtures/arch/neox-parallel, step1000 neox-sequential, and step2000 the
 * neox-parallel weights as pytorch_model.bin only (as older checkpoint branches may).
 */
const PYTHIA = 'lmdyn-test/pythia-tiny';
const branchFiles = (fixture: string, weights = 'model.safetensors'): Map<string, Buffer> =>
  new Map(
    ['config.json', weights, 'tokenizer.json'].map((f) => [
      f,
      readFileSync(resolve(ROOT, 'test', 'fixtures', 'arch', fixture, f)),
    ]),
  );
const commitOf = (name: string): string => createHash('sha1').update(name).digest('hex');
const BRANCHES = new Map<string, { commit: string; files: Map<string, Buffer> }>([
  ['main', { commit: commitOf('pythia main'), files: branchFiles('neox-parallel') }],
  ['step1000', { commit: commitOf('pythia step1000'), files: branchFiles('neox-sequential') }],
  [
    'step2000',
    {
      commit: commitOf('pythia step2000'),
      files: branchFiles('neox-parallel-bin', 'pytorch_model.bin'),
    },
  ],
]);

/** The branch of PYTHIA that `revision` (a branch name or its commit) names. */
function pythiaBranch(revision: string): { commit: string; files: Map<string, Buffer> } | null {
  for (const [name, b] of BRANCHES) if (revision === name || revision === b.commit) return b;
  return null;
}

interface Seen {
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
}

interface FakeHub {
  url: string;
  seen: Seen[];
  /** Flip one byte of every CDN body. */
  corrupt: boolean;
  /** CDN GETs still to cut off halfway through the body. */
  drops: number;
  /** CDN GETs still to stall (connection left open) halfway through the body. */
  stalls: number;
  /** CDN GETs still to answer with the body and then more, without end (no Content-Length). */
  endless: number;
  /** CDN GETs still to answer one byte every 20 ms, for ever. */
  trickles: number;
  close(): Promise<void>;
}

async function startHub(): Promise<FakeHub> {
  const hub: FakeHub = {
    url: '',
    seen: [],
    corrupt: false,
    drops: 0,
    stalls: 0,
    endless: 0,
    trickles: 0,
    close: async () => undefined,
  };
  const blobs = new Map<string, Buffer>();
  for (const files of REPOS.values()) for (const b of files.values()) blobs.set(sha256(b), b);
  for (const { files } of BRANCHES.values())
    for (const b of files.values()) blobs.set(sha256(b), b);

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    hub.seen.push({
      method: req.method ?? '',
      path,
      range: req.headers.range ?? null,
      authorization: req.headers.authorization ?? null,
    });
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (cdn) return serveCdn(hub, blobs.get(cdn[1]), req, res);
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const branch = m && m[1] === PYTHIA ? pythiaBranch(m[2]) : null;
    const files = branch ? branch.files : m ? REPOS.get(m[1]) : undefined;
    const commit = branch ? branch.commit : COMMIT;
    if (!m || (!files && m[1] !== PYTHIA)) {
      res.writeHead(404, { 'X-Error-Code': 'RepoNotFound' }).end();
      return;
    }
    if (!files || (!branch && m[2] !== 'main' && m[2] !== COMMIT)) {
      res.writeHead(404, { 'X-Error-Code': 'RevisionNotFound' }).end();
      return;
    }
    const body = files.get(m[3]);
    if (!body) {
      res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': commit }).end();
      return;
    }
    if (m[3].endsWith('.safetensors')) {
      // LFS: the Hub redirects to the CDN and names the blob by its sha256.
      res.writeHead(302, {
        Location: `${hub.url}/cdn/${sha256(body)}`,
        'X-Repo-Commit': commit,
        'X-Linked-Etag': `"${sha256(body)}"`,
        'X-Linked-Size': String(body.length),
        ETag: `"${gitSha1(Buffer.from('pointer'))}"`,
      });
      res.end();
      return;
    }
    res.writeHead(200, {
      'X-Repo-Commit': commit,
      ETag: `"${gitSha1(body)}"`,
      'Content-Length': String(body.length),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub.close = () => new Promise<void>((ok) => server.close(() => ok()));
  after(() => server.closeAllConnections());
  return hub;
}

function serveCdn(
  hub: FakeHub,
  blob: Buffer | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  if (!blob) {
    res.writeHead(404).end();
    return;
  }
  let body = blob;
  if (hub.corrupt) {
    body = Buffer.from(blob);
    body[body.length >> 1] ^= 0xff;
  }
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = range ? Number(range[1]) : 0;
  const part = body.subarray(start);
  const headers: Record<string, string> = {
    'Content-Length': String(part.length),
    'Accept-Ranges': 'bytes',
  };
  if (range) headers['Content-Range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
  if (req.method !== 'HEAD' && (hub.endless > 0 || hub.trickles > 0)) {
    const endless = hub.endless > 0;
    if (endless) hub.endless--;
    else hub.trickles--;
    res.writeHead(200, { 'Accept-Ranges': 'bytes' }); // chunked: no length to stop at
    if (endless) res.write(part);
    const more = setInterval(
      () => res.write(endless ? Buffer.alloc(1 << 16, 7) : part.subarray(0, 1)),
      endless ? 1 : 20,
    );
    res.on('close', () => clearInterval(more));
    return;
  }
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD') {
    res.end();
  } else if (hub.drops > 0) {
    hub.drops--;
    res.write(part.subarray(0, part.length >> 1), () => res.socket?.destroy());
  } else if (hub.stalls > 0) {
    hub.stalls--;
    res.write(part.subarray(0, part.length >> 1));
  } else {
    res.end(part);
  }
}

const storage = (cacheDir: string, repo = REPO): string =>
  join(cacheDir, `models--${repo.replace('/', '--')}`);
const gets = (hub: FakeHub): Seen[] => hub.seen.filter((s) => s.method === 'GET');
const isCode = (code: string, text?: RegExp) => (e: unknown) =>
  e instanceof LmdynError &&
  e.code === code &&
  (!text || text.test(e.message)) &&
  !e.message.includes('\n');

/** Runs `fn` with some environment variables set (or removed), then restores them. */
async function withEnv<T>(
  vars: Record<string, string | undefined>,
  fn: () => Promise<T>,
): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

test('a model downloads into HF_HOME in huggingface_hub layout (blobs, relative snapshot symlinks, refs/main)', async () => {
  const hub = await startHub();
  const home = join(TMP, 'home');
  const progress: HubProgress[] = [];
  const path = await withEnv(
    {
      HF_HOME: home,
      HF_ENDPOINT: hub.url,
      HF_TOKEN: 'secret',
      HF_HUB_CACHE: undefined,
      HF_HUB_OFFLINE: undefined,
    },
    () => resolveHubModel(`hf:${REPO}`, { onProgress: (p) => progress.push(p) }),
  );
  const repoDir = storage(join(home, 'hub'));
  assert.equal(path, join(repoDir, 'snapshots', COMMIT));
  assert.equal(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), COMMIT);
  const etags = {
    'config.json': gitSha1(CONFIG),
    'model.safetensors': sha256(MODEL),
    'tokenizer.json': gitSha1(TOKENIZER),
  };
  assert.deepEqual(readdirSync(join(repoDir, 'blobs')).sort(), Object.values(etags).sort());
  assert.deepEqual(readdirSync(path).sort(), Object.keys(etags).sort());
  for (const [file, etag] of Object.entries(etags)) {
    assert.ok(lstatSync(join(path, file)).isSymbolicLink(), file);
    assert.equal(readlinkSync(join(path, file)), join('..', '..', 'blobs', etag));
  }
  assert.deepEqual(readFileSync(join(path, 'model.safetensors')), MODEL);
  // Optional files the repo lacks are remembered as huggingface_hub does.
  assert.ok(existsSync(join(repoDir, '.no_exist', COMMIT, 'generation_config.json')));
  assert.ok(existsSync(join(repoDir, '.no_exist', COMMIT, 'tokenizer_config.json')));

  // The LFS file came through the CDN redirect, without the token; the Hub got the token.
  const cdnGets = gets(hub).filter((s) => s.path.startsWith('/cdn/'));
  assert.equal(cdnGets.length, 1);
  assert.equal(cdnGets[0].authorization, null);
  assert.ok(
    hub.seen.filter((s) => s.method === 'HEAD').every((s) => s.authorization === 'Bearer secret'),
  );
  const last = progress.filter((p) => p.file === 'model.safetensors').at(-1);
  assert.deepEqual(last, {
    file: 'model.safetensors',
    received: MODEL.length,
    total: MODEL.length,
  });

  // It loads to the same model as the shared folder.
  const a = loadHfFolder(path);
  const b = loadHfFolder(model('stories260K-hf-derived'));
  assert.deepEqual(a.config, b.config);
  assert.deepEqual(a.weights.layers[2].wq.data, b.weights.layers[2].wq.data);
  assert.equal(a.tokenizer?.kind, 'hf');

  // A second resolve only asks for metadata.
  const before = gets(hub).length;
  const again = await resolveHubModel(`hf:${REPO}`, {
    endpoint: hub.url,
    cacheDir: join(home, 'hub'),
  });
  assert.equal(again, path);
  assert.equal(gets(hub).length, before);

  // Offline: the same path from the cache alone, without a request.
  const requests = hub.seen.length;
  assert.equal(
    await resolveHubModel(`hf:${REPO}`, { cacheDir: join(home, 'hub'), offline: true }),
    path,
  );
  assert.equal(
    await withEnv({ HF_HOME: home, HF_HUB_OFFLINE: '1', HF_HUB_CACHE: undefined }, () =>
      resolveHubModel(`hf:${REPO}`),
    ),
    path,
  );
  assert.equal(hub.seen.length, requests);

  // The Hub unreachable: the cached revision still resolves (hf_hub_download's fallback).
  await hub.close();
  assert.equal(
    await resolveHubModel(`hf:${REPO}`, { endpoint: hub.url, cacheDir: join(home, 'hub') }),
    path,
  );
});

test('a single file at a commit: /file suffix and @revision; cached commits resolve without requests', async () => {
  const hub = await startHub();
  const cacheDir = join(TMP, 'single');
  const id = `hf:${REPO}@${COMMIT}/config.json`;
  const path = await resolveHubModel(id, { endpoint: hub.url, cacheDir });
  assert.equal(path, join(storage(cacheDir), 'snapshots', COMMIT, 'config.json'));
  assert.deepEqual(readFileSync(path), CONFIG);
  assert.equal(existsSync(join(storage(cacheDir), 'refs')), false); // a commit needs no ref
  const n = hub.seen.length;
  assert.equal(await resolveHubModel(id, { endpoint: hub.url, cacheDir }), path);
  assert.equal(hub.seen.length, n);
  await hub.close();
});

test('a sharded model fetches its index and every shard', async () => {
  const hub = await startHub();
  const cacheDir = join(TMP, 'sharded');
  const path = await resolveHubModel(`hf:${SHARDED}`, { endpoint: hub.url, cacheDir });
  assert.deepEqual(readdirSync(path).sort(), [
    'config.json',
    'model-00001-of-00002.safetensors',
    'model-00002-of-00002.safetensors',
    'model.safetensors.index.json',
  ]);
  assert.deepEqual(loadHfFolder(path).config, loadHfFolder(model('stories260K-hf-derived')).config);
  assert.equal(await resolveHubModel(`hf:${SHARDED}`, { cacheDir, offline: true }), path);
  await hub.close();
});

test('sha256 verification: a corrupted LFS body is an LmdynError and leaves nothing in blobs or snapshots', async () => {
  const hub = await startHub();
  hub.corrupt = true;
  const cacheDir = join(TMP, 'corrupt');
  await assert.rejects(
    resolveHubModel(`hf:${REPO}`, { endpoint: hub.url, cacheDir }),
    isCode('network', /sha256/),
  );
  const repoDir = storage(cacheDir);
  assert.equal(existsSync(join(repoDir, 'snapshots', COMMIT, 'model.safetensors')), false);
  assert.deepEqual(readdirSync(join(repoDir, 'blobs')), [gitSha1(CONFIG)]);
  await hub.close();
});

test('resume: a dropped or stalled connection is resumed with a Range request, within one call and across calls', async () => {
  const hub = await startHub();
  hub.drops = 1;
  const cacheDir = join(TMP, 'resume');
  const path = await resolveHubModel(`hf:${REPO}/model.safetensors`, {
    endpoint: hub.url,
    cacheDir,
  });
  assert.deepEqual(readFileSync(path), MODEL);
  const cdn = gets(hub).filter((s) => s.path.startsWith('/cdn/'));
  assert.equal(cdn.length, 2);
  assert.equal(cdn[0].range, null);
  assert.equal(cdn[1].range, `bytes=${MODEL.length >> 1}-`);

  // With no retries the first call fails, keeps the .incomplete file, and the next call resumes.
  hub.drops = 1;
  hub.seen.length = 0;
  const cacheDir2 = join(TMP, 'resume2');
  const id = `hf:${REPO}/model.safetensors`;
  await assert.rejects(
    resolveHubModel(id, { endpoint: hub.url, cacheDir: cacheDir2, retries: 0 }),
    isCode('network', /interrupted/),
  );
  const incomplete = join(storage(cacheDir2), 'blobs', `${sha256(MODEL)}.incomplete`);
  assert.equal(statSync(incomplete).size, MODEL.length >> 1);
  assert.equal(
    existsSync(join(storage(cacheDir2), 'snapshots', COMMIT, 'model.safetensors')),
    false,
  );
  const done = await resolveHubModel(id, { endpoint: hub.url, cacheDir: cacheDir2, retries: 0 });
  assert.deepEqual(readFileSync(done), MODEL);
  assert.equal(gets(hub).at(-1)?.range, `bytes=${MODEL.length >> 1}-`);
  assert.equal(existsSync(incomplete), false);

  // A stalled connection (no data for readTimeoutMs) is resumed the same way.
  hub.stalls = 1;
  hub.seen.length = 0;
  const cacheDir3 = join(TMP, 'resume3');
  const stalled = await resolveHubModel(id, {
    endpoint: hub.url,
    cacheDir: cacheDir3,
    readTimeoutMs: 300,
  });
  assert.deepEqual(readFileSync(stalled), MODEL);
  assert.deepEqual(
    gets(hub).map((s) => s.range),
    [null, `bytes=${MODEL.length >> 1}-`],
  );
  await hub.close();
});

test('a body longer than announced stops at the announced size; a trickle ends at the download time limit', async () => {
  const hub = await startHub();
  const id = `hf:${REPO}/model.safetensors`;
  hub.endless = 1;
  const cacheDir = join(TMP, 'endless');
  await assert.rejects(
    resolveHubModel(id, { endpoint: hub.url, cacheDir, retries: 0 }),
    isCode('network', new RegExp(`sent more than the ${MODEL.length} bytes it announced`)),
  );
  const incomplete = join(storage(cacheDir), 'blobs', `${sha256(MODEL)}.incomplete`);
  assert.equal(statSync(incomplete).size, MODEL.length);
  hub.trickles = 1;
  const t0 = Date.now();
  await assert.rejects(
    resolveHubModel(id, {
      endpoint: hub.url,
      cacheDir: join(TMP, 'trickle'),
      readTimeoutMs: 300,
      downloadTimeoutMs: 800,
    }),
    isCode('network', /went past its time limit/),
  );
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
  await hub.close();
});

test('offline without a cache, unreachable hub, missing repo / file / weights: clean LmdynErrors', async () => {
  const empty = join(TMP, 'nothing');
  await assert.rejects(
    resolveHubModel(`hf:${REPO}`, { cacheDir: empty, offline: true }),
    isCode('offline'),
  );
  await assert.rejects(
    resolveHubModel(`hf:${REPO}/config.json`, { cacheDir: empty, offline: true }),
    isCode('offline'),
  );
  await assert.rejects(
    withEnv({ HF_HUB_OFFLINE: 'true', HF_HUB_CACHE: empty }, () => resolveHubModel(`hf:${REPO}`)),
    isCode('offline'),
  );

  const hub = await startHub();
  await assert.rejects(
    resolveHubModel('hf:nobody/nothing', { endpoint: hub.url, cacheDir: empty }),
    isCode('not_found', /repository/),
  );
  await assert.rejects(
    resolveHubModel(`hf:${REPO}/nope.bin`, { endpoint: hub.url, cacheDir: empty }),
    isCode('not_found', /nope\.bin/),
  );
  await assert.rejects(
    resolveHubModel(`hf:${REPO}@v9`, { endpoint: hub.url, cacheDir: empty }),
    isCode('not_found', /revision/),
  );
  REPOS.set('lmdyn-test/no-weights', new Map([['config.json', CONFIG]]));
  await assert.rejects(
    resolveHubModel('hf:lmdyn-test/no-weights', { endpoint: hub.url, cacheDir: empty }),
    isCode('not_found', /model\.safetensors/),
  );
  await hub.close();
  await assert.rejects(
    resolveHubModel(`hf:${REPO}`, { endpoint: hub.url, cacheDir: empty }),
    isCode('network'),
  );
});

test('bare model ids: owner/name and short names resolve through the hub into the same cache as hf:, paths win, misses name hf: and the hub id', async () => {
  assert.equal(bareHubId('Qwen/Qwen2.5-0.5B'), 'hf:Qwen/Qwen2.5-0.5B');
  assert.equal(bareHubId('Qwen/Qwen2.5-0.5B@main'), 'hf:Qwen/Qwen2.5-0.5B@main');
  assert.equal(bareHubId('gpt2'), 'hf:openai-community/gpt2');
  assert.equal(bareHubId('distilgpt2'), 'hf:distilbert/distilgpt2');
  assert.equal(bareHubId('hf:a/b'), null);
  assert.equal(bareHubId('runs/model.gguf'), null); // a model file name, not a repository
  assert.equal(bareHubId('./a/b'), null);
  assert.equal(bareHubId('/abs/path'), null);
  assert.equal(bareHubId('test/io'), null); // an existing folder is a path
  assert.equal(bareHubId('gpt3'), null);

  const hub = await startHub();
  try {
    const cacheDir = join(TMP, 'bare');
    // the fake repo pairs stories260K's weights with GPT-2's tokenizer: bring the right one
    const m = await loadModel(REPO, {
      hub: { endpoint: hub.url, cacheDir },
      tokenizer: model('stories260K', 'tok512.bin'),
    });
    assert.equal(m.source.hubId, `hf:${REPO}`);
    assert.equal(m.source.path, join(storage(cacheDir), 'snapshots', COMMIT));
    const viaHf = await resolveHubModel(`hf:${REPO}`, { endpoint: hub.url, cacheDir });
    assert.equal(viaHf, m.source.path);
    await assert.rejects(
      loadModel('nobody/nothing', { hub: { endpoint: hub.url, cacheDir } }),
      isCode('not_found', /^nobody\/nothing is not a file or folder here, and as the hub id hf:nobody\/nothing: /),
    );
  } finally {
    await hub.close();
  }
  await assert.rejects(
    loadModel('runs/missing.gguf'),
    isCode('not_found', /no such file or folder: runs\/missing\.gguf \(expected .*hf:owner\/name.*gpt2\)/),
  );
});

test('hub ids parse as hf:owner/name[@revision][/file]; the cache folder follows HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME', () => {
  assert.deepEqual(parseHubId('hf:karpathy/tinyllamas/stories260K/stories260K.bin'), {
    owner: 'karpathy',
    name: 'tinyllamas',
    revision: 'main',
    file: 'stories260K/stories260K.bin',
  });
  assert.deepEqual(parseHubId('hf:Qwen/Qwen2.5-0.5B@v1.0'), {
    owner: 'Qwen',
    name: 'Qwen2.5-0.5B',
    revision: 'v1.0',
    file: null,
  });
  for (const bad of [
    'hf:gpt2',
    'hf:a/b/../x',
    'hf:a--b/c',
    'hf:a/b//x',
    'hf:/b',
    'a/b',
    'hf:a/b@..',
    'hf:a/b@x y',
  ]) {
    assert.throws(() => parseHubId(bad), isCode('bad_argument'), bad);
  }
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '/x/hub', HF_HOME: '/h' }), '/x/hub');
  assert.equal(hubCacheDir({ HF_HOME: '/h' }), join('/h', 'hub'));
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/c' }), join('/c', 'huggingface', 'hub'));
  assert.equal(hubCacheDir({}), join(homedir(), '.cache', 'huggingface', 'hub'));
});

test('Pythia-style revisions: hf:owner/name@step1000 is its own branch, commit and snapshot; offline too; coupling over two checkpoints is one command', async () => {
  const hub = await startHub();
  const cacheDir = join(TMP, 'branches');
  const step = commitOf('pythia step1000');
  const main = commitOf('pythia main');
  const repoDir = storage(cacheDir, PYTHIA);
  const atStep = await resolveHubModel(`hf:${PYTHIA}@step1000`, { endpoint: hub.url, cacheDir });
  const atMain = await resolveHubModel(`hf:${PYTHIA}`, { endpoint: hub.url, cacheDir });
  assert.equal(atStep, join(repoDir, 'snapshots', step));
  assert.equal(atMain, join(repoDir, 'snapshots', main));
  assert.equal(readFileSync(join(repoDir, 'refs', 'step1000'), 'utf8'), step);
  assert.equal(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), main);
  // The branch name is asked for once (config.json); every other file is pinned to its commit.
  const stepPaths = hub.seen.map((x) => x.path).filter((x) => x.includes('/resolve/step1000/'));
  assert.deepEqual([...new Set(stepPaths)], [`/${PYTHIA}/resolve/step1000/config.json`]);
  assert.ok(hub.seen.some((x) => x.path === `/${PYTHIA}/resolve/${step}/model.safetensors`));
  // Different checkpoints, different weights: the step1000 branch is the sequential-residual model.
  assert.equal(loadHfFolder(atStep).config.residual, 'sequential');
  assert.equal(loadHfFolder(atMain).config.residual, 'parallel');
  assert.deepEqual(
    readFileSync(join(atStep, 'model.safetensors')),
    BRANCHES.get('step1000')?.files.get('model.safetensors'),
  );
  assert.equal(await resolveHubModel(`hf:${PYTHIA}@step1000`, { cacheDir, offline: true }), atStep);
  await assert.rejects(
    resolveHubModel(`hf:${PYTHIA}@step999`, { endpoint: hub.url, cacheDir }),
    isCode('not_found', /revision/),
  );
  // A branch with only pytorch_model.bin: fetched after the safetensors names are found missing.
  const atBin = await resolveHubModel(`hf:${PYTHIA}@step2000`, { endpoint: hub.url, cacheDir });
  assert.deepEqual(readdirSync(atBin).sort(), [
    'config.json',
    'pytorch_model.bin',
    'tokenizer.json',
  ]);
  const binCommit = commitOf('pythia step2000');
  assert.ok(existsSync(join(repoDir, '.no_exist', binCommit, 'model.safetensors')));
  assert.deepEqual(loadHfFolder(atBin).config, loadHfFolder(atMain).config);
  assert.equal(await resolveHubModel(`hf:${PYTHIA}@step2000`, { cacheDir, offline: true }), atBin);

  // As a user types it (the hub reached through HF_ENDPOINT, a fresh cache): one command.
  const out = join(TMP, 'coupling-over-training');
  const r = await promisify(execFile)(
    process.execPath,
    [
      resolve('bin', 'lmdyn.js'),
      'analyze',
      'coupling',
      '--models',
      `hf:${PYTHIA}@main,hf:${PYTHIA}@step1000`,
      '--prompt',
      'Once upon a time',
      '--k',
      '5',
      '--out',
      out,
    ],
    {
      encoding: 'utf8',
      env: {
        ...process.env,
        HF_ENDPOINT: hub.url,
        HF_HUB_CACHE: join(TMP, 'branches-cli'),
        HF_HUB_OFFLINE: '',
        LMDYN_MODEL: '',
      },
    },
  );
  assert.match(r.stdout, /coupling across 2 models/);
  assert.ok(
    existsSync(
      join(TMP, 'branches-cli', `models--${PYTHIA.replace('/', '--')}`, 'refs', 'step1000'),
    ),
  );
  await hub.close();
});
