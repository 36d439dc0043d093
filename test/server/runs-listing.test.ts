/**
 * GET /api/runs (src/server/runs-listing.ts): the scan of --runs runs in a worker thread, so a
 * cheap request answers while a 5,000-configuration folder is scanned; a listing is reused until
 * the runs folder changes; another site's page cannot start a scan. References: the scan's own
 * result count (one trace written, hard-linked 5,000 times: 5,001 traces), and the order in
 * which the two concurrent answers arrive.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openModel } from '../../src/api.js';
import { RunsListing } from '../../src/server/runs-listing.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { writeTrace } from '../../src/trace/store.js';
import { recordTrace } from '../../src/trace/record.js';
import { STORIES } from '../report/fixture.js';

const CONFIGS = 5000;
let root: string;
let server: RunningServer;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'lmdyn-runs-listing-'));
  const m = await openModel(STORIES);
  const trace = recordTrace(m, {
    spec: STORIES,
    prompt: 'Once',
    samples: 1,
    maxTokens: 4,
    seed: 1,
  });
  const one = join(root, 'one');
  writeTrace(one, trace, { tokenText: (id) => m.tokenizer.decode([id]) });
  // 5,000 committed trace folders (hard links: the bytes are written once)
  const files = readdirSync(one);
  for (let i = 0; i < CONFIGS; i++) {
    const dir = join(root, 'big', String(i).padStart(4, '0'));
    mkdirSync(dir, { recursive: true });
    for (const f of files) linkSync(join(one, f), join(dir, f));
  }
  server = await startServer({ port: 0, runs: root, models: [STORIES] });
});

after(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

const url = (path: string) => `${server.url.replace(/\/$/, '')}${path}`;
const page = { 'X-Lmdyn': '1' };

test('a cheap request answers while a 5,000-configuration scan runs (the scan is off the HTTP thread)', async (t) => {
  const t0 = performance.now();
  let infoAt = 0;
  let runsAt = 0;
  const runs = fetch(url('/api/runs'), { headers: page }).then(async (r) => {
    runsAt = performance.now() - t0;
    return { status: r.status, json: (await r.json()) as { results: { kind: string }[] } };
  });
  await new Promise((r) => setTimeout(r, 30));
  const info = await fetch(url('/api/info'));
  infoAt = performance.now() - t0;
  assert.equal(info.status, 200);
  const listed = await runs;
  assert.equal(listed.status, 200);
  assert.equal(listed.json.results.filter((r) => r.kind === 'trace').length, CONFIGS + 1);
  t.diagnostic(
    `/api/info answered at ${infoAt.toFixed(0)} ms; the scan answered at ${runsAt.toFixed(0)} ms`,
  );
  assert.ok(infoAt < runsAt, `info at ${infoAt.toFixed(0)} ms, runs at ${runsAt.toFixed(0)} ms`);
});

test('another site cannot start a scan: a plain GET (no X-Lmdyn header) and a cross-site fetch are refused', async () => {
  for (const [headers, message] of [
    [{}, /needs the header X-Lmdyn: 1/],
    [
      { ...page, 'Sec-Fetch-Site': 'cross-site' },
      /only its own page \(Sec-Fetch-Site: cross-site\)/,
    ],
    [{ ...page, 'Sec-Fetch-Site': 'same-site' }, /only its own page/],
  ] as const) {
    for (const path of ['/api/runs', '/api/run?path=one', '/api/behind?path=one&config=0']) {
      const r = await fetch(url(path), { headers });
      assert.equal(r.status, 403, path);
      assert.match(((await r.json()) as { error: string }).error, message);
    }
  }
  const own = await fetch(url('/api/run?path=one'), {
    headers: { ...page, 'Sec-Fetch-Site': 'same-origin' },
  });
  assert.equal(own.status, 200);
});

test('RunsListing: concurrent requests share one scan, a listing is reused, a change to the folder rescans', async () => {
  const small = mkdtempSync(join(tmpdir(), 'lmdyn-runs-small-'));
  try {
    const one = join(root, 'one');
    mkdirSync(join(small, 'a'));
    for (const f of readdirSync(one)) linkSync(join(one, f), join(small, 'a', f));
    const listing = new RunsListing(small, 60_000);
    const [x, y] = await Promise.all([listing.list(), listing.list()]);
    assert.equal(x, y, 'one scan for two concurrent requests');
    assert.deepEqual(
      x.map((e) => [e.kind, e.rel]),
      [['trace', 'a']],
    );
    assert.equal(await listing.list(), x, 'reused while fresh');
    mkdirSync(join(small, 'b'));
    for (const f of readdirSync(one)) linkSync(join(one, f), join(small, 'b', f));
    const z = await listing.list();
    assert.notEqual(z, x);
    assert.deepEqual(
      z.map((e) => e.rel),
      ['a', 'b'],
    );
    const brief = new RunsListing(small, 0);
    const first = await brief.list();
    assert.notEqual(await brief.list(), first, 'a TTL of 0 scans every time');
    await listing.close();
  } finally {
    rmSync(small, { recursive: true, force: true });
  }
});
