/**
 * Every number of docs/results comes from `npm run results`: each section is regenerated here
 * from its fixed seeds and must equal the committed page byte for byte. The references are the
 * committed pages themselves only in the sense of a golden file: what makes the numbers right is
 * each lens's own tests (closed forms, float64 references, statsmodels / scikit-learn values);
 * what this test guarantees is that a docs number is the output of the command beside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resultFiles, resultPages, SECTIONS } from '../../src/results/pages.js';
import { ROOT } from '../helpers/paths.js';

const committed = (page: string): string =>
  readFileSync(join(ROOT, 'docs', 'results', `${page}.md`), 'utf8');

test('npm run results: the fast pages regenerate docs/results byte for byte (fixed seeds, shipped and test models)', async () => {
  const pages = await resultPages(ROOT, (s) => s.fast);
  assert.ok(pages.size > 0);
  for (const [page, text] of pages) {
    const whole = SECTIONS.filter((s) => s.page === page).every((s) => s.fast);
    assert.ok(whole, `page ${page} mixes fast and slow sections`);
    assert.equal(text, committed(page), `docs/results/${page}.md differs from a fresh run`);
  }
});

// The recorded studies (a decoding grid, an SDE fit, a loop study): a minute or two each.
for (const s of SECTIONS.filter((x) => !x.fast)) {
  test(`npm run results: docs/results/${s.page}.md, section '${s.title}' regenerates byte for byte`, async () => {
    const { pages, figures } = await resultFiles(ROOT, (x) => x === s);
    const text = pages.get(s.page)!;
    for (const [name, svg] of figures) {
      const path = join(ROOT, 'docs', 'results', 'img', name);
      assert.equal(svg, readFileSync(path, 'utf8'), `docs/results/img/${name} differs from a fresh run`);
    }
    const block = text.split('\n## ').slice(1)[0];
    assert.ok(
      committed(s.page).includes(`\n## ${block}`),
      `docs/results/${s.page}.md: section '${s.title}' differs from a fresh run`,
    );
  });
}
