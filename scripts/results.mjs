#!/usr/bin/env node
// `npm run results`: regenerates docs/results/*.md from src/results/pages.ts (run `npm run build` first;
// the npm script does). Fixed seeds, the shipped model and the test models only.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resultPages } from '../dist/src/results/pages.js';

const root = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const out = join(root, 'docs', 'results');
mkdirSync(out, { recursive: true });
for (const [page, text] of await resultPages(root)) {
  writeFileSync(join(out, `${page}.md`), text);
  process.stdout.write(`results: docs/results/${page}.md\n`);
}
