/**
 * Small HTML helpers for the report: escaping, tables, and inline SVG whose ids are made unique
 * so that many vega figures can share one page. Output is well-formed XML as well as HTML (every
 * element closed, only the five XML entities), so any XML parser can check a report.
 */
import { tableNumber } from './format.js';

/** Escapes text for element content and double-quoted attribute values. */
export function esc(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A table; cells are HTML already (escape text with `esc`). */
export function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  cls = '',
): string {
  const th = head.map((h) => `<th>${h}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** A table cell in HTML: numbers by format.ts tableNumber (NaN spelt out), anything else escaped. */
export function num(v: unknown): string {
  if (typeof v === 'number' && Number.isNaN(v)) return 'NaN';
  if (typeof v === 'number' || v === null || v === undefined) return tableNumber(v);
  return esc(String(v));
}

/** A papers.md tag as a coloured badge. */
export function tagBadge(tag: string): string {
  const cls = tag === 'exact' ? 'exact' : tag === 'proposed' ? 'proposed' : 'other';
  return `<span class="tag ${cls}">${esc(tag)}</span>`;
}

/**
 * Makes an SVG safe to inline next to others: strips the XML prolog and prefixes every id (and
 * every `#id` reference) with `prefix`, since ids are global to the page.
 */
export function scopeSvg(svg: string, prefix: string): string {
  const ids = new Set<string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) ids.add(m[1]);
  let out = svg.replace(/^<\?xml[^>]*>\s*/, '');
  if (ids.size === 0) return out;
  out = out.replace(/\sid="([^"]+)"/g, (_, id: string) => ` id="${prefix}${id}"`);
  out = out.replace(/url\(#([^)]+)\)/g, (m, id: string) =>
    ids.has(id) ? `url(#${prefix}${id})` : m,
  );
  out = out.replace(/href="#([^"]+)"/g, (m, id: string) =>
    ids.has(id) ? `href="#${prefix}${id}"` : m,
  );
  return out;
}

/** A slug usable as an HTML id. */
export function slug(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'x'
  );
}

/** The page around the sections: inline CSS only, nothing fetched. */
export function page(title: string, header: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<meta name="generator" content="lmdyn" />
<title>${esc(title)}</title>
<style>
${REPORT_CSS}
</style>
</head>
<body>
${header}
${body}
</body>
</html>
`;
}

export const REPORT_CSS = `body { font-family: system-ui, 'DejaVu Sans', sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em; color: #222; }
h1 { margin-bottom: 0.2em; }
h2 { border-top: 2px solid #ccc; padding-top: 0.8em; margin-top: 2em; }
h3 { margin-top: 1.4em; }
.muted { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.88em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.tag { display: inline-block; padding: 0 0.5em; border-radius: 0.6em; font-size: 0.8em; font-weight: 600; }
.tag.exact { background: #d8f0dc; color: #14532d; }
.tag.proposed { background: #fdebc8; color: #7c4a03; }
.tag.other { background: #e6e6e6; color: #333; }
figure { margin: 1em 0; overflow-x: auto; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; max-height: 24em; }
details { margin: 0.4em 0; }
dl.prov { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; font-size: 0.9em; }
dl.prov dt { font-weight: 600; }
dl.prov dd { margin: 0; word-break: break-all; }
table.summary td:nth-child(3) { max-width: 40em; }
.tiles { display: flex; flex-wrap: wrap; gap: 0.4em 1.6em; align-items: flex-start; }
.tiles > figure { max-width: 100%; }
.tiles > .tile h3 { font-size: 0.95em; margin: 0.8em 0 0.2em; word-break: break-all; }
p.note { color: #555; font-style: italic; border-left: 3px solid #ccc; padding-left: 0.6em; }
details.section > summary { cursor: pointer; }
details.section > summary h2 { display: inline; border: 0; }
.text { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 0.85em; }`;
