/**
 * Training data: a corpus turned into one stream of token ids per split, and seeded batches of
 * windows from it (llama2.c's pretokenized TinyStories: each document is BOS + its tokens, the
 * documents concatenated, and a training example is any window of T + 1 consecutive ids).
 *
 * Sources: a plain-text file (documents separated by `<|endoftext|>` lines, else by blank
 * lines), a JSONL file (one document per line: a string, or an object with "text" and,
 * optionally, "ids"), or a corpus sampled from a teacher model (`distillCorpus`), written to disk
 * as JSONL first so that it can be reused. A JSONL file whose sidecar `.meta.json` names the same
 * vocabulary as the tokenizer is read by its ids, so a distilled corpus is the teacher's tokens
 * exactly, not a re-tokenisation of their text.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { LmdynError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { openModel } from '../api.js';
import { stopIds } from '../model/model.js';
import { generateBatch } from '../decode/generate.js';
import { createRng, type Rng } from '../tensor/rng.js';
import type { Tokenizer } from '../tokenizer/types.js';

export interface TokenSplits {
  train: Int32Array;
  val: Int32Array;
  documents: { train: number; val: number };
  /** How the ids were obtained: 'ids' (stored teacher tokens) or 'text' (tokenized here). */
  from: 'ids' | 'text';
}

export interface CorpusOptions {
  /** Fraction of documents held out for validation (a seeded choice). */
  valFraction: number;
  seed: number;
}

/** Reads and tokenizes a corpus file and splits it into train and validation streams. */
export function readCorpus(
  path: string,
  tokenizer: Tokenizer,
  options: CorpusOptions,
): TokenSplits {
  if (!existsSync(path)) throw new LmdynError('not_found', `no such corpus file: ${path}`);
  const text = readFileSync(path, 'utf8');
  const jsonl = /\.jsonl$/i.test(path) || text.trimStart().startsWith('{');
  const docs = jsonl ? jsonlDocuments(text, path) : textDocuments(text);
  if (docs.length === 0) throw new LmdynError('bad_format', `${path}: no documents`);
  const useIds = jsonl && docs.every((d) => d.ids !== null) && sameVocabulary(path, tokenizer);
  const encoded = docs.map((d) => {
    if (useIds) return d.ids as number[];
    return tokenizer.encode(d.text, { bos: true });
  });
  for (const ids of encoded) {
    for (const id of ids) {
      if (!(id >= 0 && id < tokenizer.vocabSize)) {
        throw new LmdynError(
          'bad_format',
          `${path}: token id ${id} is outside the vocabulary (${tokenizer.vocabSize})`,
        );
      }
    }
  }
  return splitDocuments(encoded, options, useIds ? 'ids' : 'text');
}

/**
 * Holds out ⌈valFraction · documents⌉ documents chosen by a seeded shuffle (at least one when
 * there are two or more); a single document is split by tokens instead (its tail is held out).
 */
export function splitDocuments(
  docs: number[][],
  options: CorpusOptions,
  from: 'ids' | 'text',
): TokenSplits {
  const f = options.valFraction;
  if (!(f >= 0 && f < 1))
    throw new LmdynError('bad_argument', `validation fraction must be in [0, 1), got ${f}`);
  if (docs.length === 1 || f === 0) {
    const all = Int32Array.from(docs.flat());
    const cut = Math.floor(all.length * (1 - f));
    return {
      train: all.slice(0, cut),
      val: all.slice(cut),
      documents: { train: docs.length, val: 0 },
      from,
    };
  }
  const order = docs.map((_, i) => i);
  const rng = createRng(options.seed ^ 0x5eed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const nVal = Math.min(docs.length - 1, Math.max(1, Math.ceil(f * docs.length)));
  const isVal = new Uint8Array(docs.length);
  for (let i = 0; i < nVal; i++) isVal[order[i]] = 1;
  const train: number[] = [];
  const val: number[] = [];
  docs.forEach((d, i) => (isVal[i] ? val : train).push(...d));
  return {
    train: Int32Array.from(train),
    val: Int32Array.from(val),
    documents: { train: docs.length - nVal, val: nVal },
    from,
  };
}

interface Doc {
  text: string;
  ids: number[] | null;
}

function textDocuments(text: string): Doc[] {
  const parts = text.includes('<|endoftext|>')
    ? text.split(/\s*<\|endoftext\|>\s*/)
    : text.split(/\n\s*\n/);
  return parts
    .map((t) => t.trim())
    .filter((t) => t.length > 0)
    .map((t) => ({ text: t, ids: null }));
}

function jsonlDocuments(text: string, path: string): Doc[] {
  const docs: Doc[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new LmdynError('bad_format', `${path}:${i + 1}: not valid JSON`);
    }
    if (typeof v === 'string') docs.push({ text: v, ids: null });
    else if (v && typeof v === 'object' && typeof (v as { text?: unknown }).text === 'string') {
      const o = v as { text: string; ids?: unknown };
      const ids =
        Array.isArray(o.ids) && o.ids.every((x) => Number.isInteger(x))
          ? (o.ids as number[])
          : null;
      docs.push({ text: o.text, ids });
    } else {
      throw new LmdynError(
        'bad_format',
        `${path}:${i + 1}: expected a string or an object with "text"`,
      );
    }
  });
  return docs;
}

/** sha256 of the vocabulary's pieces in id order: two tokenizers with the same value agree on ids. */
export function vocabFingerprint(tok: Tokenizer): string {
  const h = createHash('sha256');
  for (let i = 0; i < tok.vocabSize; i++) h.update(`${i}\u0000${tok.tokenText(i)}\u0001`);
  return h.digest('hex');
}

function sameVocabulary(path: string, tok: Tokenizer): boolean {
  const meta = readMeta(path);
  return meta !== null && meta.vocab_sha256 === vocabFingerprint(tok);
}

// ---- batches -----------------------------------------------------------------------------------

/**
 * The random generator of step `step`: a function of (seed, step) only, so a resumed run draws
 * the same batches as an uninterrupted one.
 */
export function batchRng(seed: number, step: number): Rng {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(step + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 15), 0x27d4eb2f);
  return createRng((h ^ (h >>> 13)) >>> 0);
}

/**
 * Fills tokens/targets [seqs·T] with `seqs` windows at uniformly random offsets of `stream`:
 * tokens = stream[s .. s+T), targets = stream[s+1 .. s+T].
 */
export function sampleBatch(
  stream: Int32Array,
  seqs: number,
  T: number,
  rng: Rng,
  tokens: Int32Array,
  targets: Int32Array,
): void {
  const span = stream.length - T;
  if (span < 1) {
    throw new LmdynError(
      'bad_argument',
      `the training split has ${stream.length} tokens; a window of --seq ${T} needs ${T + 1}`,
    );
  }
  for (let b = 0; b < seqs; b++) {
    const s = Math.floor(rng.next() * span);
    tokens.set(stream.subarray(s, s + T), b * T);
    targets.set(stream.subarray(s + 1, s + T + 1), b * T);
  }
}

/** Start offsets of consecutive non-overlapping windows of the validation stream, at most `maxTokens` tokens. */
export function validationWindows(stream: Int32Array, T: number, maxTokens: number): number[] {
  const starts: number[] = [];
  for (let s = 0; s + T + 1 <= stream.length && (starts.length + 1) * T <= maxTokens; s += T)
    starts.push(s);
  return starts;
}

// ---- distillation ------------------------------------------------------------------------------

export interface DistillOptions {
  teacher: string;
  /** The teacher's tokenizer when it has none beside it (its own vocabulary decides the ids). */
  teacherTokenizer?: string;
  samples: number;
  seed: number;
  temperature: number;
  /** Tokens generated per sample at most (default: the teacher's context − 1). */
  maxTokens?: number;
  out: string;
  onProgress?: (done: number, total: number, tokens: number) => void;
}

export interface DistillMeta {
  teacher: string;
  samples: number;
  seed: number;
  temperature: number;
  max_tokens: number;
  tokens: number;
  vocab_sha256: string;
}

/**
 * Samples `samples` documents from the teacher, each from BOS with seed `seed + i` at the given
 * temperature (no top-k/top-p), until it emits a stop token (EOS, or BOS for llama2.c models) or
 * reaches maxTokens; writes `out` (JSONL: {"text", "ids"} with ids = BOS + sample) and
 * `out.meta.json`. An existing file with the same metadata is reused, not resampled.
 *
 * Resumable: samples are drawn in batches of a size fixed by `samples` alone, and each finished
 * batch is appended to `out.partial` (its settings in `out.partial.meta.json`). A run that was
 * killed leaves those behind; the next run with the same settings keeps the whole batches there
 * and draws the rest, so the corpus is the one an uninterrupted run writes.
 */
export async function distillCorpus(
  o: DistillOptions,
): Promise<{ path: string; meta: DistillMeta; reused: boolean; resumedSamples: number }> {
  const teacher = await openModel(
    o.teacher,
    o.teacherTokenizer ? { tokenizer: o.teacherTokenizer } : {},
  );
  const maxTokens = o.maxTokens ?? teacher.config.seqLen - 1;
  const bos = teacher.tokenizer.bosId ?? teacher.config.bosId;
  if (bos === null)
    throw new LmdynError(
      'unsupported',
      `${o.teacher}: the teacher has no BOS token to start samples from`,
    );
  const base = {
    teacher: o.teacher,
    samples: o.samples,
    seed: o.seed,
    temperature: o.temperature,
    max_tokens: maxTokens,
    vocab_sha256: vocabFingerprint(teacher.tokenizer),
  };
  const same = (m: Partial<DistillMeta> | null) =>
    m !== null && (Object.keys(base) as (keyof typeof base)[]).every((k) => m[k] === base[k]);
  const old = readMeta(o.out);
  if (same(old) && existsSync(o.out))
    return { path: o.out, meta: old!, reused: true, resumedSamples: 0 };
  const chunk = distillBatch(o.samples);
  const partial = `${o.out}.partial`;
  mkdirSync(dirname(o.out), { recursive: true });
  // whole batches a killed run left behind with these settings; anything else starts afresh
  let lines: string[] = [];
  if (same(readJson(metaPath(partial))) && existsSync(partial)) {
    const kept = readFileSync(partial, 'utf8').split('\n');
    kept.pop(); // the text after the last newline: empty, or a line cut by the kill
    lines = kept.slice(0, Math.floor(kept.length / chunk) * chunk);
  }
  writeFileAtomic(partial, lines.map((l) => l + '\n').join(''));
  writeFileAtomic(metaPath(partial), JSON.stringify(base, null, 2) + '\n');
  const resumedSamples = lines.length;
  let tokens = lines.reduce((sum, l) => sum + (JSON.parse(l) as { ids: number[] }).ids.length, 0);
  if (resumedSamples > 0) o.onProgress?.(resumedSamples, o.samples, tokens);
  for (let start = resumedSamples; start < o.samples; start += chunk) {
    const n = Math.min(chunk, o.samples - start);
    const { outputs } = generateBatch(
      teacher.transformer,
      Array.from({ length: n }, (_, i) => ({
        promptIds: [bos],
        maxTokens,
        sampling: { temperature: o.temperature },
        seed: o.seed + start + i,
      })),
      { stopIds: stopIds(teacher) },
    );
    const batch: string[] = [];
    for (const out of outputs) {
      const ids = [bos, ...out.ids];
      tokens += ids.length;
      batch.push(JSON.stringify({ text: teacher.tokenizer.decode(ids), ids }));
    }
    appendFileSync(partial, batch.map((l) => l + '\n').join(''));
    lines.push(...batch);
    o.onProgress?.(start + n, o.samples, tokens);
  }
  const meta: DistillMeta = { ...base, tokens };
  writeFileAtomic(o.out, lines.join('\n') + '\n');
  writeFileAtomic(metaPath(o.out), JSON.stringify(meta, null, 2) + '\n');
  rmSync(partial, { force: true });
  rmSync(metaPath(partial), { force: true });
  return { path: o.out, meta, reused: false, resumedSamples };
}

/** Samples per batch: a function of the total only, so a resumed run draws the same batches. */
export function distillBatch(samples: number): number {
  return Math.max(4, Math.min(64, Math.ceil(samples / 16)));
}

function readJson(path: string): Partial<DistillMeta> | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Partial<DistillMeta>;
  } catch {
    return null;
  }
}

function metaPath(corpus: string): string {
  return `${corpus}.meta.json`;
}

function readMeta(corpus: string): DistillMeta | null {
  const p = metaPath(corpus);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as DistillMeta;
  } catch {
    return null;
  }
}
