import type { Tokenizer } from './types.js';

/**
 * Turns a growing id sequence into text deltas for streaming. Decoding whole sequences and
 * emitting the difference keeps multi-byte characters split across byte-fallback or
 * byte-level tokens intact: an incomplete character (U+FFFD at the end) is held back.
 */
export class TextStream {
  private readonly ids: number[];
  private emitted = '';

  constructor(
    private readonly tokenizer: Tokenizer,
    prefix: readonly number[] = [],
  ) {
    this.ids = [...prefix];
    this.emitted = tokenizer.decode(this.ids);
  }

  push(id: number): string {
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids);
    if (text.endsWith('\uFFFD') || !text.startsWith(this.emitted)) return '';
    const delta = text.slice(this.emitted.length);
    this.emitted = text;
    return delta;
  }

  /** Whatever is still held back (e.g. a truncated character at the very end). */
  flush(): string {
    const text = this.tokenizer.decode(this.ids);
    const delta = text.startsWith(this.emitted) ? text.slice(this.emitted.length) : '';
    this.emitted = text;
    return delta;
  }
}
