import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PAPERS, cite, paperRef } from '../src/papers.js';

// References: the arXiv ids and titles as printed in docs/papers.md (written from the arXiv
// abstract pages), and the rule that no user-visible string points at a file users lack.

test('every paper reference names its arXiv id and title, and docs/papers.md cites the same ids', () => {
  const doc = readFileSync('docs/papers.md', 'utf8');
  for (const [key, p] of Object.entries(PAPERS)) {
    assert.match(p.arxiv, /^\d{4}\.\d{5}$/, key);
    assert.equal(p.url, `https://arxiv.org/abs/${p.arxiv}`);
    assert.ok(paperRef(key as keyof typeof PAPERS).includes(`"${p.title}", arXiv:${p.arxiv}`));
    assert.ok(cite(key as keyof typeof PAPERS).endsWith(`arXiv:${p.arxiv}`));
    assert.ok(
      doc.includes(`arXiv:${p.arxiv}`) && doc.includes(p.url),
      `docs/papers.md lacks ${key}`,
    );
  }
  assert.equal(cite('coupling'), 'Aubry et al. 2025, arXiv:2407.07810');
  assert.equal(cite('dmet'), 'Zhang & Dong 2025, arXiv:2505.20340');
});

test('no string in src or web cites "papers.md §…" (comments may)', () => {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|js|html)$/.test(n)) files.push(p);
    }
  };
  walk('src');
  walk('web');
  const bad: string[] = [];
  for (const f of files) {
    readFileSync(f, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const t = line.trim();
        if (/^(\*|\/\/|\/\*)/.test(t)) return;
        if (/papers\.md §/.test(line)) bad.push(`${f}:${i + 1}`);
      });
  }
  assert.deepEqual(bad, []);
});
