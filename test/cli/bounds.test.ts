/**
 * Every size a user sets is bounded by what it means, and refused in one line before anything is
 * allocated or written: top-k beyond the vocabulary, a trace over its memory budget (with the
 * estimate), a sweep grid over the limit, a simplex horizon that would not end, more clusters
 * than a trajectory has points. The estimate is checked against the bytes a real trace writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openModel } from '../../src/api.js';
import { writeTrace } from '../../src/trace/store.js';
import { estimateTraceBytes, recordTrace, resolveHooks } from '../../src/trace/record.js';
import { model } from '../helpers/paths.js';

const STORIES = model('stories260K', 'stories260K.bin');
const BIN = resolve('bin', 'lmdyn.js');

function lmdyn(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
}

test('out-of-range sizes: one line, exit 2, nothing written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-bounds-'));
  try {
    const trace = join(dir, 'trace');
    const grid = Array.from({ length: 101 }, (_, i) => String((i + 1) / 101)).join(',');
    const cases: [string[], RegExp][] = [
      [
        ['trace', '-m', STORIES, '--logits', 'topk:99999999999', '-o', trace],
        /topk:99999999999 asks for more than the vocabulary \(512 tokens\)/,
      ],
      [['trace', '-m', STORIES, '--logits', 'topk:1000000', '-o', trace], /K ≤ 512/],
      [
        [
          'trace',
          '-m',
          STORIES,
          '--samples',
          '20000',
          '-n',
          '500',
          '--max-memory',
          '12G',
          '-o',
          trace,
        ],
        /needs about 35\.\d GB of memory .* over --max-memory 12\.0 GB/,
      ],
      [
        ['sweep', '-m', STORIES, '--temperature', grid, '--top-p', grid, '-o', join(dir, 'sweep')],
        /the grid has 10201 configurations \(101 × 101 × 1 × 1\), over the limit of 10000/,
      ],
      [
        ['analyze', 'simplex', '-m', STORIES, '--t-max', '1e9', '-o', join(dir, 'simplex')],
        /1\.00e\+11 integration steps per flow, over the limit of 1000000/,
      ],
      [
        ['analyze', 'simplex', '-m', STORIES, '-t', '1e-6', '-o', join(dir, 'simplex')],
        /10\/T at T = 0\.000001/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = lmdyn(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: [^\n]+\n$/);
      assert.match(r.stderr, message);
    }
    assert.ok(
      !existsSync(trace) && !existsSync(join(dir, 'sweep')) && !existsSync(join(dir, 'simplex')),
    );
    // more clusters than a trajectory has points
    assert.equal(
      lmdyn('trace', '-m', STORIES, '-i', 'Once', '--samples', '2', '-n', '8', '-o', trace).status,
      0,
    );
    const r = lmdyn('analyze', 'dmet', '--trace', trace, '--no-text-model', '--clusters', '1000');
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /^error: --clusters 1000 needs trajectories of 1001 points; those in .* have at most 9 \(recorded with -n 8\); lower --clusters\n$/,
    );
    const all = lmdyn('analyze', 'dmet', '--trace', trace, '--no-text-model', '--clusters', '8');
    assert.equal(all.status, 2);
    assert.match(
      all.stderr,
      /error: every sequence was skipped \(\d+ trajectory points \(needs 9\)\)/,
    );
    assert.ok(!existsSync(join(trace, 'dmet.json')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the memory/disk estimate covers what a real trace holds: its state tensors exactly, the folder within 2×', async () => {
  const m = await openModel(STORIES);
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-bounds-'));
  try {
    const hooks = [
      'hook_embed',
      'blocks.*.hook_resid_post',
      'blocks.1.mlp.hook_pre',
      'blocks.0.attn.hook_k',
    ];
    const trace = recordTrace(m, {
      prompt: 'Once',
      samples: 3,
      maxTokens: 10,
      hooks,
      seed: 2,
      logits: { kind: 'topk', k: 7 },
    });
    writeTrace(join(dir, 't'), trace);
    const names = resolveHooks(m, hooks);
    const est = estimateTraceBytes(m, names, 3, trace.positions, trace.steps, {
      kind: 'topk',
      k: 7,
    });
    const stateBytes = [...trace.states.values()].reduce((a, s) => a + s.data.byteLength, 0);
    const states = estimateTraceBytes(m, names, 3, trace.positions, 0, { kind: 'none' });
    assert.equal(states.disk - 3 * trace.positions * 4, stateBytes); // states + tokens, nothing per step
    const folder = ['trace.safetensors', 'steps.parquet', 'trace.json'].reduce(
      (a, f) => a + statSync(join(dir, 't', f)).size,
      0,
    );
    assert.ok(
      est.disk >= 0.5 * folder && est.disk <= 2 * folder,
      `estimate ${est.disk}, folder ${folder}`,
    );
    assert.ok(est.memory > est.disk);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
