#!/usr/bin/env node
// A model family for the coupling study (papers.md §5.9 item 2): trains a grid of small llama
// models (widths × depths × training lengths) with `lmdyn train` on one corpus, then writes
//   OUT/models/w{W}-d{D}-s{S}.bin   every final model (llama2.c) with the tokenizer beside them
//   OUT/scores.csv                  model,score,val_loss,perplexity,parameters,dim,layers,steps,tokens
// where score = −val_loss (higher is better, like a benchmark average), so that
//   lmdyn analyze coupling --models $(cat OUT/models.txt) --scores OUT/scores.csv
// correlates coupling with quality. Head size is 8 throughout (heads = W/8, kv_heads = heads/2
// when even), hidden = llama2.c's ≈ 8W/3; every run uses the same seed, batch and seq.
//
// Usage: node scripts/train-family.mjs --tokenizer T (--corpus F | --distill M --samples N)
//          --out DIR [--widths 32,64] [--depths 2,4] [--steps 150,600] [--batch 8] [--seq 256]
//          [--seed 1] [--lr 2e-3] [--threads N] [--dry-run]
// A run whose folder already has run.json with the requested steps is not redone.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = parseArgs(process.argv.slice(2));
const list = (v, d) => (v ?? d).split(',').map(Number);
const widths = list(args.widths, '32,64');
const depths = list(args.depths, '2,4');
const lengths = list(args.steps, '150,600');
const out = resolve(args.out ?? 'runs/family');
if (!args.tokenizer || !(args.corpus || args.distill) || (args.distill && !args.samples)) {
  console.error(
    'usage: train-family.mjs --tokenizer T (--corpus F | --distill M --samples N) --out DIR [--widths 32,64] [--depths 2,4] [--steps 150,600]',
  );
  process.exit(2);
}
for (const w of widths) {
  if (!(w % 8 === 0 && w >= 16)) {
    console.error(`--widths: ${w} is not a multiple of 8 (head size 8)`);
    process.exit(2);
  }
}

mkdirSync(join(out, 'models'), { recursive: true });
let data = args.corpus
  ? ['--corpus', resolve(args.corpus)]
  : [
      '--distill',
      args.distill,
      '--samples',
      args.samples,
      '--distill-out',
      join(out, 'distill.jsonl'),
    ];
const rows = [];
for (const steps of lengths) {
  for (const depth of depths) {
    for (const width of widths) {
      const heads = width / 8;
      const kv = heads % 2 === 0 ? heads / 2 : heads;
      const name = `w${width}-d${depth}-s${steps}`;
      const dir = join(out, 'runs', name);
      const cmd = [
        join(root, 'bin', 'lmdyn.js'),
        'train',
        '--config',
        `dim=${width},layers=${depth},heads=${heads},kv_heads=${kv}`,
        '--tokenizer',
        resolve(args.tokenizer),
        ...data,
        '--steps',
        String(steps),
        '--batch',
        args.batch ?? '8',
        '--seq',
        args.seq ?? '256',
        '--lr',
        args.lr ?? '2e-3',
        '--seed',
        args.seed ?? '1',
        '--eval-every',
        String(Math.max(10, Math.round(steps / 10))),
        '--sample-tokens',
        '0',
        '--no-keep-checkpoints',
        '--out',
        dir,
        ...(args.threads ? ['--threads', args.threads] : []),
      ];
      const runJson = join(dir, 'run.json');
      const done =
        existsSync(runJson) && JSON.parse(readFileSync(runJson, 'utf8')).steps_done === steps;
      console.log(`${done ? 'done ' : ''}${name}: lmdyn ${cmd.slice(1).join(' ')}`);
      if (args['dry-run'] !== undefined) continue;
      if (!done) {
        const r = spawnSync(process.execPath, cmd, { stdio: 'inherit' });
        if (r.status !== 0) process.exit(r.status ?? 1);
      }
      // the distilled corpus is sampled once, then every run reads it as a corpus
      if (args.distill) data = ['--corpus', join(out, 'distill.jsonl')];
      const run = JSON.parse(readFileSync(runJson, 'utf8'));
      const model = join(out, 'models', `${name}.bin`);
      copyFileSync(join(dir, 'model.bin'), model);
      copyFileSync(join(dir, 'tokenizer.bin'), join(out, 'models', 'tokenizer.bin'));
      const val = run.final.val_loss.value;
      rows.push({
        model: `${name}.bin`,
        score: -val,
        val_loss: val,
        perplexity: Math.exp(val),
        parameters: run.parameters,
        dim: width,
        layers: depth,
        steps,
        tokens: run.tokens_seen,
        path: model,
      });
    }
  }
}
if (rows.length > 0) {
  const cols = [
    'model',
    'score',
    'val_loss',
    'perplexity',
    'parameters',
    'dim',
    'layers',
    'steps',
    'tokens',
  ];
  writeFileSync(
    join(out, 'scores.csv'),
    [cols.join(','), ...rows.map((r) => cols.map((c) => r[c]).join(','))].join('\n') + '\n',
  );
  writeFileSync(join(out, 'models.txt'), rows.map((r) => r.path).join(',') + '\n');
  console.log(
    `\nwrote ${join(out, 'scores.csv')} (${rows.length} models; score = −validation loss)`,
  );
  console.log(
    `next: node bin/lmdyn.js analyze coupling --models $(cat ${join(out, 'models.txt')}) --scores ${join(out, 'scores.csv')} --out ${join(out, 'coupling')}`,
  );
}

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) o[a.slice(2)] = '';
    else o[a.slice(2)] = argv[++i];
  }
  return o;
}
