/**
 * Reading a file of texts (prompts, a reference corpus) the way every command and the dashboard
 * read one: plain lines, or JSONL of strings or {"text": …} objects. Blank lines are skipped.
 * And a table of scores per model (`model,score` CSV) for the coupling lens across models.
 */
import { readFileSync } from 'node:fs';
import { LmdynError } from '../errors.js';

/** Plain lines, or JSONL whose lines are strings or objects with a "text" field. */
export function readTextFile(path: string): string[] {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch {
    throw new LmdynError('not_found', `cannot read --text-file ${path}`);
  }
  const lines = raw.split(/\r?\n/).filter((l) => l.trim() !== '');
  const texts = lines.map((line, i) => {
    const t = line.trim();
    if (!t.startsWith('{') && !t.startsWith('"')) return line;
    try {
      const v: unknown = JSON.parse(t);
      if (typeof v === 'string') return v;
      if (v && typeof v === 'object' && typeof (v as { text?: unknown }).text === 'string')
        return (v as { text: string }).text;
    } catch {
      return line;
    }
    throw new LmdynError('bad_argument', `${path}:${i + 1}: a JSONL line needs a "text" string`);
  });
  if (texts.length === 0) throw new LmdynError('bad_argument', `${path} holds no text`);
  return texts;
}

/** Reads `model,score` rows (a header naming both columns first; other columns are ignored). */
export function readScores(path: string): Map<string, number> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new LmdynError('not_found', `cannot read --scores ${path}`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const head = (lines[0] ?? '').split(',').map((h) => h.trim().toLowerCase());
  const mi = head.indexOf('model');
  const si = head.indexOf('score');
  if (mi < 0 || si < 0)
    throw new LmdynError('bad_format', `${path}: the header must name the columns model and score`);
  const scores = new Map<string, number>();
  lines.slice(1).forEach((line, i) => {
    const cells = line.split(',').map((c) => c.trim());
    const v = Number(cells[si]);
    if (cells[si] === undefined || cells[si] === '' || !Number.isFinite(v)) {
      throw new LmdynError(
        'bad_format',
        `${path}:${i + 2}: score '${cells[si] ?? ''}' is not a number`,
      );
    }
    scores.set(cells[mi], v);
  });
  return scores;
}
