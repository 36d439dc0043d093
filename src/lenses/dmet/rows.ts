/**
 * The DMET lens's row types: a decoding configuration of the grid, and the per-sequence row
 * (dmet.parquet) that analyze.ts fills and summary.ts reduces.
 */

export interface DmetConfiguration {
  index: number;
  /** Folder of the configuration's trace, relative to the source folder ('.' for one trace). */
  dir: string;
  sampling: { temperature: number; topP: number; topK: number; repetitionPenalty: number };
}

/** A row per sequence (dmet.parquet). NaN where a metric is undefined. */
export interface SequenceRow {
  config: number;
  dir: string;
  temperature: number;
  top_p: number;
  top_k: number;
  repetition_penalty: number;
  sample: number;
  seed: number;
  finish_reason: string;
  prompt_tokens: number;
  generated_tokens: number;
  points: number;
  C_mean: number;
  C_std: number;
  C_max: number;
  jumps: number;
  C_cos: number;
  C_norm: number;
  silhouette: number;
  persistence: number;
  h1_pairs: number;
  predictability: number;
  predictability_mse: number;
  pc1_ratio: number;
  pc2_ratio: number;
  perplexity: number;
  log_ppl: number;
  spelling: number;
  diversity: number;
  grammar: number;
  coherence: number;
  sentences: number;
  text: string;
}
