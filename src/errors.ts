/**
 * Errors a user can cause (bad path, truncated file, unknown architecture, bad flag value).
 * The CLI prints `error: <message>` and exits non-zero; anything that is not an LmdynError
 * is a bug in lmdyn and is reported as such.
 */
export type ErrorCode =
  | 'not_found'
  | 'bad_format'
  | 'truncated'
  | 'unsupported'
  | 'bad_argument'
  | 'context_overflow'
  | 'network'
  | 'offline'
  | 'io';

export class LmdynError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'LmdynError';
    this.code = code;
  }
}

/**
 * What long work checks between its prompts or steps to end early: an AbortSignal, or any object
 * whose throwIfAborted() throws once the result is no longer wanted (the dashboard's engine
 * thread reads a flag the HTTP thread sets).
 */
export type StopSignal = Pick<AbortSignal, 'throwIfAborted'>;

/** Throws a `bad_format` error unless `cond` holds; used by the binary loaders. */
export function check(cond: unknown, code: ErrorCode, message: string): asserts cond {
  if (!cond) throw new LmdynError(code, message);
}
