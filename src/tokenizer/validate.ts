/**
 * Checks a tokenizer.json before it reaches the tokenizer library, whose own work is unbounded on
 * hostile files: one id of 10^9 makes `get_vocab()` build a 10^9-slot table (minutes), a Split
 * pattern such as `(a+)+$` backtracks forever on 30 characters, and wrongly typed merges fail
 * deep inside with "x.split is not a function". Every problem is one line naming the file.
 */
import { LmdynError } from '../errors.js';

/** Ids are below this (the largest real vocabularies are ~10^6 entries). */
export const MAX_TOKEN_ID = 1 << 22;

export function validateTokenizerJson(json: Record<string, unknown>, file: string): void {
  const bad = (what: string): never => {
    throw new LmdynError('bad_format', `${file}: ${what}`);
  };
  const idOk = (id: unknown): boolean =>
    typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < MAX_TOKEN_ID;
  const model = json.model;
  if (!isRecord(model)) bad('no "model" object');
  const m = model as Record<string, unknown>;
  const vocab = m.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], …], the id is the position
    if (vocab.length > MAX_TOKEN_ID)
      bad(`${vocab.length} vocabulary entries (at most ${MAX_TOKEN_ID})`);
    vocab.forEach((e, i) => {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number')
        bad(`model.vocab[${i}] is not a [piece, score] pair`);
    });
  } else if (isRecord(vocab)) {
    for (const [token, id] of Object.entries(vocab)) {
      if (!idOk(id))
        bad(
          `token ${JSON.stringify(token.slice(0, 40))} has id ${shown(id)}; ids must be whole numbers in [0, ${MAX_TOKEN_ID})`,
        );
    }
  } else if (vocab !== undefined) {
    bad('model.vocab is neither an object nor a list');
  }
  if (m.merges !== undefined) {
    if (!Array.isArray(m.merges)) bad('model.merges is not a list');
    (m.merges as unknown[]).forEach((e, i) => {
      const pair =
        typeof e === 'string' ||
        (Array.isArray(e) && e.length === 2 && e.every((x) => typeof x === 'string'));
      if (!pair) bad(`model.merges[${i}] is neither "a b" nor ["a", "b"]`);
    });
  }
  if (json.added_tokens !== undefined) {
    if (!Array.isArray(json.added_tokens)) bad('added_tokens is not a list');
    (json.added_tokens as unknown[]).forEach((t, i) => {
      if (!isRecord(t) || typeof t.content !== 'string')
        bad(`added_tokens[${i}] has no "content" string`);
      if (!idOk((t as Record<string, unknown>).id))
        bad(
          `added_tokens[${i}] has id ${shown((t as Record<string, unknown>).id)}; ids must be whole numbers in [0, ${MAX_TOKEN_ID})`,
        );
    });
  }
  for (const part of ['normalizer', 'pre_tokenizer', 'decoder', 'post_processor']) {
    walkPatterns(json[part], part, (pattern, at) => checkPattern(pattern, `${file}: ${at}`));
  }
}

/** Calls `visit` on every `pattern` of a Split/Replace (`{Regex: …}` or `{String: …}`). */
function walkPatterns(node: unknown, at: string, visit: (regex: string, at: string) => void): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => walkPatterns(n, `${at}[${i}]`, visit));
    return;
  }
  if (!isRecord(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'pattern' && isRecord(value)) {
      if ('Regex' in value) {
        if (typeof value.Regex !== 'string')
          throw new LmdynError('bad_format', `${at}.pattern.Regex is not a string`);
        visit(value.Regex, `${at}.pattern`);
      } else if ('String' in value && typeof value.String !== 'string') {
        throw new LmdynError('bad_format', `${at}.pattern.String is not a string`);
      }
    } else {
      walkPatterns(value, `${at}.${key}`, visit);
    }
  }
}

/**
 * Rejects a pattern that can backtrack catastrophically: a quantified group that
 * itself holds a quantifier (`(a+)+`, `(\s*x?)*`: exponential in the input length), then a timed
 * probe on growing runs of one character that doubles its time with each character.
 */
export function checkPattern(pattern: string, where: string): void {
  if (pattern.length > 10_000)
    throw new LmdynError('bad_format', `${where}: a ${pattern.length}-character regex`);
  if (nestedQuantifier(pattern)) {
    throw new LmdynError(
      'unsupported',
      `${where}: the regex ${JSON.stringify(pattern.slice(0, 80))} repeats a group that itself repeats (catastrophic backtracking); refused`,
    );
  }
  let re: RegExp;
  try {
    // JavaScript has no inline flag groups such as Llama 3's (?i:…): probe them as plain groups
    re = new RegExp(pattern.replace(/\(\?i:/g, '(?:'), 'gu');
  } catch {
    return; // Rust-only syntax (nested classes, …): the library compiles it or says why
  }
  for (const c of ['a', ' ', '1', '\n', '!']) {
    const time = (n: number): number => {
      const s = c.repeat(n) + (c === '!' ? 'a' : '!');
      const t0 = performance.now();
      re.lastIndex = 0;
      s.match(re);
      return performance.now() - t0;
    };
    const small = time(14);
    const large = time(18);
    if (large > 20 && large > 8 * Math.max(small, 0.05)) {
      throw new LmdynError(
        'unsupported',
        `${where}: the regex ${JSON.stringify(pattern.slice(0, 80))} takes ${large.toFixed(0)} ms on 18 characters (catastrophic backtracking); refused`,
      );
    }
  }
}

/** A group followed by * + {n,} whose body (outside character classes) holds * + or {n,}. */
function nestedQuantifier(pattern: string): boolean {
  const stack: boolean[] = []; // per open group: does its body repeat something?
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      continue;
    }
    if (ch === '[') inClass = true;
    else if (ch === '(') stack.push(false);
    else if (ch === ')') {
      const repeats = stack.pop() ?? false;
      const next = pattern.slice(i + 1);
      const quantified = /^(?:[*+]|\{\d*,\d*\})/.test(next);
      if (repeats && quantified) return true;
      if (stack.length > 0 && (repeats || quantified)) stack[stack.length - 1] = true;
    } else if (
      (ch === '*' || ch === '+' || /^\{\d*,\d*\}/.test(pattern.slice(i))) &&
      stack.length > 0
    ) {
      stack[stack.length - 1] = true;
    }
  }
  return false;
}

function shown(v: unknown): string {
  return typeof v === 'number' ? String(v) : (JSON.stringify(v)?.slice(0, 40) ?? String(v));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
