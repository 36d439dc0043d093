/**
 * `lmdyn demo` end to end on stories260K: it says which model it used, every step of the demo
 * writes its folder and its section of the report, and the greedy section shows MANIFEST.md's ids.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEMO_STEPS } from '../../src/cli/demo-steps.js';
import { model, STORIES_GREEDY_64 } from '../helpers/paths.js';

test('demo runs every step on stories260K and writes the report', { timeout: 600_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'lmdyn-demo-'));
  try {
    const r = spawnSync(process.execPath, [resolve('bin', 'lmdyn.js'), 'demo', '--out', out], {
      encoding: 'utf8',
      env: { ...process.env, LMDYN_MODEL: model('stories260K', 'stories260K.bin') },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /stories260K\.bin/);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    assert.ok(report.includes(STORIES_GREEDY_64.join(' ')), 'greedy ids from BOS as in MANIFEST.md §1');
    const demo = JSON.parse(readFileSync(join(out, 'demo.json'), 'utf8'));
    assert.deepEqual(demo.greedy.ids, STORIES_GREEDY_64);
    assert.ok(existsSync(join(out, 'sweep', 'sweep.json')));
    for (const step of DEMO_STEPS) {
      const dir = join(out, step.name);
      assert.ok(existsSync(dir), `step ${step.name} wrote ${dir}`);
      assert.ok(readdirSync(dir).length > 0, `step ${step.name} wrote files`);
    }
    // Sections: model, greedy, sampled, depth, trace, sweep, then at least one per step.
    const sections = report.split('\n## ').length - 1;
    assert.ok(sections >= 6 + DEMO_STEPS.length, `${sections} sections`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
