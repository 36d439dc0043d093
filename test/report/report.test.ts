/**
 * `lmdyn report`: a fixture run folder (fixture.ts) becomes one self-contained HTML file.
 * References: Python's XML parser (expat) for well-formedness and for reading the page back,
 * numpy for the sweep table's means (read straight from trace.safetensors) and for the PCA of
 * the trajectories, the PNG signature and header for --png, and hand-written expectations for
 * the generic tagged-metric walker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { figureNote, PAGE_WIDTH } from '../../src/report/figures.js';
import { isPValueKey, pValue } from '../../src/report/format.js';
import { scopeSvg } from '../../src/report/html.js';
import { shortName } from '../../src/report/section.js';
import { writeReport } from '../../src/report/report.js';
import { taggedMetrics } from '../../src/report/summary.js';
import { projectPca } from '../../src/trace/trajectory.js';
import { createRng } from '../../src/tensor/rng.js';
import { EXPECTED_FIGURES, EXPECTED_NOTES, GRID_T, makeRunFolder, STORIES } from './fixture.js';

function python(script: string, input = ''): string {
  const r = spawnSync('python3', ['-c', script], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('tagged metrics: the numbers a tagged object states, mean/value below it with the tag inherited, raw per-prompt arrays skipped', () => {
  const json = {
    lens: 'x',
    a: {
      tag: 'exact',
      source: 'eq. 3',
      mean: 0.5,
      passed: true,
      per_prompt: [{ tag: 'exact', mean: 1 }],
    },
    b: {
      tag: 'proposed',
      by_k: [
        { k: 10, value: 2, count: 4 },
        { k: 30, value: null },
      ],
    }, // count: not a headline under a tagged object
    c: { mean: 7 }, // untagged: not a headline
    d: [{ name: 'w', inner: { tag: 'exact', value: 3 } }],
  };
  assert.deepEqual(taggedMetrics(json), [
    { path: 'a.mean', value: 0.5, tag: 'exact', source: 'eq. 3' },
    { path: 'a.passed', value: true, tag: 'exact', source: 'eq. 3' },
    { path: 'b.by_k[k=10].value', value: 2, tag: 'proposed', source: null },
    { path: 'b.by_k[k=30].value', value: null, tag: 'proposed', source: null },
    { path: 'd[name=w].inner.value', value: 3, tag: 'exact', source: null },
  ]);
});

test('p-values by hand: never below "< 1e-16", three decimals above 1e-3, one significant digit and exponent between', () => {
  const cases: [number | null, string][] = [
    [0, '< 1e-16'],
    [1e-300, '< 1e-16'],
    [9.9e-17, '< 1e-16'],
    [1e-16, '1.0e-16'],
    [2.46e-7, '2.5e-7'],
    [0.000999, '1.0e-3'],
    [0.0123, '0.012'],
    [0.5, '0.500'],
    [1, '1.000'],
    [null, '–'],
    [Number.NaN, '–'],
  ];
  for (const [p, text] of cases) assert.equal(pValue(p), text, String(p));
  for (const key of [
    'p',
    'spearman_p',
    'pearson_p',
    'ljung_box_p',
    'p_value',
    'pvalue',
    'ks_p_value',
  ])
    assert.ok(isPValueKey(key), key);
  for (const key of ['top_p', 'min_p', 'p_max', 'min_log_p', 'prompt', 'temperature'])
    assert.ok(!isPValueKey(key), key);
});

test('short metric names: a named item stands for its path, a trailing value is dropped, a mean said', () => {
  assert.equal(shortName('headline[name=test NLL].value'), 'test NLL');
  assert.equal(
    shortName('headline[name=moments: tr Σ sim / real].value'),
    'moments: tr Σ sim / real',
  );
  assert.equal(shortName('fit.seed'), 'fit · seed');
  assert.equal(shortName('by_k[k=10].value'), 'by_k k=10');
  assert.equal(shortName('score_response.asymmetry.mean'), 'score_response · asymmetry (mean)');
  assert.equal(
    shortName('faces[name=T 0.3 · top-p 0.5].support_size'),
    'T 0.3 · top-p 0.5 · support_size',
  );
});

test('figure notes: a spec with no rows anywhere, a one-colour heatmap; a figure with data or two colours is drawn', () => {
  const heat = (values: number[]) =>
    ({
      title: 'grammar',
      data: { values: values.map((value, i) => ({ t: i, value })) },
      mark: 'rect',
      encoding: {
        x: { field: 't', type: 'ordinal' },
        color: { field: 'value', type: 'quantitative' },
      },
    }) as const;
  assert.match(figureNote({ data: { values: [] }, mark: 'point' }, 'km')!, /^km: no data to draw/);
  assert.match(
    figureNote(
      {
        title: 'KM',
        data: { values: [] },
        facet: { column: { field: 'q' } },
        spec: { mark: 'point' },
      },
      'km',
    )!,
    /^KM: no data/,
  );
  assert.equal(figureNote({ data: { values: [{ a: 1 }] }, mark: 'point' }, 'x'), null);
  assert.equal(figureNote({ data: { url: 'rows.csv' }, mark: 'point' }, 'no inline data'), null);
  assert.match(figureNote(heat([1, 1, 1]), 'g')!, /^grammar: value is 1 in every cell \(3 cells\)/);
  assert.equal(figureNote(heat([1, 0.5, 1]), 'g'), null);
  // a layered heatmap as the DMET lens draws it (rect + text layer), colour title used
  assert.match(
    figureNote(
      {
        data: { values: [{ v: 2 }, { v: 2 }] },
        encoding: { x: { field: 'v', type: 'ordinal' } },
        layer: [
          {
            mark: 'rect',
            encoding: { color: { field: 'v', type: 'quantitative', title: 'grammar' } },
          },
          { mark: 'text', encoding: { text: { field: 'v' } } },
        ],
      },
      'h',
    )!,
    /^h: grammar is 2 in every cell \(2 cells\)/,
  );
});

test('scopeSvg gives two copies of one figure distinct ids and keeps their references', () => {
  const svg =
    '<?xml version="1.0"?><svg><defs><clipPath id="clip1"><rect/></clipPath></defs><g clip-path="url(#clip1)"/><use href="#clip1"/></svg>';
  const a = scopeSvg(svg, 'p1-');
  const b = scopeSvg(svg, 'p2-');
  assert.ok(!a.startsWith('<?xml'));
  assert.match(a, /id="p1-clip1"/);
  assert.match(a, /url\(#p1-clip1\)/);
  assert.match(a, /href="#p1-clip1"/);
  assert.match(b, /id="p2-clip1"/);
});

test('projectPca matches numpy’s SVD of the centred rows (up to the sign of each component), also when fitted on a subsample', () => {
  const rng = createRng(5);
  const n = 60;
  const d = 7;
  const x = Float64Array.from({ length: n * d }, (_, i) => rng.normal() * (1 + (i % d)));
  for (const maxFit of [1500, 12]) {
    const p = projectPca(x, n, d, 3, maxFit);
    const out = python(
      `import json,sys,numpy as np
x=np.array(json.load(sys.stdin)).reshape(${n},${d})
stride=max(1,-(-${n}//${maxFit}))
f=x[::stride]
m=f.mean(0)
u,s,vt=np.linalg.svd(f-m,full_matrices=False)
print(json.dumps({'coords':((x-m)@vt[:3].T).tolist(),'ratio':(s[:3]**2/(s**2).sum()).tolist()}))`,
      JSON.stringify([...x]),
    );
    const ref = JSON.parse(out) as { coords: number[][]; ratio: number[] };
    for (let c = 0; c < 3; c++) {
      const sign = Math.sign(ref.coords[0][c]) === Math.sign(p.coords[c]) ? 1 : -1;
      for (let i = 0; i < n; i++)
        assert.ok(
          Math.abs(sign * p.coords[i * 3 + c] - ref.coords[i][c]) < 1e-8,
          `maxFit ${maxFit}: row ${i}, component ${c}`,
        );
      assert.ok(Math.abs(p.explained[c] - ref.ratio[c]) < 1e-10);
    }
  }
});

test(
  'report of a run folder: valid self-contained HTML, every figure drawn, tags, provenance, sweep means, PNGs',
  { timeout: 120_000 },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'lmdyn-report-'));
    try {
      await makeRunFolder(root);
      const written = await writeReport(root, { png: true });
      assert.equal(written.path, join(root, 'report.html'));
      assert.equal(written.pngs.length, written.plots);
      // read the page back with an independent parser (it is well-formed XML as well as HTML)
      const page = JSON.parse(
        python(
          String.raw`import json,sys,re,xml.etree.ElementTree as ET
text=open(sys.argv[1] if len(sys.argv)>1 else '${join(root, 'report.html')}',encoding='utf8').read()
root=ET.fromstring(re.sub(r'^<!DOCTYPE html>','',text))
SVG='{http://www.w3.org/2000/svg}'
out={'sections':[],'external':[],'scripts':0,'ids':[],'title':root.find('head/title').text}
for el in root.iter():
  for k,v in el.attrib.items():
    if k in('src','href') or k.endswith('}href'):
      if re.match(r'^(https?:)?//',v): out['external'].append(v)
    if k=='id': out['ids'].append(v)
  if el.tag in('script','link','img','iframe','object'): out['scripts']+=1
for sec in root.iter('section'):
  figs=[]
  for fig in sec.iter('figure'):
    svgs=fig.findall(SVG+'svg')
    figs.append({'name':fig.get('data-name'),'part':fig.get('data-part'),'svgs':len(svgs),'width':float(svgs[0].get('width')) if svgs else 0,'elements':sum(1 for s in svgs for _ in s.iter()),'failed':'failed' in fig.get('class','')})
  rows=[]
  for tr in sec.iter('tr'):
    rows.append([''.join(td.itertext()) for td in tr.findall('td')])
  tables=[]
  h3=None
  for el in sec.iter():
    if el.tag=='h3': h3=''.join(el.itertext())
    if el.tag=='table': tables.append({'title':h3,'rows':[[''.join(td.itertext()) for td in tr.findall('td')] for tr in el.iter('tr')][1:]})
  links=[a.get('href') for a in sec.iter('a')]
  notes=[''.join(p.itertext()) for p in sec.iter('p') if p.get('class')=='note']
  details=[{'cls':d.get('class'),'open':d.get('open') is not None} for d in sec.iter('details')]
  prov={dt.text:dd.text for dt,dd in zip(sec.iter('dt'),sec.iter('dd'))}
  out['sections'].append({'kind':sec.get('data-kind'),'rel':sec.get('data-rel'),'id':sec.get('id'),'figures':figs,'rows':rows,'tables':tables,'links':links,'notes':notes,'details':details,'prov':prov})
out['style_imports']=len(re.findall(r'@import|url\(\s*[\'"]?(https?:)?//',text))
print(json.dumps(out))`,
        ),
      ) as {
        sections: {
          kind: string;
          rel: string | null;
          id: string;
          figures: {
            name: string;
            part: string | null;
            svgs: number;
            width: number;
            elements: number;
            failed: boolean;
          }[];
          rows: string[][];
          tables: { title: string | null; rows: string[][] }[];
          links: string[];
          notes: string[];
          details: { cls: string | null; open: boolean }[];
          prov: Record<string, string>;
        }[];
        external: string[];
        scripts: number;
        ids: string[];
        style_imports: number;
        title: string;
      };
      assert.deepEqual(page.external, [], 'nothing is loaded from the network');
      assert.equal(
        page.scripts,
        0,
        'no script, stylesheet link, image or frame: the page stands alone',
      );
      assert.equal(page.style_imports, 0);
      assert.equal(
        new Set(page.ids).size,
        page.ids.length,
        'ids are unique across the inline SVGs',
      );
      assert.match(page.title, /lmdyn report/);
      // the summary first, then one section per result (the sweep's configuration traces are
      // drawn by the sweep), single traces after the lenses
      assert.deepEqual(
        page.sections.map((s) => `${s.kind}:${s.rel}`),
        [
          'summary:null',
          'sweep:sweep',
          'dmet:lenses/dmet',
          'sde:lenses/sde',
          'gravity:lenses/gravity',
          'simplex:lenses/simplex',
          'coupling:coupling',
          'trace:trace',
          'figures:loose',
        ],
      );
      const [summary, ...results] = page.sections;
      // one PNG per drawn figure (each part of a split figure is one)
      assert.equal(written.plots, results.flatMap((s) => s.figures).length);
      // the summary links every result, in the page's order, one row each with a headline
      assert.deepEqual(
        summary.links,
        results.map((s) => `#${s.id}`),
      );
      const summaryRows = summary.rows.filter((r) => r.length > 0);
      assert.equal(summaryRows.length, results.length);
      assert.match(summaryRows[0][2], /^4 decoding configurations × 2 samples × 10 tokens$/);
      // the trace is collapsed (a <details> that is not open) on a page with lens results
      assert.deepEqual(
        results.find((s) => s.kind === 'trace')!.details.filter((d) => d.cls === 'section'),
        [{ cls: 'section', open: false }],
      );
      for (const s of results) {
        if (s.kind !== 'trace')
          assert.ok(!s.details.some((d) => d.cls === 'section'), `${s.rel} is not collapsed`);
        assert.deepEqual(
          [...new Set(s.figures.map((f) => f.name))].sort(),
          [...EXPECTED_FIGURES[s.rel!]].sort(),
          `figures of ${s.rel}`,
        );
        for (const f of s.figures) {
          assert.equal(f.failed, false, `${s.rel}/${f.name} rendered`);
          assert.equal(f.svgs, 1);
          assert.ok(f.elements > 10, `${s.rel}/${f.name} has marks (${f.elements} elements)`);
          // every figure fits the page (1200 px, padding included)
          assert.ok(f.width <= PAGE_WIDTH, `${s.rel}/${f.name} is ${f.width} px wide`);
        }
        // figures with nothing to show are a one-line note, not an empty frame
        assert.equal(s.notes.length, (EXPECTED_NOTES[s.rel!] ?? []).length, `notes of ${s.rel}`);
      }
      const section = (rel: string) => page.sections.find((s) => s.rel === rel)!;
      // the 8 × 5 grid of panels is split along temperature into parts that fit the page,
      // each part holding whole columns, together all 8
      const parts = section('lenses/dmet').figures.filter((f) => f.name === 'trajectories');
      assert.ok(parts.length >= 2, `${parts.length} parts`);
      assert.deepEqual(
        parts.map((f) => f.part),
        parts.map((_, i) => parts[i].part),
      );
      assert.match(
        parts[0].part!,
        new RegExp(`^temperature ${GRID_T[0]} – .* \\(part 1 of ${parts.length}\\)$`),
      );
      assert.match(
        parts[parts.length - 1].part!,
        new RegExp(
          ` – ${GRID_T[GRID_T.length - 1]} \\(part ${parts.length} of ${parts.length}\\)$`,
        ),
      );
      // the wrapped facet stays one figure, rewrapped to fewer columns
      assert.equal(section('lenses/dmet').figures.filter((f) => f.name === 'wrapped').length, 1);
      // the notes name the figure and why it is left out
      assert.match(
        section('lenses/dmet').notes[0],
        /^grammar \(exact\): value is 1 in every cell \(4 cells\)/,
      );
      assert.match(section('lenses/sde').notes[0], /^kramers_moyal: no data to draw/);
      // one table per data set, rows by their short names; the definitions stated once
      const sdeTables = section('lenses/sde').tables;
      const nll = (t: { rows: string[][] }) => t.rows.find((r) => r[0] === 'test NLL')?.[1];
      assert.equal(nll(sdeTables.find((t) => t.title === 'datasets · 000_t0.5_p1')!), '10');
      assert.equal(nll(sdeTables.find((t) => t.title === 'datasets · 001_t1_p1')!), '11');
      assert.deepEqual(
        sdeTables.find((t) => t.title === 'datasets: definitions')!.rows.map((r) => r[0]),
        ['test NLL', 'test NLL, constant baseline', 'SNR', 'fixed points'],
      );
      // p-values at most "< 1e-16"; a decoding knob named top_p is not a p-value
      const gravityRows = section('lenses/gravity').rows;
      const value = (name: string) => gravityRows.find((r) => r[0] === name)?.[1];
      assert.equal(value('sensitivity.spearman_p'), '< 1e-16');
      assert.equal(value('sensitivity.pearson_p'), '0.012');
      assert.equal(value('sensitivity.top_p'), '0.9');
      // provenance of the trace: model, seed, version
      assert.equal(section('trace').prov.model, STORIES);
      assert.equal(section('trace').prov.seed, '4');
      assert.equal(section('trace').prov.lmdyn, '0.1.0');
      // the generic walker's rows in the stand-in dmet report, with their tags
      const dmetRows = section('lenses/dmet').rows.map((r) => `${r[0]}=${r[1]}:${r[2]}`);
      assert.ok(dmetRows.includes('metrics.C_mean.mean=0.25:exact'), dmetRows.join(' '));
      assert.ok(dmetRows.includes('metrics.silhouette.value=0.5:proposed'));
      assert.ok(!dmetRows.some((r) => r.startsWith('untagged')));
      assert.ok(
        section('lenses/gravity').rows.some(
          (r) =>
            r[0] === 'wells[name=well 1].depth.value' && r[1] === '1.75' && r[2] === 'proposed',
        ),
      );
      // coupling headline: trained and random twin side by side, tags shown
      const lss = section('coupling').rows.find((r) => r[0] === 'line-shape score (mean)')!;
      assert.equal(lss.length, 5);
      assert.equal(lss[3], 'exact');
      // the sweep's mean entropy per configuration, from numpy on trace.safetensors
      const sweepRows = section('sweep').rows.filter((r) => /^00\d_/.test(r[0]));
      assert.equal(sweepRows.length, 4);
      for (const row of sweepRows) {
        const ref = JSON.parse(
          python(
            `import json,struct,numpy as np
f=open('${join(root, 'sweep')}/'+${JSON.stringify(row[0])}+'/trace.safetensors','rb').read()
n=struct.unpack('<Q',f[:8])[0]; h=json.loads(f[8:8+n])
def t(name):
  a,b=h[name]['data_offsets']; return np.frombuffer(f[8+n+a:8+n+b],dtype=np.float32)
print(json.dumps([float(np.nanmean(t('logprob'))),float(np.nanmean(t('entropy')))]))`,
          ),
        ) as [number, number];
        assert.ok(
          Math.abs(Number(row[5]) - ref[0]) <= 5e-4 * Math.max(1, Math.abs(ref[0])),
          `${row[0]} mean log p ${row[5]} vs ${ref[0]}`,
        );
        assert.ok(
          Math.abs(Number(row[6]) - ref[1]) <= 5e-4 * Math.max(1, Math.abs(ref[1])),
          `${row[0]} mean H ${row[6]} vs ${ref[1]}`,
        );
      }
      // every PNG is a PNG with a positive size (IHDR)
      for (const path of written.pngs) {
        const b = readFileSync(path);
        assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
        assert.ok(b.readUInt32BE(16) > 50 && b.readUInt32BE(20) > 50, `${path} size`);
      }
      // the command line: the path on stdout; a missing folder is one line and exit code 2
      const cli = spawnSync(
        process.execPath,
        [resolve('bin', 'lmdyn.js'), 'report', root, '-q', '--out', join(root, 'again.html')],
        { encoding: 'utf8' },
      );
      assert.equal(cli.status, 0, cli.stderr);
      assert.equal(cli.stdout, `report: ${join(root, 'again.html')}\n`);
      const bad = spawnSync(
        process.execPath,
        [resolve('bin', 'lmdyn.js'), 'report', join(root, 'missing')],
        { encoding: 'utf8' },
      );
      assert.equal(bad.status, 2);
      assert.equal(bad.stderr, `error: ${join(root, 'missing')} is not a folder\n`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);
