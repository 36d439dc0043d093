import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resultPages, SECTIONS } from '../../src/results/pages.js';
import { ROOT } from '../helpers/paths.js';

test('npm run results: the fast sections regenerate docs/results byte for byte (fixed seeds, shipped and test models)', async () => {
  const pages = await resultPages(ROOT, (s) => s.fast);
  assert.ok(pages.size > 0);
  for (const [page, text] of pages) {
    const committed = readFileSync(join(ROOT, 'docs', 'results', `${page}.md`), 'utf8');
    const whole = SECTIONS.filter((s) => s.page === page).every((s) => s.fast);
    if (whole) assert.equal(text, committed, `docs/results/${page}.md differs from a fresh run`);
    else
      for (const block of text.split('\n## ').slice(1))
        assert.ok(
          committed.includes(block),
          `docs/results/${page}.md: section '${block.split('\n')[0]}' differs`,
        );
  }
});
