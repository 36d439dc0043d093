/**
 * The dashboard's engine queue (src/server/engine.ts): bounded, and a job whose client went away
 * is dropped while it waits and stopped at its next check point while it runs (gravity, simplex,
 * coupling check a StopSignal between prompts and steps). References: the time of one whole
 * gravity job measured in the same test on the same machine (an abandoned queue may delay the
 * next generation by less than that), MANIFEST.md's greedy ids for the generation that follows,
 * and the server's own log line for each stopped job.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openModel } from '../../src/api.js';
import { analyzeSimplex } from '../../src/lenses/simplex/analyze.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { STORIES_GREEDY_64 } from '../helpers/paths.js';
import { STORIES } from '../report/fixture.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'lmdyn-queue-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const PROMPT = 'Once upon a time, there was a little girl named';

function fire(server: RunningServer, path: string, body: unknown, signal?: AbortSignal) {
  return fetch(`${server.url.replace(/\/$/, '')}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  }).then(
    async (r) => ({
      status: r.status,
      retryAfter: r.headers.get('retry-after'),
      text: await r.text(),
    }),
    (err: unknown) => ({ status: 0, retryAfter: null, text: String(err) }),
  );
}

async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const greedy3 = { model: STORIES, prompt: '', maxTokens: 3, temperature: 0 };
const tokenIds = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; id?: number })
    .filter((e) => e.type === 'token')
    .map((e) => e.id);

test('12 abandoned gravity requests delay the next generation by less than one gravity job; the running one stops early', async (t) => {
  const lines: string[] = [];
  const server = await startServer({
    port: 0,
    runs: root,
    models: [STORIES],
    maxQueued: 12,
    log: (l) => lines.push(l),
  });
  try {
    // One whole gravity job, measured here (the model is opened by the first generation).
    assert.equal((await fire(server, '/api/generate', greedy3)).status, 200);
    let t0 = performance.now();
    const whole = await fire(server, '/api/lens/gravity', { model: STORIES, prompt: PROMPT });
    const oneJob = performance.now() - t0;
    assert.equal(whole.status, 200, whole.text);

    const controllers = Array.from({ length: 12 }, () => new AbortController());
    const answers = controllers.map((c) =>
      fire(server, '/api/lens/gravity', { model: STORIES, prompt: PROMPT }, c.signal),
    );
    await until('12 jobs in the engine', () => {
      const l = server.engineLoad();
      return l.running === 'lens gravity' && l.waiting === 11;
    });
    await new Promise((r) => setTimeout(r, Math.min(500, oneJob / 4)));
    for (const c of controllers) c.abort();
    t0 = performance.now();
    const next = await fire(server, '/api/generate', greedy3);
    const delay = performance.now() - t0;
    assert.equal(next.status, 200, next.text);
    assert.deepEqual(tokenIds(next.text), STORIES_GREEDY_64.slice(0, 3));
    assert.ok(
      delay < oneJob,
      `the next generation took ${delay.toFixed(0)} ms, one gravity job ${oneJob.toFixed(0)} ms`,
    );
    await Promise.all(answers);
    await until('every abandoned job logged', () => lines.length === 12);
    assert.equal(lines.filter((l) => l.includes('cancelled before it started')).length, 11);
    const stopped = lines.find((l) => l.includes('stopped: its client went away'));
    assert.ok(stopped, lines.join('\n'));
    const after = Number(/after ([\d.]+) s/.exec(stopped)![1]) * 1000;
    assert.ok(
      after < oneJob * 0.75,
      `the running gravity job ended ${after} ms after it started; a whole one takes ${oneJob.toFixed(0)} ms`,
    );
    assert.deepEqual(server.engineLoad(), { waiting: 0, running: null });
    t.diagnostic(
      `one gravity job ${oneJob.toFixed(0)} ms; next generation after 12 abandoned ${delay.toFixed(0)} ms; running job stopped ${after.toFixed(0)} ms after it started`,
    );
  } finally {
    await server.close();
  }
});

test('a full queue answers 503 with Retry-After at once; a running simplex job stops when its client goes away', async () => {
  const lines: string[] = [];
  const server = await startServer({
    port: 0,
    runs: root,
    models: [STORIES],
    maxQueued: 1,
    log: (l) => lines.push(l),
  });
  try {
    assert.equal((await fire(server, '/api/generate', greedy3)).status, 200);
    const a = new AbortController();
    const b = new AbortController();
    const running = fire(server, '/api/lens/simplex', { model: STORIES, prompt: PROMPT }, a.signal);
    await until('simplex running', () => server.engineLoad().running === 'lens simplex');
    const waiting = fire(server, '/api/generate', greedy3, b.signal);
    await until('one job waiting', () => server.engineLoad().waiting === 1);
    const t0 = performance.now();
    const full = await fire(server, '/api/lens/gravity', { model: STORIES, prompt: PROMPT });
    const ms = performance.now() - t0;
    assert.equal(full.status, 503, full.text);
    assert.equal(full.retryAfter, '5');
    assert.match(JSON.parse(full.text).error as string, /^the engine is busy \(1 job waiting\)/);
    assert.ok(ms < 2000, `the 503 took ${ms.toFixed(0)} ms`);

    b.abort();
    await until('the waiting generation dropped', () => server.engineLoad().waiting === 0);
    a.abort();
    await Promise.all([running, waiting]);
    await until('the simplex job stopped', () => lines.some((l) => l.startsWith('lens simplex')));
    assert.match(lines.join('\n'), /lens simplex: stopped: its client went away/);
    await until('the engine idle', () => server.engineLoad().running === null);
    const next = await fire(server, '/api/generate', greedy3);
    assert.deepEqual(tokenIds(next.text), STORIES_GREEDY_64.slice(0, 3));
  } finally {
    await server.close();
  }
});

test('--max-queued 0: an idle engine takes the job, a busy one answers 503', async () => {
  const server = await startServer({ port: 0, runs: root, models: [STORIES], maxQueued: 0 });
  try {
    const first = await fire(server, '/api/generate', greedy3);
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(tokenIds(first.text), STORIES_GREEDY_64.slice(0, 3));
    const a = new AbortController();
    const running = fire(server, '/api/lens/simplex', { model: STORIES, prompt: PROMPT }, a.signal);
    await until('simplex running', () => server.engineLoad().running === 'lens simplex');
    const busy = await fire(server, '/api/generate', greedy3);
    assert.equal(busy.status, 503, busy.text);
    assert.match(JSON.parse(busy.text).error as string, /^the engine is busy \(0 jobs waiting\)/);
    a.abort();
    await running;
  } finally {
    await server.close();
  }
});

test('the library: a lens given an AbortSignal ends early with its AbortError', async () => {
  const m = await openModel(STORIES);
  const t0 = performance.now();
  const whole = analyzeSimplex(m, { prompt: PROMPT, tMax: 3 });
  const oneRun = performance.now() - t0;
  assert.equal(whole.lens, 'simplex');
  assert.throws(
    () => analyzeSimplex(m, { prompt: PROMPT, tMax: 3, signal: AbortSignal.abort() }),
    (e: Error) => e.name === 'AbortError',
  );
  // A signal that aborts while the flows integrate: checked from inside the integration loop.
  let checks = 0;
  const signal = {
    throwIfAborted: () => {
      if (++checks > 200) throw new Error('stop');
    },
  };
  const t1 = performance.now();
  assert.throws(() => analyzeSimplex(m, { prompt: PROMPT, tMax: 3, signal }), /stop/);
  assert.ok(performance.now() - t1 < oneRun / 2, `${performance.now() - t1} ms vs ${oneRun} ms`);
});
