/**
 * Sets of real generations for the loop statistics (papers.md §4.3 item 4): read from a
 * `lmdyn sweep` folder (every finished configuration's trace.json), or generated here over a
 * grid of temperatures and repetition / frequency / presence penalties (the sweep has no
 * frequency or presence penalty axis) with the library's generation loop (decode/generate.ts).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stopIds, type Model } from '../../model/model.js';
import { generateBatch } from '../../decode/generate.js';
import { validateSampling, type SamplingConfig } from '../../decode/sampling.js';
import { LmdynError } from '../../errors.js';
import { requireTrace } from '../../trace/io.js';
import { isComplete, readSweepIndex } from '../../trace/sweep.js';

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

/**
 * The generations of a sweep folder, finished or not: each committed configuration (io/commit.ts)
 * is whole, so an unfinished sweep's recorded configurations are read and the rest listed as
 * missing. Reads only each configuration's trace.json.
 */
export function readSweepGenerations(dir: string): GenerationSet {
  const root = resolve(dir);
  const index = readSweepIndex(root, { finished: false });
  const configs: GenerationConfig[] = [];
  const missing: string[] = [];
  for (const c of index.configs) {
    const path = join(root, c.dir, 'trace.json');
    if (!isComplete(join(root, c.dir))) {
      missing.push(c.dir);
      continue;
    }
    requireTrace(join(root, c.dir));
    let json: TraceManifest;
    try {
      json = JSON.parse(readFileSync(path, 'utf8')) as TraceManifest;
    } catch {
      throw new LmdynError('bad_format', `${path} is not valid JSON`);
    }
    if (json.format !== 'lmdyn-trace' || !Array.isArray(json.samples)) {
      throw new LmdynError('bad_format', `${path} is not an lmdyn trace manifest`);
    }
    configs.push({
      dir: c.dir,
      sampling: validateSampling(json.meta.decoding),
      samples: json.samples.map((s) => ({
        promptIds: s.prompt_ids,
        ids: s.ids,
        finishReason: s.finish_reason,
        seed: s.seed,
      })),
    });
  }
  if (configs.length === 0) {
    throw new LmdynError(
      'not_found',
      `${dir} holds no finished sweep configuration (none is committed with its trace.manifest.json)`,
    );
  }
  return {
    source: 'sweep',
    sweepDir: root,
    model: index.plan.model,
    tokenizer: index.plan.tokenizer,
    prompt: index.plan.prompt,
    maxTokens: index.plan.maxTokens,
    configs,
    missing,
  };
}

interface TraceManifest {
  format: string;
  meta: { decoding: Partial<SamplingConfig> };
  samples: { prompt_ids: number[]; ids: number[]; finish_reason: string; seed: number }[];
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
