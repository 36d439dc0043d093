/**
 * Text-quality targets of the DMET lens (papers.md §1.5, the authors' `text_evaluator.py`):
 * perplexity under a scorer LM, spelling rate, distinct-bigram diversity, the rule-based grammar
 * score, and adjacent-sentence coherence. The scorer is any lmdyn model (the paper used GPT-2 for
 * perplexity and sentence-t5-xxl for coherence; coherence here is therefore [proposed]).
 */
import { encodePrompt, type Model } from '../../model/model.js';
import { runWithCache } from '../../hooked.js';

export interface TextQuality {
  /** exp(mean token NLL) of the whole text under the scorer; null under two tokens. */
  perplexity: number | null;
  logPerplexity: number | null;
  spelling: number;
  diversity: number;
  grammar: number;
  coherence: number;
  /** Non-empty sentences (split on . ! ?). */
  sentences: number;
}

/** The scorer's hook whose mean over a sentence's tokens is the sentence embedding. */
export const COHERENCE_HOOK = 'ln_final.hook_normalized';

/** Longest scored text in tokens (the code truncates GPT-2 input at 512). */
export const PERPLEXITY_MAX_TOKENS = 512;

/** Longest sentence in tokens for the coherence embedding (the code's T5 max_length 128). */
export const SENTENCE_MAX_TOKENS = 128;

export function textQuality(
  text: string,
  scorer: Model | null,
  dictionary: ReadonlySet<string>,
): TextQuality {
  const ppl = scorer ? perplexity(scorer, text) : null;
  return {
    perplexity: ppl,
    logPerplexity: ppl === null ? null : Math.log(ppl),
    spelling: spellingScore(text, dictionary),
    diversity: distinctN(text, 2),
    grammar: grammarScore(text),
    coherence: scorer ? coherence(scorer, text) : NaN,
    sentences: sentences(text).length,
  };
}

/** Python's `re.findall(r'\b\w+\b', text)` with Unicode \w, lower-cased. */
export function words(text: string): string[] {
  return (text.match(/[\p{L}\p{N}_]+/gu) ?? []).map((w) => w.toLowerCase());
}

/**
 * Spelling (§1.5): 1 − |distinct unknown words| / |words|, 0 for a text without words. As
 * pyspellchecker's `unknown`, words Python's float() accepts (numbers, "nan", "inf") are never
 * unknown.
 */
export function spellingScore(text: string, dictionary: ReadonlySet<string>): number {
  const ws = words(text);
  if (ws.length === 0) return 0;
  const unknown = new Set(ws.filter((w) => !dictionary.has(w) && !isFloatLiteral(w)));
  return 1 - unknown.size / ws.length;
}

/** Distinct-n (§1.5, n = 2 in the paper): |unique word n-grams| / max(#words − n + 1, 1). */
export function distinctN(text: string, n = 2): number {
  const ws = words(text);
  const seen = new Set<string>();
  for (let i = 0; i + n <= ws.length; i++) seen.add(ws.slice(i, i + n).join('\u0000'));
  return seen.size / Math.max(ws.length - n + 1, 1);
}

/**
 * Rule-based grammar (§1.5): split on [.!?] (empty segments count in the denominator); one
 * error per stripped sentence that starts with a lower-case letter, one more when its first
 * word ends in "s" and its second starts with "ing"; score 1 − errors / (#segments + 1e-6).
 */
export function grammarScore(text: string): number {
  const segments = text.split(/[.!?]/);
  let errors = 0;
  for (const raw of segments) {
    const s = raw.trim();
    if (!s) continue;
    if (isLowerCase(s[0])) errors++;
    const ws = s.split(/\s+/);
    if (ws.length >= 2 && ws[0].endsWith('s') && ws[1].startsWith('ing')) errors++;
  }
  return 1 - errors / (segments.length + 1e-6);
}

/** Non-empty stripped sentences, split on [.!?] (as the coherence code). */
export function sentences(text: string): string[] {
  return text
    .split(/[.!?]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Perplexity (§1.5): exp of the mean negative log-likelihood of tokens 2..n of the text under
 * the scorer (encoded as generation encodes a prompt: BOS first when the tokenizer has one, so
 * every text token is scored), at most PERPLEXITY_MAX_TOKENS tokens. Null under two tokens.
 */
export function perplexity(scorer: Model, text: string): number | null {
  const limit = Math.min(PERPLEXITY_MAX_TOKENS, scorer.config.seqLen);
  const ids = encodePrompt(scorer, text).slice(0, limit);
  if (ids.length < 2) return null;
  const logits = runWithCache(scorer, ids, COHERENCE_HOOK).logits.data;
  const V = scorer.config.vocabSize;
  let nll = 0;
  for (let t = 0; t + 1 < ids.length; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (row[i] > max) max = row[i];
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(row[i] - max);
    nll += max + Math.log(sum) - row[ids[t + 1]];
  }
  return Math.exp(nll / (ids.length - 1));
}

/**
 * [proposed] Coherence (§1.5 with the scorer LM in place of sentence-t5-xxl): each sentence is
 * run alone through the scorer, its COHERENCE_HOOK states mean-pooled over the sentence's own
 * tokens (BOS excluded), and the score is the mean cosine similarity of adjacent sentences;
 * 0.5 with fewer than two sentences, as the code.
 */
export function coherence(scorer: Model, text: string): number {
  const ss = sentences(text);
  if (ss.length < 2) return 0.5;
  const embeddings = ss.map((s) => sentenceEmbedding(scorer, s));
  let sum = 0;
  for (let i = 0; i + 1 < embeddings.length; i++) sum += cosine(embeddings[i], embeddings[i + 1]);
  return sum / (embeddings.length - 1);
}

function sentenceEmbedding(scorer: Model, sentence: string): Float64Array {
  const limit = Math.min(SENTENCE_MAX_TOKENS, scorer.config.seqLen);
  const ids = encodePrompt(scorer, sentence).slice(0, limit);
  const { cache } = runWithCache(scorer, ids, COHERENCE_HOOK);
  const { data, shape } = cache.get(COHERENCE_HOOK);
  const width = shape[2];
  const bos = scorer.tokenizer.bosId ?? scorer.config.bosId;
  const first = ids.length > 1 && ids[0] === bos ? 1 : 0;
  const out = new Float64Array(width);
  for (let t = first; t < ids.length; t++)
    for (let j = 0; j < width; j++) out[j] += data[t * width + j];
  for (let j = 0; j < width; j++) out[j] /= ids.length - first;
  return out;
}

function cosine(a: Float64Array, b: Float64Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/** Python's str.islower() for one character: a cased character in lower case. */
function isLowerCase(c: string): boolean {
  return c !== c.toUpperCase() && c === c.toLowerCase();
}

/** Words made of \w characters that Python's float() parses. */
function isFloatLiteral(w: string): boolean {
  return /^(\d+(_\d+)*([e]\d+(_\d+)*)?|inf|infinity|nan)$/.test(w);
}
