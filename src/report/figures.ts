/**
 * Checks and layout of figures before they reach a page, from the Vega-Lite spec alone: a figure
 * with no data is replaced by a one-line note, a heatmap whose colour is one value everywhere is
 * replaced by a note stating that value, and a faceted figure wider than the page is rewrapped or
 * split into parts that fit. Nothing here computes science; the numbers drawn are the lens's own.
 */
import type { PlotSpec } from './plot.js';
import { cell } from './format.js';

type Json = Record<string, unknown>;

/** Width (CSS px) a figure may take on the report page (the page is 1200 px with padding). */
export const PAGE_WIDTH = 1100;

/** Why a figure is not drawn (a one-line note), or null when it has something to show. */
export function figureNote(spec: PlotSpec, name: string): string | null {
  const title = specTitle(spec) ?? name;
  const sources = dataSources(spec);
  if (sources.length > 0 && sources.every((rows) => rows.length === 0))
    return `${title}: no data to draw (the result holds no rows for this figure), so it is left out.`;
  const heat = constantHeatmap(spec);
  if (heat)
    return `${title}: ${heat.field} is ${heat.value} in every cell (${heat.cells} cells); a one-colour heatmap is left out.`;
  return null;
}

/** The title text of a spec, if it has one. */
export function specTitle(spec: unknown): string | null {
  if (!isObject(spec)) return null;
  const t = spec.title;
  if (typeof t === 'string') return t;
  if (isObject(t) && typeof t.text === 'string') return t.text;
  if (Array.isArray(t)) return t.join(' ');
  return null;
}

/** Every inline data table of a spec (`data.values` anywhere, and top-level `datasets`). */
function dataSources(spec: unknown): unknown[][] {
  const out: unknown[][] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    if (!isObject(v)) return;
    for (const [key, child] of Object.entries(v)) {
      if (key === 'data' && isObject(child) && Array.isArray(child.values)) out.push(child.values);
      else if (key === 'datasets' && isObject(child)) {
        for (const rows of Object.values(child)) if (Array.isArray(rows)) out.push(rows);
      } else walk(child);
    }
  };
  walk(spec);
  return out;
}

/**
 * A heatmap (a `rect` mark coloured by a quantitative field) whose colour field takes one value
 * over all its rows: the field's title, the value and the number of cells; else null.
 */
function constantHeatmap(spec: unknown): { field: string; value: string; cells: number } | null {
  let found: { field: string; value: string; cells: number } | null = null;
  let heatmaps = 0;
  const walk = (node: unknown, rows: unknown[] | null, color: Json | null): void => {
    if (!isObject(node)) return;
    const data = isObject(node.data) && Array.isArray(node.data.values) ? node.data.values : rows;
    const enc = isObject(node.encoding) ? node.encoding : {};
    const c = isObject(enc.color) ? enc.color : color;
    const mark =
      typeof node.mark === 'string' ? node.mark : isObject(node.mark) ? node.mark.type : null;
    if (mark === 'rect' && c && typeof c.field === 'string' && c.type === 'quantitative' && data) {
      heatmaps++;
      const values = new Set(
        data.map((r) => (isObject(r) ? JSON.stringify(r[c.field as string] ?? null) : 'null')),
      );
      if (data.length > 1 && values.size === 1) {
        const v: unknown = JSON.parse([...values][0]);
        found = {
          field: typeof c.title === 'string' ? c.title : (c.field as string),
          value: cell(v),
          cells: data.length,
        };
      }
    }
    for (const key of ['layer', 'hconcat', 'vconcat', 'concat']) {
      const list = node[key];
      if (Array.isArray(list)) for (const child of list) walk(child, data, c);
    }
    if (isObject(node.spec)) walk(node.spec, data, c);
  };
  walk(spec, null, null);
  return heatmaps === 1 ? found : null;
}

/** One figure as drawn on the page: the spec and, for a part of a split figure, which part. */
export interface FigurePart {
  spec: PlotSpec;
  /** "temperature 0.3 – 1 (part 1 of 2)" for a split figure; null for a whole one. */
  part: string | null;
}

/**
 * Fits a figure to `maxWidth`: `widthOf` draws a spec and returns its width. A wrapped facet or an
 * hconcat gets fewer columns; a row × column facet is split along its column field into parts,
 * each with the rows of its columns only. A figure that cannot be narrowed is returned as it is.
 */
export async function fitToWidth(
  spec: PlotSpec,
  widthOf: (spec: PlotSpec) => Promise<number>,
  maxWidth = PAGE_WIDTH,
): Promise<FigurePart[]> {
  const width = await widthOf(spec);
  if (width <= maxWidth) return [{ spec, part: null }];
  const s = spec as unknown as Json;
  const facet = isObject(s.facet) ? s.facet : null;
  // a wrapped facet (`facet: {field}`) or hconcat: fewer columns per line
  if ((facet && typeof facet.field === 'string') || Array.isArray(s.hconcat)) {
    const count = facet
      ? distinct(rowsOf(s), facet.field as string).length
      : (s.hconcat as unknown[]).length;
    let columns = typeof s.columns === 'number' ? Math.min(s.columns, count) : count;
    while (columns > 1) {
      columns = Math.max(1, Math.min(columns - 1, Math.floor((columns * maxWidth) / width)));
      const next: Json = facet
        ? { ...s, columns }
        : { ...omit(s, 'hconcat'), concat: s.hconcat, columns };
      if ((await widthOf(next as unknown as PlotSpec)) <= maxWidth || columns === 1)
        return [{ spec: next as unknown as PlotSpec, part: null }];
    }
    return [{ spec, part: null }];
  }
  // a row/column facet over inline data: split the column values into parts that fit
  if (facet && isObject(facet.column) && typeof facet.column.field === 'string') {
    const field = facet.column.field;
    const rows = rowsOf(s);
    if (!rows) return [{ spec, part: null }];
    const order = Array.isArray(facet.column.sort) ? (facet.column.sort as unknown[]) : null;
    const values = distinct(rows, field, order);
    const label = typeof facet.column.title === 'string' ? facet.column.title : field;
    let per = Math.max(1, Math.floor((values.length * maxWidth) / width));
    for (;;) {
      // parts of equal size: 8 columns that fit 6 a line become 4 + 4, not 6 + 2
      const size = Math.ceil(values.length / Math.ceil(values.length / per));
      const chunks: unknown[][] = [];
      for (let i = 0; i < values.length; i += size) chunks.push(values.slice(i, i + size));
      const parts = chunks.map((chunk, i) => {
        const keep = new Set(chunk.map((v) => JSON.stringify(v)));
        const partText = `${label} ${cell(chunk[0])}${chunk.length > 1 ? ` – ${cell(chunk[chunk.length - 1])}` : ''} (part ${i + 1} of ${chunks.length})`;
        const title = specTitle(s);
        const next: Json = {
          ...s,
          data: {
            values: rows.filter((r) => isObject(r) && keep.has(JSON.stringify(r[field] ?? null))),
          },
          ...(title ? { title: `${title} — ${partText}` } : {}),
        };
        return { spec: next as unknown as PlotSpec, part: partText };
      });
      if (per === 1 || (await widthOf(parts[0].spec)) <= maxWidth) return parts;
      per--;
    }
  }
  return [{ spec, part: null }];
}

function rowsOf(s: Json): unknown[] | null {
  return isObject(s.data) && Array.isArray(s.data.values) ? s.data.values : null;
}

/** The distinct values of `field` in `rows`: in `order` when given, else numbers ascending, else as met. */
function distinct(
  rows: unknown[] | null,
  field: string,
  order: unknown[] | null = null,
): unknown[] {
  const seen = new Map<string, unknown>();
  for (const r of rows ?? []) {
    const v = isObject(r) ? (r[field] ?? null) : null;
    if (!seen.has(JSON.stringify(v))) seen.set(JSON.stringify(v), v);
  }
  const values = [...seen.values()];
  if (order) {
    const rank = (v: unknown) => {
      const i = order.findIndex((o) => JSON.stringify(o) === JSON.stringify(v));
      return i === -1 ? order.length : i;
    };
    return values.sort((a, b) => rank(a) - rank(b));
  }
  if (values.every((v) => typeof v === 'number'))
    return values.sort((a, b) => (a as number) - (b as number));
  return values.sort((a, b) => String(a).localeCompare(String(b)));
}

function omit(o: Json, key: string): Json {
  const rest = { ...o };
  delete rest[key];
  return rest;
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
