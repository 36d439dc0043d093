/**
 * The DMET lens (papers.md §1): for every generated sequence of a sweep (or of one trace), the
 * token-time trajectory of last-layer states, its continuity, clustering and persistence, the
 * quality of the generated text, and the statistics that relate the two across the decoding grid.
 * Returns one plain report (dmet.json), a row per sequence (dmet.parquet), the 2-D curves and the
 * persistence diagrams; every metric carries its papers.md tag.
 */
import type { Model } from '../../model/model.js';
import { LmdynError } from '../../errors.js';
import type { PersistencePair } from '../../stats/rips.js';
import type { TraceMeta } from '../../trace/types.js';
import { VERSION } from '../../version.js';
import {
  minimumPoints,
  PooledFit,
  sequenceDynamics,
  type DynamicsOptions,
  type PooledProjection,
  type PcaSigns,
  type Space,
} from './dynamics.js';
import { summarize, type BalancedBounds, type DmetSummary } from './summary.js';
import type { DmetConfiguration, SequenceRow } from './rows.js';
import { COHERENCE_HOOK, PERPLEXITY_MAX_TOKENS, textQuality } from './text.js';
import { cite, paperRef } from '../../papers.js';

import type { Tag } from '../tag.js';

export type { Tag };

/** The default trajectory hook: post-final-norm, what HF returns as hidden_states[-1]. */
export const DEFAULT_HOOK = 'ln_final.hook_normalized';

export interface DmetSequenceInput {
  sample: number;
  seed: number;
  /** Decoded prompt + continuation. */
  text: string;
  promptLength: number;
  generated: number;
  finishReason: string;
}

/** One configuration's sequences and the chosen hook's states [samples, positions, width]. */
export interface DmetConfigData {
  samples: DmetSequenceInput[];
  positions: number;
  width: number;
  states: Float32Array;
}

/** Where the sequences come from (see io.ts: a `lmdyn sweep` folder or one trace folder). */
export interface DmetSource {
  kind: 'sweep' | 'trace';
  dir: string;
  model: TraceMeta['model'];
  /** Hooks recorded in the traces. */
  hooks: string[];
  prompt: string;
  maxTokens: number;
  /** Seed of the recording (sample i uses seed + i). */
  seed: number;
  configurations: DmetConfiguration[];
  /** The model (and tokenizer override) the generations came from: the default scorer. */
  recordedWith: { model: string; tokenizer: string | null };
  load(config: DmetConfiguration, hook: string): DmetConfigData;
}

export interface DmetOptions {
  hook?: string;
  /** Keep generation step 0 (the last prompt position) in the trajectory (code: dropped). */
  keepFirstStep?: boolean;
  /** Append the state of the last generated token (HF never computes it; the trace has it). */
  includeLastToken?: boolean;
  space?: Space;
  bugCompatible?: boolean;
  /**
   * 'paper-code': the released code's conventions — bug-compatible continuity on a per-sequence
   * PCA whose signs follow scikit-learn's svd_flip (`pcaSigns`, default sklearn ≥ 1.5).
   * 'lmdyn' (default): the intended time-difference continuity.
   */
  convention?: 'lmdyn' | 'paper-code';
  pcaSigns?: PcaSigns;
  clusters?: number;
  kmeansSeed?: number;
  kmeansInit?: number;
  ripsThreshold?: number;
  predictability?: boolean;
  /** Model scoring perplexity and coherence; null skips both. */
  scorer: Model | null;
  /** Known words for the spelling score (io/dictionary.ts loadDictionary: word-list + letters). */
  dictionary: ReadonlySet<string>;
  scorerSpec?: string;
  balanced?: Partial<BalancedBounds>;
  log?: (line: string) => void;
}

/** One point of a 2-D curve (dmet_trajectories.parquet). */
export interface CurvePoint {
  config: number;
  sample: number;
  /** Generation step k whose input state this is (k ≥ 1: the state of generated token y_k). */
  step: number;
  pc1: number;
  pc2: number;
  cluster: number;
  jump: number;
}

export interface DiagramRow extends PersistencePair {
  config: number;
  sample: number;
}

export interface MetricInfo {
  tag: Tag;
  source: string;
  definition: string;
}

export interface DmetReport extends DmetSummary {
  lens: 'dmet';
  spec: string;
  lmdyn_version: string;
  source: {
    kind: 'sweep' | 'trace';
    dir: string;
    configurations: number;
    prompt: string;
    max_tokens: number;
  };
  model: { spec: string; architecture: string; dim: number; layers: number };
  seed: { kmeans: number; recording: number; note: string };
  config: {
    hook: string;
    hook_note: string;
    trajectory: string;
    keep_first_step: boolean;
    include_last_token: boolean;
    space: Space;
    space_tag: Tag;
    /** Which conventions produced the numbers: paper-code = bug-compatible continuity on svd_flip-signed per-sequence PCA. */
    convention: 'lmdyn' | 'paper-code';
    bug_compatible: boolean;
    pca_signs: string;
    clusters: number;
    kmeans: string;
    kmeans_n_init: number;
    rips: { max_dim: number; threshold: number | null; note: string };
    predictability: boolean;
    scorer: {
      spec: string | null;
      perplexity_max_tokens: number;
      coherence_hook: string;
      note: string;
    };
    dictionary: string;
    min_points: number;
  };
  metrics: Record<string, MetricInfo>;
  skipped: { config: number; sample: number; reason: string }[];
  published: { silhouette_readme: number; note: string };
}

export interface DmetResult {
  report: DmetReport;
  rows: SequenceRow[];
  curves: CurvePoint[];
  diagrams: DiagramRow[];
}

export function analyzeDmet(source: DmetSource, options: DmetOptions): DmetResult {
  const log = options.log ?? (() => undefined);
  const { hook, dyn } = checkDmetOptions(source, options);
  const window = {
    keepFirstStep: options.keepFirstStep ?? false,
    includeLastToken: options.includeLastToken ?? false,
  };
  const minPoints = minimumPoints(dyn.clusters);
  const dictionary = options.dictionary;

  let pooled: PooledProjection | undefined;
  if (dyn.space === 'pooled') {
    const fit = new PooledFit(source.model.dim);
    for (const config of source.configurations) {
      const data = source.load(config, hook);
      for (const s of data.samples) {
        const t = trajectory(data, s, window);
        if (t.n >= minPoints) fit.add(t.h, t.n);
      }
    }
    pooled = fit.finish();
    log(`dmet: pooled PCA over ${pooled.rows} states`);
  }

  const rows: SequenceRow[] = [];
  const curves: CurvePoint[] = [];
  const diagrams: DiagramRow[] = [];
  const skipped: DmetReport['skipped'] = [];
  const started = Date.now();
  source.configurations.forEach((config, ci) => {
    const data = source.load(config, hook);
    for (const s of data.samples) {
      const t = trajectory(data, s, window);
      const q = textQuality(s.text, options.scorer, dictionary);
      const row = emptyRow(config, s, t.n);
      Object.assign(row, {
        perplexity: q.perplexity ?? NaN,
        log_ppl: q.logPerplexity ?? NaN,
        spelling: q.spelling,
        diversity: q.diversity,
        grammar: q.grammar,
        coherence: q.coherence,
        sentences: q.sentences,
      });
      if (t.n < minPoints) {
        skipped.push({
          config: config.index,
          sample: s.sample,
          reason: `${t.n} trajectory points (needs ${minPoints})`,
        });
      } else {
        const d = sequenceDynamics(t.h, t.n, data.width, dyn, pooled);
        Object.assign(row, {
          C_mean: d.continuity.mean,
          C_std: d.continuity.std,
          C_max: d.continuity.max,
          jumps: d.jumpSteps.length,
          C_cos: d.cosineContinuity ?? NaN,
          C_norm: d.normalisedContinuity ?? NaN,
          silhouette: d.silhouette ?? NaN,
          persistence: d.persistence,
          h1_pairs: d.pairs.filter((p) => p.dim === 1).length,
          predictability: d.predictability?.value ?? NaN,
          predictability_mse: d.predictability?.mse ?? NaN,
          pc1_ratio: d.explainedVarianceRatio[0] ?? NaN,
          pc2_ratio: d.explainedVarianceRatio[1] ?? NaN,
        });
        const jumps = new Set(d.jumpSteps);
        for (let i = 0; i < t.n; i++) {
          curves.push({
            config: config.index,
            sample: s.sample,
            step: t.firstStep + i,
            pc1: d.curve[i * 2],
            pc2: d.curve[i * 2 + 1],
            cluster: d.labels[i],
            jump: jumps.has(i) ? 1 : 0,
          });
        }
        for (const p of d.pairs) diagrams.push({ config: config.index, sample: s.sample, ...p });
      }
      rows.push(row);
    }
    const elapsed = (Date.now() - started) / 1000;
    const eta = (elapsed / (ci + 1)) * (source.configurations.length - ci - 1);
    log(
      `dmet: ${ci + 1}/${source.configurations.length} configurations (${config.dir}), ETA ${Math.round(eta)}s`,
    );
  });

  const summary = summarize(rows, source.configurations, {
    predictability: dyn.predictability,
    balanced: options.balanced,
  });
  const report: DmetReport = {
    lens: 'dmet',
    spec: paperRef('dmet'),
    lmdyn_version: VERSION,
    source: {
      kind: source.kind,
      dir: source.dir,
      configurations: source.configurations.length,
      prompt: source.prompt,
      max_tokens: source.maxTokens,
    },
    model: {
      spec: source.model.spec,
      architecture: source.model.architecture,
      dim: source.model.dim,
      layers: source.model.layers,
    },
    seed: {
      kmeans: dyn.kmeansSeed,
      recording: source.seed,
      note: 'k-means++ draws use createRng(kmeans seed) per sequence; sample i of every configuration was recorded with seed recording + i',
    },
    config: {
      hook,
      hook_note: hookNote(hook, source.model.layers),
      trajectory:
        'generation step k (k = 0..N−1 for N generated tokens) reads the state at the position of its input token: ' +
        'k = 0 the last prompt token, k ≥ 1 the generated token y_k (HF generate(output_hidden_states=True)); ' +
        `steps ${window.keepFirstStep ? '0' : '1'}..${window.includeLastToken ? 'N (N: y_N, which HF never forwards)' : 'N−1 (N for a sequence ended by a stop token: HF forwards y_N to sample it)'} are used` +
        (window.keepFirstStep || window.includeLastToken
          ? ''
          : ', exactly the (N−1) × d matrix of the authors’ hidden_state_collector.py'),
      keep_first_step: window.keepFirstStep,
      include_last_token: window.includeLastToken,
      space: dyn.space,
      space_tag: dyn.space === 'per-sequence' ? 'exact' : 'proposed',
      convention: dyn.bugCompatible && dyn.space === 'per-sequence' ? 'paper-code' : 'lmdyn',
      bug_compatible: dyn.bugCompatible,
      pca_signs: `${dyn.pcaSigns}: scikit-learn svd_flip (${dyn.pcaSigns === 'sklearn>=1.5' ? 'largest |loading| of each component positive, u_based_decision=False' : 'largest |score| of each component positive, u_based_decision=True'}); the released code’s scikit-learn version is not pinned`,
      clusters: dyn.clusters,
      kmeans:
        'greedy k-means++ (2 + ⌊ln k⌋ candidates per centre) then Lloyd, max 300 iterations, tol 1e-4 × mean feature variance; lowest inertia over n_init starts',
      kmeans_n_init: dyn.kmeansInit,
      rips: {
        max_dim: 1,
        threshold: dyn.ripsThreshold ?? null,
        note: 'Vietoris–Rips over Z/2 on Euclidean distances (src/stats/rips.ts, ripser conventions); null threshold = enclosing radius, as ripser’s default',
      },
      predictability: dyn.predictability,
      scorer: {
        spec: options.scorer ? (options.scorerSpec ?? options.scorer.source.path) : null,
        perplexity_max_tokens: PERPLEXITY_MAX_TOKENS,
        coherence_hook: COHERENCE_HOOK,
        note: 'the paper scored perplexity with GPT-2 and coherence with sentence-t5-xxl; values are comparable across configurations of one run, not with the paper’s',
      },
      dictionary:
        'word-list (sindresorhus, English, 274k words) + the 26 single letters; pyspellchecker in the paper',
      min_points: minPoints,
    },
    metrics: metricTable(dyn),
    skipped,
    published: {
      silhouette_readme: 0.76,
      note: `${cite('dmet')}: silhouette of the attractor structure in the authors’ README (DeepSeek-R1-Distill-Qwen-7B)`,
    },
    ...summary,
  };
  return { report, rows, curves, diagrams };
}

/** The hook and dynamics options `analyzeDmet` will use; throws a one-line error for bad ones. */
export function checkDmetOptions(
  source: DmetSource,
  options: Omit<DmetOptions, 'scorer' | 'dictionary'>,
): { hook: string; dyn: DynamicsOptions } {
  const hook = options.hook ?? DEFAULT_HOOK;
  if (!source.hooks.includes(hook)) {
    throw new LmdynError(
      'bad_argument',
      `the traces in ${source.dir} did not record '${hook}'; recorded: ${source.hooks.join(', ')} (choose one with --hook)`,
    );
  }
  const paperCode = options.convention === 'paper-code';
  if (paperCode && options.space !== undefined && options.space !== 'per-sequence')
    throw new LmdynError(
      'bad_argument',
      '--convention paper-code fits the PCA per sequence, as the released code; drop --space',
    );
  const dyn: DynamicsOptions = {
    space: options.space ?? 'per-sequence',
    bugCompatible: paperCode || (options.bugCompatible ?? false),
    pcaSigns: options.pcaSigns ?? 'sklearn>=1.5',
    clusters: options.clusters ?? 3,
    kmeansSeed: options.kmeansSeed ?? 42,
    kmeansInit: options.kmeansInit ?? 1,
    ripsMaxDim: 1,
    ripsThreshold: options.ripsThreshold,
    predictability: options.predictability ?? true,
  };
  if (dyn.bugCompatible && dyn.space === 'full') {
    throw new LmdynError(
      'bad_argument',
      '--bug-compatible reproduces the 2-D code path; it cannot be combined with --space full',
    );
  }
  if (!(Number.isInteger(dyn.clusters) && dyn.clusters >= 2)) {
    throw new LmdynError(
      'bad_argument',
      `clusters must be a whole number ≥ 2, got ${dyn.clusters}`,
    );
  }
  return { hook, dyn };
}

/**
 * The rows of a sample's trajectory [n, width] in float64: generation steps first..last, step k
 * at position promptLength − 1 + k. Rows holding NaN (never forwarded) end the trajectory.
 * A sequence that ended with a stop token keeps its last real token y_N: HF forwards y_N to
 * sample the stop token, so its hidden state is among the collector's (N steps, not N − 1).
 */
export function trajectory(
  data: DmetConfigData,
  s: DmetSequenceInput,
  window: { keepFirstStep: boolean; includeLastToken: boolean },
): { h: Float64Array; n: number; firstStep: number } {
  const first = window.keepFirstStep ? 0 : 1;
  const last = window.includeLastToken || s.finishReason === 'eos' ? s.generated : s.generated - 1;
  const W = data.width;
  const rows: number[] = [];
  for (let k = first; k <= last; k++) {
    const pos = s.promptLength - 1 + k;
    if (pos < 0 || pos >= data.positions) break;
    const base = (s.sample * data.positions + pos) * W;
    if (!Number.isFinite(data.states[base])) break;
    rows.push(base);
  }
  const h = new Float64Array(rows.length * W);
  rows.forEach((base, i) => {
    for (let j = 0; j < W; j++) h[i * W + j] = data.states[base + j];
  });
  return { h, n: rows.length, firstStep: first };
}

function hookNote(hook: string, layers: number): string {
  if (hook === 'ln_final.hook_normalized') {
    return 'post-final-norm residual stream (= HF hidden_states[-1] for Llama/Qwen2/GPT-2, what the authors’ code takes for DeepSeek-R1-Distill-Qwen); unembedding input';
  }
  if (hook === `blocks.${layers - 1}.hook_resid_post`) {
    return 'residual stream after the last block, before the final norm';
  }
  return 'a non-default hook chosen by the user';
}

function emptyRow(config: DmetConfiguration, s: DmetSequenceInput, points: number): SequenceRow {
  return {
    config: config.index,
    dir: config.dir,
    temperature: config.sampling.temperature,
    top_p: config.sampling.topP,
    top_k: config.sampling.topK,
    repetition_penalty: config.sampling.repetitionPenalty,
    sample: s.sample,
    seed: s.seed,
    finish_reason: s.finishReason,
    prompt_tokens: s.promptLength,
    generated_tokens: s.generated,
    points,
    C_mean: NaN,
    C_std: NaN,
    C_max: NaN,
    jumps: NaN,
    C_cos: NaN,
    C_norm: NaN,
    silhouette: NaN,
    persistence: NaN,
    h1_pairs: NaN,
    predictability: NaN,
    predictability_mse: NaN,
    pc1_ratio: NaN,
    pc2_ratio: NaN,
    perplexity: NaN,
    log_ppl: NaN,
    spelling: NaN,
    diversity: NaN,
    grammar: NaN,
    coherence: NaN,
    sentences: 0,
    text: s.text,
  };
}

function metricTable(dyn: DynamicsOptions): Record<string, MetricInfo> {
  const code = 'dongqi2025/Dynamic-Manifold-Evolution-Theory analysis/dynamical_analyzer.py';
  const text = 'dongqi2025/Dynamic-Manifold-Evolution-Theory analysis/text_evaluator.py';
  const continuity = dyn.bugCompatible
    ? `bug-compatible: the released code differences the [n, 2] curve along the PCA axis, so C_mean = C_max = mean_t |PC2(t) − PC1(t)| and C_std = NaN (${cite('dmet')})`
    : `d_t = ‖z_{t+1} − z_t‖₂ over the trajectory; C_mean, C_std (unbiased, torch.std) and C_max of d_t — the intended time-difference version (${cite('dmet')})`;
  return {
    C_mean: {
      tag: 'exact',
      source: `${code} analyze_continuity (mean_distance)`,
      definition: continuity,
    },
    C_std: {
      tag: 'exact',
      source: `${code} analyze_continuity (std_distance)`,
      definition: continuity,
    },
    C_max: {
      tag: 'exact',
      source: `${code} analyze_continuity (max_jump)`,
      definition: continuity,
    },
    jumps: {
      tag: 'exact',
      source: `${code} run_full_analysis (jump_steps)`,
      definition: 'number of steps with d_t > C_mean + 2·C_std (none in bug-compatible mode)',
    },
    silhouette: {
      tag: 'exact',
      source: `${code} cluster_analysis (KMeans(n_clusters=3, random_state=42), silhouette_score)`,
      definition:
        'Q = mean silhouette (Euclidean) of k-means labels of the trajectory points; seeds differ from scikit-learn’s stream',
    },
    persistence: {
      tag: 'exact',
      source: `${code} topological_analysis (ripser maxdim=1, H1_persistence)`,
      definition:
        'P = max over H1 pairs of death − birth of the Vietoris–Rips filtration of the trajectory points; 0 when H1 is empty',
    },
    predictability: {
      tag: 'proposed',
      source: `${code} temporal_dynamics (LSTM; cannot run on one sequence as released)`,
      definition:
        `1/(MSE + 1e-6) of a least-squares AR(1) fit z_{t+1} ≈ A z_t + b on the trajectory (${cite('dmet')}, proposed)`,
    },
    C_cos: {
      tag: 'proposed',
      source: `${cite('dmet')} bounded variants`,
      definition: 'mean_t cos(h_{t+1}, h_t) of the raw last-layer states',
    },
    C_norm: {
      tag: 'proposed',
      source: `${cite('dmet')} bounded variants`,
      definition: 'C_mean / mean_t ‖z_t − z̄‖ in the space the metrics use',
    },
    log_ppl: {
      tag: 'proposed',
      source: `${text} _calc_perplexity scores with GPT-2 without BOS; here the scorer (by default the generating model scoring itself) with BOS first, so the value is not the paper's`,
      definition:
        'log of exp(mean NLL) of tokens 2..n of prompt + continuation under the scorer, ≤ 512 tokens',
    },
    spelling: {
      tag: 'proposed',
      source: `${text} _spelling_check: the formula is the code's, the dictionary is not (pyspellchecker's English list there, the word-list package here)`,
      definition:
        '1 − |distinct unknown words| / |words|, words = \\b\\w+\\b lower-cased; dictionary: word-list + single letters',
    },
    diversity: {
      tag: 'exact',
      source: `${text} _ngram_diversity`,
      definition: '|unique word bigrams| / max(#words − 1, 1)',
    },
    grammar: {
      tag: 'exact',
      source: `${text} _rule_based_grammar`,
      definition:
        '1 − errors / (#segments + 1e-6), segments = split on [.!?]; errors: lower-case sentence start, first word ending in s followed by a word starting with ing',
    },
    coherence: {
      tag: 'proposed',
      source: `${text} _semantic_coherence (sentence-t5-xxl in the paper)`,
      definition:
        'mean cosine of adjacent sentences’ mean-pooled scorer states (ln_final.hook_normalized, BOS excluded); 0.5 under two sentences',
    },
  };
}
