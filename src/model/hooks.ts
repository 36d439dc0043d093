/**
 * Hook points with TransformerLens names. A hook sees an activation as it is computed and may
 * replace it; a filter (glob, list of globs, RegExp or predicate) chooses which points fire.
 * Nothing is copied for a point no hook asked for.
 */
import { LmdynError } from '../errors.js';
import { isParallel, type ModelConfig } from './types.js';

/** Where a row of an activation comes from: sequence `seq` of the batch, position `pos`. */
export interface RowRef {
  seq: number;
  pos: number;
}

export interface HookContext {
  name: string;
  /** Block index for blocks.{l}.*, null otherwise. */
  layer: number | null;
  rows: readonly RowRef[];
  /** Values per row: d_model, d_mlp, n_heads·d_head, or n_heads·k_len for attn.hook_pattern. */
  width: number;
}

/**
 * act: [rows, width] (row-major). Return a Float32Array of the same length to replace the
 * activation, or nothing to leave it. The array is reused after the call: copy what you keep.
 */
export type HookFn = (act: Float32Array, ctx: HookContext) => Float32Array | void;

export type NameFilter = string | readonly string[] | RegExp | ((name: string) => boolean);

export interface Hook {
  filter: NameFilter;
  fn: HookFn;
}

/** Every hook point of a model, in the order they fire within one forward pass. */
export function hookPointNames(config: ModelConfig): string[] {
  const names = ['hook_embed'];
  if (config.positional === 'learned') names.push('hook_pos_embed');
  const rope = config.positional === 'rope';
  const mid = isParallel(config) ? [] : ['hook_resid_mid'];
  const qk = config.qkNorm ? ['attn.q_norm.hook_normalized', 'attn.k_norm.hook_normalized'] : [];
  const post = (n: 1 | 2) => (config.postNorms ? [`ln${n}_post.hook_normalized`] : []);
  for (let l = 0; l < config.nLayers; l++) {
    const b = `blocks.${l}`;
    names.push(
      `${b}.hook_resid_pre`,
      `${b}.ln1.hook_normalized`,
      `${b}.attn.hook_q`,
      `${b}.attn.hook_k`,
      `${b}.attn.hook_v`,
      ...qk.map((h) => `${b}.${h}`),
      ...(rope ? [`${b}.attn.hook_rot_q`, `${b}.attn.hook_rot_k`] : []),
      `${b}.attn.hook_pattern`,
      `${b}.attn.hook_z`,
      ...post(1).map((h) => `${b}.${h}`),
      `${b}.hook_attn_out`,
      ...mid.map((h) => `${b}.${h}`),
      `${b}.ln2.hook_normalized`,
      `${b}.mlp.hook_pre`,
      `${b}.mlp.hook_post`,
      ...post(2).map((h) => `${b}.${h}`),
      `${b}.hook_mlp_out`,
      `${b}.hook_resid_post`,
    );
  }
  names.push('ln_final.hook_normalized', 'logits');
  return names;
}

/**
 * The TransformerLens hook points of the other architectures that this one does not have, with
 * the reason (block points written with {l}). `lmdyn info` prints them.
 */
export function absentHookPoints(config: ModelConfig): { name: string; why: string }[] {
  const out: { name: string; why: string }[] = [];
  if (config.positional === 'rope') {
    out.push({
      name: 'hook_pos_embed',
      why: 'rotary positions: nothing is added to the embedding',
    });
  } else {
    out.push({
      name: 'blocks.{l}.attn.hook_rot_q, blocks.{l}.attn.hook_rot_k',
      why: 'learned positions: q and k are not rotated',
    });
  }
  if (isParallel(config)) {
    out.push({
      name: 'blocks.{l}.hook_resid_mid',
      why: 'parallel residual: attention and MLP both read hook_resid_pre',
    });
  }
  return out;
}

/**
 * The hook points this architecture has beyond the common ones (every architecture's
 * hook_resid_pre … hook_resid_post), with what they hold. `lmdyn info` prints them.
 */
export function extraHookPoints(config: ModelConfig): { name: string; what: string }[] {
  const out: { name: string; what: string }[] = [];
  if (config.qkNorm) {
    out.push({
      name: 'blocks.{l}.attn.q_norm.hook_normalized, blocks.{l}.attn.k_norm.hook_normalized',
      what: 'each head’s q and k after their RMSNorm and before RoPE; hook_q / hook_k precede the norm',
    });
  }
  if (config.postNorms) {
    out.push({
      name: 'blocks.{l}.ln1_post.hook_normalized, blocks.{l}.ln2_post.hook_normalized',
      what: 'the attention and MLP outputs after their post-norms, as TransformerLens names them for Gemma; hook_attn_out / hook_mlp_out equal them: what joins the residual',
    });
  }
  return out;
}

/** Compiles a filter into a predicate. Globs: `*` matches any run of characters, `?` one. */
export function compileFilter(filter: NameFilter): (name: string) => boolean {
  if (typeof filter === 'function') return filter;
  if (filter instanceof RegExp) return (name) => filter.test(name);
  const globs = typeof filter === 'string' ? [filter] : filter;
  const res = globs.map(globToRegExp);
  return (name) => res.some((re) => re.test(name));
}

export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`);
}

/**
 * The hooks of one forward call, resolved per hook point name once and then looked up by name.
 */
export class HookSet {
  private readonly hooks: { match: (name: string) => boolean; fn: HookFn }[];
  private readonly resolved = new Map<string, HookFn[]>();

  constructor(hooks: readonly Hook[]) {
    this.hooks = hooks.map((h) => ({ match: compileFilter(h.filter), fn: h.fn }));
  }

  get empty(): boolean {
    return this.hooks.length === 0;
  }

  /** The functions registered for `name` (an empty array when none). */
  at(name: string): HookFn[] {
    let fns = this.resolved.get(name);
    if (!fns) {
      fns = this.hooks.filter((h) => h.match(name)).map((h) => h.fn);
      this.resolved.set(name, fns);
    }
    return fns;
  }

  wants(name: string): boolean {
    return this.at(name).length > 0;
  }

  /** Runs the hooks of `name` on act[0 .. rows·width); replacements are copied into act. */
  fire(
    name: string,
    layer: number | null,
    act: Float32Array,
    rows: readonly RowRef[],
    width: number,
  ): void {
    const fns = this.at(name);
    if (fns.length === 0) return;
    const n = rows.length * width;
    const view = act.length === n ? act : act.subarray(0, n);
    const ctx: HookContext = { name, layer, rows, width };
    for (const fn of fns) {
      const out = fn(view, ctx);
      if (out && out !== view) {
        if (out.length !== n) {
          throw new LmdynError('bad_argument', `hook on ${name} returned ${out.length} values, expected ${n}`);
        }
        view.set(out);
      }
    }
  }
}
