import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readParquet } from '../../src/io/parquet.js';
import { curveShape } from '../../src/lenses/coupling/training.js';
import { listCheckpoints } from '../../src/io/training-run.js';
import { model } from '../helpers/paths.js';

// References: closed forms of a saturating exponential for the shape statistics, a hand-worked
// non-monotone curve, and — for the CLI — the run's own train.parquet and a separate
// single-model analysis of the final model (`--model model.bin`), which must match the last row.

test('curveShape: y = 1 − e^(−s/τ) reaches 50 % / 90 % of its change at −τ·ln(1 − fΔ), on the checkpoint grid', () => {
  const tau = 100;
  const steps = Array.from({ length: 101 }, (_, i) => 10 * i); // 0..1000
  const y = steps.map((s) => 1 - Math.exp(-s / tau));
  const delta = 1 - Math.exp(-10);
  const s = curveShape('q', steps, y);
  assert.equal(s.change, y[100] - y[0]);
  // −100·ln(1 − 0.5Δ) = 69.31… → the first checkpoint at or past it is 70; for 0.9: 230.26… → 240
  assert.ok(Math.abs(-tau * Math.log(1 - 0.5 * delta) - 69.31) < 0.01);
  assert.equal(s.reach_50, 70 / 1000);
  assert.equal(s.reach_90, 240 / 1000);
  const rest = (Math.exp(-5) - Math.exp(-10)) / delta; // y(1000) − y(500), as a share of Δ
  assert.ok(Math.abs((s.second_half_share as number) - rest) < 1e-12);
  assert.ok(Math.abs((s.second_half_range as number) - rest) < 1e-12);
  // a decreasing curve (a loss) has the same shape statistics as its mirror image
  const down = curveShape(
    'loss',
    steps,
    y.map((v) => 3 - 2 * v),
  );
  assert.equal(down.reach_50, 0.07);
  assert.equal(down.reach_90, 0.24);
  assert.ok(Math.abs((down.second_half_share as number) - rest) < 1e-12);
});

test('curveShape: y = s·e^(−s/τ) peaks at s = τ with τ/e and keeps S·e^(−S/τ)/(τ/e) of it at the end; a saturating curve keeps all of it', () => {
  const tau = 100;
  const steps = Array.from({ length: 101 }, (_, i) => 10 * i);
  const s = curveShape(
    'q',
    steps,
    steps.map((t) => t * Math.exp(-t / tau)),
  );
  assert.equal(s.peak_at, 0.1);
  assert.ok(Math.abs(s.peak - tau / Math.E) < 1e-12);
  assert.ok(Math.abs((s.peak_retained as number) - 10 * Math.exp(-9)) < 1e-15);
  // monotone saturation: the peak is the last checkpoint, kept whole
  const sat = curveShape(
    'q',
    steps,
    steps.map((t) => 1 - Math.exp(-t / tau)),
  );
  assert.equal(sat.peak_at, 1);
  assert.equal(sat.peak_retained, 1);
  // a dip below the start counts as the larger excursion: 5 → 2 → 4, peak 2, kept (4−5)/(2−5) = 1/3
  const dip = curveShape('q', [0, 1, 2], [5, 2, 4]);
  assert.equal(dip.peak, 2);
  assert.equal(dip.peak_at, 0.5);
  assert.ok(Math.abs((dip.peak_retained as number) - 1 / 3) < 1e-15);
});

test('curveShape: a curve that dips back counts only from where it stays; a flat one has no shape', () => {
  // Δ = 1; from the end backwards 1, 0.8 (≥ 0.5, < 0.9), 0.3 (< 0.5): reach_50 at step 30, reach_90
  // at 40; the second half starts at step 20: |1 − 0.3| = 0.7, largest |y − 1| there 0.7.
  const s = curveShape('q', [0, 10, 20, 30, 40], [0, 1, 0.3, 0.8, 1]);
  assert.equal(s.reach_50, 0.75);
  assert.equal(s.reach_90, 1);
  assert.ok(Math.abs((s.second_half_share as number) - 0.7) < 1e-12);
  assert.ok(Math.abs((s.second_half_range as number) - 0.7) < 1e-12);
  const flat = curveShape('q', [0, 5, 10], [2, 3, 2]);
  assert.equal(flat.reach_50, null);
  assert.equal(flat.second_half_share, null);
});

const lmdyn = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/lmdyn.js', ...args], { encoding: 'utf8' });

test('lmdyn analyze coupling --checkpoints: one row per kept checkpoint with the run’s validation loss; the last row is the final model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-ctrain-'));
  try {
    const text = Array.from(
      { length: 16 },
      (_, i) => `Once upon a time there was a dog called Max ${i}. He liked to run in the park.`,
    ).join('\n\n');
    writeFileSync(join(dir, 'c.txt'), text);
    const run = join(dir, 'run');
    const t = lmdyn(
      'train',
      '--config',
      'dim=16,layers=2,heads=2,kv_heads=1',
      '-z',
      model('stories260K', 'tok512.bin'),
      '--corpus',
      join(dir, 'c.txt'),
      '--steps',
      '6',
      '--batch',
      '2',
      '--seq',
      '16',
      '--lr',
      '1e-2',
      '--eval-every',
      '3',
      '--checkpoint-every',
      '3',
      '--threads',
      '1',
      '--sample-tokens',
      '0',
      '--out',
      run,
    );
    assert.equal(t.status, 0, t.stderr);
    assert.deepEqual(
      listCheckpoints(run).map((c) => c.step),
      [0, 3, 6],
    );
    const prompt = 'Once upon a time there was a dog';
    const out = join(dir, 'dyn');
    const r = lmdyn(
      'analyze',
      'coupling',
      '--checkpoints',
      run,
      '--prompt',
      prompt,
      '--k',
      '4',
      '--out',
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /coupling over training: 3 checkpoints \(K = 4/);
    const report = JSON.parse(readFileSync(join(out, 'coupling-training.json'), 'utf8')) as {
      rows: { step: number; val_loss: number; coupling: number; lss_mean: number }[];
      shapes: { quantity: string; initial: number; final: number }[];
      tags: Record<string, string>;
    };
    assert.deepEqual(
      report.rows.map((x) => x.step),
      [0, 3, 6],
    );
    const parquet = await readParquet(join(run, 'train.parquet'));
    for (const row of report.rows) {
      const p = parquet.find((x) => Number(x.step) === row.step);
      assert.equal(row.val_loss, Number(p?.val_loss), `val loss at step ${row.step}`);
    }
    assert.ok(report.rows[2].val_loss < report.rows[0].val_loss, 'training lowered the loss');
    assert.equal(report.tags.shape, 'proposed');
    // the final checkpoint analysed on its own gives the last row's numbers
    const single = lmdyn(
      'analyze',
      'coupling',
      '--model',
      join(run, 'model.bin'),
      '--prompt',
      prompt,
      '--k',
      '4',
      '--out',
      join(dir, 'single'),
    );
    assert.equal(single.status, 0, single.stderr);
    const one = JSON.parse(readFileSync(join(dir, 'single', 'coupling.json'), 'utf8')) as {
      trained: { model_coupling: { by_k: { k: number; value: number }[] }; lss: { mean: number } };
    };
    assert.equal(report.rows[2].coupling, one.trained.model_coupling.by_k[0].value);
    assert.equal(report.rows[2].lss_mean, one.trained.lss.mean);
    assert.notEqual(report.rows[0].coupling, report.rows[2].coupling, 'weights changed');
    const shape = report.shapes.find((s) => s.quantity === 'coupling');
    assert.equal(shape?.initial, report.rows[0].coupling);
    assert.equal(shape?.final, report.rows[2].coupling);
    const csv = readFileSync(join(out, 'coupling-training.csv'), 'utf8').trim().split('\n');
    assert.equal(csv.length, 4);
    assert.match(csv[0], /^step,val_loss,coupling,/);

    // the report recognises both the training run and the coupling-over-training result
    const rep = lmdyn('report', dir);
    assert.equal(rep.status, 0, rep.stderr);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    assert.match(html, /Coupling over training \(Aubry et al\. 2025, arXiv:2407\.07810\)/);
    assert.match(html, /Training run \(lmdyn train\)/);

    // a folder without two checkpoints: a one-line error and exit code 2
    mkdirSync(join(dir, 'empty'));
    const bad = lmdyn(
      'analyze',
      'coupling',
      '--checkpoints',
      join(dir, 'empty'),
      '--prompt',
      prompt,
      '--out',
      join(dir, 'bad'),
    );
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /needs at least two checkpoints/);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
