/**
 * Per-step text for the dashboard's stream: a token's own label, the text a new token adds to the
 * sequence (incremental detokenisation), and the most probable tokens of a distribution.
 */
import type { Tokenizer } from '../tokenizer/types.js';

/**
 * A token as text on its own: its decoded text, or its vocabulary entry when that is empty (BOS).
 * A token that holds part of a UTF-8 character (a byte-fallback piece, a byte-level BPE piece)
 * decodes alone to U+FFFD, a box on the page: it is shown as its bytes instead, `<0xE2><0x80>`,
 * with the whole characters it holds as text.
 */
export function label(tokenizer: Tokenizer, id: number): string {
  const text = tokenizer.decode([id]);
  if (!text) return tokenizer.tokenText(id);
  if (!text.includes('\uFFFD')) return text;
  const bytes = tokenBytes(tokenizer.tokenText(id));
  return bytes ? bytesLabel(bytes) : text;
}

/**
 * The bytes of a vocabulary entry: a byte-fallback piece `<0xE2>`, or a byte-level BPE entry
 * (GPT-2's printable stand-ins for the 256 bytes, `âĢ` = E2 80); null for anything else.
 */
export function tokenBytes(entry: string): Uint8Array | null {
  const piece = /^<0x([0-9A-Fa-f]{2})>$/.exec(entry);
  if (piece) return Uint8Array.of(parseInt(piece[1], 16));
  const out: number[] = [];
  for (const ch of entry) {
    const b = BYTE_OF_CHAR.get(ch);
    if (b === undefined) return null;
    out.push(b);
  }
  return out.length > 0 ? Uint8Array.from(out) : null;
}

/** Bytes as text: whole UTF-8 characters as themselves, every other byte as `<0xXX>`. */
export function bytesLabel(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const n =
      b < 0x80
        ? 1
        : b >= 0xc2 && b < 0xe0
          ? 2
          : b >= 0xe0 && b < 0xf0
            ? 3
            : b >= 0xf0 && b < 0xf5
              ? 4
              : 0;
    let whole = n > 0 && i + n <= bytes.length;
    for (let k = 1; whole && k < n; k++) whole = (bytes[i + k] & 0xc0) === 0x80;
    const text = whole
      ? new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(i, i + n))
      : '';
    if (whole && !text.includes('\uFFFD')) {
      out += text;
      i += n;
    } else {
      out += `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
      i++;
    }
  }
  return out;
}

/**
 * GPT-2's byte-level alphabet (openai/gpt-2 encoder.py `bytes_to_unicode`, inverted): printable
 * Latin-1 bytes stand for themselves, the other bytes for U+0100 onwards in order.
 */
const BYTE_OF_CHAR: ReadonlyMap<string, number> = (() => {
  const map = new Map<string, number>();
  let next = 0;
  for (let b = 0; b < 256; b++) {
    const printable =
      (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.set(String.fromCodePoint(printable ? b : 256 + next++), b);
  }
  return map;
})();

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
