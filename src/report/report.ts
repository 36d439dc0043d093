/**
 * `lmdyn report DIR`: every result under DIR (report/scan.ts) drawn into one self-contained
 * HTML file — provenance, tagged metrics, tables and every figure as inline SVG rendered from
 * its Vega-Lite spec. Nothing is fetched from the network; the page needs no script.
 */
import { mkdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { commitBeside } from '../io/commit.js';
import { VERSION } from '../version.js';
import { esc, num, page, scopeSvg, slug, table, tagBadge } from './html.js';
import { figureNote, fitToWidth } from './figures.js';
import { headlineOf } from './headlines.js';
import { renderSvg, svgToPng, type PlotSpec } from './plot.js';
import { KIND_TITLES, REPORT_RENDERERS } from './renderers.js';
import { scanResults, type FoundResult } from './scan.js';
import { genericBlocks, type Block, type Cell, type SectionModel } from './section.js';

export interface ReportOptions {
  /** The HTML file (default DIR/report.html). */
  out?: string;
  /** Also write every figure as PNG into `<out folder>/report-png/`. */
  png?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface WrittenReport {
  path: string;
  sections: number;
  plots: number;
  pngs: string[];
}

export async function writeReport(
  dir: string,
  options: ReportOptions = {},
): Promise<WrittenReport> {
  const root = resolve(dir);
  const out = resolve(options.out ?? join(root, 'report.html'));
  const sections = await reportSections(root);
  const pngDir = options.png ? join(dirname(out), 'report-png') : null;
  // the page and its PNGs are one committed unit (io/commit.ts: REPORT.manifest.json beside it)
  let drawn = { plots: 0, pngs: [] as string[] };
  await commitBeside(dirname(out), basename(out, '.html'), async (stage) => {
    const pngStage = pngDir ? join(stage, basename(pngDir)) : null;
    const { html, plots, pngs } = await reportHtml(root, sections, {
      pngDir: pngStage,
      log: options.log,
    });
    writeFileAtomic(join(stage, basename(out)), html);
    drawn = { plots, pngs: pngs.map((p) => join(pngDir!, basename(p))) };
  });
  return { path: out, sections: sections.length, ...drawn };
}

/** The order kinds appear in: recordings first, then the lenses in papers.md order. */
const KIND_ORDER = [
  'trace',
  'sweep',
  'dmet',
  'sde',
  'gravity',
  'simplex',
  'coupling',
  'coupling-models',
];

/**
 * Every result under `root` as blocks, lens results first and single traces last (a sweep's
 * configuration traces are drawn by the sweep, wherever the sweep sits — the root included).
 */
export async function reportSections(root: string): Promise<SectionModel[]> {
  const found = scanResults(root).filter((f) => f.inSweep === undefined);
  const rank = (k: string) =>
    k === 'trace' ? 98 : KIND_ORDER.includes(k) ? KIND_ORDER.indexOf(k) : k === 'figures' ? 99 : 50;
  found.sort((a, b) => rank(a.kind) - rank(b.kind) || a.rel.localeCompare(b.rel));
  const sections: SectionModel[] = [];
  for (const result of found) sections.push(await sectionOf(result));
  return sections;
}

/**
 * One result as blocks; a renderer that fails leaves a readable note instead of the section.
 * A figure with nothing to show (no data, one colour) becomes a one-line note.
 */
export async function sectionOf(result: FoundResult): Promise<SectionModel> {
  const title = `${KIND_TITLES[result.kind] ?? `Lens: ${result.kind}`} — ${result.rel || '.'}`;
  if (result.refused) {
    // an unfinished, mixed or older folder: nothing of it is drawn as if it were a result
    return {
      kind: result.kind,
      title,
      rel: result.rel,
      blocks: [{ type: 'text', title: 'Refused: not a complete result', text: result.refused }],
    };
  }
  const render = REPORT_RENDERERS[result.kind] ?? genericBlocks;
  const base = { kind: result.kind, title, rel: result.rel, headline: headlineOf(result) };
  try {
    return { ...base, blocks: noteEmptyFigures(await render(result)) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return {
      ...base,
      blocks: [
        { type: 'text', title: 'This result could not be drawn', text: message },
        ...noteEmptyFigures(genericBlocks(result)),
      ],
    };
  }
}

function noteEmptyFigures(blocks: Block[]): Block[] {
  return blocks.map((b) => {
    if (b.type !== 'plot') return b;
    const text = figureNote(b.spec, b.name);
    return text ? { type: 'note', text } : b;
  });
}

/**
 * The report page: a summary table of every result first, then one section per result (single
 * traces collapsed when the page holds more than them), figures tiled and fitted to the page
 * width; with pngDir, each figure is also written there as PNG.
 */
export async function reportHtml(
  root: string,
  sections: readonly SectionModel[],
  options: { pngDir?: string | null; log?: (line: string) => void } = {},
): Promise<{ html: string; plots: number; pngs: string[] }> {
  let plots = 0;
  const pngs: string[] = [];
  const ids = new Set<string>();
  const parts: string[] = [];
  const summary: string[][] = [];
  const collapse = sections.some((s) => s.kind !== 'trace');
  for (const section of sections) {
    let id = slug(`${section.kind}-${section.rel}`);
    while (ids.has(id)) id += '-';
    ids.add(id);
    const body: string[] = [];
    let tiles: string[] = [];
    let tileKind = '';
    const flush = () => {
      if (tiles.length > 0)
        body.push(`<div class="tiles ${tileKind}">\n${tiles.join('\n')}\n</div>`);
      tiles = [];
    };
    const tile = (kind: string, html: string) => {
      if (kind !== tileKind) flush();
      tileKind = kind;
      tiles.push(html);
    };
    let figures = 0;
    for (const block of section.blocks) {
      if (block.type === 'plot') {
        options.log?.(`  ${section.rel || '.'}/${block.name}`);
        try {
          const drawn = new Map<PlotSpec, string>();
          const widthOf = async (spec: PlotSpec) => {
            const svg = await renderSvg(spec);
            drawn.set(spec, svg);
            return svgWidth(svg);
          };
          for (const part of await fitToWidth(block.spec, widthOf)) {
            plots++;
            figures++;
            const svg = drawn.get(part.spec) ?? (await renderSvg(part.spec));
            const name = part.part ? `${block.name} — ${part.part}` : block.name;
            tile(
              'figs',
              `<figure class="plot" data-name="${esc(block.name)}"${part.part ? ` data-part="${esc(part.part)}"` : ''}>${scopeSvg(svg, `p${plots}-`)}<figcaption>${esc(name)}</figcaption></figure>`,
            );
            if (options.pngDir) {
              mkdirSync(options.pngDir, { recursive: true });
              const path = join(options.pngDir, `${id}--${slug(name)}.png`);
              writeFileAtomic(path, await svgToPng(svg));
              pngs.push(path);
            }
          }
        } catch (err) {
          tile(
            'figs',
            `<figure class="plot failed" data-name="${esc(block.name)}"><pre>${esc(`figure ${block.name} could not be drawn: ${err instanceof Error ? err.message : String(err)}`)}</pre></figure>`,
          );
        }
      } else if (block.type === 'metrics' && block.group) {
        tile(`group-${slug(block.group)}`, `<div class="tile">${blockHtml(block)}</div>`);
      } else {
        flush();
        body.push(blockHtml(block));
      }
    }
    flush();
    summary.push([
      `<a href="#${id}">${esc(section.title)}</a>`,
      esc(provenanceModel(section) ?? '–'),
      section.headline ? esc(section.headline) : '<span class="muted">–</span>',
      String(figures),
    ]);
    const open = `<section id="${id}" data-kind="${esc(section.kind)}" data-rel="${esc(section.rel)}">`;
    parts.push(
      collapse && section.kind === 'trace'
        ? `${open}\n<details class="section"><summary><h2>${esc(section.title)}</h2> <span class="muted">${esc(section.headline ?? '')} (click to open)</span></summary>\n${body.join('\n')}\n</details>\n</section>`
        : `${open}\n<h2>${esc(section.title)}</h2>\n${body.join('\n')}\n</section>`,
    );
  }
  const header = `<header>
<h1>lmdyn report</h1>
<p class="muted">${esc(root)} · ${sections.length} results · ${plots} figures · lmdyn ${esc(VERSION)} · ${esc(new Date().toISOString())}</p>
<p class="muted">Every metric carries its tag (docs/papers.md): ${tagBadge('exact')} as the authors compute it (code or quoted source), ${tagBadge('proposed')} our reading where the papers leave it open.</p>
</header>`;
  const summarySection =
    sections.length > 0
      ? `<section id="summary" data-kind="summary">\n<h2>Summary</h2>\n${table(['result', 'model', 'headline', 'figures'], summary, 'summary')}\n</section>`
      : '<p>No results found in this folder (traces, sweeps or lens reports).</p>';
  return {
    html: page(`lmdyn report — ${root}`, header, `${summarySection}\n${parts.join('\n')}`),
    plots,
    pngs,
  };
}

/** The width of a rendered SVG in px (its `width` attribute). */
function svgWidth(svg: string): number {
  const m = /<svg[^>]*\swidth="([\d.]+)"/.exec(svg);
  return m ? Number(m[1]) : 0;
}

function provenanceModel(section: SectionModel): string | null {
  for (const b of section.blocks) if (b.type === 'provenance') return b.provenance.model;
  return null;
}

const MAX_CONFIG_CHARS = 20000;

/** A non-figure block as HTML. */
export function blockHtml(block: Exclude<Block, { type: 'plot' }>): string {
  switch (block.type) {
    case 'provenance': {
      const p = block.provenance;
      const items: [string, string | number | null][] = [
        ['file', block.file || null],
        ['lens', p.lens],
        ['spec', p.spec],
        ['model', p.model],
        ['seed', p.seed],
        ['lmdyn', p.version],
      ];
      const dl = items
        .filter(([, v]) => v !== null)
        .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(String(v))}</dd>`)
        .join('');
      let config = '';
      if (Object.keys(p.config).length > 0) {
        let text = JSON.stringify(p.config, null, 1);
        if (text.length > MAX_CONFIG_CHARS)
          text =
            text.slice(0, MAX_CONFIG_CHARS) +
            '\n… (cut; the full configuration is in the JSON file)';
        config = `<details><summary>configuration (${esc(Object.keys(p.config).join(', '))})</summary><pre>${esc(text)}</pre></details>`;
      }
      return `<dl class="prov">${dl}</dl>${config}`;
    }
    case 'metrics': {
      // the definitions column only when a row states one (a family's later tables do not)
      const notes = block.rows.some((r) => r.note);
      return `<h3>${esc(block.title)}</h3>${table(
        ['metric', ...block.columns.map(esc), 'tag', ...(notes ? ['source / definition'] : [])],
        block.rows.map((r) => [
          esc(r.name),
          ...r.values.map((v) => cellHtml(v)),
          r.tag ? tagBadge(r.tag) : '',
          ...(notes ? [r.note ? `<span class="muted">${esc(r.note)}</span>` : ''] : []),
        ]),
        'metrics',
      )}`;
    }
    case 'table':
      return `<h3>${esc(block.title)}</h3>${table(
        block.head.map(esc),
        block.rows.map((r) => r.map((v) => cellHtml(v))),
      )}`;
    case 'text':
      return `<h3>${esc(block.title)}</h3><pre class="text">${esc(block.text)}</pre>`;
    case 'note':
      return `<p class="note">${esc(block.text)}</p>`;
  }
}

function cellHtml(v: Cell): string {
  return typeof v === 'number' || v === null ? num(v) : esc(v);
}
