/**
 * The dashboard's HTTP API (src/server/server.ts) on stories260K and a fixture run folder.
 * References: MANIFEST.md (greedy ids from BOS, the top-5 logits at position 0 and their
 * logsumexp), numpy's SVD for the streamed trajectory's PCA, and hand-written expectations for
 * every refused request (unknown model paths, bad numbers, path traversal, foreign Host).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateText, openModel } from '../../src/api.js';
import { encodePrompt } from '../../src/model/model.js';
import { runWithCache } from '../../src/hooked.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { model, STORIES_GREEDY_64, STORIES_LSE0, STORIES_TOP5 } from '../helpers/paths.js';
import { makeRunFolder, STORIES } from '../report/fixture.js';

let server: RunningServer;
let root: string;
let outside: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'lmdyn-serve-runs-'));
  outside = mkdtempSync(join(tmpdir(), 'lmdyn-serve-outside-'));
  await makeRunFolder(root);
  symlinkSync(outside, join(root, 'link-out'));
  server = await startServer({ port: 0, runs: root, models: [STORIES] });
});

after(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

const url = (path: string) => `${server.url.replace(/\/$/, '')}${path}`;

async function post(
  path: string,
  body: unknown,
  raw?: string,
  type = 'application/json',
): Promise<{ status: number; text: string }> {
  const res = await fetch(url(path), {
    method: 'POST',
    headers: { 'Content-Type': type },
    body: raw ?? JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

type Event = Record<string, unknown> & { type: string };
const events = (text: string): Event[] =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Event);

test('info lists exactly the allowed model and the runs folder', async () => {
  const info = (await (await fetch(url('/api/info'))).json()) as {
    models: { id: string }[];
    runs: string;
  };
  assert.deepEqual(
    info.models.map((m) => m.id),
    [STORIES],
  );
  assert.equal(info.runs, root);
});

test('greedy generation streams MANIFEST’s ids, one event per token, and the trajectory PCA matches numpy', async () => {
  const r = await post('/api/generate', {
    model: STORIES,
    prompt: '',
    maxTokens: 24,
    temperature: 0,
  });
  assert.equal(r.status, 200, r.text);
  const ev = events(r.text);
  assert.equal(ev[0].type, 'start');
  assert.deepEqual(ev[0].promptIds, [1]);
  const tokens = ev.filter((e) => e.type === 'token');
  assert.deepEqual(
    tokens.map((t) => t.id),
    STORIES_GREEDY_64.slice(0, 24),
  );
  assert.deepEqual(
    tokens.map((t) => t.step),
    [...Array(24).keys()],
  );
  for (const t of tokens) assert.equal(t.p, 1, 'greedy: the distribution is the argmax alone');
  const done = ev[ev.length - 1];
  assert.equal(done.type, 'done');
  assert.equal(done.generated, 24);
  // the last trajectory event holds every forwarded position: BOS + 23 generated tokens
  const traj = ev.filter((e) => e.type === 'trajectory').pop() as unknown as {
    positions: number[];
    k: number;
    coords: number[];
  };
  assert.deepEqual(traj.positions, [...Array(24).keys()]);
  assert.equal(traj.k, 3);
  const m = await openModel(STORIES);
  const { cache } = runWithCache(
    m,
    [1, ...STORIES_GREEDY_64.slice(0, 23)],
    'blocks.4.hook_resid_post',
  );
  const states = [...cache.get('blocks.4.hook_resid_post').data];
  const ref = JSON.parse(
    spawnSync(
      'python3',
      [
        '-c',
        `import json,sys,numpy as np
x=np.array(json.load(sys.stdin),dtype=np.float64).reshape(24,64)
c=x-x.mean(0)
u,s,vt=np.linalg.svd(c,full_matrices=False)
print(json.dumps((c@vt[:3].T).tolist()))`,
      ],
      { input: JSON.stringify(states), encoding: 'utf8' },
    ).stdout,
  ) as number[][];
  for (let c = 0; c < 3; c++) {
    const sign = Math.sign(ref[0][c]) === Math.sign(traj.coords[c]) ? 1 : -1;
    for (let i = 0; i < 24; i++) {
      const want = ref[i][c];
      assert.ok(
        Math.abs(sign * traj.coords[i * 3 + c] - want) <= 1e-3 * Math.max(1, Math.abs(want)),
        `position ${i}, PC${c + 1}: ${traj.coords[i * 3 + c]} vs ${want}`,
      );
    }
  }
});

test('incremental text deltas add up to the tokenizer’s decoding of the whole sequence (sentencepiece and byte-level BPE)', async () => {
  const { IncrementalText } = await import('../../src/server/incremental-text.js');
  for (const [spec, prompt] of [
    [STORIES, 'Once upon a time'],
    [model('tiny-gpt2'), 'Hello, wörld — ünïcödé'],
  ] as const) {
    const m = await openModel(spec);
    const promptIds = encodePrompt(m, prompt);
    const { ids } = generateText(m, {
      promptIds,
      maxTokens: 200,
      sampling: { temperature: 1 },
      seed: 11,
    });
    const text = new IncrementalText(m.tokenizer, promptIds);
    const deltas = ids.map((id) => text.push(id));
    const joined = deltas.join('') + text.flush();
    assert.equal(
      m.tokenizer.decode(promptIds) + joined,
      m.tokenizer.decode([...promptIds, ...ids]),
      spec,
    );
    // and it is incremental: (almost) every token adds its text when it comes
    assert.ok(
      deltas.filter((d) => d !== '').length >= 0.8 * ids.length,
      `${spec}: ${deltas.filter((d) => d !== '').length} of ${ids.length} deltas`,
    );
  }
});

test('the distribution of the first step from BOS is MANIFEST’s top 5 (softmax of its logits)', async () => {
  const r = await post('/api/generate', {
    model: STORIES,
    prompt: '',
    maxTokens: 1,
    temperature: 1,
    topN: 5,
    seed: 3,
  });
  assert.equal(r.status, 200, r.text);
  const first = events(r.text).find((e) => e.type === 'token') as unknown as {
    top: [number, string, number][];
  };
  assert.deepEqual(
    first.top.map((t) => t[0]),
    STORIES_TOP5.map((t) => t[0]),
  );
  first.top.forEach(([, piece, p], i) => {
    assert.equal(typeof piece, 'string');
    assert.ok(
      Math.abs(p - Math.exp(STORIES_TOP5[i][1] - STORIES_LSE0)) < 2e-4,
      `p of rank ${i}: ${p}`,
    );
  });
});

test('refused requests: unknown or foreign models, bad numbers, unknown fields, bad bodies', async () => {
  const ok = { model: STORIES, prompt: 'Once', maxTokens: 4 };
  const cases: [string, unknown, number, RegExp, string?, string?][] = [
    [
      'model outside the allowed list',
      { ...ok, model: '/etc/passwd' },
      403,
      /model "\/etc\/passwd" is not one this server allows/,
    ],
    [
      'a real model that was not allowed',
      { ...ok, model: model('tiny-gpt2') },
      403,
      /not one this server allows/,
    ],
    ['model missing', { prompt: 'x' }, 400, /"model" is required/],
    [
      'temperature as text',
      { ...ok, temperature: 'hot' },
      400,
      /"temperature" must be a number in \[0, 100\], got "hot"/,
    ],
    [
      'negative temperature',
      { ...ok, temperature: -1 },
      400,
      /"temperature" must be a number in \[0, 100\], got -1/,
    ],
    [
      'fractional maxTokens',
      { ...ok, maxTokens: 1.5 },
      400,
      /"maxTokens" must be a whole number in \[1, 4096\], got 1.5/,
    ],
    ['huge maxTokens', { ...ok, maxTokens: 1e9 }, 400, /"maxTokens" must be a whole number/],
    ['top-p 0', { ...ok, topP: 0 }, 400, /"topP" must be a number in \(0, 1\]/],
    [
      'negative seed',
      { ...ok, seed: -1 },
      400,
      /"seed" must be a whole number in \[0, 4294967295\]/,
    ],
    ['seed too big', { ...ok, seed: 2 ** 32 }, 400, /"seed"/],
    ['top-k as a list', { ...ok, topK: [5] }, 400, /"topK" must be a whole number/],
    [
      'infinite number',
      null,
      400,
      /"temperature" must be a number in \[0, 100\], got Infinity/,
      `{"model":${JSON.stringify(STORIES)},"temperature":1e999}`,
    ],
    ['misspelt field', { ...ok, temprature: 1 }, 400, /unknown field "temprature"/],
    ['prompt as a number', { ...ok, prompt: 5 }, 400, /"prompt" must be a string/],
    ['not JSON', null, 400, /not valid JSON/, '{model:'],
    ['an array', null, 400, /must be a JSON object/, '[1,2]'],
    [
      'form post',
      null,
      415,
      /Content-Type: application\/json/,
      'model=x',
      'application/x-www-form-urlencoded',
    ],
    ['too large', { ...ok, prompt: 'x'.repeat(70_000) }, 413, /larger than 65536 bytes/],
    [
      'prompt longer than the context',
      { ...ok, prompt: 'the cat sat on the mat '.repeat(120) },
      400,
      /the model's context holds 512/,
    ],
  ];
  for (const [what, body, status, message, raw, type] of cases) {
    const r = await post('/api/generate', body, raw, type);
    assert.equal(r.status, status, `${what}: ${r.text}`);
    const json = JSON.parse(r.text) as { error: string };
    assert.match(json.error, message, what);
    assert.ok(!json.error.includes('\n'), `${what}: one line`);
  }
  const lens: [string, unknown, number, RegExp, string?][] = [
    [
      'K = 0',
      { model: STORIES, prompt: 'Once', k: [0] },
      400,
      /"k\[0\]" must be a whole number in \[1, 1024\], got 0/,
    ],
    ['K as text', { model: STORIES, prompt: 'Once', k: 'ten' }, 400, /"k" must be a list/],
    ['empty prompt', { model: STORIES, prompt: '  ' }, 400, /must not be empty/],
    [
      'twin as text',
      { model: STORIES, prompt: 'Once', randomTwin: 'yes' },
      400,
      /"randomTwin" must be true or false/,
    ],
    [
      'foreign model',
      { model: '../models/x.bin', prompt: 'Once' },
      403,
      /not one this server allows/,
    ],
    [
      'simplex at T = 0',
      { model: STORIES, prompt: 'Once', temperature: 0 },
      400,
      /"temperature" must be a number in \(0, 100\], got 0/,
      'simplex',
    ],
    [
      'simplex top-k as text',
      { model: STORIES, topK: 'ten' },
      400,
      /"topK" must be a whole number/,
      'simplex',
    ],
    [
      'simplex with a coupling field',
      { model: STORIES, k: [10] },
      400,
      /unknown field "k"/,
      'simplex',
    ],
    ['gravity without prompt', { model: STORIES, prompt: '' }, 400, /must not be empty/, 'gravity'],
    [
      'gravity seed',
      { model: STORIES, prompt: 'x', seed: 0.5 },
      400,
      /"seed" must be a whole number/,
      'gravity',
    ],
  ];
  for (const [what, body, status, message, name = 'coupling'] of lens) {
    const r = await post(`/api/lens/${name}`, body);
    assert.equal(r.status, status, `${what}: ${r.text}`);
    assert.match((JSON.parse(r.text) as { error: string }).error, message, what);
  }
});

test('run folders: only paths inside --runs are read', async () => {
  const get = async (path: string) => {
    const res = await fetch(url(path), { headers: { 'X-Lmdyn': '1' } });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  for (const [path, status, message] of [
    ['/api/run?path=..', 403, /outside the runs folder/],
    ['/api/run?path=../..', 403, /outside the runs folder/],
    ['/api/run?path=sweep%2F..%2F..%2Fetc', 403, /outside the runs folder/],
    ['/api/run?path=%2Fetc', 403, /absolute path/],
    ['/api/run?path=link-out', 403, /leads outside the runs folder/],
    ['/api/run?path=sweep%00', 400, /NUL/],
    ['/api/run?path=nothing-here', 404, /does not exist/],
    ['/api/run?path=loose%2Floose.vl.json', 400, /not a folder/],
    ['/api/behind?path=sweep&temperature=warm&top_p=1', 400, /"temperature" must be a number/],
    ['/api/behind?path=sweep&temperature=0.7&top_p=1', 404, /no configuration/],
    ['/api/behind?path=..&config=0', 403, /outside/],
    ['/api/nope', 404, /not part of the dashboard/],
  ] as [string, number, RegExp][]) {
    const r = await get(path);
    assert.equal(r.status, status, `${path}: ${JSON.stringify(r.json)}`);
    assert.match(String(r.json.error), message, path);
  }
  const runs = await get('/api/runs');
  const kinds = (runs.json.results as { kind: string; rel: string }[]).map(
    (r) => `${r.kind}:${r.rel}`,
  );
  assert.ok(
    kinds.includes('sweep:sweep') &&
      kinds.includes('coupling:coupling') &&
      kinds.includes('dmet:lenses/dmet'),
    kinds.join(' '),
  );
  const sweep = await get('/api/run?path=sweep');
  assert.equal(sweep.status, 200);
  const sections = sweep.json.sections as {
    kind: string;
    blocks: { type: string; name?: string }[];
  }[];
  assert.deepEqual(
    sections.map((s) => s.kind),
    ['sweep'],
  );
  assert.deepEqual(
    sections[0].blocks.filter((b) => b.type === 'plot').map((b) => b.name),
    ['sweep_entropy', 'sweep_logprob', 'sweep_distinct'],
  );
  // a heatmap cell → the configuration's trace, from the sweep itself or from a lens report naming it as source
  const cell = await get('/api/behind?path=sweep&temperature=0.5&top_p=0.9');
  assert.equal(cell.status, 200, JSON.stringify(cell.json));
  assert.equal(cell.json.path, 'sweep/000_t0.5_p0.9_k0_r1');
  const viaLens = await get('/api/behind?path=lenses%2Fdmet&temperature=1&top_p=1');
  assert.equal(viaLens.json.path, 'sweep/003_t1_p1_k0_r1');
  const byName = await get('/api/behind?path=sweep&config=001_t0.5_p1_k0_r1');
  assert.equal(byName.json.path, 'sweep/001_t0.5_p1_k0_r1');
});

test('methods, static files, and requests addressed to another host name', async () => {
  assert.equal((await fetch(url('/api/generate'))).status, 405);
  const page = await fetch(url('/'));
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  assert.match(await page.text(), /<script src="\/vendor\/vega.min.js">/);
  for (const path of [
    '/app.js',
    '/draw.js',
    '/style.css',
    '/vendor/vega.min.js',
    '/vendor/vega-lite.min.js',
  ]) {
    const r = await fetch(url(path));
    assert.equal(r.status, 200, path);
    assert.ok((await r.arrayBuffer()).byteLength > 1000, path);
  }
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: server.port,
        path: '/api/info',
        headers: { Host: `evil.example:${server.port}` },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 403);
});

test('a generation whose client went away is stopped, and the engine serves the next one', async () => {
  const controller = new AbortController();
  const res = await fetch(url('/api/generate'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      model: STORIES,
      prompt: 'Once upon a time',
      maxTokens: 500,
      temperature: 1,
    }),
    signal: controller.signal,
  });
  const reader = res.body!.getReader();
  await reader.read();
  controller.abort();
  const t0 = performance.now();
  const next = await post('/api/generate', {
    model: STORIES,
    prompt: '',
    maxTokens: 3,
    temperature: 0,
  });
  assert.equal(next.status, 200);
  assert.deepEqual(
    events(next.text)
      .filter((e) => e.type === 'token')
      .map((e) => e.id),
    STORIES_GREEDY_64.slice(0, 3),
  );
  assert.ok(performance.now() - t0 < 20_000);
});

test('simplex and gravity computed now: report blocks with their own figures', async () => {
  for (const [name, figures] of [
    ['simplex', ['distance', 'ternary']],
    ['gravity', ['potential', 'density', 'temperature']],
  ] as const) {
    const r = await post(`/api/lens/${name}`, {
      model: STORIES,
      prompt: 'Once upon a time, there was a little girl named',
      temperature: 1,
    });
    assert.equal(r.status, 200, r.text);
    const { section } = JSON.parse(r.text) as {
      section: {
        kind: string;
        blocks: { type: string; name?: string; provenance?: { lens: string } }[];
      };
    };
    assert.equal(section.kind, name);
    assert.equal(section.blocks[0].provenance?.lens, name);
    assert.ok(
      section.blocks.some((b) => b.type === 'metrics'),
      `${name}: tagged metrics`,
    );
    assert.deepEqual(
      section.blocks.filter((b) => b.type === 'plot').map((b) => b.name),
      figures,
    );
  }
});

test('the coupling lens answers with report blocks: headline metrics with tags and its figures', async () => {
  const r = await post('/api/lens/coupling', {
    model: STORIES,
    prompt: 'Once upon a time, there was a girl.',
    k: [10],
    randomTwin: false,
  });
  assert.equal(r.status, 200, r.text);
  const { section } = JSON.parse(r.text) as {
    section: {
      kind: string;
      blocks: {
        type: string;
        name?: string;
        columns?: string[];
        rows?: { name: string; tag: string }[];
      }[];
    };
  };
  assert.equal(section.kind, 'coupling');
  const metrics = section.blocks.find((b) => b.type === 'metrics')!;
  assert.deepEqual(metrics.columns, ['trained']);
  assert.ok(
    metrics.rows!.some((row) => row.name === 'line-shape score (mean)' && row.tag === 'exact'),
  );
  assert.deepEqual(
    section.blocks.filter((b) => b.type === 'plot').map((b) => b.name),
    ['coupling_k10', 'spectra', 'lss', 'growth'],
  );
});

// A server bound beyond loopback answers only requests that carry its token; reached here over
// 127.0.0.1 (the 0.0.0.0 socket accepts it; no traffic leaves the machine).
test('a non-loopback server requires its token: query (sets a cookie), cookie or Bearer; else 401', async () => {
  const open = await startServer({ port: 0, host: '0.0.0.0', runs: root, models: [STORIES] });
  try {
    const token = open.token ?? '';
    assert.match(token, /^[0-9a-f]{32}$/);
    assert.ok(open.url.endsWith(`/?token=${token}`), open.url);
    const base = `http://127.0.0.1:${open.port}`;
    assert.equal((await fetch(`${base}/api/info`)).status, 401);
    const wrong = token.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    assert.equal((await fetch(`${base}/api/info?token=${wrong}`)).status, 401);
    const page = await fetch(`${base}/?token=${token}`);
    assert.equal(page.status, 200);
    const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0];
    assert.equal(cookie, `lmdyn_token=${token}`);
    assert.equal((await fetch(`${base}/api/info`, { headers: { cookie } })).status, 200);
    const bearer = { authorization: `Bearer ${token}` };
    assert.equal((await fetch(`${base}/api/info`, { headers: bearer })).status, 200);
  } finally {
    await open.close();
  }
  // a loopback server needs no token and prints none
  assert.equal(server.token, null);
  assert.ok(!server.url.includes('token'));
  await assert.rejects(
    startServer({ port: 0, host: '0.0.0.0', runs: root, models: [STORIES], token: 'short' }),
    /--token must be 16 to 128/,
  );
});
