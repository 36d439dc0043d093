/**
 * A result is described as a list of blocks — provenance, tagged metrics, tables, text and
 * Vega-Lite figures — never as HTML. The report turns blocks into one HTML file with inline SVG
 * (report/report.ts); the dashboard sends the same blocks to the browser, which draws the specs
 * with vega. A lens that wants more than the generic blocks adds a renderer in renderers.ts.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { PlotSpec } from './plot.js';
import type { FoundResult } from './scan.js';
import { isPValueKey, pValue } from './format.js';
import { provenanceOf, taggedMetrics, type Provenance, type TaggedMetric } from './summary.js';

export type Cell = string | number | null;

export type Block =
  | { type: 'provenance'; provenance: Provenance; file: string }
  /**
   * Headline metrics: one row per metric, a value per column, its papers.md tag. Blocks that
   * share a `group` are small tables of one family (one per data set) drawn side by side.
   */
  | {
      type: 'metrics';
      title: string;
      columns: string[];
      rows: { name: string; values: Cell[]; tag: string | null; note?: string }[];
      group?: string;
    }
  | { type: 'table'; title: string; head: string[]; rows: Cell[][] }
  | { type: 'text'; title: string; text: string }
  /** One line said instead of a figure or a table (a figure with no data, a constant heatmap). */
  | { type: 'note'; text: string }
  /** `name` is the figure's file base name (NAME.vl.json) or a name the renderer chose. */
  | { type: 'plot'; name: string; spec: PlotSpec };

export interface SectionModel {
  kind: string;
  title: string;
  /** The result's folder relative to the scanned root ('' = the root itself). */
  rel: string;
  blocks: Block[];
  /** One line for the report's summary table (report/headlines.ts); null when nothing stands out. */
  headline?: string | null;
}

/** Turns one found result into blocks; may read files of the result's folder, never computes science. */
export type SectionRenderer = (result: FoundResult) => Promise<Block[]> | Block[];

/** Provenance, the tagged metrics found anywhere in the JSON, and the folder's figures. */
export function genericBlocks(result: FoundResult): Block[] {
  const blocks: Block[] = [];
  if (result.kind !== 'figures') {
    blocks.push(provenanceBlock(result));
    blocks.push(...metricBlocks(taggedMetrics(result.json)));
  }
  blocks.push(...folderPlots(result));
  return blocks;
}

const METRICS_TITLE =
  'Tagged metrics (docs/papers.md: exact = as the authors compute it, proposed = our reading)';

/**
 * Tagged metrics as tables: the rows of a family of items (`datasets[label=A].…`,
 * `datasets[label=B].…`) become one small table per item, named by the item and with short row
 * names (`test NLL`, not `datasets[label=A].headline[name=test NLL].value`), and one table of the
 * family's definitions. Everything else stays in one table.
 * p-values are printed as text ("< 1e-16" at most).
 */
export function metricBlocks(metrics: readonly TaggedMetric[]): Block[] {
  const families = new Map<string, Map<string, TaggedMetric[]>>();
  for (const m of metrics) {
    const split = splitItem(m.path);
    if (!split) continue;
    const items = families.get(split.family) ?? new Map<string, TaggedMetric[]>();
    items.set(split.item, [...(items.get(split.item) ?? []), m]);
    families.set(split.family, items);
  }
  // a family is worth its own tables when it has several items and more rows than a glance holds
  const split = new Set(
    [...families]
      .filter(([, items]) => items.size >= 2 && [...items.values()].flat().length >= 8)
      .map(([family]) => family),
  );
  const row = (m: TaggedMetric, name: string, note: boolean) => ({
    name,
    values: [cellOf(m)],
    tag: m.tag,
    ...(note && m.source ? { note: m.source } : {}),
  });
  const blocks: Block[] = [];
  const rest = metrics.filter((m) => !split.has(splitItem(m.path)?.family ?? ''));
  if (rest.length > 0)
    blocks.push({
      type: 'metrics',
      title: split.size > 0 ? `${METRICS_TITLE}: settings and checks` : METRICS_TITLE,
      columns: ['value'],
      rows: rest.map((m) => row(m, m.path, true)),
    });
  for (const family of split) {
    const items = families.get(family)!;
    for (const [item, rows] of items) {
      blocks.push({
        type: 'metrics',
        title: `${family} · ${item}`,
        columns: ['value'],
        rows: rows.map((m) => row(m, shortName(splitItem(m.path)!.rest), false)),
        group: family,
      });
    }
    // each definition once, for all the family's tables
    const defined = new Map<string, TaggedMetric>();
    for (const m of [...items.values()].flat()) {
      const name = shortName(splitItem(m.path)!.rest);
      if (m.source && !defined.has(name)) defined.set(name, m);
    }
    if (defined.size > 0)
      blocks.push({
        type: 'metrics',
        title: `${family}: definitions`,
        columns: [],
        rows: [...defined].map(([name, m]) => ({ name, values: [], tag: m.tag, note: m.source! })),
      });
  }
  return blocks;
}

/** `datasets[label=A].headline[name=x].value` → family `datasets`, item `A`, rest `headline[name=x].value`. */
function splitItem(path: string): { family: string; item: string; rest: string } | null {
  const m = /^([^[]*)\[([^=\]]+)=([^\]]*)\]\.(.+)$/.exec(path);
  return m ? { family: m[1], item: m[3], rest: m[4] } : null;
}

/** `headline[name=test NLL].value` → `test NLL`; `by_k[k=10].value` → `by_k k=10`; `a.mean` → `a (mean)`. */
export function shortName(rest: string): string {
  const segments = rest.match(/[^.[\]]+(\[[^\]]*\])?/g) ?? [rest];
  const words = segments.map((seg) => {
    const m = /^([^[]+)\[([^=\]]+)=([^\]]*)\]$/.exec(seg);
    if (!m) return seg;
    return ['name', 'label', 'metric', 'id'].includes(m[2]) ? m[3] : `${m[1]} ${m[2]}=${m[3]}`;
  });
  const last = words[words.length - 1];
  if (words.length > 1 && last === 'value') words.pop();
  else if (words.length > 1 && last === 'mean') {
    words.pop();
    words[words.length - 1] += ' (mean)';
  }
  return words.join(' · ');
}

/** A metric's value as a cell: booleans as text, p-values as "< 1e-16" at most. */
function cellOf(m: TaggedMetric): Cell {
  if (typeof m.value === 'boolean') return String(m.value);
  const key = m.path.slice(m.path.lastIndexOf('.') + 1);
  if (typeof m.value === 'number' && isPValueKey(key)) return pValue(m.value);
  return m.value;
}

export function provenanceBlock(result: FoundResult): Block {
  return { type: 'provenance', provenance: provenanceOf(result.json), file: basename(result.file) };
}

/** Every NAME.vl.json beside the result, as plot blocks (unreadable specs are named in a text block). */
export function folderPlots(result: FoundResult): Block[] {
  const blocks: Block[] = [];
  const bad: string[] = [];
  for (const path of result.plots) {
    try {
      blocks.push({
        type: 'plot',
        name: basename(path, '.vl.json'),
        spec: JSON.parse(readFileSync(path, 'utf8')) as PlotSpec,
      });
    } catch {
      bad.push(basename(path));
    }
  }
  if (bad.length > 0)
    blocks.push({ type: 'text', title: 'Figures that could not be read', text: bad.join('\n') });
  return blocks;
}

/** Other files in the folder (data a notebook can open), for a closing list. */
export function folderFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter(
      (n) =>
        !n.endsWith('.svg') &&
        !n.endsWith('.vl.json') &&
        !n.endsWith('.png') &&
        !n.includes('.tmp-'),
    )
    .map((n) => join(dir, n));
}
