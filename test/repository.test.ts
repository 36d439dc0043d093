import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MODELS, ROOT } from './helpers/paths.js';

// A fresh clone has nothing beside it: no tracked file outside docs/ may point at the
// developers' workshop folder next to the project.
test('no tracked file outside docs/ refers to the folder beside the project', () => {
  const needle = ['..', 'shared'].join('/');
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f && !f.startsWith('docs/'));
  assert.ok(files.length > 100, `git ls-files listed ${files.length} files`);
  const hits = files.filter((f) => {
    const bytes = readFileSync(join(ROOT, f));
    return bytes.includes(needle);
  });
  assert.deepEqual(hits, [], `these files mention ${needle}`);
});

// The size and sha256 columns of test/fixtures/models/MANIFEST.md, read from the table and
// compared with the files (sha256 by node:crypto, sizes by stat).
test('every fixture model file has the size and sha256 its MANIFEST.md table states', () => {
  const manifest = readFileSync(join(MODELS, 'MANIFEST.md'), 'utf8');
  const rows = [...manifest.matchAll(/^\| (\S+) \| ([\d,]+) \| ([0-9a-f]{64}) \|$/gm)];
  assert.equal(rows.length, 14);
  for (const [, file, bytes, sha] of rows) {
    const path = join(MODELS, file);
    assert.equal(statSync(path).size, Number(bytes.replaceAll(',', '')), file);
    assert.equal(createHash('sha256').update(readFileSync(path)).digest('hex'), sha, file);
  }
});
