import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { ROOT, model } from './helpers/paths.js';

// The README's library examples, run as a user runs them (the package imported by its name),
// in a scratch folder, on the shipped stories260K model.
const STORIES = model('stories260K', 'stories260K.bin');

function run(script: string, modelArgs: string[] = [STORIES]): string[] {
  const cwd = mkdtempSync(join(tmpdir(), 'lmdyn-example-'));
  const r = spawnSync(process.execPath, [resolve(ROOT, 'examples', script), ...modelArgs], {
    cwd,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n');
}

test('examples/library.mjs: the greedy text of MANIFEST.md §1, the residual cache shape, both coupling rows', () => {
  const lines = run('library.mjs');
  const text = JSON.parse(lines[0]) as string;
  // MANIFEST.md §1's greedy text from BOS; the prompt is its first four tokens, then 24 more.
  const manifest =
    'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';
  assert.ok(manifest.startsWith(text) && text.length > 60, text);
  assert.equal(lines[1], 'blocks.4.hook_resid_post [ 1, 5, 64 ]'); // BOS + 4 prompt tokens, d = 64
  assert.match(lines[2], /^trace states 7 hooks/); // hook_embed, 5 blocks, ln_final
  assert.match(lines[3], /^trained LSS \d\.\d{3} \(exact\) growth -?\d\.\d{3} \(proposed\)$/);
  assert.match(lines[4], /^random_twin LSS \d\.\d{3} \(exact\) growth -?\d\.\d{3} \(proposed\)$/);
});

test('examples/lenses.mjs: every lens runs; the entropic flow reaches π_T and the circle has its closed-form H1 bar', () => {
  const lines = run('lenses.mjs');
  const num = '(\\d[\\d.e+-]*)';
  const dmet = lines.filter((l) => l.startsWith('dmet '));
  assert.equal(dmet.length, 4); // T ∈ {0.5, 1} × top-p ∈ {0.9, 1}
  for (const l of dmet)
    assert.match(
      l,
      new RegExp(`C_mean ${num} silhouette ${num} persistence ${num} log ppl ${num}$`),
    );
  const sde = lines.filter((l) => l.startsWith('sde '));
  assert.equal(sde.length, 4);
  for (const l of sde) {
    const m = /test NLL (-?[\d.]+) \(constant (-?[\d.]+)\)/.exec(l);
    assert.ok(m, l);
    // The fitted drift and diffusion beat the constant Gaussian baseline on held-out increments.
    assert.ok(Number(m[1]) < Number(m[2]), l);
  }
  const simplex = lines.find((l) => l.startsWith('simplex: '));
  const l1 = Number(/‖p − π_T‖₁ = ([\d.e+-]+)/.exec(simplex ?? '')?.[1]);
  assert.ok(l1 < 1e-9, simplex); // papers.md §4: the entropic flow's limit is softmax(s/T)
  assert.equal(lines.filter((l) => l.startsWith('gravity (proposed) ')).length, 2);
  // 12 evenly spaced points on the unit circle: H1 born at the chord 2 sin(π/12), dies at √3.
  const bar = /rips circle: H1 \[([\d.]+), ([\d.]+)\)$/.exec(lines.at(-1) ?? '');
  assert.ok(bar, lines.at(-1));
  assert.equal(Number(bar[1]), Number((2 * Math.sin(Math.PI / 12)).toFixed(4)));
  assert.equal(Number(bar[2]), Number(Math.sqrt(3).toFixed(4)));
});

test('examples/library.mjs with no argument runs on the shipped model: its README greedy text, d = 64', () => {
  const lines = run('library.mjs', []);
  const text = JSON.parse(lines[0]) as string;
  // models-shipped/lmdyn-tiny-260K/README.md quotes its greedy text from BOS; the example's
  // prompt is that text's first four tokens, so its greedy continuation is a prefix of it.
  const readme = readFileSync(join(ROOT, 'models-shipped', 'lmdyn-tiny-260K', 'README.md'), 'utf8');
  const quoted = /^> (Once upon a time.*)$/m.exec(readme)?.[1] ?? '';
  assert.ok(quoted.startsWith(text) && text.length > 60, `${text} | ${quoted}`);
  assert.equal(lines[1], 'blocks.4.hook_resid_post [ 1, 5, 64 ]');
  // The README quotes this run's output (the LSS and growth values included): it must be this run's.
  const front = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /`node examples\/library\.mjs` runs this on the shipped model and prints:\n\n```console\n([\s\S]*?)\n```/.exec(front);
  assert.ok(block, 'README.md no longer quotes the output of examples/library.mjs');
  assert.deepEqual(lines, block[1].split('\n'));
});

test('examples/tlens.mjs: TransformerLens shapes, pattern rows sum to 1, the last lens row is the model’s own prediction, a layer-0 patch of the only differing token restores the clean run', () => {
  const lines = run('tlens.mjs');
  assert.equal(
    lines[0],
    'tokens ["<s>"," Once"," upon"," a"," time",","," there"," was"," a"," little"," g","ir","l"," named"]',
  );
  assert.equal(lines[1], 'logits [ 1, 14, 512 ] resid_post [ 1, 14, 64 ] pattern [ 1, 8, 14, 14 ]');
  assert.equal(lines[2], 'pattern row sum 1.000000');
  const lens = lines.filter((l) => l.startsWith('lens '));
  assert.deepEqual(
    lens.map((l) => l.split(/\s+/)[1]),
    ['0_pre', '1_pre', '2_pre', '3_pre', '4_pre', 'final_post'],
  );
  // MANIFEST.md §1's greedy continuation of "… little girl named" is " Lily"
  assert.match(lens[5], /^lens final_post H [\d.]+ {2}" Lily" /);
  const patches = lines.filter((l) => l.startsWith('patch '));
  assert.equal(patches.length, 5);
  const m = /clean (-?[\d.]+) corrupted (-?[\d.]+) patched (-?[\d.]+)$/.exec(patches[0]);
  assert.ok(m && m[1] === m[3] && m[1] !== m[2], patches[0]); // position 1 is all that differs
  assert.match(lines.at(-2) ?? '', /^plain {3}"Once upon a time, there was a boy named/);
  assert.match(lines.at(-1) ?? '', /^steered "Once upon a time, there was a boy named/);
});
