/**
 * Typed reads of GGUF metadata values (gguf-reader.ts parses them): each accessor checks the
 * value's type and range and names the key in a one-line LmdynError, so a loader reads
 * `meta.int('llama.block_count')` instead of repeating the checks.
 */
import { LmdynError, check } from '../errors.js';
import type { GgufValue, ValueType } from './gguf-reader.js';

export class GgufMetadata {
  constructor(
    readonly values: Record<string, GgufValue>,
    readonly path: string,
  ) {}

  get(key: string): GgufValue | undefined {
    return this.values[key];
  }

  has(key: string): boolean {
    return this.values[key] !== undefined;
  }

  /** A positive integer; `fallback` when the key is absent (missing without one is an error). */
  int(key: string, fallback?: number): number {
    const v = this.values[key] ?? fallback;
    check(v !== undefined, 'bad_format', `${this.path}: metadata key ${key} is missing`);
    check(
      typeof v === 'number' && Number.isInteger(v) && v > 0,
      'bad_format',
      `${this.path}: ${key} is ${describe(v)}, not a positive integer`,
    );
    return v;
  }

  /** A positive finite number; `fallback` when the key is absent. */
  float(key: string, fallback?: number): number {
    const v = this.values[key] ?? fallback;
    check(v !== undefined, 'bad_format', `${this.path}: metadata key ${key} is missing`);
    check(
      typeof v === 'number' && v > 0 && Number.isFinite(v),
      'bad_format',
      `${this.path}: ${key} is ${describe(v)}`,
    );
    return v;
  }

  /** A bool; `fallback` when the key is absent. */
  bool(key: string, fallback: boolean): boolean {
    const v = this.values[key];
    if (v === undefined) return fallback;
    check(
      typeof v === 'boolean',
      'bad_format',
      `${this.path}: ${key} is ${describe(v)}, not a bool`,
    );
    return v;
  }

  /** A string, or undefined when the key is absent. */
  string(key: string): string | undefined {
    const v = this.values[key];
    if (v === undefined) return undefined;
    check(
      typeof v === 'string',
      'bad_format',
      `${this.path}: ${key} is ${describe(v)}, not a string`,
    );
    return v;
  }

  /** A token id below `vocabSize`, or null when the key is absent. */
  optionalId(key: string, vocabSize: number): number | null {
    const v = this.values[key];
    if (v === undefined) return null;
    check(
      typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < vocabSize,
      'bad_format',
      `${this.path}: ${key} is ${describe(v)}, outside the vocabulary of ${vocabSize}`,
    );
    return v;
  }

  /** Refuses a key whose presence means a feature lmdyn does not implement. */
  refuse(key: string, allowed: (v: GgufValue) => boolean, what: string): void {
    const v = this.values[key];
    if (v !== undefined && !allowed(v)) {
      throw new LmdynError('unsupported', `${this.path}: ${what} (${key} = ${describe(v)})`);
    }
  }
}

/** Metadata for `source.details`: arrays longer than 16 become a one-line summary, bigints strings. */
export function summariseMetadata(meta: Record<string, GgufValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(meta)) {
    if (typeof v === 'bigint') out[key] = v.toString();
    else if (typeof v === 'object' && v.length > 16) out[key] = describe(v);
    else if (typeof v === 'object')
      out[key] = Array.from(v as ArrayLike<unknown>, (x) =>
        typeof x === 'bigint' ? x.toString() : x,
      );
    else out[key] = v;
  }
  return out;
}

export function describe(v: GgufValue | undefined): string {
  if (v === undefined) return 'missing';
  if (typeof v !== 'object') return JSON.stringify(typeof v === 'bigint' ? v.toString() : v);
  const kind = Array.isArray(v)
    ? typeof v[0] === 'string'
      ? 'string'
      : 'value'
    : v.constructor.name;
  return `[${kind} array of ${v.length}]`;
}

export function isStringArray(v: GgufValue | undefined): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** One key/value pair as the writer (gguf-write.ts) stores it. */
export type Kv =
  | { key: string; type: ValueType.U32 | ValueType.F32; value: number }
  | { key: string; type: ValueType.Bool; value: boolean }
  | { key: string; type: ValueType.String; value: string }
  | { key: string; type: ValueType.Array; items: ValueType.String; value: string[] }
  | { key: string; type: ValueType.Array; items: ValueType.F32; value: Float32Array }
  | { key: string; type: ValueType.Array; items: ValueType.I32; value: Int32Array };
