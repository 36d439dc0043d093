// @ts-check
/**
 * The lmdyn dashboard: a thin client of `lmdyn serve` (src/server/server.ts). It streams a
 * generation (one JSON event per line) and draws it as it comes — tokens, the distribution each
 * was drawn from, the trajectory in 2-D and 3-D PCA — and shows lens results as the server's
 * report blocks, drawing their Vega-Lite specs with the vega build the server ships. Nothing is
 * loaded from anywhere else. Every server error is shown as the one-line message it carries.
 */
import { drawStrip, drawTrajectory2d, Trajectory3d } from './draw.js';

/** @type {any} */
const vega = /** @type {any} */ (globalThis).vega;
/** @type {any} */
const vegaLite = /** @type {any} */ (globalThis).vegaLite;

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ (document.getElementById(id));

// ---------------------------------------------------------------- errors and requests

/** @param {string} message */
function showError(message) {
  $('error-text').textContent = message;
  $('error').hidden = false;
}
function clearError() {
  $('error').hidden = true;
  $('error-text').textContent = '';
}
$('error-close').addEventListener('click', clearError);

/**
 * fetch that turns a failed answer into an Error carrying the server's message.
 * @param {string} path @param {RequestInit} [init]
 */
async function request(path, init) {
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new Error(
      `the server is not reachable (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (body && typeof body.error === 'string') message = body.error;
    } catch {
      // not JSON: keep the status line
    }
    throw new Error(message);
  }
  return res;
}

/** @param {string} path */
async function getJson(path) {
  // the server reads --runs only for requests that carry this header (another site's page cannot)
  return (await request(path, { headers: { 'X-Lmdyn': '1' } })).json();
}

/** @param {string} path @param {unknown} body @param {AbortSignal} [signal] */
function postJson(path, body, signal) {
  return request(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
}

/** A number field's value: a number, undefined when empty, or the raw text (the server names the problem). */
function numberInput(/** @type {string} */ id) {
  return numberValue(input(id));
}

/** @param {HTMLInputElement} field */
function numberValue(field) {
  const raw = field.value.trim();
  if (raw === '') return undefined;
  const v = Number(raw);
  return Number.isFinite(v) ? v : raw;
}

// ---------------------------------------------------------------- views

const views = ['generate', 'coupling', 'dmet', 'persistence', 'simplex', 'gravity', 'sde', 'runs'];
let current = 'generate';

function route() {
  const name = location.hash.replace(/^#/, '') || 'generate';
  const view = views.includes(name) ? name : 'generate';
  current = view;
  for (const v of views) $(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll('#tabs a'))
    a.classList.toggle('active', /** @type {HTMLElement} */ (a).dataset.view === view);
  for (const el of $(`view-${view}`).querySelectorAll('.lens-browser'))
    void openBrowser(/** @type {HTMLElement} */ (el));
  if (view === 'generate') gen.dirty = true;
}
window.addEventListener('hashchange', route);

// ---------------------------------------------------------------- generation

/**
 * @typedef {{ pos: number, step: number, id: number, piece: string, text?: string, p?: number, entropy?: number, top?: [number, string, number][] }} Tok
 */
const gen = {
  /** @type {Tok[]} */ tokens: [],
  /** @type {Map<number, number[]>} position → PCA coordinates */ coords: new Map(),
  /** @type {number[] | undefined} */ explained: undefined,
  /** @type {number | undefined} index into tokens */ selected: undefined,
  rendered: 0,
  dirty: false,
  /** @type {AbortController | null} */ abort: null,
  hook: '',
};
const t3 = new Trajectory3d(/** @type {HTMLCanvasElement} */ ($('traj3d')));
/** Frame timing while generating, for the end-to-end test: the longest gap between frames. */
const stats = { frames: 0, maxGapMs: 0, maxFlushMs: 0, lastFrame: 0, events: 0, done: false };
/** @type {any} */ (window).lmdynStats = stats;

$('gen-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void generate();
});
$('stop').addEventListener('click', () => gen.abort?.abort());

async function generate() {
  clearError();
  gen.abort?.abort();
  const abort = new AbortController();
  gen.abort = abort;
  Object.assign(gen, {
    tokens: [],
    coords: new Map(),
    explained: undefined,
    selected: undefined,
    rendered: 0,
    dirty: true,
  });
  Object.assign(stats, {
    frames: 0,
    maxGapMs: 0,
    maxFlushMs: 0,
    lastFrame: 0,
    events: 0,
    done: false,
  });
  finished = false;
  $('tokens').textContent = '';
  $('gen-info').textContent = '';
  $('generate').setAttribute('disabled', '');
  $('stop').removeAttribute('disabled');
  $('status').textContent = 'generating…';
  const body = {
    model: /** @type {HTMLSelectElement} */ ($('model')).value,
    prompt: /** @type {HTMLTextAreaElement} */ ($('prompt')).value,
    maxTokens: numberInput('maxTokens'),
    temperature: numberInput('temperature'),
    topP: numberInput('topP'),
    topK: numberInput('topK'),
    seed: numberInput('seed'),
  };
  try {
    const res = await postJson('/api/generate', body, abort.signal);
    if (!res.body) throw new Error('the server sent no stream');
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.trim()) onEvent(JSON.parse(line));
      }
    }
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError')
      $('status').textContent = 'stopped';
    else showError(err instanceof Error ? err.message : String(err));
  } finally {
    if (gen.abort === abort) gen.abort = null;
    $('generate').removeAttribute('disabled');
    $('stop').setAttribute('disabled', '');
    if ($('status').textContent === 'generating…') $('status').textContent = 'ready';
    finished = true; // stats.done is set by the frame that draws the end
    schedule();
  }
}

/** @param {any} ev one event of the stream (src/server/engine.ts EngineEvent) */
function onEvent(ev) {
  stats.events++;
  switch (ev.type) {
    case 'start':
      gen.hook = ev.hook;
      ev.promptPieces.forEach((/** @type {string} */ piece, /** @type {number} */ i) =>
        gen.tokens.push({ pos: i, step: -1, id: ev.promptIds[i], piece }),
      );
      $('traj-info').textContent = `${ev.hook}, d = ${ev.dim}`;
      break;
    case 'token':
      gen.tokens.push({
        pos: ev.position,
        step: ev.step,
        id: ev.id,
        piece: ev.piece,
        text: ev.text,
        p: ev.p,
        entropy: ev.entropy,
        top: ev.top,
      });
      break;
    case 'points':
      ev.positions.forEach((/** @type {number} */ pos, /** @type {number} */ i) =>
        gen.coords.set(pos, ev.coords.slice(i * ev.k, (i + 1) * ev.k)),
      );
      break;
    case 'trajectory':
      gen.coords = new Map();
      ev.positions.forEach((/** @type {number} */ pos, /** @type {number} */ i) =>
        gen.coords.set(pos, ev.coords.slice(i * ev.k, (i + 1) * ev.k)),
      );
      gen.explained = ev.explained;
      break;
    case 'done':
      $('gen-info').textContent =
        `${ev.generated} tokens, ${ev.finishReason}, ${ev.tokensPerSecond.toFixed(0)} tok/s`;
      $('status').textContent = 'ready';
      break;
    case 'error':
      showError(ev.message);
      break;
  }
  schedule();
}

let queued = false;
let finished = false;
function schedule() {
  gen.dirty = true;
  if (queued) return;
  queued = true;
  requestAnimationFrame(flush);
}

/** Draws what arrived since the last frame: new token spans, the distribution, the pictures. */
function flush() {
  queued = false;
  const t0 = performance.now();
  if (current === 'generate' && gen.dirty) {
    gen.dirty = false;
    const box = $('tokens');
    if (gen.rendered < gen.tokens.length) {
      const frag = document.createDocumentFragment();
      for (let i = gen.rendered; i < gen.tokens.length; i++) {
        const t = gen.tokens[i];
        const span = document.createElement('span');
        // generated tokens show what they add to the decoded text (a newline, not <0x0A>)
        // (a sequence that is not valid UTF-8 decodes to U+FFFD: the token's bytes say more)
        span.textContent = t.step >= 0 && t.text && !t.text.includes('\uFFFD') ? t.text : t.piece;
        span.dataset.i = String(i);
        span.dataset.id = String(t.id);
        span.title =
          t.step < 0
            ? `prompt token ${t.id}`
            : `step ${t.step}: p = ${prob(t.p ?? 0)}, H = ${t.entropy?.toFixed(3)}`;
        if (t.step < 0) span.className = 'prompt';
        else
          span.style.backgroundColor = `rgba(47, 111, 219, ${(0.08 + 0.5 * (1 - (t.p ?? 0))).toFixed(2)})`;
        frag.appendChild(span);
      }
      gen.rendered = gen.tokens.length;
      const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 30;
      box.appendChild(frag);
      if (atBottom) box.scrollTop = box.scrollHeight;
    }
    drawDistribution();
    const generated = gen.tokens.filter((t) => t.step >= 0);
    const selStep = gen.selected !== undefined ? gen.tokens[gen.selected].step : undefined;
    drawStrip(
      /** @type {HTMLCanvasElement} */ ($('strip')),
      generated.map((t) => t.p ?? 0),
      generated.map((t) => t.entropy ?? 0),
      selStep,
    );
    const points = trajectoryPoints();
    const selPos = gen.selected !== undefined ? gen.tokens[gen.selected].pos : undefined;
    const selIndex = selPos === undefined ? undefined : points.findIndex((p) => p.pos === selPos);
    drawTrajectory2d(/** @type {HTMLCanvasElement} */ ($('traj2d')), points, {
      selected: selIndex !== undefined && selIndex >= 0 ? selIndex : undefined,
      explained: gen.explained,
    });
    t3.set(points, gen.explained);
  }
  if (finished) {
    finished = false;
    stats.done = true;
  }
  const dt = performance.now() - t0;
  if (dt > stats.maxFlushMs) stats.maxFlushMs = dt;
}

/** Positions with coordinates, in order, labelled by their token. */
function trajectoryPoints() {
  const byPos = new Map(gen.tokens.map((t) => [t.pos, t]));
  /** @type {{ x: number, y: number, z: number, step: number, label: string, pos: number }[]} */
  const points = [];
  for (const [pos, c] of [...gen.coords.entries()].sort((a, b) => a[0] - b[0])) {
    const t = byPos.get(pos);
    points.push({
      x: c[0] ?? 0,
      y: c[1] ?? 0,
      z: c[2] ?? 0,
      step: t ? t.step : -1,
      label: t ? t.piece : '',
      pos,
    });
  }
  return points;
}

function drawDistribution() {
  const box = $('dist');
  const i = gen.selected ?? lastGenerated();
  const t = i === undefined ? undefined : gen.tokens[i];
  if (!t || !t.top) {
    $('dist-title').textContent = t ? '(a prompt token: nothing was drawn)' : '';
    box.textContent = '';
    return;
  }
  $('dist-title').textContent =
    `step ${t.step}: drew ${JSON.stringify(t.piece)} with p = ${prob(t.p ?? 0)}, entropy ${(t.entropy ?? 0).toFixed(3)} nats`;
  const frag = document.createDocumentFragment();
  for (const [id, piece, p] of t.top) {
    const row = document.createElement('div');
    row.className = id === t.id ? 'bar chosen' : 'bar';
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = JSON.stringify(piece);
    const track = document.createElement('span');
    track.className = 'track';
    const fill = document.createElement('span');
    fill.className = 'fill';
    fill.style.display = 'block';
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    track.appendChild(fill);
    const val = document.createElement('span');
    val.className = 'val';
    val.textContent = prob(p);
    row.append(label, track, val);
    frag.appendChild(row);
  }
  box.replaceChildren(frag);
}

/**
 * A probability as text: three decimals down to 0.001, scientific notation below (a flat
 * distribution over 50,257 tokens gives 2.0e-5 each, not "0.000"). @param {number} p
 */
function prob(p) {
  return p === 0 || p >= 0.001 ? p.toFixed(3) : p.toExponential(1);
}

function lastGenerated() {
  for (let i = gen.tokens.length - 1; i >= 0; i--) if (gen.tokens[i].step >= 0) return i;
  return undefined;
}

$('tokens').addEventListener('click', (e) => {
  const span = /** @type {HTMLElement} */ (e.target);
  if (!span.dataset || span.dataset.i === undefined) return;
  const i = Number(span.dataset.i);
  document.querySelectorAll('#tokens span.sel').forEach((s) => s.classList.remove('sel'));
  if (gen.selected === i) gen.selected = undefined;
  else {
    gen.selected = i;
    span.classList.add('sel');
  }
  schedule();
});

/** One loop for the 3-D view's turning and the frame-gap measurement. */
function animate(/** @type {number} */ now) {
  if (stats.lastFrame > 0 && !stats.done) {
    const gap = now - stats.lastFrame;
    if (gap > stats.maxGapMs) stats.maxGapMs = gap;
    stats.frames++;
  }
  stats.lastFrame = now;
  if (current === 'generate') t3.tick();
  requestAnimationFrame(animate);
}
requestAnimationFrame(animate);

// ---------------------------------------------------------------- lenses computed now

for (const form of document.querySelectorAll('form.live')) {
  const f = /** @type {HTMLFormElement} */ (form);
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    void runLive(f);
  });
  f.querySelector('.use-generated')?.addEventListener('click', () => {
    const text = gen.tokens.map((t) => (t.step >= 0 && t.text ? t.text : t.piece)).join('');
    const prompt = /** @type {HTMLTextAreaElement | null} */ (
      f.querySelector('[data-field=prompt]')
    );
    if (text && prompt) prompt.value = text.replace(/^<s>/, '').trim().slice(0, 2000);
  });
}

/**
 * Runs the form's lens (data-lens) on the chosen model with the form's fields (data-field;
 * data-list wraps a number in a list) and draws the answer below the form.
 * @param {HTMLFormElement} form
 */
async function runLive(form) {
  clearError();
  const out = /** @type {HTMLElement} */ (form.nextElementSibling);
  const button = /** @type {HTMLElement} */ (form.querySelector('button.run'));
  /** @type {Record<string, unknown>} */
  const body = { model: /** @type {HTMLSelectElement} */ ($('model')).value };
  for (const el of form.querySelectorAll('[data-field]')) {
    const field = /** @type {HTMLInputElement} */ (el);
    const key = /** @type {string} */ (field.dataset.field);
    if (field.type === 'checkbox') body[key] = field.checked;
    else if (field.type === 'number') {
      const v = numberValue(field);
      if (v !== undefined) body[key] = field.dataset.list ? [v] : v;
    } else body[key] = field.value;
  }
  button.setAttribute('disabled', '');
  out.innerHTML = '<p class="muted busy">computing</p>';
  try {
    const res = await postJson(`/api/lens/${form.dataset.lens}`, body);
    const { section } = await res.json();
    out.textContent = '';
    await renderSection(section, out, null);
  } catch (err) {
    out.textContent = '';
    showError(err instanceof Error ? err.message : String(err));
  } finally {
    button.removeAttribute('disabled');
  }
}

// ---------------------------------------------------------------- results under --runs

/** @type {Promise<any> | null} */
let runsListing = null;

/**
 * Fills a `.lens-browser` with the results of its kinds (data-kinds, '*' = all; data-plots: a
 * pattern of figure names that also qualifies a result) and opens the first.
 * @param {HTMLElement} el
 */
async function openBrowser(el) {
  if (el.dataset.loaded) return;
  el.dataset.loaded = 'yes';
  el.innerHTML = '<div class="list"></div><div class="content"></div>';
  const list = /** @type {HTMLElement} */ (el.querySelector('.list'));
  const content = /** @type {HTMLElement} */ (el.querySelector('.content'));
  const kinds = (el.dataset.kinds ?? '*').split(',');
  const plots = el.dataset.plots ? new RegExp(el.dataset.plots, 'i') : null;
  try {
    runsListing ??= getJson('/api/runs');
    const listing = await runsListing;
    /** @type {any[]} */
    const all = listing.results;
    const matches = all.filter(
      (r) =>
        kinds.includes('*') ||
        ((kinds.includes(r.kind) ||
          (plots !== null && r.plots.some((/** @type {string} */ p) => plots.test(p)))) &&
          typeof r.inSweep !== 'string'), // a sweep at the root has inSweep ''
    );
    if (matches.length === 0) {
      const what = kinds.includes('*') ? 'results' : `${kinds.join(' or ')} results`;
      list.innerHTML = '';
      content.innerHTML = '';
      const p = document.createElement('p');
      p.className = 'empty';
      p.textContent = `No ${what} under ${listing.root} yet. ${listing.note ?? 'Write one there (lmdyn analyze …, lmdyn sweep …, lmdyn demo --out …) and reload the page.'}`;
      content.appendChild(p);
      return;
    }
    listResults(list, matches, (r, b) => {
      list.querySelectorAll('button').forEach((x) => x.classList.remove('active'));
      b.classList.add('active');
      void openRun(r.rel, kinds.includes('*') ? null : kinds, content, plots);
    });
    /** @type {HTMLElement} */ (list.querySelector('button')).click();
  } catch (err) {
    el.dataset.loaded = '';
    showError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * The results as buttons, grouped: by their top folder under --runs (a folder with several
 * results is one collapsible group, the first open), and a sweep's configuration traces folded
 * under the sweep, so 70 folders read as a handful of runs.
 * @param {HTMLElement} list @param {any[]} results
 * @param {(r: any, b: HTMLButtonElement) => void} pick
 */
function listResults(list, results, pick) {
  /** @type {Map<string, any[]>} */
  const configs = new Map();
  for (const r of results)
    if (typeof r.inSweep === 'string')
      configs.set(r.inSweep, [...(configs.get(r.inSweep) ?? []), r]);
  /** @type {Map<string, any[]>} */
  const groups = new Map();
  for (const r of results) {
    if (
      typeof r.inSweep === 'string' &&
      results.some((s) => s.kind === 'sweep' && s.rel === r.inSweep)
    )
      continue; // drawn under its sweep
    const top = r.rel ? r.rel.split('/')[0] : '.';
    groups.set(top, [...(groups.get(top) ?? []), r]);
  }
  const button = (/** @type {any} */ r) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.innerHTML = `<span class="kind"></span><br /><span class="rel"></span>`;
    /** @type {HTMLElement} */ (b.querySelector('.kind')).textContent = r.kind;
    /** @type {HTMLElement} */ (b.querySelector('.rel')).textContent = r.rel || '.';
    b.addEventListener('click', () => pick(r, b));
    return b;
  };
  const fold = (
    /** @type {string} */ title,
    /** @type {boolean} */ open,
    /** @type {string} */ cls,
  ) => {
    const d = document.createElement('details');
    d.className = cls;
    d.open = open;
    const summary = document.createElement('summary');
    summary.textContent = title;
    d.appendChild(summary);
    return d;
  };
  let first = true;
  for (const [top, members] of groups) {
    const into =
      members.length > 1 ? fold(`${top}/ (${members.length} results)`, first, 'group') : list;
    if (into !== list) list.appendChild(into);
    for (const r of members) {
      into.appendChild(button(r));
      const inside = r.kind === 'sweep' ? configs.get(r.rel) : undefined;
      if (inside) {
        const sub = fold(`${inside.length} configuration traces`, false, 'configs');
        for (const c of inside) sub.appendChild(button(c));
        into.appendChild(sub);
      }
    }
    first = false;
  }
}

/**
 * The results of one folder under --runs, drawn into `content`.
 * @param {string} rel @param {string[] | null} kinds @param {HTMLElement} content @param {RegExp | null} plots
 */
async function openRun(rel, kinds, content, plots) {
  content.innerHTML = '<p class="muted busy">loading</p>';
  try {
    const { sections } = await getJson(`/api/run?path=${encodeURIComponent(rel)}`);
    content.textContent = '';
    const shown = sections.filter(
      (/** @type {any} */ s) => kinds === null || kinds.includes(s.kind) || plots !== null,
    );
    const behind = document.createElement('div');
    behind.className = 'behind';
    behind.hidden = true;
    for (const s of shown)
      await renderSection(s, content, {
        rel,
        behind,
        plots: kinds !== null && !kinds.includes(s.kind) ? plots : null,
      });
    content.appendChild(behind);
  } catch (err) {
    content.textContent = '';
    showError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * One section's blocks (src/report/section.ts) as HTML, figures drawn by vega. A click on a
 * figure's mark whose datum names a `config` folder opens that folder's trajectories below.
 * @param {any} section @param {HTMLElement} into
 * @param {{ rel: string, behind: HTMLElement, plots: RegExp | null } | null} ctx
 */
async function renderSection(section, into, ctx) {
  const div = document.createElement('div');
  div.className = 'section';
  div.dataset.kind = section.kind;
  const h = document.createElement('h2');
  h.textContent = section.title;
  div.appendChild(h);
  into.appendChild(div);
  for (const block of section.blocks) {
    if (block.type === 'plot') {
      if (ctx && ctx.plots && !ctx.plots.test(block.name)) continue;
      const fig = document.createElement('div');
      fig.className = 'plot';
      fig.dataset.name = block.name;
      const holder = document.createElement('div');
      const caption = document.createElement('div');
      caption.className = 'caption';
      caption.textContent = block.name;
      fig.append(holder, caption);
      div.appendChild(fig);
      try {
        const view = new vega.View(vega.parse(vegaLite.compile(block.spec).spec), {
          renderer: 'svg',
          container: holder,
          hover: true,
        });
        if (ctx) {
          view.addEventListener('click', (/** @type {unknown} */ _e, /** @type {any} */ item) => {
            const d = item && item.datum;
            if (!d) return;
            if (typeof d.config === 'string' || typeof d.config === 'number')
              void openBehind(ctx, { config: String(d.config) });
            else if (typeof d.temperature === 'number' && typeof d.top_p === 'number')
              void openBehind(ctx, { temperature: String(d.temperature), top_p: String(d.top_p) });
          });
        }
        await view.runAsync();
      } catch (err) {
        holder.textContent = `figure ${block.name} could not be drawn: ${err instanceof Error ? err.message : String(err)}`;
      }
    } else {
      div.appendChild(blockElement(block));
    }
  }
}

/**
 * The trace of the sweep configuration behind a clicked cell, drawn under the figures.
 * @param {{ rel: string, behind: HTMLElement }} ctx @param {Record<string, string>} cell
 */
async function openBehind(ctx, cell) {
  ctx.behind.hidden = false;
  ctx.behind.innerHTML = '';
  const h = document.createElement('h2');
  h.textContent = `Trajectories behind the cell ${Object.entries(cell)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`;
  ctx.behind.appendChild(h);
  try {
    const query = new URLSearchParams({ path: ctx.rel, ...cell });
    const { sections, path } = await getJson(`/api/behind?${query}`);
    h.textContent += ` (${path})`;
    for (const s of sections) await renderSection(s, ctx.behind, null);
    ctx.behind.scrollIntoView({ behavior: 'smooth', block: 'start' });
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
  }
}

/** A non-figure block as an element (text only, never HTML from the server). @param {any} block */
function blockElement(block) {
  const wrap = document.createElement('div');
  const title = (/** @type {string} */ text) => {
    const h = document.createElement('h3');
    h.textContent = text;
    wrap.appendChild(h);
  };
  switch (block.type) {
    case 'provenance': {
      const p = block.provenance;
      const dl = document.createElement('dl');
      for (const [k, v] of [
        ['file', block.file],
        ['lens', p.lens],
        ['spec', p.spec],
        ['model', p.model],
        ['seed', p.seed],
        ['lmdyn', p.version],
      ]) {
        if (v === null || v === undefined || v === '') continue;
        const dt = document.createElement('dt');
        dt.textContent = String(k);
        const dd = document.createElement('dd');
        dd.textContent = String(v);
        dl.append(dt, dd);
      }
      wrap.appendChild(dl);
      if (Object.keys(p.config).length > 0) {
        const details = document.createElement('details');
        const summary = document.createElement('summary');
        summary.textContent = `configuration (${Object.keys(p.config).join(', ')})`;
        const pre = document.createElement('pre');
        pre.textContent = JSON.stringify(p.config, null, 1).slice(0, 20000);
        details.append(summary, pre);
        wrap.appendChild(details);
      }
      break;
    }
    case 'metrics':
      title(block.title);
      wrap.appendChild(
        table(
          ['metric', ...block.columns, 'tag', 'source / definition'],
          block.rows.map((/** @type {any} */ r) => [
            r.name,
            ...r.values,
            { tag: r.tag },
            r.note ?? '',
          ]),
        ),
      );
      break;
    case 'table':
      title(block.title);
      wrap.appendChild(table(block.head, block.rows));
      break;
    case 'text': {
      title(block.title);
      const pre = document.createElement('pre');
      pre.textContent = block.text;
      wrap.appendChild(pre);
      break;
    }
    case 'note': {
      // a figure with nothing to show (no data, one colour): the line that says so
      const p = document.createElement('p');
      p.className = 'note';
      p.textContent = block.text;
      wrap.appendChild(p);
      break;
    }
  }
  return wrap;
}

/** @param {string[]} head @param {any[][]} rows */
function table(head, rows) {
  const t = document.createElement('table');
  const tr = document.createElement('tr');
  for (const h of head) {
    const th = document.createElement('th');
    th.textContent = h;
    tr.appendChild(th);
  }
  t.appendChild(tr);
  for (const row of rows) {
    const r = document.createElement('tr');
    for (const cell of row) {
      const td = document.createElement('td');
      if (cell && typeof cell === 'object' && 'tag' in cell) {
        if (cell.tag) {
          const span = document.createElement('span');
          span.className = `tag ${cell.tag === 'exact' || cell.tag === 'proposed' ? cell.tag : 'other'}`;
          span.textContent = cell.tag;
          td.appendChild(span);
        }
      } else td.textContent = formatCell(cell);
      r.appendChild(td);
    }
    t.appendChild(r);
  }
  return t;
}

/** @param {unknown} v */
function formatCell(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? '∞' : '−∞';
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

// ---------------------------------------------------------------- start

async function start() {
  route();
  try {
    const info = await getJson('/api/info');
    const select = /** @type {HTMLSelectElement} */ ($('model'));
    for (const m of info.models) {
      const o = document.createElement('option');
      o.value = m.id;
      o.textContent = m.label;
      select.appendChild(o);
    }
    $('status').textContent =
      info.models.length > 0
        ? `ready · lmdyn ${info.lmdyn} · runs: ${info.runs}`
        : 'no model allowed: start lmdyn serve with --model';
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
  }
}
void start();
