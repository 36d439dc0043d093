/**
 * `lmdyn serve`: the dashboard's HTTP side. A static page (web/) and a small JSON API on
 * loopback by default:
 *
 *   GET  /api/info              version, the models the page may open, the runs folder
 *   POST /api/generate          stream a generation: one JSON event per line (engine.ts)
 *   POST /api/lens/NAME         a lens computed now on a prompt (coupling, simplex, gravity;
 *                               live-lenses.ts), as report blocks
 *   GET  /api/runs              every result under --runs (report/scan.ts, in a worker thread,
 *                               reused for a few seconds: runs-listing.ts)
 *   GET  /api/run?path=REL      the results in one folder under --runs, as report blocks
 *   GET  /api/behind?path=REL&config=C | &temperature=T&top_p=P
 *                               the trace of a sweep configuration behind a heatmap cell
 *
 * The page and vega's browser builds are served from this process, so nothing comes from the
 * network. The API opens only the models it was given, reads only under --runs, checks every
 * number, and answers every failure with {"error": "<one line>"} and a 4xx/5xx status. Another
 * site's page cannot make it work: POSTs must be JSON and the GETs that read --runs must carry
 * `X-Lmdyn: 1` (either needs a CORS preflight, which this server never grants), and a request a
 * browser marks as coming from another site (Sec-Fetch-Site) is refused.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LmdynError } from '../errors.js';
import type { PlotSpec } from '../report/plot.js';
import { KIND_TITLES, REPORT_RENDERERS } from '../report/renderers.js';
import { sectionOf } from '../report/report.js';
import { scanResults } from '../report/scan.js';
import { genericBlocks } from '../report/section.js';
import { readSweepIndex, runFolderKind } from '../trace/store.js';
import { VERSION } from '../version.js';
import {
  DEFAULT_MAX_QUEUED,
  Engine,
  EngineBusy,
  RETRY_AFTER_S,
  type EngineEvent,
} from './engine.js';
import { LIVE_LENSES } from './live-lenses.js';
import { RunsListing } from './runs-listing.js';
import { allowedModels, checkModel, type AllowedModel } from './models.js';
import {
  HttpError,
  insideRoot,
  numberField,
  onlyFields,
  stringField,
  type Body,
} from './validate.js';

export interface ServeOptions {
  port?: number;
  host?: string;
  /** Folder whose run folders the page may browse (default ./runs). */
  runs?: string;
  /** Models the page may open (default: every model in the model folders). */
  models?: readonly string[];
  log?: (line: string) => void;
  /**
   * The access token a non-loopback server requires (default: 32 random hex digits). A loopback
   * server needs none: it answers only requests addressed to a loopback name.
   */
  token?: string;
  /**
   * Jobs (generations, lenses) that may wait while the engine runs one (default 8); one more is
   * answered 503 with Retry-After at once. A waiting job whose client goes away is dropped.
   */
  maxQueued?: number;
}

export interface RunningServer {
  /** The page's address; on a non-loopback host it carries the access token (?token=…). */
  url: string;
  /** The access token requests must carry, or null on loopback. */
  token: string | null;
  port: number;
  models: AllowedModel[];
  runs: string;
  /** Jobs waiting for the engine and the one it runs now. */
  engineLoad: () => { waiting: number; running: string | null };
  close: () => Promise<void>;
}

const MAX_BODY = 64 * 1024;
const MAX_PROMPT = 20_000;

export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const runs = resolve(options.runs ?? 'runs');
  const models = allowedModels(options.models ?? []);
  const engine = new Engine(options.maxQueued ?? DEFAULT_MAX_QUEUED);
  const log = options.log ?? (() => {});
  const statics = staticFiles();
  const loopback = isLoopback(host);
  // Anyone who can reach a non-loopback address could run the models and read the runs folder:
  // such a server answers only requests that carry its token (the page's ?token=… sets a
  // same-site cookie; API clients may send `Authorization: Bearer …`).
  const token = loopback ? null : (options.token ?? randomBytes(16).toString('hex'));
  if (token !== null && !/^[\w-]{16,128}$/.test(token))
    throw new LmdynError('bad_argument', '--token must be 16 to 128 letters, digits, _ or -');
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void handle(req, res).catch((err: unknown) => sendError(res, err));
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    // A page on another site could reach a loopback server through DNS rebinding: only
    // requests addressed to a loopback name are answered when bound to loopback.
    if (loopback && !isLoopbackHostHeader(req.headers.host))
      throw new HttpError(403, 'this server answers requests for localhost only');
    if (token !== null) {
      const given = url.searchParams.get('token');
      if (given !== null && sameToken(given, token)) {
        res.setHeader('Set-Cookie', `lmdyn_token=${token}; HttpOnly; SameSite=Strict; Path=/`);
      } else if (!sameToken(requestToken(req) ?? '', token)) {
        throw new HttpError(
          401,
          'this server needs its access token (the URL lmdyn serve printed)',
        );
      }
    }
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    if (url.pathname.startsWith('/api/')) fromThisPage(req, route);
    const file = statics.get(url.pathname);
    if (file && (req.method === 'GET' || req.method === 'HEAD')) return sendFile(res, file);
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      return void res.end();
    }
    switch (route) {
      case 'GET /api/info':
        return sendJson(res, 200, {
          lmdyn: VERSION,
          models,
          runs,
          runsExists: existsSync(runs),
          kinds: KIND_TITLES,
        });
      case 'POST /api/generate':
        return generate(req, res, await readBody(req));
      case 'POST /api/lens/coupling':
      case 'POST /api/lens/simplex':
      case 'POST /api/lens/gravity':
        return liveLens(req, res, url.pathname.slice('/api/lens/'.length), await readBody(req));
      case 'GET /api/runs':
        return sendJson(res, 200, await listRuns());
      case 'GET /api/run':
        return sendJson(res, 200, await runSections(url.searchParams.get('path') ?? ''));
      case 'GET /api/behind':
        return sendJson(res, 200, await runSections(behind(url.searchParams)));
    }
    if (file || KNOWN_API.includes(url.pathname))
      throw new HttpError(405, `${req.method ?? ''} is not allowed on ${url.pathname}`);
    throw new HttpError(404, `${url.pathname} is not part of the dashboard or its API`);
  };

  const generate = async (req: IncomingMessage, res: ServerResponse, body: Body): Promise<void> => {
    onlyFields(body, [
      'model',
      'prompt',
      'maxTokens',
      'temperature',
      'topP',
      'topK',
      'minP',
      'repetitionPenalty',
      'seed',
      'topN',
    ]);
    const model = checkModel(models, stringField(body, 'model', { maxLength: 4096 })).id;
    const prompt = stringField(body, 'prompt', { maxLength: MAX_PROMPT, default: '' });
    const maxTokens = numberField(body, 'maxTokens', {
      min: 1,
      max: 4096,
      integer: true,
      default: 128,
    });
    const sampling = {
      temperature: numberField(body, 'temperature', { min: 0, max: 100, default: 1 }),
      topP: numberField(body, 'topP', { min: 0, minExclusive: true, max: 1, default: 1 }),
      topK: numberField(body, 'topK', { min: 0, max: 1_000_000, integer: true, default: 0 }),
      minP: numberField(body, 'minP', { min: 0, max: 1, default: 0 }),
      repetitionPenalty: numberField(body, 'repetitionPenalty', {
        min: 0,
        minExclusive: true,
        max: 100,
        default: 1,
      }),
    };
    const seed = numberField(body, 'seed', {
      min: 0,
      max: 2 ** 32 - 1,
      integer: true,
      default: 42,
    });
    const topN = numberField(body, 'topN', { min: 1, max: 50, integer: true, default: 10 });
    // The status is decided by the first event: an engine error before any output is a 4xx/5xx.
    let open = false;
    const gone = clientGone(req, res);
    const job = engine.start(
      { kind: 'generate', model, prompt, maxTokens, sampling, seed, topN },
      (event: EngineEvent) => {
        if (!open) {
          if (event.type === 'error') return sendJson(res, event.status, { error: event.message });
          res.writeHead(200, {
            'Content-Type': 'application/x-ndjson; charset=utf-8',
            'Cache-Control': 'no-store',
            'X-Content-Type-Options': 'nosniff',
          });
          open = true;
        }
        if (!res.writableEnded) res.write(JSON.stringify(event) + '\n');
      },
      gone,
    );
    await job.done;
    if (!res.writableEnded) res.end();
  };

  /** A lens computed now (live-lenses.ts), answered as the blocks the report would draw. */
  const liveLens = async (
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    body: Body,
  ): Promise<void> => {
    const lens = LIVE_LENSES[name];
    onlyFields(body, ['model', ...lens.fields]);
    const model = checkModel(models, stringField(body, 'model', { maxLength: 4096 })).id;
    const params = lens.params(body);
    let answer: EngineEvent | null = null;
    const t0 = performance.now();
    await engine.start(
      { kind: 'lens', lens: name, model, params },
      (event) => (answer = event),
      clientGone(req, res),
    ).done;
    const event = answer as EngineEvent | null;
    if (event?.type === 'error' && event.status === 499) {
      const s = ((performance.now() - t0) / 1000).toFixed(1);
      return log(`lens ${name}: ${event.message} (after ${s} s)`);
    }
    if (!event || event.type !== 'result') {
      const e =
        event && event.type === 'error'
          ? event
          : { message: 'the engine gave no answer', status: 500 };
      throw new HttpError(e.status, e.message);
    }
    const { report, plots } = event.result as {
      report: Record<string, unknown>;
      plots: { name: string; spec: PlotSpec }[];
    };
    const found = { kind: name, dir: '', rel: '', file: '', json: report, plots: [] };
    const blocks = await (REPORT_RENDERERS[name] ?? genericBlocks)(found);
    if (!blocks.some((b) => b.type === 'plot'))
      blocks.push(...plots.map((p) => ({ type: 'plot' as const, name: p.name, spec: p.spec })));
    sendJson(res, 200, {
      section: { kind: name, title: `${lens.title} — ${model}`, rel: '', blocks },
    });
  };

  const listing = new RunsListing(runs);
  const listRuns = async () => {
    if (!existsSync(runs))
      return {
        root: runs,
        results: [],
        note: `${runs} does not exist yet; start lmdyn serve with --runs DIR`,
      };
    const results = (await listing.list()).map((f) => ({
      kind: f.kind,
      rel: f.rel,
      title: `${KIND_TITLES[f.kind] ?? `Lens: ${f.kind}`} — ${f.rel || '.'}`,
      plots: f.plots,
      ...(f.refused !== undefined ? { refused: f.refused } : {}),
      ...(f.inSweep !== undefined ? { inSweep: f.inSweep } : {}),
    }));
    return { root: runs, results };
  };

  const runSections = async (rel: string) => {
    if (!existsSync(runs)) throw new HttpError(404, `the runs folder ${runs} does not exist`);
    const dir = insideRoot(runs, rel);
    if (!statSync(dir).isDirectory()) throw new HttpError(400, `"${rel}" is not a folder`);
    const relFromRoot = relative(realpathSync(runs), dir);
    // one level down too: a lens may keep its figures in a subfolder (scan.ts attaches them)
    const found = scanResults(dir, { maxDepth: 1 }).filter((f) => f.dir === dir);
    const sections = [];
    for (const f of found) sections.push(await sectionOf({ ...f, rel: relFromRoot }));
    if (sections.length === 0)
      throw new HttpError(404, `"${rel}" holds no result (trace, sweep or lens report)`);
    return { path: relFromRoot, sections };
  };

  /**
   * The trace folder behind a heatmap cell: the configuration of the sweep in `path` (or of the
   * sweep a lens report in `path` names as its source) given by `config` (folder name or index)
   * or by `temperature` and `top_p`. Returns its path relative to --runs.
   */
  const behind = (q: URLSearchParams): string => {
    if (!existsSync(runs)) throw new HttpError(404, `the runs folder ${runs} does not exist`);
    const root = realpathSync(runs);
    const dir = insideRoot(runs, q.get('path') ?? '');
    let sweepDir = runFolderKind(dir) === 'sweep' ? dir : null;
    if (!sweepDir) {
      for (const f of scanResults(dir, { maxDepth: 0 })) {
        const source = f.json.source;
        const sourceDir =
          source !== null && typeof source === 'object'
            ? (source as { dir?: unknown }).dir
            : undefined;
        if (typeof sourceDir !== 'string') continue;
        sweepDir = insideRoot(runs, relative(root, resolve(dir, sourceDir)));
        break;
      }
    }
    if (!sweepDir || runFolderKind(sweepDir) !== 'sweep')
      throw new HttpError(404, `no sweep behind "${q.get('path') ?? ''}"`);
    // the store refuses a configuration folder outside the sweep folder
    const configs = readSweepIndex(sweepDir, { finished: false }).configs;
    const config = q.get('config');
    let chosen;
    if (config !== null) {
      if (config.length > 300) throw new HttpError(400, '"config" is too long');
      chosen = configs.find(
        (c) => c.dir === config || (/^\d+$/.test(config) && c.index === Number(config)),
      );
    } else {
      const t = numberField({ temperature: toNumber(q.get('temperature')) }, 'temperature', {
        min: 0,
        max: 100,
      });
      const p = numberField({ top_p: toNumber(q.get('top_p')) }, 'top_p', { min: 0, max: 1 });
      chosen = configs.find((c) => c.sampling.temperature === t && c.sampling.topP === p);
    }
    if (!chosen) throw new HttpError(404, 'no configuration of the sweep matches that cell');
    return relative(root, join(sweepDir, chosen.dir));
  };

  const server: Server = createServer(handler);
  // Idle keep-alive sockets outlive the clients' own keep-alive timers (browsers and Node's fetch
  // keep an idle socket 4-5 s), so a client never sends a request on a socket the server is
  // closing at that moment (seen as 'fetch failed' under load when both used ~5 s).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new LmdynError(
          'bad_argument',
          err.code === 'EADDRINUSE'
            ? `port ${options.port} is in use; choose another with --port`
            : `cannot listen on ${host}:${options.port}: ${err.message}`,
        ),
      ),
    );
    server.listen(options.port ?? 7860, host, () => resolvePromise());
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/${token === null ? '' : `?token=${token}`}`,
    token,
    port,
    models,
    runs,
    engineLoad: () => engine.load(),
    close: async () => {
      await engine.close();
      await listing.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const KNOWN_API = [
  '/api/info',
  '/api/generate',
  '/api/lens/coupling',
  '/api/lens/simplex',
  '/api/lens/gravity',
  '/api/runs',
  '/api/run',
  '/api/behind',
];

/** A query parameter as a number for numberField (absent stays absent, text stays text). */
function toNumber(v: string | null): unknown {
  if (v === null || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : v;
}

interface StaticFile {
  path: string;
  type: string;
}

/** The only files served: the page and vega's browser builds (no path from the URL touches the disk). */
function staticFiles(): Map<string, StaticFile> {
  const web = fileURLToPath(new URL('../../../web/', import.meta.url));
  const vega = dirname(fileURLToPath(import.meta.resolve('vega')));
  const vegaLite = dirname(fileURLToPath(import.meta.resolve('vega-lite')));
  return new Map<string, StaticFile>([
    ['/', { path: join(web, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/index.html', { path: join(web, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/app.js', { path: join(web, 'app.js'), type: 'text/javascript; charset=utf-8' }],
    ['/draw.js', { path: join(web, 'draw.js'), type: 'text/javascript; charset=utf-8' }],
    ['/style.css', { path: join(web, 'style.css'), type: 'text/css; charset=utf-8' }],
    [
      '/vendor/vega.min.js',
      { path: join(vega, 'vega.min.js'), type: 'text/javascript; charset=utf-8' },
    ],
    [
      '/vendor/vega-lite.min.js',
      { path: join(vegaLite, 'vega-lite.min.js'), type: 'text/javascript; charset=utf-8' },
    ],
  ]);
}

// Vega compiles its expressions with Function(), hence 'unsafe-eval'; everything else is this origin.
const CSP =
  "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

function sendFile(res: ServerResponse, file: StaticFile): void {
  if (!existsSync(file.path))
    throw new HttpError(500, `${file.path} is missing from the installation`);
  res.writeHead(200, {
    'Content-Type': file.type,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': CSP,
  });
  res.end(readFileSync(file.path));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end(JSON.stringify(body) + '\n');
    return;
  }
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: unknown): void {
  if (err instanceof EngineBusy) {
    if (!res.headersSent) res.setHeader('Retry-After', String(RETRY_AFTER_S));
    return sendJson(res, 503, { error: err.message });
  }
  if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
  if (err instanceof LmdynError)
    return sendJson(res, err.code === 'not_found' ? 404 : 400, { error: err.message });
  const message = err instanceof Error ? err.message : String(err);
  sendJson(res, 500, { error: `internal error (a bug in lmdyn): ${message}` });
}

async function readBody(req: IncomingMessage): Promise<Body> {
  const type = req.headers['content-type'] ?? '';
  // A JSON content type makes a cross-site form post impossible without a CORS preflight.
  if (!/^application\/json\b/i.test(type))
    throw new HttpError(415, 'send the request body as JSON (Content-Type: application/json)');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY)
      throw new HttpError(413, `the request body is larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the request body is not valid JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new HttpError(400, 'the request body must be a JSON object');
  return body as Body;
}

/**
 * Aborts when the client goes away before its answer is complete (the connection closed), so
 * the engine drops its waiting job or stops its running one.
 */
function clientGone(req: IncomingMessage, res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  const abort = () => {
    if (!res.writableFinished) controller.abort();
  };
  res.once('close', abort);
  req.once('aborted', abort);
  return controller.signal;
}

/** GETs that read --runs: another site's page must not be able to start them (a scan is costly). */
const PAGE_ONLY = new Set(['GET /api/runs', 'GET /api/run', 'GET /api/behind']);

/**
 * Refuses an API request a browser sent from another site's page (Sec-Fetch-Site), and a GET
 * that reads --runs without `X-Lmdyn: 1`: a plain cross-site GET (an image, a no-cors fetch)
 * carries no such header, and adding one needs a CORS preflight this server never grants.
 */
function fromThisPage(req: IncomingMessage, route: string): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none')
    throw new HttpError(403, `the API answers only its own page (Sec-Fetch-Site: ${site})`);
  if (PAGE_ONLY.has(route) && req.headers['x-lmdyn'] !== '1')
    throw new HttpError(
      403,
      `${route.slice(4)} needs the header X-Lmdyn: 1 (the dashboard page sends it)`,
    );
}

/** The token a request carries: `Authorization: Bearer …` or the page's cookie. */
function requestToken(req: IncomingMessage): string | null {
  const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (auth) return auth[1];
  const cookie = /(?:^|;\s*)lmdyn_token=([^;]+)/.exec(req.headers.cookie ?? '');
  return cookie ? cookie[1] : null;
}

/** Constant-time comparison, so the time of a refusal says nothing about the token. */
function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function isLoopbackHostHeader(header: string | undefined): boolean {
  if (!header) return false;
  const name = header.startsWith('[')
    ? header.slice(0, header.indexOf(']') + 1)
    : header.replace(/:\d+$/, '');
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name);
}
