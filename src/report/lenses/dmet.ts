/**
 * DMET inputs and outputs on disk. Input: a `lmdyn sweep` folder (sweep.json + one trace folder
 * per configuration) or one trace folder; each configuration's states are read one hook at a
 * time, so a sweep never sits in memory whole. Output, into a folder (by default the input one):
 *   dmet.json                  the report (metrics, tests, config, seeds)
 *   dmet.parquet               a row per sequence
 *   dmet_trajectories.parquet  the 2-D curve of every sequence (config, sample, step, pc1, pc2, …)
 *   dmet_persistence.parquet   every persistence pair (config, sample, dim, birth, death)
 *   dmet-plots/                trajectories, heatmaps, persistence diagrams, temperature trend
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LmdynError } from '../../errors.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { commitBeside } from '../../io/commit.js';
import { writeParquet, type ParquetColumn } from '../../io/parquet.js';
import { closeSafetensors, openSafetensors, readTensorF32 } from '../../io/safetensors.js';
import { writePlot } from '../plot.js';
import { lengths, requireFiniteStates, requireTrace } from '../../trace/io.js';
import { readSweepIndex } from '../../trace/sweep.js';
import type { TraceMeta, TraceSample } from '../../trace/types.js';
import type { DmetConfigData, DmetResult, DmetSource } from '../../lenses/dmet/analyze.js';
import type { DmetConfiguration, SequenceRow } from '../../lenses/dmet/rows.js';
import { dmetPlots } from './dmet-plots.js';
import { paperRef } from '../../papers.js';

interface TraceJson {
  meta: TraceMeta;
  positions: number;
  samples: {
    prompt: string;
    prompt_ids: number[];
    ids: number[];
    text: string;
    finish_reason: TraceSample['finishReason'];
    seed: number;
  }[];
}

/** A sweep folder (has sweep.json) or a trace folder (has trace.json). */
export function openDmetSource(dir: string): DmetSource {
  const root = resolve(dir);
  if (existsSync(join(root, 'sweep.json'))) return sweepSource(root);
  if (existsSync(join(root, 'trace.json'))) return traceSource(root);
  throw new LmdynError(
    'not_found',
    `${dir} holds neither sweep.json (lmdyn sweep) nor trace.json (lmdyn trace)`,
  );
}

function sweepSource(root: string): DmetSource {
  const index = readSweepIndex(root); // refuses an unfinished sweep, saying how to finish it
  for (const c of index.configs) requireTrace(join(root, c.dir));
  const first = readTraceJson(join(root, index.configs[0].dir));
  return {
    kind: 'sweep',
    dir: root,
    model: first.meta.model,
    hooks: first.meta.hooks,
    prompt: index.plan.prompt,
    maxTokens: index.plan.maxTokens,
    seed: index.plan.seed,
    configurations: index.configs.map((c) => ({
      index: c.index,
      dir: c.dir,
      sampling: {
        temperature: c.sampling.temperature,
        topP: c.sampling.topP,
        topK: c.sampling.topK,
        repetitionPenalty: c.sampling.repetitionPenalty,
      },
    })),
    recordedWith: { model: index.plan.model, tokenizer: index.plan.tokenizer },
    load: (config, hook) => loadConfig(join(root, config.dir), hook),
  };
}

function traceSource(root: string): DmetSource {
  requireTrace(root);
  const json = readTraceJson(root);
  const d = json.meta.decoding;
  if (json.meta.mode !== 'sample') {
    throw new LmdynError(
      'bad_argument',
      `${root} is a teacher-forced trace; the DMET lens needs sampled generations`,
    );
  }
  const config: DmetConfiguration = {
    index: 0,
    dir: '.',
    sampling: {
      temperature: d.temperature,
      topP: d.topP,
      topK: d.topK,
      repetitionPenalty: d.repetitionPenalty,
    },
  };
  return {
    kind: 'trace',
    dir: root,
    model: json.meta.model,
    hooks: json.meta.hooks,
    prompt: json.samples[0]?.prompt ?? '',
    maxTokens: json.meta.maxTokens,
    seed: json.meta.seed,
    configurations: [config],
    recordedWith: {
      model: json.meta.model.hubId ? json.meta.model.spec : json.meta.model.path,
      tokenizer: null,
    },
    load: (_, hook) => loadConfig(root, hook),
  };
}

function readTraceJson(dir: string): TraceJson {
  const path = join(dir, 'trace.json');
  if (!existsSync(path))
    throw new LmdynError('not_found', `${dir} is not a trace folder (no trace.json)`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as TraceJson;
  } catch {
    throw new LmdynError('bad_format', `${path} is not valid JSON`);
  }
}

/** One configuration: its samples and the hook's states [samples, positions, width]. */
function loadConfig(dir: string, hook: string): DmetConfigData {
  const json = readTraceJson(dir);
  const file = openSafetensors(join(dir, 'trace.safetensors'));
  try {
    const info = file.byName.get(hook);
    if (!info)
      throw new LmdynError('bad_argument', `${dir}: trace.safetensors has no tensor '${hook}'`);
    const [S, P, width] = info.shape;
    if (S !== json.samples.length || P !== json.positions) {
      throw new LmdynError(
        'bad_format',
        `${dir}: '${hook}' has shape [${info.shape.join(', ')}], trace.json says ${json.samples.length} samples × ${json.positions} positions`,
      );
    }
    const states = readTensorF32(file, hook, new Float32Array(S * P * width)); // a plain array, not the kernels' arena
    requireFiniteStates(dir, hook, states, width, P, lengths(json.samples));
    return {
      samples: json.samples.map((s, i) => ({
        sample: i,
        seed: s.seed,
        text: s.text,
        promptLength: s.prompt_ids.length,
        generated: s.ids.length,
        finishReason: s.finish_reason,
      })),
      positions: P,
      width,
      states,
    };
  } finally {
    closeSafetensors(file);
  }
}

/**
 * Writes the run into `dir` (created if needed) as one committed unit (io/commit.ts,
 * dmet.manifest.json), replacing an earlier DMET run there whole; returns the paths written.
 */
export async function writeDmetRun(
  dir: string,
  result: DmetResult,
  options: { png?: boolean; plots?: boolean } = {},
): Promise<string[]> {
  return commitBeside(dir, 'dmet', (stage) => writeDmetFiles(stage, result, options));
}

async function writeDmetFiles(
  dir: string,
  result: DmetResult,
  options: { png?: boolean; plots?: boolean },
): Promise<void> {
  const written: string[] = [];
  const json = join(dir, 'dmet.json');
  writeFileAtomic(json, JSON.stringify(result.report, finiteOrNull, 1) + '\n');
  written.push(json);
  const meta = { lens: 'dmet', spec: paperRef('dmet'), lmdyn_version: result.report.lmdyn_version };
  const rows = join(dir, 'dmet.parquet');
  writeParquet(rows, rowColumns(result.rows), meta);
  written.push(rows);
  const curves = join(dir, 'dmet_trajectories.parquet');
  writeParquet(
    curves,
    [
      { name: 'config', type: 'INT32', data: result.curves.map((c) => c.config) },
      { name: 'sample', type: 'INT32', data: result.curves.map((c) => c.sample) },
      { name: 'step', type: 'INT32', data: result.curves.map((c) => c.step) },
      { name: 'pc1', type: 'DOUBLE', data: result.curves.map((c) => c.pc1) },
      { name: 'pc2', type: 'DOUBLE', data: result.curves.map((c) => c.pc2) },
      { name: 'cluster', type: 'INT32', data: result.curves.map((c) => c.cluster) },
      { name: 'jump', type: 'INT32', data: result.curves.map((c) => c.jump) },
    ],
    {
      ...meta,
      note: 'jump = 1 where the step from this point to the next is a jump (d_t > C_mean + 2 C_std)',
    },
  );
  written.push(curves);
  const diagrams = join(dir, 'dmet_persistence.parquet');
  writeParquet(
    diagrams,
    [
      { name: 'config', type: 'INT32', data: result.diagrams.map((d) => d.config) },
      { name: 'sample', type: 'INT32', data: result.diagrams.map((d) => d.sample) },
      { name: 'dim', type: 'INT32', data: result.diagrams.map((d) => d.dim) },
      { name: 'birth', type: 'DOUBLE', data: result.diagrams.map((d) => d.birth) },
      {
        name: 'death',
        type: 'DOUBLE',
        data: result.diagrams.map((d) => (d.death === null ? NaN : d.death)),
      },
    ],
    { ...meta, note: 'death null = essential class' },
  );
  written.push(diagrams);
  if (options.plots ?? true) {
    const plotDir = join(dir, 'dmet-plots');
    mkdirSync(plotDir, { recursive: true });
    for (const { name, spec } of dmetPlots(result))
      written.push(await writePlot(join(plotDir, name), spec, { png: options.png }));
  }
}

const ROW_COLUMNS: { key: keyof SequenceRow; type: 'INT32' | 'DOUBLE' | 'STRING' }[] = [
  { key: 'config', type: 'INT32' },
  { key: 'dir', type: 'STRING' },
  { key: 'temperature', type: 'DOUBLE' },
  { key: 'top_p', type: 'DOUBLE' },
  { key: 'top_k', type: 'INT32' },
  { key: 'repetition_penalty', type: 'DOUBLE' },
  { key: 'sample', type: 'INT32' },
  { key: 'seed', type: 'INT32' },
  { key: 'finish_reason', type: 'STRING' },
  { key: 'prompt_tokens', type: 'INT32' },
  { key: 'generated_tokens', type: 'INT32' },
  { key: 'points', type: 'INT32' },
  { key: 'C_mean', type: 'DOUBLE' },
  { key: 'C_std', type: 'DOUBLE' },
  { key: 'C_max', type: 'DOUBLE' },
  { key: 'jumps', type: 'DOUBLE' },
  { key: 'C_cos', type: 'DOUBLE' },
  { key: 'C_norm', type: 'DOUBLE' },
  { key: 'silhouette', type: 'DOUBLE' },
  { key: 'persistence', type: 'DOUBLE' },
  { key: 'h1_pairs', type: 'DOUBLE' },
  { key: 'predictability', type: 'DOUBLE' },
  { key: 'predictability_mse', type: 'DOUBLE' },
  { key: 'pc1_ratio', type: 'DOUBLE' },
  { key: 'pc2_ratio', type: 'DOUBLE' },
  { key: 'perplexity', type: 'DOUBLE' },
  { key: 'log_ppl', type: 'DOUBLE' },
  { key: 'spelling', type: 'DOUBLE' },
  { key: 'diversity', type: 'DOUBLE' },
  { key: 'grammar', type: 'DOUBLE' },
  { key: 'coherence', type: 'DOUBLE' },
  { key: 'sentences', type: 'INT32' },
  { key: 'text', type: 'STRING' },
];

function rowColumns(rows: readonly SequenceRow[]): ParquetColumn[] {
  return ROW_COLUMNS.map(({ key, type }) =>
    type === 'STRING'
      ? { name: key, type, data: rows.map((r) => String(r[key])) }
      : { name: key, type, data: rows.map((r) => r[key] as number) },
  );
}

/** JSON has no NaN or ∞: they are written as null. */
function finiteOrNull(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}
