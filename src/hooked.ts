/**
 * TransformerLens's working vocabulary over lmdyn's forward pass: run with a cache of named
 * activations shaped as TransformerLens shapes them, run with hooks that read or replace,
 * activation patching, steering vectors, the logit lens (accumulated residual → final norm →
 * unembedding) and token helpers. Everything here is a thin layer over Transformer.forward and
 * its hook points (model/hooks.ts); shapes are made here, not in the forward pass.
 *
 * Shapes (row-major Float32Array + shape, batch first):
 *   residual, attn_out, mlp_out, ln*.hook_normalized, hook_embed     [batch, pos, d_model]
 *   attn.hook_q|hook_z|hook_rot_q                                      [batch, pos, n_heads, d_head]
 *   attn.hook_k|hook_v|hook_rot_k                                      [batch, pos, n_kv_heads, d_head]
 *   attn.hook_pattern                                                  [batch, n_heads, query, key]
 *   mlp.hook_pre|hook_post                                             [batch, pos, d_mlp]
 *   logits                                                             [batch, pos, vocab]
 */
import { encodePrompt, type Model } from './model/model.js';
import { LmdynError } from './errors.js';
import { compileFilter, type Hook, type HookContext, type NameFilter } from './model/hooks.js';
import { softcap, type ModelConfig } from './model/types.js';
import { addBias, layernorm, matmul, rmsnorm } from './tensor/ops.js';

/** A dense row-major array with its shape. `data` may be a view: copy what you keep. */
export class Tensor {
  constructor(
    readonly data: Float32Array,
    readonly shape: readonly number[],
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== data.length) {
      throw new LmdynError(
        'bad_argument',
        `a tensor of shape [${shape.join(', ')}] needs ${n} values, got ${data.length}`,
      );
    }
  }

  /** The value at a full index, e.g. t.get(0, pos, i). */
  get(...index: number[]): number {
    return this.data[this.offset(index)];
  }

  /** The sub-tensor at a leading index (a view), e.g. logits.at(0).at(-1) → [vocab]. */
  at(i: number): Tensor {
    if (this.shape.length < 2)
      throw new LmdynError('bad_argument', 'at() needs a tensor of rank 2 or more; use get()');
    const n = this.shape[0];
    const k = i < 0 ? n + i : i;
    if (!(Number.isInteger(k) && k >= 0 && k < n)) {
      throw new LmdynError('bad_argument', `index ${i} is outside 0..${n - 1}`);
    }
    const inner = this.shape.slice(1);
    const size = inner.reduce((a, b) => a * b, 1);
    return new Tensor(this.data.subarray(k * size, (k + 1) * size), inner);
  }

  private offset(index: readonly number[]): number {
    if (index.length !== this.shape.length) {
      throw new LmdynError(
        'bad_argument',
        `index of rank ${index.length} for a tensor of rank ${this.shape.length}`,
      );
    }
    let o = 0;
    for (let a = 0; a < index.length; a++) {
      const n = this.shape[a];
      const i = index[a] < 0 ? n + index[a] : index[a];
      if (!(Number.isInteger(i) && i >= 0 && i < n)) {
        throw new LmdynError(
          'bad_argument',
          `index ${index[a]} is outside 0..${n - 1} on axis ${a}`,
        );
      }
      o = o * n + i;
    }
    return o;
  }
}

/** What a hook function receives besides the activation (TransformerLens's `hook`). */
export interface HookPoint {
  name: string;
  /** Block index for blocks.{l}.*, null otherwise. */
  layer: number | null;
}

/**
 * A TransformerLens-style hook: receives the activation shaped as the cache shapes it (a view
 * of the live activation for every point but attn.hook_pattern) and may edit it in place or
 * return a replacement of the same size. attn.hook_pattern is read-only here: the pattern is
 * reported after the attention mix, so a replacement could not change the output.
 */
export type FwdHookFn = (activation: Tensor, hook: HookPoint) => Tensor | Float32Array | void;

/** [name or glob or predicate, fn], as in TransformerLens's fwd_hooks. */
export type FwdHook = readonly [NameFilter, FwdHookFn];

/** Text, token ids, or a batch of either (every sequence the same length). */
export type ModelInput =
  string | readonly number[] | readonly string[] | readonly (readonly number[])[];

export interface RunOptions {
  /** Which activations the cache keeps (default: every hook point). Applied at capture time. */
  namesFilter?: NameFilter;
  fwdHooks?: readonly FwdHook[];
}

/** Activations of one forward pass, keyed by hook name, shaped as TransformerLens shapes them. */
export class ActivationCache {
  private readonly store: Map<string, { data: Float32Array; width: number }>;
  private readonly config: ModelConfig;

  constructor(
    readonly model: Model,
    readonly batch: number,
    readonly positions: number,
    private readonly batchDim = true,
    store?: Map<string, { data: Float32Array; width: number }>,
  ) {
    this.config = model.config;
    this.store = store ?? new Map();
  }

  /** Records a hook activation: act [rows, width], row r at (seq, pos) = rows[r]. */
  record(name: string, act: Float32Array, width: number, rows: HookContext['rows']): void {
    let entry = this.store.get(name);
    if (!entry) {
      entry = { data: new Float32Array(this.batch * this.positions * width), width };
      this.store.set(name, entry);
    }
    const data = entry.data;
    rows.forEach((row, r) => {
      const at = (row.seq * this.positions + row.pos) * width;
      data.set(act.subarray(r * width, (r + 1) * width), at);
    });
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  has(name: string): boolean {
    return this.store.has(resolveName(name));
  }

  /**
   * The activation `name` (a full hook name, or a short name and a layer: get('resid_post', 3)),
   * shaped as the module comment lists. Patterns are transposed to [batch, head, query, key].
   */
  get(name: string, layer?: number): Tensor {
    const full = resolveName(name, layer);
    const entry = this.store.get(full);
    if (!entry) {
      throw new LmdynError(
        'bad_argument',
        `no activation '${full}' in the cache; it holds: ${this.keys().join(', ') || 'nothing'}`,
      );
    }
    const shaped = shapeActivation(
      full,
      entry.data,
      entry.width,
      this.batch,
      this.positions,
      this.config,
    );
    if (this.batchDim) return shaped;
    return shaped.at(0);
  }

  /** The same cache without the batch axis (batch must be 1), like remove_batch_dim(). */
  removeBatchDim(): ActivationCache {
    if (this.batch !== 1)
      throw new LmdynError(
        'bad_argument',
        `removeBatchDim needs batch 1, the cache has ${this.batch}`,
      );
    return new ActivationCache(this.model, 1, this.positions, false, this.store);
  }

  /**
   * The residual stream before each block up to `layer` (default: every block, then the final
   * resid_post), stacked: [components, batch, pos, d_model], labels 0_pre, (0_mid,) 1_pre, …,
   * final_post — TransformerLens's accumulated_resid. With applyLn the final norm is applied to
   * every vector (recomputed per vector, as the logit lens does).
   */
  accumulatedResid(options: { layer?: number; inclMid?: boolean; applyLn?: boolean } = {}): {
    resid: Tensor;
    labels: string[];
  } {
    const L = this.config.nLayers;
    const layer = options.layer ?? L;
    if (!(Number.isInteger(layer) && layer >= 0 && layer <= L)) {
      throw new LmdynError('bad_argument', `layer ${layer} is outside 0..${L}`);
    }
    const names: string[] = [];
    const labels: string[] = [];
    for (let l = 0; l < layer; l++) {
      names.push(`blocks.${l}.hook_resid_pre`);
      labels.push(`${l}_pre`);
      if (options.inclMid) {
        names.push(`blocks.${l}.hook_resid_mid`);
        labels.push(`${l}_mid`);
      }
    }
    if (layer === L) {
      names.push(`blocks.${L - 1}.hook_resid_post`);
      labels.push('final_post');
    }
    const d = this.config.dim;
    const per = this.batch * this.positions * d;
    const out = new Float32Array(names.length * per);
    names.forEach((n, i) => {
      const entry = this.store.get(n);
      if (!entry) {
        throw new LmdynError(
          'bad_argument',
          `accumulatedResid needs '${n}' in the cache; run with a filter that keeps blocks.*.hook_resid_*`,
        );
      }
      out.set(entry.data, i * per);
    });
    const resid = new Tensor(out, [names.length, this.batch, this.positions, d]);
    return { resid: options.applyLn ? applyFinalNorm(this.model, resid) : resid, labels };
  }

  /** The final norm applied to every d_model vector of a stack (last axis d_model). */
  applyLnToStack(stack: Tensor): Tensor {
    return applyFinalNorm(this.model, stack);
  }
}

// ---- runs ------------------------------------------------------------------------------------

/**
 * One forward pass over `input` keeping the activations the filter selects, like TransformerLens's
 * run_with_cache. `options` is a name filter or { namesFilter, fwdHooks } (hooks run before the
 * cache records, so the cache holds what the rest of the model saw). Logits: [batch, pos, vocab].
 */
export function runWithCache(
  model: Model,
  input: ModelInput,
  options: NameFilter | RunOptions = {},
): { ids: number[]; tokens: number[][]; logits: Tensor; cache: ActivationCache } {
  const opts: RunOptions = isRunOptions(options) ? options : { namesFilter: options };
  const tokens = toBatch(model, input);
  const tf = model.transformer;
  const match = compileFilter(opts.namesFilter ?? '*');
  const valid = tf.hookPointNames();
  if (!valid.some(match)) {
    throw new LmdynError(
      'bad_argument',
      `no hook point matches the filter; valid names look like: ${valid.slice(0, 6).join(', ')}, …`,
    );
  }
  const cache = new ActivationCache(model, tokens.length, tokens[0].length);
  const hooks: Hook[] = [
    ...adaptHooks(model, opts.fwdHooks ?? [], tokens),
    { filter: match, fn: (act, ctx) => cache.record(ctx.name, act, ctx.width, ctx.rows) },
  ];
  const logits = forwardAll(model, tokens, hooks);
  return { ids: tokens[0], tokens, logits, cache };
}

/**
 * One forward pass with hooks that read or replace activations, like TransformerLens's
 * run_with_hooks(tokens, fwd_hooks=[(name, fn)]). Returns the logits [batch, pos, vocab].
 */
export function runWithHooks(
  model: Model,
  input: ModelInput,
  options: { fwdHooks?: readonly FwdHook[] } = {},
): { ids: number[]; tokens: number[][]; logits: Tensor } {
  const tokens = toBatch(model, input);
  const logits = forwardAll(model, tokens, adaptHooks(model, options.fwdHooks ?? [], tokens));
  return { ids: tokens[0], tokens, logits };
}

/** TransformerLens-style hooks as lmdyn Hooks (for generateText, recordTrace, Transformer.forward). */
export function toHooks(model: Model, fwdHooks: readonly FwdHook[]): Hook[] {
  return adaptHooks(model, fwdHooks, null);
}

// ---- patching and steering ----------------------------------------------------------------------

export interface PatchOptions {
  /** Clean and corrupted inputs, the same number of tokens. */
  clean: ModelInput;
  corrupted: ModelInput;
  /** The hook point whose clean activation replaces the corrupted one, e.g. blocks.2.hook_resid_pre. */
  hook: string;
  /** Positions patched (default: every position). */
  positions?: readonly number[];
  /** Heads patched, for attn.hook_q|k|v|z|rot_q|rot_k (default: every head). */
  heads?: readonly number[];
}

/**
 * Activation patching: runs the clean input (caching `hook`), the corrupted input, and the
 * corrupted input with the clean activation written into `hook` at `positions` (and `heads`).
 */
export function patchActivation(
  model: Model,
  options: PatchOptions,
): { clean: Tensor; corrupted: Tensor; patched: Tensor } {
  const valid = model.transformer.hookPointNames();
  if (!valid.includes(options.hook)) {
    throw new LmdynError(
      'bad_argument',
      `'${options.hook}' is not a hook point of this model (e.g. ${valid[2]})`,
    );
  }
  if (options.hook.endsWith('attn.hook_pattern')) {
    throw new LmdynError(
      'bad_argument',
      'attn.hook_pattern is read-only; patch attn.hook_z (per head) instead',
    );
  }
  const cleanRun = runWithCache(model, options.clean, { namesFilter: options.hook });
  const corruptedTokens = toBatch(model, options.corrupted);
  if (
    corruptedTokens.length !== cleanRun.tokens.length ||
    corruptedTokens[0].length !== cleanRun.tokens[0].length
  ) {
    throw new LmdynError(
      'bad_argument',
      `clean and corrupted inputs must have the same shape: [${cleanRun.tokens.length}, ${cleanRun.tokens[0].length}] vs [${corruptedTokens.length}, ${corruptedTokens[0].length}]`,
    );
  }
  const corrupted = runWithHooks(model, corruptedTokens).logits;
  const source = cleanRun.cache.get(options.hook);
  const P = cleanRun.tokens[0].length;
  const positions = options.positions ?? [...Array(P).keys()];
  for (const p of positions) {
    if (!(Number.isInteger(p) && p >= 0 && p < P))
      throw new LmdynError('bad_argument', `position ${p} is outside 0..${P - 1}`);
  }
  const headAxis = source.shape.length === 4;
  if (options.heads && !headAxis)
    throw new LmdynError('bad_argument', `${options.hook} has no head axis`);
  const nHeads = headAxis ? source.shape[2] : 1;
  const heads = options.heads ?? [...Array(nHeads).keys()];
  for (const h of heads) {
    if (!(Number.isInteger(h) && h >= 0 && h < nHeads))
      throw new LmdynError('bad_argument', `head ${h} is outside 0..${nHeads - 1}`);
  }
  const width = source.data.length / (source.shape[0] * P);
  const dHead = width / nHeads;
  const patch: FwdHookFn = (act) => {
    for (let b = 0; b < source.shape[0]; b++) {
      for (const p of positions) {
        const row = (b * P + p) * width;
        for (const h of heads) {
          const o = row + h * dHead;
          act.data.set(source.data.subarray(o, o + dHead), o);
        }
      }
    }
  };
  const patched = runWithHooks(model, corruptedTokens, {
    fwdHooks: [[options.hook, patch]],
  }).logits;
  return { clean: cleanRun.logits, corrupted, patched };
}

/**
 * TransformerLens's patching.get_act_patch_resid_pre: for every layer and position, the corrupted
 * run with the clean blocks.{l}.hook_resid_pre written at that one position, scored by `metric`
 * on its logits. Returns metric values [layer, pos] (nLayers × pos forward passes).
 */
export function residPatchingGrid(
  model: Model,
  options: {
    clean: ModelInput;
    corrupted: ModelInput;
    metric: (logits: Tensor) => number;
    hook?: 'resid_pre' | 'resid_mid' | 'resid_post';
  },
): Tensor {
  const kind = options.hook ?? 'resid_pre';
  const L = model.config.nLayers;
  const clean = runWithCache(model, options.clean, `blocks.*.hook_${kind}`);
  const corrupted = toBatch(model, options.corrupted);
  const P = clean.tokens[0].length;
  if (corrupted.length !== clean.tokens.length || corrupted[0].length !== P) {
    throw new LmdynError('bad_argument', 'clean and corrupted inputs must have the same shape');
  }
  const out = new Float32Array(L * P);
  for (let l = 0; l < L; l++) {
    const name = `blocks.${l}.hook_${kind}`;
    const src = clean.cache.get(name);
    const d = model.config.dim;
    for (let p = 0; p < P; p++) {
      const logits = runWithHooks(model, corrupted, {
        fwdHooks: [
          [
            name,
            (act) => {
              for (let b = 0; b < corrupted.length; b++) {
                const o = (b * P + p) * d;
                act.data.set(src.data.subarray(o, o + d), o);
              }
            },
          ],
        ],
      }).logits;
      out[l * P + p] = options.metric(logits);
    }
  }
  return new Tensor(out, [L, P]);
}

/**
 * A steering hook: adds `scale · vector` to the activation at `hook` (a d-wide point such as
 * blocks.3.hook_resid_post) at every position ≥ `from` of every forward call, including each
 * step of generation. Pass it in `hooks` of generateText or recordTrace.
 */
export function steeringHook(
  model: Model,
  hook: string,
  vector: ArrayLike<number>,
  options: { scale?: number; from?: number } = {},
): Hook {
  const valid = model.transformer.hookPointNames();
  if (!valid.includes(hook))
    throw new LmdynError('bad_argument', `'${hook}' is not a hook point of this model`);
  const scale = options.scale ?? 1;
  const from = options.from ?? 0;
  if (!Number.isFinite(scale))
    throw new LmdynError('bad_argument', `scale must be a finite number, got ${scale}`);
  const v = Float32Array.from(vector);
  return {
    filter: hook,
    fn: (act, ctx) => {
      if (ctx.width !== v.length) {
        throw new LmdynError(
          'bad_argument',
          `the steering vector has ${v.length} values; ${ctx.name} has width ${ctx.width}`,
        );
      }
      ctx.rows.forEach((row, r) => {
        if (row.pos < from) return;
        const o = r * ctx.width;
        for (let i = 0; i < v.length; i++) act[o + i] += scale * v[i];
      });
    },
  };
}

// ---- logit lens ---------------------------------------------------------------------------------

/** The most values unembed will allocate (256 MB of float32). */
const MAX_UNEMBED_VALUES = 1 << 26;

/**
 * Logits of d_model vectors (last axis): x·W_Uᵀ (+ b), soft-capped as the model's own logits when
 * it caps them (Gemma 2's final_logit_softcapping), so that the logit lens's last layer is the
 * model's prediction. No norm is applied: see applyFinalNorm.
 */
export function unembed(model: Model, x: Tensor): Tensor {
  const d = model.config.dim;
  const V = model.config.vocabSize;
  if (x.shape[x.shape.length - 1] !== d) {
    throw new LmdynError(
      'bad_argument',
      `unembed needs d_model = ${d} on the last axis, got [${x.shape.join(', ')}]`,
    );
  }
  const rows = x.data.length / d;
  if (rows * V > MAX_UNEMBED_VALUES) {
    throw new LmdynError(
      'bad_argument',
      `unembedding ${rows} vectors would allocate ${rows * V} values (limit ${MAX_UNEMBED_VALUES}); select fewer positions`,
    );
  }
  const w = model.transformer.weights;
  const out = new Float32Array(rows * V);
  matmul(out, x.data, w.unembedding, rows);
  if (w.unembeddingBias) addBias(out, w.unembeddingBias, rows);
  const cap = model.config.finalSoftcap;
  if (cap !== undefined) for (let i = 0; i < out.length; i++) out[i] = softcap(out[i], cap);
  return new Tensor(out, [...x.shape.slice(0, -1), V]);
}

/** The model's final norm (ln_final) applied to every d_model vector of x (last axis). */
export function applyFinalNorm(model: Model, x: Tensor): Tensor {
  const c = model.config;
  const w = model.transformer.weights;
  if (x.shape[x.shape.length - 1] !== c.dim) {
    throw new LmdynError(
      'bad_argument',
      `the final norm needs d_model = ${c.dim} on the last axis, got [${x.shape.join(', ')}]`,
    );
  }
  const rows = x.data.length / c.dim;
  const out = new Float32Array(x.data.length);
  if (c.norm === 'rmsnorm') rmsnorm(out, x.data, w.finalNorm, rows, c.normEps);
  else layernorm(out, x.data, w.finalNorm, w.finalNormBias, rows, c.normEps);
  return new Tensor(out, x.shape);
}

export interface LogitLensLayer {
  label: string;
  /** Entropy of softmax(logits), nats. */
  entropy: number;
  top: { id: number; token: string; prob: number }[];
}

/**
 * The logit lens at one position (default: the last) of sequence 0: each accumulated residual
 * state (0_pre … final_post) through the final norm and the unembedding. `logits`:
 * [components, vocab]; the final_post row equals the model's own logits at that position.
 */
export function logitLens(
  model: Model,
  cache: ActivationCache,
  options: { pos?: number; topK?: number } = {},
): { labels: string[]; pos: number; logits: Tensor; layers: LogitLensLayer[] } {
  const P = cache.positions;
  const pos = options.pos ?? P - 1;
  if (!(Number.isInteger(pos) && pos >= -P && pos < P))
    throw new LmdynError('bad_argument', `position ${pos} is outside 0..${P - 1}`);
  const p = pos < 0 ? P + pos : pos;
  const topK = options.topK ?? 5;
  if (!(Number.isInteger(topK) && topK >= 1 && topK <= model.config.vocabSize)) {
    throw new LmdynError('bad_argument', `topK must be an integer in 1..${model.config.vocabSize}`);
  }
  const { resid, labels } = cache.accumulatedResid();
  const d = model.config.dim;
  const pick = new Float32Array(labels.length * d);
  for (let c = 0; c < labels.length; c++) pick.set(resid.at(c).at(0).at(p).data, c * d);
  const logits = unembed(model, applyFinalNorm(model, new Tensor(pick, [labels.length, d])));
  const layers = labels.map((label, c) => lensRow(model, label, logits.at(c).data, topK));
  return { labels, pos: p, logits, layers };
}

function lensRow(model: Model, label: string, z: Float32Array, topK: number): LogitLensLayer {
  let max = -Infinity;
  for (const v of z) if (v > max) max = v;
  let sum = 0;
  for (const v of z) sum += Math.exp(v - max);
  const logZ = max + Math.log(sum);
  let entropy = 0;
  for (const v of z) {
    const lp = v - logZ;
    entropy -= Math.exp(lp) * lp;
  }
  const order = [...z.keys()].sort((a, b) => z[b] - z[a]).slice(0, topK);
  return {
    label,
    entropy,
    top: order.map((id) => ({
      id,
      token: model.tokenizer.tokenText(id),
      prob: Math.exp(z[id] - logZ),
    })),
  };
}

// ---- tokens -------------------------------------------------------------------------------------

/** Token ids of `text` (BOS first where the tokenizer has one, unless prependBos is false). */
export function toTokens(model: Model, text: string, options?: { prependBos?: boolean }): number[];
export function toTokens(
  model: Model,
  text: readonly string[],
  options?: { prependBos?: boolean },
): number[][];
export function toTokens(
  model: Model,
  text: string | readonly string[],
  options: { prependBos?: boolean } = {},
): number[] | number[][] {
  if (Array.isArray(text)) return text.map((t) => toTokens(model, t as string, options));
  if (typeof text !== 'string')
    throw new LmdynError('bad_argument', 'toTokens takes a string or an array of strings');
  if (options.prependBos === false) return model.tokenizer.encode(text, { bos: false });
  return encodePrompt(model, text);
}

/** One string per token, as TransformerLens's to_str_tokens (special tokens as stored, e.g. <s>). */
export function toStrTokens(
  model: Model,
  input: string | readonly number[],
  options: { prependBos?: boolean } = {},
): string[] {
  const ids = typeof input === 'string' ? toTokens(model, input, options) : input;
  const tok = model.tokenizer;
  return ids.map((id) => {
    const special = id === tok.bosId || id === tok.eosId;
    const text = special ? '' : tok.decode([id]);
    return text === '' ? tok.tokenText(id).trim() : text;
  });
}

/** The text of token ids (special tokens dropped), as TransformerLens's to_string. */
export function toString(model: Model, ids: readonly number[]): string {
  return model.tokenizer.decode(ids);
}

// ---- internals ----------------------------------------------------------------------------------

const SHORT_NAMES = new Set(['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out']);

/** get_act_name: ('resid_post', 3) → blocks.3.hook_resid_post; ('pattern', 0) → blocks.0.attn.hook_pattern. */
export function actName(name: string, layer?: number): string {
  return resolveName(name, layer);
}

function resolveName(name: string, layer?: number): string {
  if (layer === undefined) return name;
  if (!Number.isInteger(layer) || layer < 0)
    throw new LmdynError('bad_argument', `layer must be a non-negative integer, got ${layer}`);
  if (SHORT_NAMES.has(name)) return `blocks.${layer}.hook_${name}`;
  if (['q', 'k', 'v', 'z', 'rot_q', 'rot_k', 'pattern'].includes(name))
    return `blocks.${layer}.attn.hook_${name}`;
  if (name === 'pre' || name === 'post') return `blocks.${layer}.mlp.hook_${name}`;
  if (name === 'normalized')
    throw new LmdynError('bad_argument', "say 'ln1.hook_normalized' or 'ln2.hook_normalized'");
  return `blocks.${layer}.${name}`;
}

function shapeActivation(
  name: string,
  data: Float32Array,
  width: number,
  batch: number,
  positions: number,
  c: ModelConfig,
): Tensor {
  if (name.endsWith('attn.hook_pattern')) {
    // recorded [batch, query, head, key] (key axis padded to the call's longest sequence)
    const H = c.nHeads;
    const kLen = width / H;
    const out = new Float32Array(batch * H * positions * positions);
    for (let b = 0; b < batch; b++)
      for (let q = 0; q < positions; q++)
        for (let h = 0; h < H; h++) {
          const src = ((b * positions + q) * H + h) * kLen;
          const dst = ((b * H + h) * positions + q) * positions;
          out.set(data.subarray(src, src + positions), dst);
        }
    return new Tensor(out, [batch, H, positions, positions]);
  }
  const m = /attn\.hook_(q|k|v|z|rot_q|rot_k)$/.exec(name);
  if (m) {
    const heads = width / c.headDim;
    return new Tensor(data, [batch, positions, heads, c.headDim]);
  }
  return new Tensor(data, [batch, positions, width]);
}

function isRunOptions(x: NameFilter | RunOptions): x is RunOptions {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof RegExp);
}

/** The input as a batch of equal-length id sequences. */
function toBatch(model: Model, input: ModelInput): number[][] {
  if (typeof input === 'string') return [encodePrompt(model, input)];
  if (!Array.isArray(input) || input.length === 0) {
    throw new LmdynError(
      'bad_argument',
      'input must be text, token ids, or a non-empty batch of either',
    );
  }
  let batch: number[][];
  if (input.every((x) => typeof x === 'number')) batch = [[...(input as number[])]];
  else if (input.every((x) => typeof x === 'string'))
    batch = (input as string[]).map((t) => encodePrompt(model, t));
  else if (input.every((x) => Array.isArray(x)))
    batch = (input as number[][]).map((ids) => [...ids]);
  else
    throw new LmdynError(
      'bad_argument',
      'input must be text, token ids, or a batch of either (not a mix)',
    );
  const P = batch[0].length;
  if (P === 0) throw new LmdynError('bad_argument', 'input has no tokens');
  if (batch.some((ids) => ids.length !== P)) {
    throw new LmdynError(
      'bad_argument',
      `every sequence of a batch must have the same number of tokens (got ${batch.map((b) => b.length).join(', ')}); lmdyn does not pad`,
    );
  }
  if (P > model.config.seqLen) {
    throw new LmdynError(
      'context_overflow',
      `the input has ${P} tokens; the model's context holds ${model.config.seqLen}`,
    );
  }
  return batch;
}

function forwardAll(model: Model, tokens: number[][], hooks: Hook[]): Tensor {
  const tf = model.transformer;
  const P = tokens[0].length;
  const kv = tf.newCache(tokens.length, P);
  const out = tf.forward(
    kv,
    tokens.map((t, seq) => ({ seq, tokens: t })),
    { logits: 'all', hooks },
  );
  return new Tensor(out.logits, [tokens.length, P, model.config.vocabSize]);
}

/**
 * FwdHooks as forward-pass Hooks. With `tokens` (one call over a whole batch) the activation is
 * shaped [batch, pos, …]; in generation (tokens null) it is [1, rows, …], one row per new token
 * (patterns [rows, head, key]).
 */
function adaptHooks(model: Model, fwdHooks: readonly FwdHook[], tokens: number[][] | null): Hook[] {
  const c = model.config;
  return fwdHooks.map((entry, i) => {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[1] !== 'function') {
      throw new LmdynError('bad_argument', `fwdHooks[${i}] must be [name or predicate, function]`);
    }
    const [filter, fn] = entry;
    compileFilter(filter);
    return {
      filter,
      fn: (act: Float32Array, ctx: HookContext) => {
        const point: HookPoint = { name: ctx.name, layer: ctx.layer };
        const batch = tokens ? tokens.length : 1;
        const positions = tokens ? tokens[0].length : ctx.rows.length;
        if (ctx.name.endsWith('attn.hook_pattern')) {
          const before = tokens
            ? shapeActivation(ctx.name, act, ctx.width, batch, positions, c)
            : new Tensor(act.slice(), [ctx.rows.length, c.nHeads, ctx.width / c.nHeads]);
          const copy = before.data.slice();
          const out = fn(before, point);
          if (out || copy.some((v, j) => v !== before.data[j])) {
            throw new LmdynError(
              'bad_argument',
              `${ctx.name} is read-only (the pattern is reported after the attention mix); edit attn.hook_z instead`,
            );
          }
          return;
        }
        if (ctx.name === 'logits') {
          const shape = tokens
            ? [batch, positions, c.vocabSize]
            : [1, ctx.rows.length, c.vocabSize];
          const out = fn(new Tensor(act, shape), point);
          return out instanceof Tensor ? out.data : out;
        }
        const view = shapeActivation(ctx.name, act, ctx.width, batch, positions, c);
        const out = fn(view, point);
        return out instanceof Tensor ? out.data : out;
      },
    };
  });
}
