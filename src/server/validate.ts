/**
 * Checks on what a browser sends: every number is a finite JSON number in a stated range,
 * unknown fields are refused, and a run path must stay inside the --runs folder. Each failure is
 * an HttpError whose message is one readable line for the page to show.
 */
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export type Body = Record<string, unknown>;

/** Refuses fields other than `known` (a typo should not silently fall back to a default). */
export function onlyFields(body: Body, known: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new HttpError(
      400,
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${known.join(', ')})`,
    );
  }
}

export interface NumberRule {
  min: number;
  max: number;
  integer?: boolean;
  /** The bounds are excluded (min < v, v < max) rather than included. */
  minExclusive?: boolean;
  default?: number;
}

/** A number field: a finite JSON number within the rule's range (absent → the default, if any). */
export function numberField(body: Body, key: string, rule: NumberRule): number {
  const v = body[key];
  if (v === undefined || v === null) {
    if (rule.default !== undefined) return rule.default;
    throw new HttpError(400, `"${key}" is required`);
  }
  const lo = rule.minExclusive ? `(${rule.min}` : `[${rule.min}`;
  const what = `${rule.integer ? 'a whole number' : 'a number'} in ${lo}, ${rule.max}]`;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new HttpError(
      400,
      `"${key}" must be ${what}, got ${typeof v === 'number' ? String(v) : JSON.stringify(v)}`,
    );
  }
  if (
    (rule.integer && !Number.isInteger(v)) ||
    v > rule.max ||
    (rule.minExclusive ? v <= rule.min : v < rule.min)
  ) {
    throw new HttpError(400, `"${key}" must be ${what}, got ${v}`);
  }
  return v;
}

export function stringField(
  body: Body,
  key: string,
  options: { maxLength: number; default?: string },
): string {
  const v = body[key];
  if (v === undefined || v === null) {
    if (options.default !== undefined) return options.default;
    throw new HttpError(400, `"${key}" is required`);
  }
  if (typeof v !== 'string') throw new HttpError(400, `"${key}" must be a string, got ${typeof v}`);
  if (v.length > options.maxLength)
    throw new HttpError(
      400,
      `"${key}" is ${v.length} characters long; at most ${options.maxLength} are accepted`,
    );
  return v;
}

export function booleanField(body: Body, key: string, fallback: boolean): boolean {
  const v = body[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean')
    throw new HttpError(400, `"${key}" must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * The folder `rel` names inside `root` (both real paths, symbolic links resolved), or an
 * HttpError: absolute paths, `..` that leaves the root and links pointing out are refused.
 */
export function insideRoot(root: string, rel: string): string {
  if (rel.includes('\0')) throw new HttpError(400, 'the path contains a NUL character');
  if (isAbsolute(rel) || /^[a-zA-Z]:/.test(rel))
    throw new HttpError(
      403,
      `"${rel}" is an absolute path; give a path relative to the runs folder`,
    );
  const realRoot = realpathSync(root);
  const target = resolve(realRoot, rel);
  if (!within(realRoot, target)) throw new HttpError(403, `"${rel}" is outside the runs folder`);
  if (!existsSync(target)) throw new HttpError(404, `"${rel}" does not exist in the runs folder`);
  const real = realpathSync(target);
  if (!within(realRoot, real)) throw new HttpError(403, `"${rel}" leads outside the runs folder`);
  return real;
}

function within(root: string, path: string): boolean {
  const r = relative(root, path);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r) && !r.split(sep).includes('..'));
}
