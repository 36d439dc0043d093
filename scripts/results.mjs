#!/usr/bin/env node
// `npm run results`: regenerates docs/results/*.md and the figures they embed (docs/results/img)
// from src/results/pages.ts (run `npm run build` first; the npm script does). Fixed seeds, the
// shipped model and the test models only.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resultFiles } from '../dist/src/results/pages.js';

const root = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const out = join(root, 'docs', 'results');
mkdirSync(join(out, 'img'), { recursive: true });
const { pages, figures } = await resultFiles(root);
for (const [name, svg] of figures) {
  writeFileSync(join(out, 'img', name), svg);
  process.stdout.write(`results: docs/results/img/${name}\n`);
}
for (const [page, text] of pages) {
  writeFileSync(join(out, `${page}.md`), text);
  process.stdout.write(`results: docs/results/${page}.md\n`);
}
