/**
 * SentencePiece BPE as llama2.c's run.c implements it (encode() / decode()), shared by the
 * llama2.c tokenizer.bin and the llama vocabulary embedded in GGUF files. Both are normalised
 * to tokenizer.bin's convention before they get here: a space is ' ' (GGUF's '▁' is mapped).
 *
 * encode: optional BOS; a dummy-prefix space before non-empty text; each UTF-8 codepoint that
 * is a piece becomes that piece, any other codepoint falls back to its bytes' `<0xXX>` pieces;
 * then, repeatedly, the adjacent pair whose concatenation is a piece with the highest score is
 * merged (ties: the leftmost pair, as run.c's strict `>` scan). A heap replaces run.c's
 * quadratic rescan; it picks the same pair at every step. Control pieces (<unk>, <s>, </s>) and
 * byte pieces are never produced by matching text, as in SentencePiece; run.c's lookup would
 * allow it, but only through intermediate pieces ("<0x4", "<s") that no real vocabulary has.
 *
 * decode: BOS/EOS are dropped; a piece right after BOS loses its leading space (run.c, from
 * SentencePiece's decoder); `<0xXX>` pieces are raw bytes; the bytes of the whole sequence are
 * decoded as UTF-8 once, so characters split over byte pieces come out whole.
 */
import { LmdynError } from '../errors.js';
import type { Tokenizer } from './types.js';

export interface SentencePieceVocabulary {
  /** Pieces by id, spaces as ' '. */
  pieces: readonly string[];
  /** Merge scores by id (SentencePiece log-probabilities). */
  scores: Float32Array;
  bosId: number | null;
  eosId: number | null;
  /** The vocabulary id of each byte value 0..255 (`<0xXX>`), -1 where there is none. */
  byteIds: Int32Array;
  /** Used for a byte without a `<0xXX>` piece. */
  unkId: number | null;
  /** Control pieces (`<unk>`, `<s>`, `</s>`, ...) that text never matches. */
  controlIds: readonly number[];
  /** Prepend ' ' to non-empty text (SentencePiece's add_dummy_prefix; run.c always does). */
  addDummyPrefix: boolean;
}

export class SentencePieceTokenizer implements Tokenizer {
  readonly kind: 'llama2c' | 'gguf';
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** The vocabulary as given (read-only: the GGUF writer copies it out). */
  readonly vocab: SentencePieceVocabulary;
  /** Piece → id for every piece text can match (not control or byte pieces). */
  private readonly lookup = new Map<string, number>();
  /** Raw byte of each `<0xXX>` piece, -1 for the others. */
  private readonly byteOf: Int16Array;
  private readonly utf8 = new TextEncoder();
  private readonly text = new TextDecoder();
  private readonly bytesCache: (Uint8Array | undefined)[] = [];

  constructor(kind: 'llama2c' | 'gguf', vocab: SentencePieceVocabulary) {
    const n = vocab.pieces.length;
    if (vocab.scores.length !== n || vocab.byteIds.length !== 256) {
      // Internal invariant, not user input: the llama2.c and GGUF readers check the arrays' lengths.
      throw new Error(
        `sentencepiece: ${n} pieces but ${vocab.scores.length} scores, ${vocab.byteIds.length} byte ids`,
      );
    }
    this.kind = kind;
    this.vocab = vocab;
    this.vocabSize = n;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.byteOf = new Int16Array(n).fill(-1);
    vocab.byteIds.forEach((id, byte) => {
      if (id >= 0) this.byteOf[id] = byte;
    });
    const control = new Set(vocab.controlIds);
    vocab.pieces.forEach((piece, id) => {
      // Real vocabularies have no duplicate pieces; should one appear, its first id wins.
      if (this.byteOf[id] === -1 && !control.has(id) && !this.lookup.has(piece)) {
        this.lookup.set(piece, id);
      }
    });
  }

  encode(text: string, options: { bos?: boolean; eos?: boolean } = {}): number[] {
    const ids: number[] = [];
    if ((options.bos ?? true) && this.bosId !== null) ids.push(this.bosId);
    if (text.length > 0) {
      // a loop, not push(...): long texts would exceed the engine's argument limit
      for (const id of this.mergePieces(this.vocab.addDummyPrefix ? ` ${text}` : text))
        ids.push(id);
    }
    if (options.eos && this.eosId !== null) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[]): string {
    const parts: Uint8Array[] = [];
    let length = 0;
    let prev = -1;
    for (const id of ids) {
      this.checkId(id);
      if (id !== this.bosId && id !== this.eosId) {
        let bytes = this.pieceBytes(id);
        if (prev === this.bosId && bytes[0] === SPACE && this.byteOf[id] === -1) {
          bytes = bytes.subarray(1);
        }
        parts.push(bytes);
        length += bytes.length;
      }
      prev = id;
    }
    const all = new Uint8Array(length);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return this.text.decode(all);
  }

  tokenText(id: number): string {
    this.checkId(id);
    return this.vocab.pieces[id]!;
  }

  /** The bytes a piece stands for: its UTF-8, or the raw byte of `<0xXX>`; cached. */
  private pieceBytes(id: number): Uint8Array {
    let bytes = this.bytesCache[id];
    if (!bytes) {
      const byte = this.byteOf[id]!;
      bytes = byte >= 0 ? Uint8Array.of(byte) : this.utf8.encode(this.vocab.pieces[id]!);
      this.bytesCache[id] = bytes;
    }
    return bytes;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new LmdynError(
        'bad_argument',
        `token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`,
      );
    }
  }

  /** run.c encode() after the BOS: codepoints or byte fallback, then best-score pair merges. */
  private mergePieces(text: string): number[] {
    // symbols form a doubly linked list; a merge keeps the left slot and unlinks the right one
    const id: number[] = [];
    for (const ch of text) {
      const found = this.lookup.get(ch);
      if (found !== undefined) {
        id.push(found);
        continue;
      }
      for (const byte of this.utf8.encode(ch)) id.push(this.byteFallback(byte, ch));
    }
    const n = id.length;
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const heap = new PairHeap();
    const offer = (left: number): void => {
      const right = next[left]!;
      if (right < 0) return;
      const merged = this.lookup.get(
        this.vocab.pieces[id[left]!]! + this.vocab.pieces[id[right]!]!,
      );
      if (merged !== undefined) {
        heap.push({
          score: this.vocab.scores[merged]!,
          left,
          right,
          leftId: id[left]!,
          rightId: id[right]!,
          merged,
        });
      }
    };
    for (let i = 0; i + 1 < n; i++) offer(i);
    for (let pair = heap.pop(); pair; pair = heap.pop()) {
      const { left, right } = pair;
      // stale entries: one side was merged away or changed since the pair was offered
      if (next[left] !== right || id[left] !== pair.leftId || id[right] !== pair.rightId) continue;
      id[left] = pair.merged;
      next[left] = next[right]!;
      if (next[right]! >= 0) prev[next[right]!] = left;
      next[right] = -2; // unlinked
      if (prev[left]! >= 0) offer(prev[left]!);
      offer(left);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0 && i < n; i = next[i]!) out.push(id[i]!);
    return out;
  }

  private byteFallback(byte: number, ch: string): number {
    const id = this.vocab.byteIds[byte]!;
    if (id >= 0) return id;
    if (this.vocab.unkId !== null) return this.vocab.unkId;
    throw new LmdynError(
      'unsupported',
      `the vocabulary has no piece for ${JSON.stringify(ch)} and no <unk>`,
    );
  }
}

const SPACE = 0x20;

/** A candidate merge of the adjacent symbols `left`, `right` into piece `merged`. */
interface Pair {
  score: number;
  left: number;
  right: number;
  leftId: number;
  rightId: number;
  merged: number;
}

/** Max-heap on score; equal scores pop the leftmost pair first (run.c keeps the first best). */
class PairHeap {
  private readonly items: Pair[] = [];

  push(p: Pair): void {
    const a = this.items;
    a.push(p);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }

  pop(): Pair | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    a[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < a.length && before(a[l]!, a[best]!)) best = l;
      if (r < a.length && before(a[r]!, a[best]!)) best = r;
      if (best === i) return top;
      [a[i], a[best]] = [a[best]!, a[i]!];
      i = best;
    }
  }
}

function before(x: Pair, y: Pair): boolean {
  return x.score > y.score || (x.score === y.score && x.left < y.left);
}
