/**
 * Per-step text for the dashboard's stream: a token's own label, the text a new token adds to the
 * sequence (incremental detokenisation), and the most probable tokens of a distribution.
 */
import type { Tokenizer } from '../tokenizer/types.js';

/** A token as text on its own: its decoded text, or its vocabulary entry when that is empty (BOS). */
export function label(tokenizer: Tokenizer, id: number): string {
  return tokenizer.decode([id]) || tokenizer.tokenText(id);
}

/**
 * Text deltas of a growing sequence at a cost independent of its length (vLLM's incremental
 * detokenisation): decode a short window before the new tokens with and without them and emit
 * the difference; an incomplete character (U+FFFD at the end) waits for the next token.
 */
export class IncrementalText {
  private readonly ids: number[];
  private prefixOffset: number;
  private readOffset: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    prompt: readonly number[],
    private readonly window = 6,
  ) {
    this.ids = [...prompt];
    this.readOffset = this.ids.length;
    this.prefixOffset = Math.max(0, this.readOffset - window);
  }

  push(id: number): string {
    this.ids.push(id);
    return this.delta(false);
  }

  /** Whatever is still held back at the end. */
  flush(): string {
    return this.delta(true);
  }

  private delta(final: boolean): string {
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (full.length <= prefix.length || (!final && full.endsWith('\uFFFD'))) return '';
    this.prefixOffset = Math.max(this.prefixOffset, this.ids.length - this.window);
    this.readOffset = this.ids.length;
    return full.slice(prefix.length);
  }
}

/** The n most probable token ids with their probabilities, most probable first. */
export function topTokens(probs: Float64Array, n: number): [number, number][] {
  const best: [number, number][] = [];
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i];
    if (p <= 0 || (best.length === n && p <= best[n - 1][1])) continue;
    let at = best.length < n ? best.length : n - 1;
    if (best.length < n) best.push([i, p]);
    else best[at] = [i, p];
    while (at > 0 && best[at - 1][1] < best[at][1]) {
      [best[at - 1], best[at]] = [best[at], best[at - 1]];
      at--;
    }
  }
  return best;
}
