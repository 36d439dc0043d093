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
import { scopeSvg } from '../../src/report/html.js';
import { writeReport } from '../../src/report/report.js';
import { taggedMetrics } from '../../src/report/summary.js';
import { projectPca } from '../../src/report/trajectory.js';
import { createRng } from '../../src/tensor/rng.js';
import { EXPECTED_FIGURES, makeRunFolder, STORIES } from './fixture.js';

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
      const expectedFigures = Object.values(EXPECTED_FIGURES).flat().length;
      assert.equal(written.plots, expectedFigures);
      assert.equal(written.pngs.length, expectedFigures);
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
    figs.append({'name':fig.get('data-name'),'svgs':len(svgs),'elements':sum(1 for s in svgs for _ in s.iter()),'failed':'failed' in fig.get('class','')})
  rows=[]
  for tr in sec.iter('tr'):
    rows.append([''.join(td.itertext()) for td in tr.findall('td')])
  prov={dt.text:dd.text for dt,dd in zip(sec.iter('dt'),sec.iter('dd'))}
  out['sections'].append({'kind':sec.get('data-kind'),'rel':sec.get('data-rel'),'figures':figs,'rows':rows,'prov':prov})
out['style_imports']=len(re.findall(r'@import|url\(\s*[\'"]?(https?:)?//',text))
print(json.dumps(out))`,
        ),
      ) as {
        sections: {
          kind: string;
          rel: string;
          figures: { name: string; svgs: number; elements: number; failed: boolean }[];
          rows: string[][];
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
      // one section per result (the sweep's configuration traces are drawn by the sweep)
      assert.deepEqual(
        page.sections.map((s) => `${s.kind}:${s.rel}`),
        [
          'trace:trace',
          'sweep:sweep',
          'dmet:lenses/dmet',
          'sde:lenses/sde',
          'gravity:lenses/gravity',
          'simplex:lenses/simplex',
          'coupling:coupling',
          'figures:loose',
        ],
      );
      for (const s of page.sections) {
        assert.deepEqual(
          s.figures.map((f) => f.name).sort(),
          [...EXPECTED_FIGURES[s.rel]].sort(),
          `figures of ${s.rel}`,
        );
        for (const f of s.figures) {
          assert.equal(f.failed, false, `${s.rel}/${f.name} rendered`);
          assert.equal(f.svgs, 1);
          assert.ok(f.elements > 10, `${s.rel}/${f.name} has marks (${f.elements} elements)`);
        }
      }
      const section = (rel: string) => page.sections.find((s) => s.rel === rel)!;
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
