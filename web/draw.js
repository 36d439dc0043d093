// @ts-check
/**
 * Canvas drawings of the live views: the trajectory in 2-D and 3-D PCA, and the per-step strip
 * of p(token) and entropy. Plain canvas so that a 1,000-step trajectory redraws within a frame.
 */

/**
 * @typedef {{ x: number, y: number, z: number, step: number, label: string }} Point
 * step < 0 inside the prompt.
 */

const PROMPT_COLOUR = '#9aa0a6';

/** Colour of generated step `i` of `n`: blue → orange. */
export function stepColour(i, n) {
  const t = n > 1 ? i / (n - 1) : 0;
  const hue = 220 - 190 * t;
  return `hsl(${hue.toFixed(0)}, 70%, 48%)`;
}

/** Pixel size of a canvas as laid out, with the drawing buffer matched to it. */
function fit(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, w, h };
}

/**
 * The trajectory in its first two principal components.
 * @param {HTMLCanvasElement} canvas
 * @param {Point[]} points in position order
 * @param {{ selected?: number, explained?: number[] }} opts
 */
export function drawTrajectory2d(canvas, points, opts = {}) {
  const { ctx, w, h } = fit(canvas);
  ctx.clearRect(0, 0, w, h);
  const pad = 36;
  if (points.length === 0) {
    ctx.fillStyle = '#888';
    ctx.fillText('the trajectory appears here while the model generates', pad, h / 2);
    return;
  }
  let x0 = Infinity,
    x1 = -Infinity,
    y0 = Infinity,
    y1 = -Infinity;
  for (const p of points) {
    if (p.x < x0) x0 = p.x;
    if (p.x > x1) x1 = p.x;
    if (p.y < y0) y0 = p.y;
    if (p.y > y1) y1 = p.y;
  }
  const sx = (w - 2 * pad) / Math.max(x1 - x0, 1e-9);
  const sy = (h - 2 * pad) / Math.max(y1 - y0, 1e-9);
  const X = (/** @type {number} */ x) => pad + (x - x0) * sx;
  const Y = (/** @type {number} */ y) => h - pad - (y - y0) * sy;
  axes(ctx, w, h, pad, opts.explained);
  ctx.strokeStyle = 'rgba(80, 90, 110, 0.35)';
  ctx.lineWidth = 1;
  ctx.beginPath();
  points.forEach((p, i) => (i === 0 ? ctx.moveTo(X(p.x), Y(p.y)) : ctx.lineTo(X(p.x), Y(p.y))));
  ctx.stroke();
  const generated = points.filter((p) => p.step >= 0).length;
  for (const p of points) {
    ctx.fillStyle = p.step < 0 ? PROMPT_COLOUR : stepColour(p.step, generated);
    ctx.beginPath();
    ctx.arc(X(p.x), Y(p.y), p.step < 0 ? 3.5 : 3, 0, 2 * Math.PI);
    ctx.fill();
  }
  const sel = opts.selected !== undefined ? points[opts.selected] : points[points.length - 1];
  if (sel) {
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(X(sel.x), Y(sel.y), 7, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.fillStyle = '#000';
    ctx.fillText(JSON.stringify(sel.label), X(sel.x) + 9, Y(sel.y) - 9);
  }
}

function axes(ctx, w, h, pad, explained) {
  ctx.strokeStyle = '#ccc';
  ctx.lineWidth = 1;
  ctx.strokeRect(pad - 6, pad - 6, w - 2 * pad + 12, h - 2 * pad + 12);
  ctx.fillStyle = '#555';
  ctx.font = '11px sans-serif';
  const pct = (i) =>
    explained && explained[i] !== undefined ? ` (${(100 * explained[i]).toFixed(1)}%)` : '';
  ctx.fillText(`PC1${pct(0)}`, w / 2 - 20, h - 8);
  ctx.save();
  ctx.translate(12, h / 2 + 20);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(`PC2${pct(1)}`, 0, 0);
  ctx.restore();
}

/** The trajectory in its first three principal components, turned by dragging (and slowly by itself). */
export class Trajectory3d {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    /** @type {Point[]} */
    this.points = [];
    this.yaw = 0.6;
    this.pitch = 0.35;
    this.spin = true;
    this.dirty = true;
    /** @type {number[] | undefined} */
    this.explained = undefined;
    let drag = /** @type {{ x: number, y: number } | null} */ (null);
    canvas.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, y: e.clientY };
      this.spin = false;
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!drag) return;
      this.yaw += (e.clientX - drag.x) * 0.01;
      this.pitch = Math.max(-1.5, Math.min(1.5, this.pitch + (e.clientY - drag.y) * 0.01));
      drag = { x: e.clientX, y: e.clientY };
      this.dirty = true;
    });
    canvas.addEventListener('pointerup', () => (drag = null));
  }

  /** @param {Point[]} points @param {number[] | undefined} explained */
  set(points, explained) {
    this.points = points;
    this.explained = explained;
    this.dirty = true;
  }

  /** Called every animation frame; draws only when something changed. */
  tick() {
    if (this.spin && this.points.length > 1) {
      this.yaw += 0.004;
      this.dirty = true;
    }
    if (this.dirty) this.draw();
  }

  draw() {
    this.dirty = false;
    const { ctx, w, h } = fit(this.canvas);
    ctx.clearRect(0, 0, w, h);
    const pts = this.points;
    if (pts.length === 0) return;
    let cx = 0,
      cy = 0,
      cz = 0;
    for (const p of pts) ((cx += p.x), (cy += p.y), (cz += p.z));
    cx /= pts.length;
    cy /= pts.length;
    cz /= pts.length;
    let r = 1e-9;
    for (const p of pts) r = Math.max(r, Math.hypot(p.x - cx, p.y - cy, p.z - cz));
    const s = (0.42 * Math.min(w, h)) / r;
    const cyaw = Math.cos(this.yaw),
      syaw = Math.sin(this.yaw),
      cp = Math.cos(this.pitch),
      sp = Math.sin(this.pitch);
    /** @returns {[number, number, number]} screen x, y and depth */
    const project = (/** @type {number} */ x, /** @type {number} */ y, /** @type {number} */ z) => {
      const X = (x - cx) * cyaw - (z - cz) * syaw;
      const Z = (x - cx) * syaw + (z - cz) * cyaw;
      const Y = (y - cy) * cp - Z * sp;
      const D = (y - cy) * sp + Z * cp;
      const persp = 1 / (1 + (0.25 * D) / r);
      return [w / 2 + X * s * persp, h / 2 - Y * s * persp, D];
    };
    // axes through the centre, labelled with the share of variance
    const pct = (i) =>
      this.explained && this.explained[i] !== undefined
        ? ` ${(100 * this.explained[i]).toFixed(0)}%`
        : '';
    ctx.font = '11px sans-serif';
    [
      [r, 0, 0, 'PC1'],
      [0, r, 0, 'PC2'],
      [0, 0, r, 'PC3'],
    ].forEach(([ax, ay, az, name], i) => {
      const a = project(cx, cy, cz);
      const b = project(cx + Number(ax), cy + Number(ay), cz + Number(az));
      ctx.strokeStyle = '#ddd';
      ctx.beginPath();
      ctx.moveTo(a[0], a[1]);
      ctx.lineTo(b[0], b[1]);
      ctx.stroke();
      ctx.fillStyle = '#888';
      ctx.fillText(`${name}${pct(i)}`, b[0] + 3, b[1]);
    });
    const screen = pts.map((p) => project(p.x, p.y, p.z));
    ctx.strokeStyle = 'rgba(80, 90, 110, 0.35)';
    ctx.beginPath();
    screen.forEach((q, i) => (i === 0 ? ctx.moveTo(q[0], q[1]) : ctx.lineTo(q[0], q[1])));
    ctx.stroke();
    const generated = pts.filter((p) => p.step >= 0).length;
    const order = screen.map((_, i) => i).sort((a, b) => screen[b][2] - screen[a][2]); // far first
    for (const i of order) {
      const p = pts[i];
      ctx.fillStyle = p.step < 0 ? PROMPT_COLOUR : stepColour(p.step, generated);
      ctx.beginPath();
      ctx.arc(screen[i][0], screen[i][1], 3, 0, 2 * Math.PI);
      ctx.fill();
    }
    const last = screen[screen.length - 1];
    ctx.strokeStyle = '#000';
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(last[0], last[1], 7, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.lineWidth = 1;
  }
}

/**
 * p(token) (blue, 0..1) and entropy (orange, scaled to its maximum) per generated step.
 * @param {HTMLCanvasElement} canvas @param {number[]} ps @param {number[]} hs @param {number | undefined} selected
 */
export function drawStrip(canvas, ps, hs, selected) {
  const { ctx, w, h } = fit(canvas);
  ctx.clearRect(0, 0, w, h);
  const n = ps.length;
  if (n === 0) return;
  const pad = 4;
  const X = (/** @type {number} */ i) => pad + (n > 1 ? (i / (n - 1)) * (w - 2 * pad) : 0);
  const hmax = Math.max(1e-9, ...hs);
  const line = (
    /** @type {number[]} */ v,
    /** @type {number} */ scale,
    /** @type {string} */ colour,
  ) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.2;
    ctx.beginPath();
    v.forEach((y, i) => {
      const Y = h - pad - (y / scale) * (h - 2 * pad);
      if (i === 0) ctx.moveTo(X(i), Y);
      else ctx.lineTo(X(i), Y);
    });
    ctx.stroke();
  };
  line(ps, 1, '#2f6fdb');
  line(hs, hmax, '#e8833a');
  if (selected !== undefined && selected >= 0 && selected < n) {
    ctx.strokeStyle = 'rgba(0,0,0,0.5)';
    ctx.beginPath();
    ctx.moveTo(X(selected), 0);
    ctx.lineTo(X(selected), h);
    ctx.stroke();
  }
}
