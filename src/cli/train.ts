/**
 * `lmdyn train`: a small Llama-architecture model from scratch on a corpus or on samples of a
 * teacher model, with checkpoints every other command loads (src/train/*).
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { LmdynError } from '../errors.js';
import { loadTokenizer } from '../io/load.js';
import { distillCorpus, readCorpus } from '../train/data.js';
import { train, type StepReport } from '../train/loop.js';
import { checkShape, type TrainShape } from '../train/model.js';
import { DEFAULT_OPTIM, type OptimConfig } from '../train/optim.js';
import { parseInteger, parseNumber } from './args.js';
import { availableCores, printResult } from './common.js';
import { progress as progressLine } from './progress.js';
import { duration } from '../report/format.js';

interface TrainFlags {
  json?: boolean;
  progress?: boolean;
  config: string;
  tokenizer: string;
  corpus?: string;
  distill?: string;
  samples?: number;
  distillOut?: string;
  distillTemperature: number;
  teacherTokenizer?: string;
  steps: number;
  batch: number;
  seq: number;
  lr: number;
  minLr?: number;
  warmup?: number;
  weightDecay: number;
  gradClip: number;
  beta2: number;
  evalEvery: number;
  valTokens: number;
  valFraction: number;
  checkpointEvery: number;
  keepCheckpoints: boolean;
  microBatch?: number;
  sampleTokens: number;
  seed: number;
  out: string;
  resume?: boolean;
  threads?: number;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'train a small llama model from scratch (corpus or distillation), with checkpoints',
    )
    .requiredOption(
      '--config <K=V,...>',
      'model shape: dim, layers, heads, kv_heads, hidden (default ≈ 8·dim/3), vocab (default: the tokenizer’s), seq (context; default --seq), tied (1/0)',
    )
    .requiredOption(
      '-z, --tokenizer <T>',
      'llama2.c tokenizer.bin, tokenizer.json, or a folder with one',
    )
    .option(
      '--corpus <FILE>',
      'training text: plain text (documents split at <|endoftext|> or blank lines) or JSONL',
    )
    .option('--distill <MODEL>', 'sample the corpus from this teacher model instead')
    .option('--samples <N>', 'with --distill: documents to sample', parseInteger('--samples', 2))
    .option(
      '--distill-out <FILE>',
      'with --distill: where the sampled corpus goes (default OUT/distill.jsonl; reused when it matches)',
    )
    .option(
      '--distill-temperature <T>',
      'with --distill: sampling temperature',
      parseNumber('--distill-temperature', 0.01, 10),
      1,
    )
    .option(
      '--teacher-tokenizer <T>',
      'with --distill: the teacher’s tokenizer, if none is beside it',
    )
    .requiredOption('--steps <S>', 'optimizer steps', parseInteger('--steps', 1))
    .option('--batch <B>', 'sequences per step', parseInteger('--batch', 1), 16)
    .option('--seq <L>', 'tokens per sequence', parseInteger('--seq', 2), 256)
    .option('--lr <LR>', 'peak learning rate', parseNumber('--lr', 0, 10), DEFAULT_OPTIM.lr)
    .option(
      '--min-lr <LR>',
      'end of the cosine decay (default lr/10)',
      parseNumber('--min-lr', 0, 10),
    )
    .option(
      '--warmup <N>',
      'warm-up steps (default min(100, steps/10))',
      parseInteger('--warmup', 0),
    )
    .option(
      '--weight-decay <W>',
      'AdamW weight decay (matrices only)',
      parseNumber('--weight-decay', 0, 10),
      DEFAULT_OPTIM.weightDecay,
    )
    .option(
      '--grad-clip <C>',
      'max gradient norm; 0 = off',
      parseNumber('--grad-clip', 0, 1e6),
      DEFAULT_OPTIM.gradClip,
    )
    .option('--beta2 <B>', 'AdamW β2', parseNumber('--beta2', 0, 0.999999), DEFAULT_OPTIM.beta2)
    .option(
      '--eval-every <N>',
      'validation loss every N steps (0 = only at the end)',
      parseInteger('--eval-every', 0),
      50,
    )
    .option(
      '--val-tokens <N>',
      'held-out tokens per evaluation (at most)',
      parseInteger('--val-tokens', 1),
      32768,
    )
    .option(
      '--val-fraction <F>',
      'fraction of documents held out',
      parseNumber('--val-fraction', 0, 0.9),
      0.05,
    )
    .option(
      '--checkpoint-every <K>',
      'checkpoint every K steps (0 = only at the end)',
      parseInteger('--checkpoint-every', 0),
      0,
    )
    .option('--no-keep-checkpoints', 'do not keep checkpoints/step-N.bin (only the latest model)')
    .option(
      '--micro-batch <M>',
      'sequences per forward/backward (default: as many as fit 512 MB)',
      parseInteger('--micro-batch', 1),
    )
    .option(
      '--sample-tokens <N>',
      'greedy sample from BOS at the end (0 = none)',
      parseInteger('--sample-tokens', 0),
      200,
    )
    .option(
      '-s, --seed <S>',
      'seed of the initial weights, the batches and the split',
      parseInteger('--seed', 0, 2 ** 32 - 1),
      1,
    )
    .requiredOption('-o, --out <DIR>', 'output folder')
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .option(
      '--progress',
      'print distillation progress with ETA on stderr even when it is not a terminal',
    )
    .option(
      '--threads <N>',
      'threads computing micro-batches (default: all cores, at most 8); the numbers do not depend on it',
      parseInteger('--threads', 1, 64),
    )
    .option('--json', 'print {out, steps, losses, tok/s, sample, files} as one JSON object')
    .action(async (flags: TrainFlags) => {
      if (!flags.corpus === !flags.distill) {
        throw new LmdynError(
          'bad_argument',
          'give exactly one of --corpus FILE or --distill MODEL --samples N',
        );
      }
      if (flags.distill && flags.samples === undefined)
        throw new LmdynError('bad_argument', '--distill needs --samples N');
      const threads = flags.threads ?? Math.min(await availableCores(), 8);
      const out = resolve(flags.out);
      const tokenizerPath = resolve(flags.tokenizer);
      const tokenizer = loadTokenizer(tokenizerPath);
      const shape = parseConfig(flags.config, tokenizer.vocabSize, flags.seq);
      const log = (line: string) => process.stderr.write(line + '\n');

      let corpus = flags.corpus ? resolve(flags.corpus) : '';
      const info: Record<string, unknown> = {
        command: ['lmdyn', 'train', ...process.argv.slice(3)].join(' '),
      };
      if (flags.distill) {
        corpus = resolve(flags.distillOut ?? join(out, 'distill.jsonl'));
        const bar = progressLine({ label: 'distill', unit: 'samples', force: flags.progress });
        const d = await distillCorpus({
          teacher: flags.distill,
          teacherTokenizer: flags.teacherTokenizer,
          samples: flags.samples as number,
          seed: flags.seed,
          temperature: flags.distillTemperature,
          out: corpus,
          onProgress: (done, total) => bar.update(done, total),
        });
        if (!d.reused) bar.finish();
        log(
          `distill: ${d.reused ? 'reusing' : 'wrote'} ${corpus} (${d.meta.samples} samples, ${d.meta.tokens} tokens${d.resumedSamples > 0 ? `; ${d.resumedSamples} kept from an interrupted run` : ''})`,
        );
        info.distill = { ...d.meta, corpus };
      }
      const data = readCorpus(corpus, tokenizer, {
        valFraction: flags.valFraction,
        seed: flags.seed,
      });
      info.corpus = corpus;
      log(
        `data: ${data.train.length} training and ${data.val.length} validation tokens (${data.documents.train}/${data.documents.val} documents, ids from ${data.from})`,
      );
      const optim: OptimConfig = {
        ...DEFAULT_OPTIM,
        lr: flags.lr,
        minLr: flags.minLr ?? flags.lr / 10,
        warmup: flags.warmup ?? Math.min(100, Math.floor(flags.steps / 10)),
        weightDecay: flags.weightDecay,
        gradClip: flags.gradClip,
        beta2: flags.beta2,
        steps: flags.steps,
      };
      const progress = progressBar(process.stderr);
      const result = await train({
        shape,
        optim,
        batch: flags.batch,
        seq: flags.seq,
        seed: flags.seed,
        out,
        tokenizerPath,
        data,
        info,
        evalEvery: flags.evalEvery,
        valTokens: flags.valTokens,
        checkpointEvery: flags.checkpointEvery,
        keepCheckpoints: flags.keepCheckpoints,
        resume: !!flags.resume,
        microBatch: flags.microBatch,
        threads,
        sampleTokens: flags.sampleTokens,
        onStep: progress,
      });
      log(
        `done: ${result.steps} steps, train loss ${result.finalTrainLoss.toFixed(4)}, val loss ${result.finalValLoss.toFixed(4)} (perplexity ${Math.exp(result.finalValLoss).toFixed(3)}), ${result.tokensPerSecond.toFixed(0)} tok/s`,
      );
      log(
        `model: ${join(out, 'model.bin')} (llama2.c) and ${join(out, 'hf')} (safetensors); curve: ${join(out, 'train.parquet')}`,
      );
      const files = { llama2c: join(out, 'model.bin'), hf: join(out, 'hf'), curve: join(out, 'train.parquet') };
      const summary = {
        out,
        steps: result.steps,
        train_loss: result.finalTrainLoss,
        val_loss: result.finalValLoss,
        tokens_per_second: result.tokensPerSecond,
        greedy_sample: result.greedySample,
        files,
      };
      if (flags.json) printResult(true, summary, '');
      else if (result.greedySample !== null) process.stdout.write(result.greedySample + '\n');
    });
}

/** dim=64,layers=5,heads=8,kv_heads=4,hidden=172 → a TrainShape (vocab from the tokenizer). */
export function parseConfig(spec: string, tokenizerVocab: number, seq: number): TrainShape {
  const kv = new Map<string, number>();
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^([a-z_]+)=(\d+)$/.exec(part);
    if (!m) throw new LmdynError('bad_argument', `--config: '${part}' is not key=integer`);
    if (!KEYS.includes(m[1]))
      throw new LmdynError(
        'bad_argument',
        `--config: unknown key '${m[1]}' (known: ${KEYS.join(', ')})`,
      );
    kv.set(m[1], Number(m[2]));
  }
  const need = (k: string): number => {
    const v = kv.get(k);
    if (v === undefined) throw new LmdynError('bad_argument', `--config needs ${k}=…`);
    return v;
  };
  const dim = need('dim');
  const heads = need('heads');
  const vocab = kv.get('vocab') ?? tokenizerVocab;
  if (vocab < tokenizerVocab) {
    throw new LmdynError(
      'bad_argument',
      `--config vocab=${vocab} is smaller than the tokenizer's ${tokenizerVocab} tokens`,
    );
  }
  const shape: TrainShape = {
    dim,
    hiddenDim: kv.get('hidden') ?? 4 * Math.ceil((8 * dim) / 3 / 4),
    nLayers: need('layers'),
    nHeads: heads,
    nKvHeads: kv.get('kv_heads') ?? heads,
    vocabSize: vocab,
    seqLen: kv.get('seq') ?? seq,
    tied: (kv.get('tied') ?? 1) !== 0,
  };
  checkShape(shape);
  if (seq > shape.seqLen)
    throw new LmdynError(
      'bad_argument',
      `--seq ${seq} is longer than the model's context seq=${shape.seqLen}`,
    );
  return shape;
}

const KEYS = ['dim', 'layers', 'heads', 'kv_heads', 'hidden', 'vocab', 'seq', 'tied'];

/** A one-line progress bar on a terminal, else a line per validation step or every 30 s. */
function progressBar(stream: NodeJS.WriteStream): (p: StepReport) => void {
  let lastLine = 0;
  let lastVal = NaN;
  return (p) => {
    if (p.valLoss !== null) lastVal = p.valLoss;
    const val = Number.isFinite(lastVal) ? ` val ${lastVal.toFixed(4)}` : '';
    const text = `step ${p.step}/${p.steps} loss ${p.trainLoss.toFixed(4)}${val} lr ${p.lr.toExponential(2)} | ${p.tokensPerSecond.toFixed(0)} tok/s | ETA ${duration(p.etaSeconds)}`;
    if (stream.isTTY) {
      const width = 24;
      const filled = Math.round((width * p.step) / p.steps);
      stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}   `);
      if (p.step === p.steps) stream.write('\n');
    } else if (
      p.valLoss !== null ||
      p.checkpoint ||
      Date.now() - lastLine > 30000 ||
      p.step === p.steps
    ) {
      lastLine = Date.now();
      stream.write(`train: ${text}${p.checkpoint ? ' (checkpoint)' : ''}\n`);
    }
  };
}
