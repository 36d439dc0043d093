/**
 * Records generation trajectories: every selected hook at every position of every sample, the
 * tokens, and per generated step the logprob and entropy of the model's own distribution and
 * of the one sampled from, plus the logits as asked (top-k or full).
 */
import { encodePrompt, stopIds, type Model } from '../model/model.js';
import { generateBatch, type GenerationStep } from '../decode/generate.js';
import {
  distributionStats,
  isPlainSampling,
  nextTokenDistribution,
  validateSampling,
  type SamplingConfig,
} from '../decode/sampling.js';
import { LmdynError } from '../errors.js';
import { weightsSha256 } from '../io/fingerprint.js';
import { compileFilter, type Hook } from '../model/hooks.js';
import { filterGtWasm, softmaxStatsWasm } from '../tensor/wasm/kernels.js';
import { VERSION } from '../version.js';
import type { LogitsMode, Trace, TraceMeta, TraceSample } from './types.js';

export const DEFAULT_HOOKS = ['hook_embed', 'blocks.*.hook_resid_post', 'ln_final.hook_normalized'];

export interface RecordOptions {
  /** Label for the model in trace.json (what the user typed); defaults to the path. */
  spec?: string;
  prompt?: string;
  /** The prompt's ids, used instead of encoding `prompt` (e.g. a chat template's output). */
  promptIds?: readonly number[];
  /** Samples of `prompt` (default 1). */
  samples?: number;
  /** Teacher-force these texts instead of sampling (one sample each). */
  texts?: readonly string[];
  maxTokens?: number;
  sampling?: Partial<SamplingConfig>;
  /** Sample i uses seed + i. */
  seed?: number;
  hooks?: readonly string[];
  logits?: LogitsMode;
  /** Called as the recording advances: `done` of `total` steps (teacher forcing: texts). */
  onProgress?: (done: number, total: number) => void;
  /** Refuse a recording whose memory estimate (estimateTraceBytes) is larger (default: none). */
  maxBytes?: number;
}

/** What a recording needs, estimated before anything is allocated. */
export interface TraceEstimate {
  /** Peak memory: recorded arrays, the KV cache of the batch, the parquet rows. */
  memory: number;
  /** The trace folder on disk. */
  disk: number;
}

/**
 * The bytes a recording of S samples × P positions (N generated steps) needs: every hook's
 * states [S, P, width] (f32), tokens, per-step statistics, the logits as asked, the batch's KV
 * cache, and the steps.parquet rows being built (about 16 bytes a cell).
 */
export function estimateTraceBytes(
  model: Model,
  hooks: readonly string[],
  S: number,
  P: number,
  N: number,
  logits: LogitsMode,
): TraceEstimate {
  const c = model.config;
  const width = (name: string): number => {
    if (/attn\.hook_pattern$/.test(name)) return c.nHeads * P;
    if (/attn\.hook_(q|rot_q|z)$/.test(name)) return c.nHeads * c.headDim;
    if (/attn\.hook_(k|v|rot_k)$/.test(name)) return c.nKvHeads * c.headDim;
    if (/mlp\.hook_(pre|post)$/.test(name)) return c.hiddenDim;
    return c.dim;
  };
  const states = hooks.reduce((a, h) => a + S * P * width(h) * 4, 0);
  const logitBytes =
    logits.kind === 'topk'
      ? S * N * logits.k * 8
      : logits.kind === 'full'
        ? S * N * c.vocabSize * 4
        : 0;
  const perStep = 5 * S * N * 4 + S * P * 4;
  const cache = 2 * c.nLayers * S * P * c.nKvHeads * c.headDim * 4;
  const rows = S * N * (10 + hooks.length) * 16;
  const disk = states + logitBytes + perStep + S * N * (10 + hooks.length) * 8;
  return { memory: states + logitBytes + perStep + cache + rows, disk };
}

/** Top-k logits need k ≤ the vocabulary (a larger k would only record padding). */
export function checkLogitsMode(model: Model, mode: LogitsMode): void {
  const V = model.config.vocabSize;
  if (mode.kind === 'topk' && mode.k > V) {
    throw new LmdynError(
      'bad_argument',
      `--logits topk:${mode.k} asks for more than the vocabulary (${V} tokens); use topk:K with K ≤ ${V}, or full`,
    );
  }
}

/** 1.5 GB, 12 MB: a byte count for a message. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${n.toPrecision(3)} ${units[i]}`;
}

export function recordTrace(model: Model, options: RecordOptions = {}): Trace {
  const hooks = resolveHooks(model, options.hooks ?? DEFAULT_HOOKS);
  const sampling = validateSampling(options.sampling ?? {});
  const seed = options.seed ?? 42;
  const logitsMode = options.logits ?? { kind: 'topk', k: 20 };
  const teacher = options.texts !== undefined;
  const maxTokens = options.maxTokens ?? 100;
  const prompts: { prompt: string; ids: number[]; forced: number[] }[] = [];
  if (teacher) {
    if (options.texts!.length === 0)
      throw new LmdynError('bad_argument', 'no texts to teacher-force');
    for (const text of options.texts!) {
      const ids = encodePrompt(model, text);
      if (ids.length < 2)
        throw new LmdynError('bad_argument', `text '${text}' has fewer than two tokens`);
      prompts.push({ prompt: '', ids: ids.slice(0, 1), forced: ids.slice(1) });
    }
  } else {
    const samples = options.samples ?? 1;
    if (!(Number.isInteger(samples) && samples >= 1)) {
      throw new LmdynError('bad_argument', `samples must be a whole number ≥ 1, got ${samples}`);
    }
    const ids = options.promptIds ? [...options.promptIds] : encodePrompt(model, options.prompt ?? '');
    for (let i = 0; i < samples; i++)
      prompts.push({ prompt: options.prompt ?? '', ids, forced: [] });
  }
  const S = prompts.length;
  const maxSteps = teacher ? Math.max(...prompts.map((p) => p.forced.length)) : maxTokens;
  const maxPositions = Math.min(
    model.config.seqLen,
    Math.max(...prompts.map((p) => p.ids.length)) + maxSteps,
  );
  checkLogitsMode(model, logitsMode);
  const need = estimateTraceBytes(model, hooks, S, maxPositions, maxSteps, logitsMode);
  if (options.maxBytes !== undefined && need.memory > options.maxBytes) {
    throw new LmdynError(
      'bad_argument',
      `this trace needs about ${formatBytes(need.memory)} of memory and ${formatBytes(need.disk)} of disk (${S} samples × ${maxPositions} positions × ${hooks.length} hooks), over --max-memory ${formatBytes(options.maxBytes)}; lower --samples or --max-tokens, record fewer --hooks, or raise --max-memory (or pass --yes)`,
    );
  }
  const rec = new Recorder(
    model,
    hooks,
    S,
    maxPositions,
    maxSteps,
    logitsMode,
    isPlainSampling(sampling),
  );
  const stepHooks: Hook[] = [
    { filter: (n) => rec.wants(n), fn: (act, ctx) => rec.onHook(act, ctx) },
  ];

  let samples: TraceSample[];
  if (teacher) {
    samples = prompts.map((p, i) => {
      const ids = [...p.ids, ...p.forced].slice(0, maxPositions);
      const tf = model.transformer;
      const out = tf.forward(tf.newCache(1, ids.length), [{ seq: 0, tokens: ids }], {
        logits: 'all',
        hooks: stepHooks.map((h) => ({
          ...h,
          fn: (act, ctx) => h.fn(act, { ...ctx, rows: ctx.rows.map((r) => ({ ...r, seq: i })) }),
        })),
      });
      const V = model.config.vocabSize;
      for (let s = 0; s + 1 < ids.length; s++) {
        const logits = out.logits.subarray(s * V, (s + 1) * V);
        const d = nextTokenDistribution(logits, ids.slice(0, s + 1), sampling);
        rec.onStep({
          seq: i,
          step: s,
          position: s + 1,
          token: ids[s + 1],
          logits,
          probs: d.probs,
          scores: d.scores,
          kept: d.kept,
          stats: d.stats,
        });
      }
      rec.setTokens(i, ids);
      options.onProgress?.(i + 1, prompts.length);
      return {
        prompt: p.prompt,
        promptIds: ids.slice(0, 1),
        ids: ids.slice(1),
        text: model.tokenizer.decode(ids),
        finishReason: 'teacher_forced' as const,
        seed,
      };
    });
  } else {
    let stepsDone = 0;
    const { outputs } = generateBatch(
      model.transformer,
      prompts.map((p, i) => ({ promptIds: p.ids, maxTokens, sampling, seed: seed + i })),
      {
        hooks: stepHooks,
        stopIds: stopIds(model),
        forwardLast: true,
        onStep: (st) => {
          rec.onStep(st);
          if (st.step + 1 > stepsDone) {
            stepsDone = st.step + 1;
            options.onProgress?.(stepsDone, maxTokens);
          }
        },
      },
    );
    samples = outputs.map((o, i) => {
      rec.setTokens(i, [...o.promptIds, ...o.ids]);
      return {
        prompt: prompts[i].prompt,
        promptIds: o.promptIds,
        ids: o.ids,
        text: model.tokenizer.decode([...o.promptIds, ...o.ids]),
        finishReason: o.finishReason,
        seed: o.seed,
      };
    });
  }
  const meta = traceMeta(model, options.spec ?? model.source.path, {
    mode: teacher ? 'teacher_forced' : 'sample',
    decoding: sampling,
    maxTokens,
    seed,
    hooks,
    logits: logitsMode,
  });
  return rec.finish(meta, samples);
}

/** Expands hook globs to hook point names; an unknown pattern is refused with the valid names. */
export function resolveHooks(model: Model, patterns: readonly string[]): string[] {
  const valid = model.transformer.hookPointNames();
  const chosen = new Set<string>();
  for (const pattern of patterns) {
    const match = compileFilter(pattern);
    const hits = valid.filter(match);
    if (hits.length === 0) {
      throw new LmdynError(
        'bad_argument',
        `unknown hook pattern '${pattern}'; valid names: ${summarizeNames(valid)}`,
      );
    }
    hits.forEach((h) => chosen.add(h));
  }
  chosen.delete('logits'); // logits are recorded per step, as chosen by the logits option
  return valid.filter((n) => chosen.has(n));
}

/** hook_embed, blocks.{0..L-1}.hook_resid_post, ... : names with the layer folded into {0..L-1}. */
function summarizeNames(names: readonly string[]): string {
  const folded = new Map<string, number>();
  for (const n of names) {
    const k = n.replace(/^blocks\.\d+\./, 'blocks.{l}.');
    folded.set(k, (folded.get(k) ?? 0) + 1);
  }
  return (
    [...folded.keys()].join(', ') +
    ` (l = 0..${Math.max(0, ...names.map((n) => Number(/^blocks\.(\d+)\./.exec(n)?.[1] ?? -1)))})`
  );
}

export function traceMeta(
  model: Model,
  spec: string,
  run: Pick<TraceMeta, 'mode' | 'decoding' | 'maxTokens' | 'seed' | 'hooks' | 'logits'>,
): TraceMeta {
  const c = model.config;
  const t = model.tokenizer;
  return {
    lmdyn: VERSION,
    model: {
      spec,
      path: model.source.path,
      hubId: model.source.hubId,
      format: model.source.format,
      architecture: c.architecture,
      sourceArchitecture: c.sourceArchitecture,
      sha256: weightsSha256(model.source),
      dim: c.dim,
      layers: c.nLayers,
      vocabSize: c.vocabSize,
    },
    tokenizer: { kind: t.kind, vocabSize: t.vocabSize, bosId: t.bosId, eosId: t.eosId },
    ...run,
    notes: [
      'blocks.{l}.hook_resid_post is the residual stream after block l, before the final norm; ln_final.hook_normalized is after it (HF hidden_states[-1]).',
      'logprob/entropy: the model’s own next-token distribution (temperature 1, no penalties); sampled_*: the distribution actually sampled from.',
      `sample i uses seed ${run.seed} + i`,
    ],
  };
}

/** Collects hook activations and per-step statistics into padded arrays. */
class Recorder {
  private readonly states = new Map<string, { width: number; data: Float32Array }>();
  private readonly tokens: Int32Array;
  private readonly logprob: Float32Array;
  private readonly entropy: Float32Array;
  private readonly top1Prob: Float32Array;
  private readonly sampledLogprob: Float32Array;
  private readonly sampledEntropy: Float32Array;
  private readonly topkValues: Float32Array | null = null;
  private readonly topkIds: Int32Array | null = null;
  private readonly fullLogits: Float32Array | null = null;
  private readonly hookSet: Set<string>;
  private lengths: number[];
  private stepCounts: number[];

  constructor(
    private readonly model: Model,
    hooks: readonly string[],
    private readonly S: number,
    private readonly P: number,
    private readonly N: number,
    private readonly logitsMode: LogitsMode,
    /** The sampled distribution is the model's own: its statistics serve for both. */
    private readonly plain: boolean,
  ) {
    this.hookSet = new Set(hooks);
    this.tokens = new Int32Array(S * P).fill(-1);
    const perStep = () => new Float32Array(S * N).fill(NaN);
    this.logprob = perStep();
    this.entropy = perStep();
    this.top1Prob = perStep();
    this.sampledLogprob = perStep();
    this.sampledEntropy = perStep();
    if (logitsMode.kind === 'topk') {
      this.topkValues = new Float32Array(S * N * logitsMode.k).fill(NaN);
      this.topkIds = new Int32Array(S * N * logitsMode.k).fill(-1);
    } else if (logitsMode.kind === 'full') {
      this.fullLogits = new Float32Array(S * N * model.config.vocabSize).fill(NaN);
    }
    this.lengths = new Array<number>(S).fill(0);
    this.stepCounts = new Array<number>(S).fill(0);
  }

  wants(name: string): boolean {
    return this.hookSet.has(name);
  }

  onHook(
    act: Float32Array,
    ctx: { name: string; rows: readonly { seq: number; pos: number }[]; width: number },
  ): void {
    let entry = this.states.get(ctx.name);
    if (!entry) {
      entry = { width: ctx.width, data: new Float32Array(this.S * this.P * ctx.width).fill(NaN) };
      this.states.set(ctx.name, entry);
    }
    const { width, data } = entry;
    ctx.rows.forEach((r, i) => {
      if (r.pos < this.P)
        data.set(act.subarray(i * width, (i + 1) * width), (r.seq * this.P + r.pos) * width);
    });
  }

  onStep(st: GenerationStep): void {
    if (st.step >= this.N) return;
    const at = st.seq * this.N + st.step;
    const sampled = st.stats ?? distributionStats(st);
    this.sampledLogprob[at] = Math.log(st.probs[st.token]);
    this.sampledEntropy[at] = sampled.entropy;
    if (this.plain) {
      this.logprob[at] = this.sampledLogprob[at];
      this.entropy[at] = sampled.entropy;
      this.top1Prob[at] = sampled.top1;
    } else {
      const { logprob, entropy, top1 } = logSoftmaxStats(st.logits, st.token);
      this.logprob[at] = logprob;
      this.entropy[at] = entropy;
      this.top1Prob[at] = top1;
    }
    if (this.topkValues && this.topkIds && this.logitsMode.kind === 'topk') {
      const k = this.logitsMode.k;
      const top = topK(st.logits, k);
      top.forEach(([id, v], j) => {
        this.topkIds![at * k + j] = id;
        this.topkValues![at * k + j] = v;
      });
    } else if (this.fullLogits) {
      this.fullLogits.set(st.logits, at * st.logits.length);
    }
    this.stepCounts[st.seq] = Math.max(this.stepCounts[st.seq], st.step + 1);
  }

  setTokens(seq: number, ids: readonly number[]): void {
    const n = Math.min(ids.length, this.P);
    for (let p = 0; p < n; p++) this.tokens[seq * this.P + p] = ids[p];
    this.lengths[seq] = n;
  }

  /** Trims the padding to the longest sample and hands the arrays over. */
  finish(meta: TraceMeta, samples: TraceSample[]): Trace {
    const positions = Math.max(1, ...this.lengths);
    const steps = Math.max(0, ...this.stepCounts);
    const trim = <T extends Float32Array | Int32Array>(
      a: T,
      inner: number,
      from: number,
      to: number,
    ): T => {
      if (from === to) return a;
      const out = new (a.constructor as new (n: number) => T)(this.S * to * inner);
      for (let s = 0; s < this.S; s++)
        out.set(a.subarray(s * from * inner, (s * from + to) * inner), s * to * inner);
      return out;
    };
    const states = new Map<string, { width: number; data: Float32Array }>();
    for (const name of meta.hooks) {
      const e = this.states.get(name);
      if (e) states.set(name, { width: e.width, data: trim(e.data, e.width, this.P, positions) });
    }
    const k = this.logitsMode.kind === 'topk' ? this.logitsMode.k : 0;
    return {
      meta,
      samples,
      positions,
      steps,
      states,
      tokens: trim(this.tokens, 1, this.P, positions),
      logprob: trim(this.logprob, 1, this.N, steps),
      entropy: trim(this.entropy, 1, this.N, steps),
      top1Prob: trim(this.top1Prob, 1, this.N, steps),
      sampledLogprob: trim(this.sampledLogprob, 1, this.N, steps),
      sampledEntropy: trim(this.sampledEntropy, 1, this.N, steps),
      topkValues: this.topkValues ? trim(this.topkValues, k, this.N, steps) : null,
      topkIds: this.topkIds ? trim(this.topkIds, k, this.N, steps) : null,
      fullLogits: this.fullLogits
        ? trim(this.fullLogits, this.model.config.vocabSize, this.N, steps)
        : null,
    };
  }
}

/**
 * log softmax(z)[token], the entropy of softmax(z) and its largest probability. With the SIMD
 * kernel the exponentials are f32 and the sums f64 (~1e-7 relative, below the f32 the trace
 * stores); without it, float64 Math.exp.
 */
export function logSoftmaxStats(
  z: Float32Array,
  token: number,
): { logprob: number; entropy: number; top1: number } {
  const k = softmaxStatsWasm(z);
  let max = -Infinity;
  let sum = 0;
  let weighted = 0;
  if (k) {
    ({ max, sum, weighted } = k);
  } else {
    for (let i = 0; i < z.length; i++) if (z[i] > max) max = z[i];
    for (let i = 0; i < z.length; i++) {
      const e = Math.exp(z[i] - max);
      sum += e;
      if (e > 0) weighted += e * (z[i] - max);
    }
  }
  const lse = Math.log(sum);
  return { logprob: z[token] - max - lse, entropy: lse - weighted / sum, top1: 1 / sum };
}

/** The k largest entries as [id, value], largest first (ties: lower id first). */
export function topK(z: Float32Array, k: number): [number, number][] {
  const n = Math.min(k, z.length);
  const ids = new Int32Array(n);
  const vals = new Float32Array(n); // vals[j] = z[ids[j]], descending
  let filled = 0;
  // Once k are held, most entries fall at or under the k-th largest: one compare each.
  let floor = -Infinity;
  const insert = (i: number): void => {
    const v = z[i];
    if (filled === n && !(v > floor)) return;
    let j = filled < n ? filled++ : n - 1;
    while (j > 0 && vals[j - 1] < v) {
      vals[j] = vals[j - 1];
      ids[j] = ids[j - 1];
      j--;
    }
    vals[j] = v;
    ids[j] = i;
    if (filled === n) floor = vals[n - 1];
  };
  // A prefix in JS; past it, only the entries above the prefix's k-th largest can enter (the
  // floor only rises, and an entry equal to it loses the tie to a lower id), so the SIMD filter
  // hands over those alone, in id order: the same result as visiting every entry.
  const head = Math.min(z.length, TOPK_PREFIX);
  for (let i = 0; i < head; i++) insert(i);
  const rest = filled === n && z.length > head ? filterGtWasm(z.subarray(head), floor) : null;
  if (rest) {
    for (let c = 0; c < rest.length; c++) insert(head + rest[c]);
  } else {
    for (let i = head; i < z.length; i++) insert(i);
  }
  return Array.from(ids, (id, j) => [id, vals[j]]);
}

/** Entries topK scans in JS before the SIMD filter takes over. */
export const TOPK_PREFIX = 1024;
