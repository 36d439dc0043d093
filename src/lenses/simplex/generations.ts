/**
 * Sets of real generations for the loop statistics (papers.md §4.3 item 4): read from a
 * `lmdyn sweep` folder (report/lenses/simplex.ts readSweepGenerations), or generated here over a
 * grid of temperatures and repetition / frequency / presence penalties (the sweep has no
 * frequency or presence penalty axis) with the library's generation loop (decode/generate.ts).
 */
import { stopIds, type Model } from '../../model/model.js';
import { generateBatch } from '../../decode/generate.js';
import { validateSampling, type SamplingConfig } from '../../decode/sampling.js';

export interface GeneratedSample {
  promptIds: number[];
  ids: number[];
  finishReason: string;
  seed: number;
}

export interface GenerationConfig {
  /** Configuration folder (sweep) or null (generated here). */
  dir: string | null;
  sampling: SamplingConfig;
  samples: GeneratedSample[];
}

export interface GenerationSet {
  source: 'sweep' | 'grid';
  /** Sweep folder (absolute) or null. */
  sweepDir: string | null;
  model: string;
  tokenizer: string | null;
  prompt: string;
  maxTokens: number;
  configs: GenerationConfig[];
  /** Sweep configurations not yet committed (unfinished), skipped. */
  missing: string[];
}

export interface GridOptions {
  promptIds: readonly number[];
  temperature: readonly number[];
  repetitionPenalty: readonly number[];
  frequencyPenalty: readonly number[];
  presencePenalty: readonly number[];
  topP?: number;
  topK?: number;
  samples: number;
  maxTokens: number;
  /** Sample i of every configuration uses seed + i (as `lmdyn sweep`). */
  seed: number;
}

/**
 * Generates `samples` sequences per grid point (temperature outermost, presence penalty
 * innermost), each configuration as one batch through decode/generate.ts.
 */
export function generateGrid(
  model: Model,
  modelSpec: string,
  prompt: string,
  o: GridOptions,
): GenerationSet {
  const configs: GenerationConfig[] = [];
  for (const temperature of o.temperature)
    for (const repetitionPenalty of o.repetitionPenalty)
      for (const frequencyPenalty of o.frequencyPenalty)
        for (const presencePenalty of o.presencePenalty) {
          const sampling = validateSampling({
            temperature,
            repetitionPenalty,
            frequencyPenalty,
            presencePenalty,
            topP: o.topP ?? 1,
            topK: o.topK ?? 0,
          });
          const { outputs } = generateBatch(
            model.transformer,
            Array.from({ length: o.samples }, (_, i) => ({
              promptIds: o.promptIds,
              maxTokens: o.maxTokens,
              sampling,
              seed: o.seed + i,
            })),
            { stopIds: stopIds(model) },
          );
          configs.push({
            dir: null,
            sampling,
            samples: outputs.map((out) => ({
              promptIds: out.promptIds,
              ids: out.ids,
              finishReason: out.finishReason,
              seed: out.seed,
            })),
          });
        }
  return {
    source: 'grid',
    sweepDir: null,
    model: modelSpec,
    tokenizer: null,
    prompt,
    maxTokens: o.maxTokens,
    configs,
    missing: [],
  };
}
