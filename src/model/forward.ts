/**
 * The forward pass of the llama family (RMSNorm, RoPE, GQA, SwiGLU; Qwen2's q/k/v biases),
 * GPT-2 (LayerNorm, learned positions, gelu_new), GPT-NeoX (partial RoPE, exact gelu, parallel or
 * sequential residual), GPT-Neo (unscaled scores, local-window layers), Qwen3 (per-head q/k
 * RMSNorm) and Gemma 2/3 (√d embedding scale, GeGLU, post-norms of the attention and MLP outputs,
 * soft-capped scores and logits, sliding layers with their own RoPE base), with a KV cache, a
 * batch of sequences, and TransformerLens hook points. Activations are fp32; each weight matrix is
 * fp32 or Q8_0 (then its matmul quantizes the activations per group, as llama2.c runq.c does),
 * matrix by matrix.
 *
 * A call takes a batch of (sequence, new tokens) and appends those tokens to each sequence's
 * cache. All new tokens of all sequences are stacked as rows of one matrix, so every linear map
 * is a single matmul (prefill and batching for free); only attention is done per row, against
 * that row's own sequence.
 */
import { LmdynError } from '../errors.js';
import type { LoadedModel } from './types.js';
import { allocF32, allocF32Collected, freeF32, inArena } from '../tensor/memory.js';
import { wasmKernels } from '../tensor/wasm/kernels.js';
import {
  addBias,
  addInPlace,
  gelu,
  geluNew,
  layernorm,
  matmul,
  rmsnorm,
  rope,
  softmax,
  swiglu,
} from '../tensor/ops.js';
import { matrixRow } from '../tensor/q80.js';
import { disposeWeights } from './dispose.js';
import { ropeAttentionFactor, ropeFrequencies } from './rope.js';
import { HookSet, hookPointNames, type Hook, type RowRef } from './hooks.js';
import {
  attentionScale,
  isParallel,
  softcap,
  windowStart,
  type ModelConfig,
  type ModelWeights,
} from './types.js';

/** Keys and values of every layer for a set of sequences. */
export interface KVCache {
  readonly capacity: number; // positions per sequence
  /** Number of positions already in each sequence. */
  readonly lengths: number[];
  /** [seq][layer] → [capacity, nKvHeads·headDim] */
  readonly k: Float32Array[][];
  readonly v: Float32Array[][];
  /** [seq] → the token ids behind the cached positions (what a longrope switch recomputes). */
  readonly tokens: number[][];
}

export interface ForwardInput {
  seq: number;
  tokens: readonly number[];
}

export interface ForwardOptions {
  hooks?: readonly Hook[];
  /** Which rows get logits: the last new token of each input (default), every row, or none. */
  logits?: 'last' | 'all' | 'none';
}

export interface ForwardOutput {
  /** [logitRows.length, vocab] */
  logits: Float32Array;
  logitRows: RowRef[];
}

export class Transformer {
  readonly config: ModelConfig;
  readonly weights: ModelWeights;
  private scratch: Scratch | null = null;
  private logitsBuf: Float32Array | null = null;
  private disposed = false;

  constructor(readonly model: LoadedModel) {
    this.config = model.config;
    this.weights = model.weights;
  }

  /** Frees the scratch buffers and the weights; every later call throws. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const s = this.scratch;
    if (s) for (const a of [s.x, s.xb, s.ao, s.q, s.k, s.v, s.z, s.hb, s.hb2, s.sel, s.att]) freeF32(a);
    if (this.logitsBuf) freeF32(this.logitsBuf);
    this.scratch = null;
    this.logitsBuf = null;
    disposeWeights(this.weights);
  }

  hookPointNames(): string[] {
    return hookPointNames(this.config);
  }

  /** A cache for `nSeq` sequences of up to `capacity` positions (default: the model's context). */
  newCache(nSeq: number, capacity = this.config.seqLen): KVCache {
    if (!(capacity >= 1 && capacity <= this.config.seqLen)) {
      throw new LmdynError(
        'context_overflow',
        `cache capacity ${capacity} is outside 1..${this.config.seqLen} (the model's context)`,
      );
    }
    const kvDim = this.config.nKvHeads * this.config.headDim;
    // In the kernels' memory so that the attention kernels can read it; each array returns
    // there once it is garbage-collected (the cache has no owner that could free it).
    const make = () =>
      Array.from({ length: this.config.nLayers }, () => allocF32Collected(capacity * kvDim));
    return {
      capacity,
      lengths: new Array<number>(nSeq).fill(0),
      k: Array.from({ length: nSeq }, make),
      v: Array.from({ length: nSeq }, make),
      tokens: Array.from({ length: nSeq }, () => []),
    };
  }

  forward(
    cache: KVCache,
    inputs: readonly ForwardInput[],
    options: ForwardOptions = {},
  ): ForwardOutput {
    if (this.disposed) throw new LmdynError('bad_argument', 'this model was disposed');
    this.longropeSwitch(cache, inputs);
    return this.run(cache, inputs, options);
  }

  /**
   * Longrope (Phi-3) rotates with its short factors while a sequence is at most
   * originalContext long and with its long factors beyond (model/rope.ts). When a call takes a
   * sequence across that length, the positions already cached were computed with the short
   * factors; like transformers' Phi3ForCausalLM.prepare_inputs_for_generation, they are computed
   * again (without hooks) with the long ones, so that every step equals one forward over the
   * whole sequence.
   */
  private longropeSwitch(cache: KVCache, inputs: readonly ForwardInput[]): void {
    const s = this.config.ropeScaling;
    if (s?.type !== 'longrope') return;
    for (const inp of inputs) {
      const cached = cache.lengths[inp.seq];
      const total = cached + inp.tokens.length;
      if (!(cached > 0 && cached <= s.originalContext && total > s.originalContext)) continue;
      const old = cache.tokens[inp.seq];
      if (old.length !== cached) {
        throw new LmdynError(
          'unsupported',
          `sequence ${inp.seq} crosses longrope's ${s.originalContext} positions, but its cache does not record the tokens to recompute`,
        );
      }
      cache.lengths[inp.seq] = 0;
      cache.tokens[inp.seq] = [];
      this.run(cache, [{ seq: inp.seq, tokens: old }], { logits: 'none' }, total);
    }
  }

  /** The forward pass proper; `ropeLength` overrides every row's (the longrope recompute). */
  private run(
    cache: KVCache,
    inputs: readonly ForwardInput[],
    options: ForwardOptions,
    ropeLength?: number,
  ): ForwardOutput {
    const c = this.config;
    const w = this.weights;
    const hooks = new HookSet(options.hooks ?? []);
    const rows = this.planRows(cache, inputs, ropeLength);
    const n = rows.length;
    const s = this.scratchFor(n, maxPos(rows) + 1);
    const { dim, headDim, nHeads, nKvHeads } = c;
    const qDim = nHeads * headDim;
    const kvDim = nKvHeads * headDim;
    const x = s.x; // residual stream [n, dim]
    const parallel = isParallel(c);

    // Embedding: x[r] = E[token] (+ P[pos])
    for (let r = 0; r < n; r++) matrixRow(w.tokenEmbedding, rows[r].token, x, r * dim);
    if (c.embedScale !== undefined) for (let i = 0; i < n * dim; i++) x[i] *= c.embedScale; // Gemma
    const refs = rows.map((r) => ({ seq: r.seq, pos: r.pos }));
    hooks.fire('hook_embed', null, x, refs, dim);
    if (w.positionEmbedding) {
      const pe = s.xb;
      for (let r = 0; r < n; r++) matrixRow(w.positionEmbedding, rows[r].pos, pe, r * dim);
      hooks.fire('hook_pos_embed', null, pe, refs, dim);
      addInPlace(x, pe, n * dim);
    }

    for (let l = 0; l < c.nLayers; l++) {
      const lw = w.layers[l];
      const b = `blocks.${l}`;
      hooks.fire(`${b}.hook_resid_pre`, l, x, refs, dim);

      // Attention: xb = norm(x); q, k, v = xb·Wᵀ (+b)
      this.norm(s.xb, x, lw.attnNorm, lw.attnNormBias, n);
      hooks.fire(`${b}.ln1.hook_normalized`, l, s.xb, refs, dim);
      matmul(s.q, s.xb, lw.wq, n);
      matmul(s.k, s.xb, lw.wk, n);
      matmul(s.v, s.xb, lw.wv, n);
      if (lw.bq) addBias(s.q, lw.bq, n);
      if (lw.bk) addBias(s.k, lw.bk, n);
      if (lw.bv) addBias(s.v, lw.bv, n);
      hooks.fire(`${b}.attn.hook_q`, l, s.q, refs, qDim);
      hooks.fire(`${b}.attn.hook_k`, l, s.k, refs, kvDim);
      hooks.fire(`${b}.attn.hook_v`, l, s.v, refs, kvDim);
      if (lw.qNorm && lw.kNorm) {
        // Qwen3 / Gemma 3: RMSNorm of each head's q and k ([n·heads, headDim] rows), before RoPE
        rmsnorm(s.q, s.q, lw.qNorm, n * nHeads, c.normEps);
        rmsnorm(s.k, s.k, lw.kNorm, n * nKvHeads, c.normEps);
        hooks.fire(`${b}.attn.q_norm.hook_normalized`, l, s.q, refs, qDim);
        hooks.fire(`${b}.attn.k_norm.hook_normalized`, l, s.k, refs, kvDim);
      }
      if (c.positional === 'rope') {
        const scale = ropeAttentionFactor(c);
        for (let r = 0; r < n; r++) {
          const { pos: p, ropeLength } = rows[r];
          const freqs = ropeFrequencies(c, l, ropeLength);
          rope(s.q, r * qDim, nHeads, headDim, freqs, p, scale);
          rope(s.k, r * kvDim, nKvHeads, headDim, freqs, p, scale);
        }
        hooks.fire(`${b}.attn.hook_rot_q`, l, s.q, refs, qDim);
        hooks.fire(`${b}.attn.hook_rot_k`, l, s.k, refs, kvDim);
      }
      for (let r = 0; r < n; r++) {
        const { seq, pos } = rows[r];
        cache.k[seq][l].set(s.k.subarray(r * kvDim, (r + 1) * kvDim), pos * kvDim);
        cache.v[seq][l].set(s.v.subarray(r * kvDim, (r + 1) * kvDim), pos * kvDim);
      }
      const wantPattern = hooks.wants(`${b}.attn.hook_pattern`);
      this.attention(s, cache, rows, l, wantPattern);
      if (wantPattern) {
        hooks.fire(`${b}.attn.hook_pattern`, l, s.pattern, refs, nHeads * s.kLen);
      }
      hooks.fire(`${b}.attn.hook_z`, l, s.z, refs, qDim);
      matmul(s.ao, s.z, lw.wo, n);
      if (lw.bo) addBias(s.ao, lw.bo, n);
      if (lw.attnPostNorm) {
        // Gemma: the attention output is normed before it joins the residual (TransformerLens
        // ln1_post); hook_attn_out is what is added, as in TransformerLens.
        rmsnorm(s.ao, s.ao, lw.attnPostNorm, n, c.normEps);
        hooks.fire(`${b}.ln1_post.hook_normalized`, l, s.ao, refs, dim);
      }
      hooks.fire(`${b}.hook_attn_out`, l, s.ao, refs, dim);
      // Sequential: x_mid = x + attn_out feeds the MLP. Parallel (GPT-NeoX): the MLP reads x
      // itself and attn_out is added with the MLP's output below; there is no resid_mid.
      if (!parallel) {
        addInPlace(x, s.ao, n * dim);
        hooks.fire(`${b}.hook_resid_mid`, l, x, refs, dim);
      }

      // MLP: SwiGLU  down(silu(xb·W1ᵀ) ⊙ xb·W3ᵀ), GeGLU  down(gelu_tanh(xb·W1ᵀ) ⊙ xb·W3ᵀ)
      //      or  down(gelu(xb·Wfcᵀ + b)) + b
      this.norm(s.xb, x, lw.mlpNorm, lw.mlpNormBias, n);
      hooks.fire(`${b}.ln2.hook_normalized`, l, s.xb, refs, dim);
      const hd = c.hiddenDim;
      if (lw.wGate) {
        matmul(s.hb, s.xb, lw.wGate, n);
        matmul(s.hb2, s.xb, lw.wUp, n);
        hooks.fire(`${b}.mlp.hook_pre`, l, s.hb, refs, hd);
        if (c.mlp === 'geglu') {
          geluNew(s.hb, n * hd); // gelu_pytorch_tanh is gelu_new's formula
          for (let i = 0; i < n * hd; i++) s.hb[i] *= s.hb2[i];
        } else swiglu(s.hb, s.hb2, n * hd);
      } else {
        matmul(s.hb, s.xb, lw.wUp, n);
        if (lw.bUp) addBias(s.hb, lw.bUp, n);
        hooks.fire(`${b}.mlp.hook_pre`, l, s.hb, refs, hd);
        if (c.mlp === 'gelu') gelu(s.hb, n * hd);
        else geluNew(s.hb, n * hd);
      }
      hooks.fire(`${b}.mlp.hook_post`, l, s.hb, refs, hd);
      matmul(s.xb, s.hb, lw.wDown, n);
      if (lw.bDown) addBias(s.xb, lw.bDown, n);
      if (lw.mlpPostNorm) {
        rmsnorm(s.xb, s.xb, lw.mlpPostNorm, n, c.normEps); // Gemma (TransformerLens ln2_post)
        hooks.fire(`${b}.ln2_post.hook_normalized`, l, s.xb, refs, dim);
      }
      hooks.fire(`${b}.hook_mlp_out`, l, s.xb, refs, dim);
      if (parallel) addInPlace(s.xb, s.ao, n * dim); // mlp_out + attn_out, then + x (HF's order)
      addInPlace(x, s.xb, n * dim);
      hooks.fire(`${b}.hook_resid_post`, l, x, refs, dim);
    }

    for (const inp of inputs) {
      const recorded = cache.tokens[inp.seq];
      if (recorded.length === cache.lengths[inp.seq]) for (const t of inp.tokens) recorded.push(t);
      cache.lengths[inp.seq] += inp.tokens.length;
    }

    // Final norm and classifier, only for the rows that need logits.
    const mode = options.logits ?? 'last';
    const wantNorm = hooks.wants('ln_final.hook_normalized');
    const picked = mode === 'all' ? rows.map((_, i) => i) : mode === 'last' ? lastRows(rows) : [];
    if (wantNorm) {
      this.norm(s.xb, x, w.finalNorm, w.finalNormBias, n);
      hooks.fire('ln_final.hook_normalized', null, s.xb, refs, dim);
    }
    const m = picked.length;
    let logits = new Float32Array(0);
    if (m > 0) {
      const sel = s.sel;
      for (let i = 0; i < m; i++) {
        const r = picked[i];
        if (wantNorm) sel.set(s.xb.subarray(r * dim, (r + 1) * dim), i * dim);
        else sel.set(x.subarray(r * dim, (r + 1) * dim), i * dim);
      }
      if (!wantNorm) this.norm(sel, sel, w.finalNorm, w.finalNormBias, m);
      const out = this.logitsScratch(m);
      matmul(out, sel, w.unembedding, m);
      if (w.unembeddingBias) addBias(out, w.unembeddingBias, m);
      const cap = c.finalSoftcap;
      if (cap !== undefined) {
        for (let i = 0; i < m * c.vocabSize; i++) out[i] = softcap(out[i], cap);
      }
      logits = out.slice(0, m * c.vocabSize);
    }
    const logitRows = picked.map((r) => refs[r]);
    hooks.fire('logits', null, logits, logitRows, c.vocabSize);
    return { logits, logitRows };
  }

  /** [rows, vocab] in the kernels' memory, grown on demand. */
  private logitsScratch(rows: number): Float32Array {
    const need = rows * this.config.vocabSize;
    if (!this.logitsBuf || this.logitsBuf.length < need) this.logitsBuf = allocF32(need);
    return this.logitsBuf;
  }

  private norm(
    out: Float32Array,
    x: Float32Array,
    weight: Float32Array,
    bias: Float32Array | null,
    n: number,
  ): void {
    if (this.config.norm === 'rmsnorm') rmsnorm(out, x, weight, n, this.config.normEps);
    else layernorm(out, x, weight, bias, n, this.config.normEps);
  }

  /**
   * Causal self-attention of each row against its own sequence's cache: z = softmax(s·qKᵀ)V per
   * head, s = 1/√d unless the architecture says otherwise (Gemma's query_pre_attn_scalar^−½, its
   * scores soft-capped in Gemma 2), over the positions windowStart..pos (all of them except in
   * GPT-Neo's local and Gemma's sliding layers). The scores and the mix run in the SIMD
   * kernels when every buffer is in their memory (the softmax between them in JS), else in the
   * JS loops.
   */
  private attention(
    s: Scratch,
    cache: KVCache,
    rows: readonly Row[],
    l: number,
    keepPattern: boolean,
  ): void {
    const { nHeads, nKvHeads, headDim } = this.config;
    const qDim = nHeads * headDim;
    const kvDim = nKvHeads * headDim;
    const group = nHeads / nKvHeads; // query heads per key/value head
    const scale = attentionScale(this.config);
    const cap = this.config.attnSoftcap; // Gemma 2: s → cap·tanh(s/cap) before the softmax
    const att = s.att;
    if (keepPattern) s.pattern.fill(0, 0, rows.length * nHeads * s.kLen);
    const kernels = wasmKernels();
    const simd = kernels !== null && inArena(s.q) && inArena(s.z) && inArena(att);
    for (let r = 0; r < rows.length; r++) {
      const { seq, pos } = rows[r];
      const kc = cache.k[seq][l];
      const vc = cache.v[seq][l];
      const start = windowStart(this.config, l, pos); // att[i] is position start + i
      const n = pos + 1 - start;
      if (simd && inArena(kc) && inArena(vc)) {
        const k = kernels.exports;
        const from = 4 * start * kvDim; // bytes
        for (let h = 0; h < nHeads; h++) {
          const ko = from + 4 * Math.floor(h / group) * headDim; // bytes
          const qo = 4 * (r * qDim + h * headDim);
          k.attn_scores(
            att.byteOffset,
            s.q.byteOffset + qo,
            kc.byteOffset + ko,
            kvDim,
            headDim,
            n,
            scale,
          );
          if (cap !== undefined) for (let i = 0; i < n; i++) att[i] = softcap(att[i], cap);
          softmax(att, 0, n);
          if (keepPattern) s.pattern.set(att.subarray(0, n), (r * nHeads + h) * s.kLen + start);
          k.attn_mix(s.z.byteOffset + qo, att.byteOffset, vc.byteOffset + ko, kvDim, headDim, n);
        }
        continue;
      }
      for (let h = 0; h < nHeads; h++) {
        const qo = r * qDim + h * headDim;
        const ko = Math.floor(h / group) * headDim;
        for (let i = 0; i < n; i++) {
          const kt = (start + i) * kvDim + ko;
          let dot = 0;
          for (let j = 0; j < headDim; j++) dot += s.q[qo + j] * kc[kt + j];
          att[i] = cap === undefined ? dot * scale : softcap(dot * scale, cap);
        }
        softmax(att, 0, n);
        if (keepPattern) s.pattern.set(att.subarray(0, n), (r * nHeads + h) * s.kLen + start);
        const zo = r * qDim + h * headDim;
        s.z.fill(0, zo, zo + headDim);
        for (let i = 0; i < n; i++) {
          const a = att[i];
          const vt = (start + i) * kvDim + ko;
          for (let j = 0; j < headDim; j++) s.z[zo + j] += a * vc[vt + j];
        }
      }
    }
  }

  private planRows(cache: KVCache, inputs: readonly ForwardInput[], ropeLength?: number): Row[] {
    const rows: Row[] = [];
    const seen = new Set<number>();
    for (const inp of inputs) {
      if (!(inp.seq >= 0 && inp.seq < cache.lengths.length) || seen.has(inp.seq)) {
        throw new LmdynError('bad_argument', `sequence ${inp.seq} is not a distinct cache slot`);
      }
      seen.add(inp.seq);
      const start = cache.lengths[inp.seq];
      if (start + inp.tokens.length > cache.capacity) {
        throw new LmdynError(
          'context_overflow',
          `sequence ${inp.seq} would reach ${start + inp.tokens.length} positions; the context holds ${cache.capacity}`,
        );
      }
      inp.tokens.forEach((token, i) => {
        if (!(Number.isInteger(token) && token >= 0 && token < this.config.vocabSize)) {
          throw new LmdynError(
            'bad_argument',
            `token id ${token} is outside the vocabulary (0..${this.config.vocabSize - 1})`,
          );
        }
        rows.push({
          seq: inp.seq,
          pos: start + i,
          token,
          last: i === inp.tokens.length - 1,
          ropeLength: ropeLength ?? start + inp.tokens.length,
        });
      });
    }
    return rows;
  }

  private scratchFor(n: number, kLen: number): Scratch {
    const s = this.scratch;
    if (s && s.rows >= n && s.kLenMax >= kLen) {
      s.kLen = kLen;
      return s;
    }
    const rows = Math.max(n, s?.rows ?? 0);
    const kLenMax = Math.max(kLen, s?.kLenMax ?? 0, 64);
    const c = this.config;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    if (s) {
      // Hooks were told the arrays are reused after their call, so nothing else holds them.
      for (const a of [s.x, s.xb, s.ao, s.q, s.k, s.v, s.z, s.hb, s.hb2, s.sel, s.att]) freeF32(a);
    }
    this.scratch = {
      rows,
      kLenMax,
      kLen,
      x: allocF32(rows * c.dim),
      xb: allocF32(rows * c.dim),
      ao: allocF32(rows * c.dim),
      q: allocF32(rows * qDim),
      k: allocF32(rows * kvDim),
      v: allocF32(rows * kvDim),
      z: allocF32(rows * qDim),
      hb: allocF32(rows * c.hiddenDim),
      hb2: allocF32(rows * c.hiddenDim),
      sel: allocF32(rows * c.dim),
      att: allocF32(kLenMax),
      pattern: new Float32Array(rows * c.nHeads * kLenMax),
    };
    return this.scratch;
  }
}

interface Row extends RowRef {
  token: number;
  last: boolean;
  /** Last position of this sequence in the call, plus one: HF's seq_len (model/rope.ts). */
  ropeLength: number;
}

interface Scratch {
  rows: number;
  kLenMax: number;
  kLen: number;
  x: Float32Array; // [rows, dim] residual stream
  xb: Float32Array; // [rows, dim]
  ao: Float32Array; // [rows, dim] attention output (hook_attn_out)
  q: Float32Array; // [rows, nHeads·headDim]
  k: Float32Array; // [rows, nKvHeads·headDim]
  v: Float32Array;
  z: Float32Array; // [rows, nHeads·headDim] attention output per head
  hb: Float32Array; // [rows, hiddenDim]
  hb2: Float32Array;
  sel: Float32Array; // [rows, dim] rows picked for the classifier
  att: Float32Array; // [kLenMax] one head's scores
  pattern: Float32Array; // [rows, nHeads, kLen] when attn.hook_pattern is hooked
}

function maxPos(rows: readonly Row[]): number {
  let m = 0;
  for (const r of rows) if (r.pos > m) m = r.pos;
  return m;
}

function lastRows(rows: readonly Row[]): number[] {
  const out: number[] = [];
  rows.forEach((r, i) => {
    if (r.last) out.push(i);
  });
  return out;
}
