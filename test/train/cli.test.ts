import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readParquet } from '../../src/io/parquet.js';
import { loadTokenizer } from '../../src/io/load.js';
import { vocabFingerprint } from '../../src/train/data.js';
import { parseConfig } from '../../src/cli/train.js';
import { model } from '../helpers/paths.js';

// References: the files on disk and the teacher's own tokenizer (ids of the distilled corpus
// must decode to its text); exit codes as the CLI documents them (bad arguments → 2).

const TEACHER = model('stories260K', 'stories260K.bin');
const TOK = model('stories260K', 'tok512.bin');
const lmdyn = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/lmdyn.js', ...args], { encoding: 'utf8' });

test('lmdyn train --distill: samples the teacher to disk, reuses it, trains, writes loadable checkpoints', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-train-cli-'));
  try {
    const common = [
      '--config',
      'dim=16,layers=1,heads=2,kv_heads=1',
      '-z',
      TOK,
      '--distill',
      TEACHER,
      '--samples',
      '3',
      '--batch',
      '2',
      '--seq',
      '16',
      '--threads',
      '1',
      '--sample-tokens',
      '5',
    ];
    const r = lmdyn(
      'train',
      ...common,
      '--steps',
      '4',
      '--checkpoint-every',
      '2',
      '--out',
      join(dir, 'a'),
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /distill: wrote .*distill\.jsonl \(3 samples/);
    assert.match(r.stderr, /ids from ids/);
    const lines = readFileSync(join(dir, 'a', 'distill.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 3);
    const tok = loadTokenizer(TOK);
    for (const l of lines) {
      assert.equal(l.ids[0], 1);
      assert.equal(tok.decode(l.ids), l.text);
    }
    const meta = JSON.parse(readFileSync(join(dir, 'a', 'distill.jsonl.meta.json'), 'utf8'));
    assert.equal(meta.vocab_sha256, vocabFingerprint(tok));
    assert.equal(
      meta.tokens,
      lines.reduce((s, l) => s + l.ids.length, 0),
    );
    for (const f of [
      'model.bin',
      'tokenizer.bin',
      'hf/config.json',
      'hf/model.safetensors',
      'loss.svg',
      'checkpoints/step-00000002.bin',
      'state/state.json',
    ]) {
      assert.ok(existsSync(join(dir, 'a', f)), f);
    }
    // the same samples are reused by a second run pointing at them
    const again = lmdyn(
      'train',
      ...common,
      '--steps',
      '2',
      '--distill-out',
      join(dir, 'a', 'distill.jsonl'),
      '--out',
      join(dir, 'b'),
    );
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /distill: reusing/);
    // the trained model runs in the other commands
    const gen = lmdyn(
      'generate',
      '-m',
      join(dir, 'a', 'model.bin'),
      '-n',
      '4',
      '-t',
      '0',
      '--json',
    );
    assert.equal(gen.status, 0, gen.stderr);
    assert.equal(JSON.parse(gen.stdout).ids.length, 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lmdyn train --corpus: a text corpus, train.parquet has a row per step; --resume refuses another schedule', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lmdyn-train-cli-'));
  try {
    const text = Array.from(
      { length: 12 },
      (_, i) => `Once upon a time there was a cat number ${i}. It was happy.`,
    ).join('\n\n');
    writeFileSync(join(dir, 'c.txt'), text);
    const args = [
      '--config',
      'dim=16,layers=1,heads=2',
      '-z',
      TOK,
      '--corpus',
      join(dir, 'c.txt'),
      '--batch',
      '2',
      '--seq',
      '16',
      '--threads',
      '1',
      '--sample-tokens',
      '0',
      '--eval-every',
      '2',
      '--out',
      join(dir, 'r'),
    ];
    assert.equal(lmdyn('train', ...args, '--steps', '3').status, 0);
    const rows = await readParquet(join(dir, 'r', 'train.parquet'));
    assert.deepEqual(
      rows.map((r) => r.step),
      [0, 1, 2, 3],
    );
    assert.ok(rows[0].train_loss === null && typeof rows[3].val_loss === 'number');
    const more = lmdyn('train', ...args, '--steps', '5', '--resume');
    assert.equal(more.status, 2, 'a resumed run continues the same schedule');
    assert.match(more.stderr, /another optim/);
    const cont = lmdyn('train', ...args, '--steps', '3');
    assert.equal(cont.status, 2);
    assert.match(cont.stderr, /already holds a training run/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--config errors are one line naming the problem', () => {
  assert.throws(
    () => parseConfig('dim=64,layers=2,heads=5', 512, 64),
    /dim 64 is not a multiple of heads 5/,
  );
  assert.throws(() => parseConfig('dim=64,layers=2', 512, 64), /needs heads=/);
  assert.throws(
    () => parseConfig('dim=64,layers=2,heads=8,depth=3', 512, 64),
    /unknown key 'depth'/,
  );
  assert.throws(
    () => parseConfig('dim=64,layers=2,heads=8,vocab=100', 512, 64),
    /smaller than the tokenizer/,
  );
  const s = parseConfig('dim=64,layers=5,heads=8,kv_heads=4', 512, 512);
  assert.equal(s.hiddenDim, 172); // llama2.c's rule for stories260K (multiple_of 4)
  assert.equal(s.tied, true);
  const r = lmdyn(
    'train',
    '--config',
    'dim=64,layers=2,heads=5',
    '-z',
    TOK,
    '--corpus',
    TOK,
    '--steps',
    '1',
    '--out',
    join(tmpdir(), 'never'),
  );
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});
