/** One interface over llama2.c tokenizer.bin, GGUF's embedded vocabulary and HF tokenizer.json. */
export interface Tokenizer {
  readonly kind: 'llama2c' | 'gguf' | 'hf';
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** Token ids of `text`; with `bos` (default true where the tokenizer has one) BOS comes first. */
  encode(text: string, options?: { bos?: boolean; eos?: boolean }): number[];
  /** The text of a sequence of ids (special tokens such as BOS are dropped). */
  decode(ids: readonly number[]): string;
  /**
   * The tokenizer.json a Hugging Face tokenizer was built from (absent for other kinds), so the
   * GGUF writer can embed its vocabulary and merges.
   */
  readonly tokenizerJson?: Readonly<Record<string, unknown>>;
  /** The vocabulary entry of one id, as stored (for tables and plots). */
  tokenText(id: number): string;
}
