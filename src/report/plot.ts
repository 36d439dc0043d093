/**
 * Plots are Vega-Lite specs (the same spec renders in the browser dashboard); here they are
 * rendered to SVG on the server with vega's headless view, and to PNG with resvg when asked.
 * Lenses build specs; they never draw.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../io/atomic.js';
import { LmdynError } from '../errors.js';
import { textWidth } from './text-width.js';

export type PlotSpec = TopLevelSpec;

interface TextItem {
  text?: unknown;
  fontSize?: number;
  fontWeight?: string | number;
  limit?: number;
}

// vega measures text with a canvas when there is one; headless, with the font's own widths
(
  vega as unknown as { textMetrics: { width: (item: TextItem, text?: unknown) => number } }
).textMetrics.width = (item, text) => {
  const value = text ?? item.text;
  const t = (Array.isArray(value) ? value.join(' ') : value == null ? '' : String(value)).trim();
  const size = item.fontSize ?? 11;
  const weight = item.fontWeight;
  const bold = weight === 'bold' || (typeof weight === 'number' && weight >= 600);
  const w = textWidth(t, size, bold);
  return item.limit && item.limit > 0 ? Math.min(w, item.limit) : w;
};

/**
 * Renders a Vega-Lite spec to an SVG string (fonts are not embedded; text uses sans-serif).
 * Vega numbers gradient and clip ids with process-wide counters; they are reset first, so a
 * figure's bytes do not depend on what the process drew before (a queued study's workers draw
 * each model's figures in a fresh process, the local study all of them in one).
 */
export async function renderSvg(spec: PlotSpec): Promise<string> {
  const compiled = compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    await view.runAsync();
    vega.resetSVGDefIds();
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Renders an SVG string to PNG bytes with resvg (no native canvas needed). resvg is an optional
 * dependency (a native binary per platform): only --png needs it.
 */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  let Resvg: typeof import('@resvg/resvg-js').Resvg;
  try {
    ({ Resvg } = await import('@resvg/resvg-js'));
  } catch {
    throw new LmdynError(
      'unsupported',
      'PNG output needs the optional package @resvg/resvg-js, which is not installed for this platform (npm install @resvg/resvg-js); the SVG figures are written without it',
    );
  }
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}

/** Writes `<base>.svg` (and `<base>.png` with png) and `<base>.vl.json` (the spec, for notebooks). */
export async function writePlot(
  base: string,
  spec: PlotSpec,
  options: { png?: boolean } = {},
): Promise<string> {
  const svg = await renderSvg(spec);
  writeFileAtomic(`${base}.svg`, svg);
  writeFileAtomic(`${base}.vl.json`, JSON.stringify(spec) + '\n');
  if (options.png) writeFileAtomic(`${base}.png`, await svgToPng(svg));
  return `${base}.svg`;
}
