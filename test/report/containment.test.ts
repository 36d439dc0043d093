/**
 * Readers stay inside the runs folder and show only committed results: a figure spec that is a
 * symbolic link to a file outside is not listed, a sweep whose configuration folder is '../x' is
 * refused, and an unfinished lens output is listed as refused (with why) instead of drawn.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdynError } from '../../src/errors.js';
import { commitBeside } from '../../src/io/commit.js';
import { sectionOf } from '../../src/report/report.js';
import { scanResults } from '../../src/report/scan.js';
import { readSweepIndex } from '../../src/trace/store.js';

test('scan: symlinked figure specs are not listed; an uncommitted lens report is refused, not drawn; a sweep pointing outside is refused', async () => {
  const root = mkdtempSync(join(tmpdir(), 'lmdyn-contain-'));
  const outside = mkdtempSync(join(tmpdir(), 'lmdyn-outside-'));
  try {
    writeFileSync(join(outside, 'secret.vl.json'), '{"mark":"point"}');
    const spec = '{"mark":"point","data":{"values":[]}}';
    await commitBeside(join(root, 'a'), 'gravity', (s) => {
      writeFileSync(join(s, 'gravity.json'), '{"lens":"gravity"}');
      writeFileSync(join(s, 'potential.vl.json'), spec);
    });
    symlinkSync(join(outside, 'secret.vl.json'), join(root, 'a', 'evil.vl.json'));
    mkdirSync(join(root, 'figs'));
    symlinkSync(join(outside, 'secret.vl.json'), join(root, 'figs', 'evil.vl.json'));
    writeFileSync(join(root, 'figs', 'ok.vl.json'), spec);
    mkdirSync(join(root, 'half'));
    writeFileSync(join(root, 'half', 'dmet.json'), '{"lens":"dmet"}'); // no dmet.manifest.json
    const found = scanResults(root);
    const plots = found.flatMap((f) => f.plots.map((p) => p.slice(root.length + 1)));
    assert.deepEqual(plots.sort(), ['a/potential.vl.json', 'figs/ok.vl.json']);
    const half = found.find((f) => f.rel === 'half')!;
    assert.match(half.refused!, /half holds no complete dmet \(no dmet\.manifest\.json/);
    const section = await sectionOf(half);
    assert.deepEqual(
      section.blocks.map((b) => b.type),
      ['text'],
    );
    assert.equal(found.find((f) => f.rel === 'a')!.refused, undefined);

    mkdirSync(join(root, 'sweep'));
    writeFileSync(
      join(root, 'sweep', 'sweep.json'),
      JSON.stringify({
        lmdyn: 't',
        plan: {},
        configs: [{ index: 0, dir: '../../x', sampling: {} }],
      }),
    );
    assert.throws(
      () => readSweepIndex(join(root, 'sweep'), { finished: false }),
      (e: unknown) =>
        e instanceof LmdynError &&
        /'\.\.\/\.\.\/x' is not a plain name inside the sweep/.test(e.message),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});
