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
import { provenanceOf, taggedMetrics, type Provenance } from './summary.js';

export type Cell = string | number | null;

export type Block =
  | { type: 'provenance'; provenance: Provenance; file: string }
  /** Headline metrics: one row per metric, a value per column, its papers.md tag. */
  | {
      type: 'metrics';
      title: string;
      columns: string[];
      rows: { name: string; values: Cell[]; tag: string | null; note?: string }[];
    }
  | { type: 'table'; title: string; head: string[]; rows: Cell[][] }
  | { type: 'text'; title: string; text: string }
  /** `name` is the figure's file base name (NAME.vl.json) or a name the renderer chose. */
  | { type: 'plot'; name: string; spec: PlotSpec };

export interface SectionModel {
  kind: string;
  title: string;
  /** The result's folder relative to the scanned root ('' = the root itself). */
  rel: string;
  blocks: Block[];
}

/** Turns one found result into blocks; may read files of the result's folder, never computes science. */
export type SectionRenderer = (result: FoundResult) => Promise<Block[]> | Block[];

/** Provenance, the tagged metrics found anywhere in the JSON, and the folder's figures. */
export function genericBlocks(result: FoundResult): Block[] {
  const blocks: Block[] = [];
  if (result.kind !== 'figures') {
    blocks.push(provenanceBlock(result));
    const rows = taggedMetrics(result.json);
    if (rows.length > 0) {
      blocks.push({
        type: 'metrics',
        title:
          'Tagged metrics (papers.md: exact = as the authors compute it, proposed = our reading)',
        columns: ['value'],
        rows: rows.map((r) => ({
          name: r.path,
          values: [typeof r.value === 'boolean' ? String(r.value) : r.value],
          tag: r.tag,
          ...(r.source ? { note: r.source } : {}),
        })),
      });
    }
  }
  blocks.push(...folderPlots(result));
  return blocks;
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
