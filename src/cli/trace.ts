import { existsSync, statfsSync } from 'node:fs';
import { totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Model } from '../model/model.js';
import { LmdynError } from '../errors.js';
import {
  checkLogitsMode,
  DEFAULT_HOOKS,
  estimateTraceBytes,
  formatBytes,
  recordTrace,
  resolveHooks,
} from '../trace/record.js';
import { checkOutDir, writeTrace } from '../trace/io.js';
import { readTextFile } from '../io/text.js';
import type { LogitsMode } from '../trace/types.js';
import { parseBytes, parseInteger } from './args.js';
import {
  addEngineFlags,
  openModel,
  withKernelThreads,
  type EngineFlags,
  type ModelFlags,
  printResult,
  addContextFlag,
  tokensWithin,
  addChatFlags,
  promptFromFlags,
  type ChatFlags,
} from './common.js';
import { addSamplingFlags, samplingFromFlags, type SamplingFlags } from './generate.js';
import { progress } from './progress.js';

interface TraceFlags extends ModelFlags, SamplingFlags, EngineFlags, ChatFlags {
  json?: boolean;
  ctxSize?: number;
  prompt: string;
  maxTokens: number;
  samples: number;
  hooks: string[];
  logits: LogitsMode;
  textFile?: string;
  out: string;
  force?: boolean;
  progress?: boolean;
  maxMemory?: number;
  yes?: boolean;
}

/** The default --max-memory: half of this machine's memory. */
export const defaultMaxMemory = (): number => Math.floor(totalmem() / 2);

export function parseHooks(value: string): string[] {
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0)
    throw new LmdynError('bad_argument', '--hooks needs at least one name or glob');
  return list;
}

export function parseLogitsMode(value: string): LogitsMode {
  if (value === 'none') return { kind: 'none' };
  if (value === 'full') return { kind: 'full' };
  const m = /^topk:(\d+)$/.exec(value);
  if (m && Number(m[1]) >= 1) return { kind: 'topk', k: Number(m[1]) };
  throw new LmdynError(
    'bad_argument',
    `--logits must be none, topk:K (K ≥ 1) or full, got '${value}'`,
  );
}

export function registerTrace(program: Command): void {
  const cmd = program
    .command('trace')
    .description(
      'record hidden states, tokens and logits of generations (or given texts) into a folder',
    )
    .option('-m, --model <M>', 'model file, folder or hf:owner/name')
    .option('-z, --tokenizer <T>', 'tokenizer overriding the model’s own')
    .option('-i, --prompt <P>', 'prompt text', '')
    .option(
      '-n, --max-tokens <N>',
      'tokens per sample at most',
      parseInteger('--max-tokens', 1),
      100,
    )
    .option('--samples <S>', 'samples of the prompt', parseInteger('--samples', 1, 100000), 1)
    .option('--hooks <GLOBS>', 'hook names or globs, comma-separated', parseHooks, DEFAULT_HOOKS)
    .option('--logits <MODE>', 'none | topk:K | full', parseLogitsMode, { kind: 'topk', k: 20 })
    .option(
      '--text-file <F>',
      'teacher-force these texts (plain lines or JSONL) instead of sampling',
    )
    .requiredOption('-o, --out <DIR>', 'output folder')
    .option('--force', 'overwrite a non-empty output folder')
    .option('--progress', 'print progress with ETA on stderr even when it is not a terminal')
    .option(
      '--max-memory <SIZE>',
      'refuse a recording estimated to need more memory (default: half of this machine’s)',
      parseBytes('--max-memory'),
    )
    .option('--yes', 'record whatever the memory and disk estimates say')
    .option('--json', 'print {out, samples, positions, hooks, ids, texts} as one JSON object');
  addChatFlags(addContextFlag(addEngineFlags(addSamplingFlags(cmd)))).action((flags: TraceFlags) =>
    withKernelThreads(flags.threads, () => runTrace(flags)),
  );
}

async function runTrace(flags: TraceFlags): Promise<void> {
  checkOutDir(resolve(flags.out), flags.force ?? false);
  const { model, label } = await openModel(flags);
  if (flags.textFile && flags.chat) throw new LmdynError('bad_argument', '--chat applies to a prompt, not to --text-file');
  const prompt = flags.textFile ? null : promptFromFlags(model, flags.prompt, flags);
  const bar = progress({
    label: 'trace',
    unit: flags.textFile ? 'texts' : 'steps',
    force: flags.progress,
  });
  const texts = flags.textFile ? readTextFile(flags.textFile) : undefined;
  checkLogitsMode(model, flags.logits);
  if (!flags.yes) requireDiskFor(model, flags, texts);
  const trace = recordTrace(model, {
    spec: label,
    prompt: prompt?.text ?? flags.prompt,
    promptIds: prompt?.ids,
    samples: flags.samples,
    texts,
    maxTokens: texts
      ? flags.maxTokens
      : tokensWithin(model, flags.ctxSize, prompt!.ids.length, flags.maxTokens),
    sampling: samplingFromFlags(flags),
    seed: flags.seed,
    hooks: flags.hooks,
    logits: flags.logits,
    onProgress: (done, total) => bar.update(done, total),
    maxBytes: flags.yes ? undefined : (flags.maxMemory ?? defaultMaxMemory()),
  });
  bar.finish();
  writeTrace(flags.out, trace, {
    force: flags.force,
    tokenText: (id) => model.tokenizer.decode([id]),
  });
  const S = trace.samples.length;
  printResult(
    flags.json,
    {
      out: resolve(flags.out),
      samples: trace.samples.map((s) => ({ prompt_ids: s.promptIds, ids: s.ids, text: s.text, finish_reason: s.finishReason, seed: s.seed })),
      positions: trace.positions,
      hooks: [...trace.states.keys()],
    },
    `trace: ${S} sample${S === 1 ? '' : 's'}, ${trace.positions} positions, ${trace.states.size} hooks → ${flags.out}`,
  );
}

/** Refuses, before recording, a trace whose disk estimate exceeds the free space where it goes. */
function requireDiskFor(model: Model, flags: TraceFlags, texts: string[] | undefined): void {
  let at = resolve(flags.out);
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  let free: number;
  try {
    const fs = statfsSync(at);
    free = fs.bavail * fs.bsize;
  } catch {
    return; // no file-system statistics here: nothing to compare with
  }
  const S = texts ? texts.length : flags.samples;
  const longest = texts ? Math.max(...texts.map((t) => t.length)) : flags.maxTokens;
  const P = Math.min(model.config.seqLen, flags.prompt.length + 1 + longest); // ≤ one token a character
  const need = estimateTraceBytes(model, resolveHooks(model, flags.hooks), S, P, P, flags.logits);
  if (need.disk > free) {
    throw new LmdynError(
      'bad_argument',
      `this trace needs up to ${formatBytes(need.disk)} of disk and ${at} has ${formatBytes(free)} free; lower --samples or --max-tokens, record fewer --hooks, or pass --yes`,
    );
  }
}
