/**
 * A trainable llama (llama2.c's model.py architecture: token embedding, per block RMSNorm →
 * attention with RoPE and grouped-query heads → residual, RMSNorm → SwiGLU MLP → residual,
 * final RMSNorm, tied or untied classifier), its parameters in one flat buffer, and the graph
 * that runs a micro-batch forward and backward.
 *
 * Parameters live in one flat Vec in llama2.c's tensor order; every tensor is a view of it, so
 * the optimizer, gradient clipping and checkpoints see one array, and ModelWeights for the
 * inference code (forward.ts, the llama2.c and safetensors writers) are views too, never copies.
 * Within a block wq, wk, wv are consecutive rows (one [qDim + 2·kvDim, d] map "wqkv"), and so
 * are w1, w3 (one [2·hidden, d] map "w13"): one matmul each way instead of three or two.
 */
import { LmdynError } from '../errors.js';
import type { ModelConfig, ModelWeights } from '../model/types.js';
import { newMatrix } from '../tensor/matrix.js';
import { initialWeights } from '../model/init.js';
import {
  attentionBackward,
  attentionForward,
  attentionProbsSize,
  attentionScratchSize,
  crossEntropyForwardBackward,
  crossEntropyLoss,
  embeddingBackward,
  embeddingForward,
  linearBackward,
  linearForward,
  rmsnormBackward,
  rmsnormForward,
  ropeApply,
  ropeTable,
  swigluBackward,
  swigluForward,
  type AttentionScratch,
  type AttentionShape,
  type LinearScratch,
  type RopeTable,
} from './ops.js';
import { allocVec, freeVec, transpose, type Precision, type Vec } from './tensor.js';

/** The shape of a trainable model (always RMSNorm eps 1e-5, RoPE θ 10000: llama2.c). */
export interface TrainShape {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  tied: boolean;
}

export const NORM_EPS = 1e-5;
export const ROPE_THETA = 10000;

export function checkShape(s: TrainShape): void {
  const bad = (msg: string): never => {
    throw new LmdynError('bad_argument', `model config: ${msg}`);
  };
  for (const k of [
    'dim',
    'hiddenDim',
    'nLayers',
    'nHeads',
    'nKvHeads',
    'vocabSize',
    'seqLen',
  ] as const) {
    if (!(Number.isInteger(s[k]) && s[k] > 0)) bad(`${k} must be a positive integer, got ${s[k]}`);
  }
  if (s.dim % s.nHeads !== 0) bad(`dim ${s.dim} is not a multiple of heads ${s.nHeads}`);
  if ((s.dim / s.nHeads) % 2 !== 0) bad(`head size ${s.dim / s.nHeads} must be even (RoPE pairs)`);
  if (s.nHeads % s.nKvHeads !== 0)
    bad(`heads ${s.nHeads} is not a multiple of kv_heads ${s.nKvHeads}`);
}

/** The inference-side config of a trained model (what the llama2.c loader would report). */
export function modelConfigOf(s: TrainShape): ModelConfig {
  return {
    architecture: 'llama',
    sourceArchitecture: 'llama2.c',
    dim: s.dim,
    hiddenDim: s.hiddenDim,
    nLayers: s.nLayers,
    nHeads: s.nHeads,
    nKvHeads: s.nKvHeads,
    headDim: s.dim / s.nHeads,
    vocabSize: s.vocabSize,
    seqLen: s.seqLen,
    norm: 'rmsnorm',
    normEps: NORM_EPS,
    mlp: 'swiglu',
    positional: 'rope',
    ropeTheta: ROPE_THETA,
    ropeDim: s.dim / s.nHeads,
    tiedEmbeddings: s.tied,
    bosId: 1,
    eosId: 2,
  };
}

export function shapeOfConfig(c: ModelConfig): TrainShape {
  const ok =
    c.architecture === 'llama' &&
    c.norm === 'rmsnorm' &&
    c.mlp === 'swiglu' &&
    !c.qkNorm &&
    c.positional === 'rope' &&
    c.ropeDim === c.headDim &&
    c.ropeScaling === undefined &&
    !c.attnWindow?.some((w) => w !== null) &&
    c.headDim * c.nHeads === c.dim;
  if (!ok) throw new LmdynError('unsupported', 'only llama2.c-shaped llama models can be trained');
  return {
    dim: c.dim,
    hiddenDim: c.hiddenDim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    vocabSize: c.vocabSize,
    seqLen: c.seqLen,
    tied: c.tiedEmbeddings,
  };
}

// ---- parameters --------------------------------------------------------------------------------

/** One tensor of the flat parameter buffer; `decay`: AdamW weight decay applies (matrices). */
export interface ParamTensor {
  name: string; // llama2.c model.py name, e.g. layers.0.attention.wq.weight
  offset: number;
  rows: number;
  cols: number;
  decay: boolean;
}

export function paramLayout(s: TrainShape): { tensors: ParamTensor[]; total: number } {
  const hd = s.dim / s.nHeads;
  const qDim = s.nHeads * hd;
  const kvDim = s.nKvHeads * hd;
  const tensors: ParamTensor[] = [];
  let offset = 0;
  const add = (name: string, rows: number, cols: number, decay: boolean) => {
    tensors.push({ name, offset, rows, cols, decay });
    offset += rows * cols;
  };
  add('tok_embeddings.weight', s.vocabSize, s.dim, true);
  for (let l = 0; l < s.nLayers; l++) {
    const p = `layers.${l}.`;
    add(`${p}attention_norm.weight`, 1, s.dim, false);
    add(`${p}attention.wq.weight`, qDim, s.dim, true);
    add(`${p}attention.wk.weight`, kvDim, s.dim, true);
    add(`${p}attention.wv.weight`, kvDim, s.dim, true);
    add(`${p}attention.wo.weight`, s.dim, qDim, true);
    add(`${p}ffn_norm.weight`, 1, s.dim, false);
    add(`${p}feed_forward.w1.weight`, s.hiddenDim, s.dim, true);
    add(`${p}feed_forward.w3.weight`, s.hiddenDim, s.dim, true);
    add(`${p}feed_forward.w2.weight`, s.dim, s.hiddenDim, true);
  }
  add('norm.weight', 1, s.dim, false);
  if (!s.tied) add('output.weight', s.vocabSize, s.dim, true);
  return { tensors, total: offset };
}

export interface LayerViews {
  attnNorm: Vec; // [d]
  wqkv: Vec; // [qDim + 2·kvDim, d]: wq rows, then wk, then wv
  wo: Vec; // [d, qDim]
  mlpNorm: Vec; // [d]
  w13: Vec; // [2·hidden, d]: w1 (gate) rows, then w3 (up)
  w2: Vec; // [d, hidden]
}

export interface ParamViews {
  flat: Vec;
  tokenEmbedding: Vec; // [V, d]
  layers: LayerViews[];
  finalNorm: Vec; // [d]
  unembedding: Vec; // [V, d]; the same view as tokenEmbedding when tied
}

/** Views of the tensors of a flat parameter (or gradient) buffer. */
export function paramViews(flat: Vec, s: TrainShape): ParamViews {
  const { tensors, total } = paramLayout(s);
  if (flat.length !== total)
    throw new Error(`parameter buffer has ${flat.length} values, expected ${total}`);
  const at = new Map(tensors.map((t) => [t.name, t]));
  const view = (first: string, last = first): Vec => {
    const a = at.get(first)!;
    const b = at.get(last)!;
    return flat.subarray(a.offset, b.offset + b.rows * b.cols);
  };
  const tokenEmbedding = view('tok_embeddings.weight');
  return {
    flat,
    tokenEmbedding,
    layers: Array.from({ length: s.nLayers }, (_, l) => {
      const p = `layers.${l}.`;
      return {
        attnNorm: view(`${p}attention_norm.weight`),
        wqkv: view(`${p}attention.wq.weight`, `${p}attention.wv.weight`),
        wo: view(`${p}attention.wo.weight`),
        mlpNorm: view(`${p}ffn_norm.weight`),
        w13: view(`${p}feed_forward.w1.weight`, `${p}feed_forward.w3.weight`),
        w2: view(`${p}feed_forward.w2.weight`),
      };
    }),
    finalNorm: view('norm.weight'),
    unembedding: s.tied ? tokenEmbedding : view('output.weight'),
  };
}

/**
 * Fresh parameters: llama2.c model.py's initialisation, drawn exactly as the coupling lens's
 * random twin (model/init.ts initialWeights: N(0, 0.02²), wo and w3 N(0, (0.02/√(2L))²),
 * norms 1), so a seed names the same initial model in both places.
 */
export function initParams(s: TrainShape, seed: number, precision: Precision): Vec {
  const w = initialWeights(modelConfigOf(s), seed);
  const flat = allocVec(precision, paramLayout(s).total);
  copyWeightsInto(flat, s, w);
  return flat;
}

/** Copies inference weights (f32 matrices) into a flat parameter buffer of shape `s`. */
export function copyWeightsInto(flat: Vec, s: TrainShape, w: ModelWeights): void {
  const { tensors } = paramLayout(s);
  for (const t of tensors) flat.set(sourceTensor(w, t.name), t.offset);
}

function sourceTensor(w: ModelWeights, name: string): Float32Array {
  if (name === 'tok_embeddings.weight') return w.tokenEmbedding.data;
  if (name === 'norm.weight') return w.finalNorm;
  if (name === 'output.weight') return w.unembedding.data;
  const m = /^layers\.(\d+)\.(.+)$/.exec(name)!;
  const l = w.layers[Number(m[1])];
  switch (m[2]) {
    case 'attention_norm.weight':
      return l.attnNorm;
    case 'attention.wq.weight':
      return l.wq.data;
    case 'attention.wk.weight':
      return l.wk.data;
    case 'attention.wv.weight':
      return l.wv.data;
    case 'attention.wo.weight':
      return l.wo.data;
    case 'ffn_norm.weight':
      return l.mlpNorm;
    case 'feed_forward.w1.weight':
      if (!l.wGate) throw new LmdynError('unsupported', 'the model has no SwiGLU gate');
      return l.wGate.data;
    case 'feed_forward.w3.weight':
      return l.wUp.data;
    case 'feed_forward.w2.weight':
      return l.wDown.data;
  }
  throw new Error(`unknown tensor ${name}`);
}

/** Inference weights whose tensors are views of the f32 flat buffer (no copy). */
export function weightsView(flat: Float32Array, s: TrainShape): ModelWeights {
  const { tensors } = paramLayout(s);
  const at = new Map(tensors.map((t) => [t.name, t]));
  const mat = (name: string) => {
    const t = at.get(name)!;
    return newMatrix(t.rows, t.cols, flat.subarray(t.offset, t.offset + t.rows * t.cols));
  };
  const vec = (name: string) => mat(name).data;
  const tokenEmbedding = mat('tok_embeddings.weight');
  return {
    tokenEmbedding,
    positionEmbedding: null,
    layers: Array.from({ length: s.nLayers }, (_, l) => {
      const p = `layers.${l}.`;
      return {
        attnNorm: vec(`${p}attention_norm.weight`),
        attnNormBias: null,
        wq: mat(`${p}attention.wq.weight`),
        wk: mat(`${p}attention.wk.weight`),
        wv: mat(`${p}attention.wv.weight`),
        wo: mat(`${p}attention.wo.weight`),
        bq: null,
        bk: null,
        bv: null,
        bo: null,
        mlpNorm: vec(`${p}ffn_norm.weight`),
        mlpNormBias: null,
        wGate: mat(`${p}feed_forward.w1.weight`),
        wUp: mat(`${p}feed_forward.w3.weight`),
        bUp: null,
        wDown: mat(`${p}feed_forward.w2.weight`),
        bDown: null,
      };
    }),
    finalNorm: vec('norm.weight'),
    finalNormBias: null,
    unembedding: s.tied ? tokenEmbedding : mat('output.weight'),
    unembeddingBias: null,
  };
}

// ---- the graph: one micro-batch forward and backward ------------------------------------------

interface LayerActs {
  rho1: Vec; // [N]
  xn1: Vec; // [N, d]
  qkv: Vec; // [N, qkvDim] q | k | v, after RoPE
  probs: Vec; // [m, nKv, G·T, T]
  z: Vec; // [N, qDim]
  mid: Vec; // [N, d] residual after attention
  rho2: Vec; // [N]
  xn2: Vec; // [N, d]
  ab: Vec; // [N, 2·hidden] gate pre-activation | up
  u: Vec; // [N, hidden] silu(gate) ⊙ up
}

interface Transposed {
  wqkvT: Vec; // [d, qkvDim]
  woT: Vec; // [qDim, d]
  w13T: Vec; // [d, 2·hidden]
  w2T: Vec; // [hidden, d]
}

/**
 * Activations and scratch for micro-batches of up to `maxSeqs` sequences of T tokens. Call
 * `prepare(params)` whenever the parameters changed (it caches their transposes), then
 * `lossAndGrad` per micro-batch.
 */
export class TrainGraph {
  readonly shape: TrainShape;
  readonly precision: Precision;
  readonly maxSeqs: number;
  readonly T: number;
  private readonly dims: {
    d: number;
    hd: number;
    qDim: number;
    kvDim: number;
    qkvDim: number;
    H: number;
    V: number;
  };
  private readonly x: Vec[]; // [L + 1] → [N, d] residual stream entering block l (x[L]: final)
  private readonly acts: LayerActs[];
  private readonly rhoF: Vec; // [N]
  private readonly xf: Vec; // [N, d]
  private readonly logits: Vec; // [N, V], then ∂loss/∂logits
  private readonly dres: Vec; // [N, d]
  private readonly dxn: Vec; // [N, d]
  private readonly dqkv: Vec; // [N, qkvDim]
  private readonly dz: Vec; // [N, qDim]
  private readonly du: Vec; // [N, hidden]
  private readonly dab: Vec; // [N, 2·hidden]
  private readonly lin: LinearScratch;
  private readonly att: AttentionScratch;
  private readonly wT: Transposed[];
  private readonly uT: Vec; // [d, V]
  private readonly rope: RopeTable;
  private readonly owned: Vec[] = [];

  constructor(shape: TrainShape, precision: Precision, maxSeqs: number, T: number) {
    checkShape(shape);
    if (!(T >= 1 && T <= shape.seqLen)) {
      throw new LmdynError('bad_argument', `sequence length ${T} is outside 1..${shape.seqLen}`);
    }
    this.shape = shape;
    this.precision = precision;
    this.maxSeqs = maxSeqs;
    this.T = T;
    const d = shape.dim;
    const hd = d / shape.nHeads;
    const qDim = shape.nHeads * hd;
    const kvDim = shape.nKvHeads * hd;
    const qkvDim = qDim + 2 * kvDim;
    const H = shape.hiddenDim;
    const V = shape.vocabSize;
    this.dims = { d, hd, qDim, kvDim, qkvDim, H, V };
    const N = maxSeqs * T;
    const a = (n: number): Vec => {
      const v = allocVec(precision, n);
      this.owned.push(v);
      return v;
    };
    const ash = this.attentionShape(maxSeqs);
    this.x = Array.from({ length: shape.nLayers + 1 }, () => a(N * d));
    this.acts = Array.from({ length: shape.nLayers }, () => ({
      rho1: a(N),
      xn1: a(N * d),
      qkv: a(N * qkvDim),
      probs: a(attentionProbsSize(ash)),
      z: a(N * qDim),
      mid: a(N * d),
      rho2: a(N),
      xn2: a(N * d),
      ab: a(N * 2 * H),
      u: a(N * H),
    }));
    this.rhoF = a(N);
    this.xf = a(N * d);
    this.logits = a(N * V);
    this.dres = a(N * d);
    this.dxn = a(N * d);
    this.dqkv = a(N * qkvDim);
    this.dz = a(N * qDim);
    this.du = a(N * H);
    this.dab = a(N * 2 * H);
    const maxOut = Math.max(qkvDim, d, 2 * H, V);
    const maxIn = Math.max(d, qDim, H);
    this.lin = { dyT: a(maxOut * N), xT: a(maxIn * N), dW: a(maxOut * maxIn) };
    const sizes = attentionScratchSize(ash);
    this.att = Object.fromEntries(
      Object.entries(sizes).map(([k, n]) => [k, a(n)]),
    ) as unknown as AttentionScratch;
    this.wT = Array.from({ length: shape.nLayers }, () => ({
      wqkvT: a(d * qkvDim),
      woT: a(qDim * d),
      w13T: a(d * 2 * H),
      w2T: a(H * d),
    }));
    this.uT = a(d * V);
    this.rope = ropeTable(T, hd, ROPE_THETA);
  }

  /** Bytes of activations and scratch for a micro-batch of `seqs` sequences of T tokens (f32). */
  static bytesFor(shape: TrainShape, seqs: number, T: number): number {
    const d = shape.dim;
    const hd = d / shape.nHeads;
    const qkv = (shape.nHeads + 2 * shape.nKvHeads) * hd;
    const H = shape.hiddenDim;
    const N = seqs * T;
    const perLayer = N * (2 + 4 * d + qkv + d + 3 * H) + seqs * shape.nHeads * T * (T + 1);
    return (
      4 *
      (shape.nLayers * perLayer + N * (d * 4 + shape.vocabSize * 2 + qkv + 3 * H + Math.max(d, H)))
    );
  }

  free(): void {
    for (const v of this.owned) freeVec(v);
    this.owned.length = 0;
  }

  /** Caches the transposes of the weights the backward pass multiplies by. */
  prepare(p: ParamViews): void {
    const { d, qDim, qkvDim, H, V } = this.dims;
    p.layers.forEach((lw, l) => {
      const t = this.wT[l];
      transpose(t.wqkvT, lw.wqkv, qkvDim, d);
      transpose(t.woT, lw.wo, d, qDim);
      transpose(t.w13T, lw.w13, 2 * H, d);
      transpose(t.w2T, lw.w2, d, H);
    });
    transpose(this.uT, p.unembedding, V, d);
  }

  /**
   * Forward and backward of `m` sequences: tokens, targets [m·T]. Adds scale·∂(Σ −log p)/∂θ
   * into `grads` and returns Σ −log p over the micro-batch (unscaled).
   */
  lossAndGrad(
    p: ParamViews,
    grads: ParamViews,
    tokens: ArrayLike<number>,
    targets: ArrayLike<number>,
    m: number,
    scale: number,
  ): number {
    this.forward(p, tokens, m);
    const N = m * this.T;
    const { d, qDim, qkvDim, H, V } = this.dims;
    const L = this.shape.nLayers;
    const loss = crossEntropyForwardBackward(this.logits, targets, N, V, scale);
    // classifier and final norm: logits = xf·Uᵀ, xf = norm(x_L)
    linearBackward(this.dxn, grads.unembedding, this.logits, this.xf, this.uT, N, V, d, this.lin);
    this.dres.fill(0, 0, N * d);
    rmsnormBackward(this.dres, grads.finalNorm, this.dxn, this.x[L], this.rhoF, p.finalNorm, N, d);
    for (let l = L - 1; l >= 0; l--) {
      const lw = p.layers[l];
      const lg = grads.layers[l];
      const act = this.acts[l];
      const t = this.wT[l];
      // MLP: x_{l+1} = mid + u·W2ᵀ, u = silu(xn2·W1ᵀ) ⊙ xn2·W3ᵀ, xn2 = norm(mid)
      linearBackward(this.du, lg.w2, this.dres, act.u, t.w2T, N, d, H, this.lin);
      swigluRows(this.dab, this.du, act.ab, N, H);
      linearBackward(this.dxn, lg.w13, this.dab, act.xn2, t.w13T, N, 2 * H, d, this.lin);
      rmsnormBackward(this.dres, lg.mlpNorm, this.dxn, act.mid, act.rho2, lw.mlpNorm, N, d);
      // attention: mid = x_l + z·Woᵀ, z = attn(rope(xn1·Wqᵀ), rope(xn1·Wkᵀ), xn1·Wvᵀ), xn1 = norm(x_l)
      linearBackward(this.dz, lg.wo, this.dres, act.z, t.woT, N, d, qDim, this.lin);
      attentionBackward(
        this.dqkv,
        this.dz,
        act.z,
        act.probs,
        act.qkv,
        this.attentionShape(m),
        this.att,
      );
      ropeApply(this.dqkv, N, qkvDim, 0, this.shape.nHeads, this.dims.hd, this.rope, -1);
      ropeApply(this.dqkv, N, qkvDim, qDim, this.shape.nKvHeads, this.dims.hd, this.rope, -1);
      linearBackward(this.dxn, lg.wqkv, this.dqkv, act.xn1, t.wqkvT, N, qkvDim, d, this.lin);
      rmsnormBackward(this.dres, lg.attnNorm, this.dxn, this.x[l], act.rho1, lw.attnNorm, N, d);
    }
    embeddingBackward(grads.tokenEmbedding, this.dres, tokens, N, d);
    return loss;
  }

  /** Σ −log p(target) over `m` sequences, forward only. */
  loss(p: ParamViews, tokens: ArrayLike<number>, targets: ArrayLike<number>, m: number): number {
    this.forward(p, tokens, m);
    return crossEntropyLoss(this.logits, targets, m * this.T, this.dims.V);
  }

  /** Logits [m·T, V] of the last forward pass (valid until the next call). */
  lastLogits(m: number): Vec {
    return this.logits.subarray(0, m * this.T * this.dims.V);
  }

  private forward(p: ParamViews, tokens: ArrayLike<number>, m: number): void {
    if (!(m >= 1 && m <= this.maxSeqs))
      throw new Error(`micro-batch of ${m} sequences; the graph holds ${this.maxSeqs}`);
    const N = m * this.T;
    const { d, hd, qDim, qkvDim, H, V } = this.dims;
    const L = this.shape.nLayers;
    embeddingForward(this.x[0], p.tokenEmbedding, tokens, N, d);
    for (let l = 0; l < L; l++) {
      const lw = p.layers[l];
      const act = this.acts[l];
      const x = this.x[l];
      rmsnormForward(act.xn1, act.rho1, x, lw.attnNorm, N, d, NORM_EPS);
      linearForward(act.qkv, act.xn1, lw.wqkv, N, qkvDim, d);
      ropeApply(act.qkv, N, qkvDim, 0, this.shape.nHeads, hd, this.rope, 1);
      ropeApply(act.qkv, N, qkvDim, qDim, this.shape.nKvHeads, hd, this.rope, 1);
      attentionForward(act.z, act.probs, act.qkv, this.attentionShape(m), this.att);
      linearForward(act.mid, act.z, lw.wo, N, d, qDim);
      for (let i = 0; i < N * d; i++) act.mid[i] += x[i];
      rmsnormForward(act.xn2, act.rho2, act.mid, lw.mlpNorm, N, d, NORM_EPS);
      linearForward(act.ab, act.xn2, lw.w13, N, 2 * H, d);
      for (let r = 0; r < N; r++) {
        const o = r * 2 * H;
        swigluForward(
          act.u.subarray(r * H, (r + 1) * H),
          act.ab.subarray(o, o + H),
          act.ab.subarray(o + H, o + 2 * H),
          H,
        );
      }
      const next = this.x[l + 1];
      linearForward(next, act.u, lw.w2, N, d, H);
      for (let i = 0; i < N * d; i++) next[i] += act.mid[i];
    }
    rmsnormForward(this.xf, this.rhoF, this.x[L], p.finalNorm, N, d, NORM_EPS);
    linearForward(this.logits, this.xf, p.unembedding, N, V, d);
  }

  private attentionShape(m: number): AttentionShape {
    return {
      m,
      T: this.T,
      nHeads: this.shape.nHeads,
      nKvHeads: this.shape.nKvHeads,
      headDim: this.dims.hd,
    };
  }
}

/** SwiGLU backward row by row: ab rows are [gate | up], dab rows [ā | b̄]. */
function swigluRows(dab: Vec, du: Vec, ab: Vec, N: number, H: number): void {
  for (let r = 0; r < N; r++) {
    const o = r * 2 * H;
    swigluBackward(
      dab.subarray(o, o + H),
      dab.subarray(o + H, o + 2 * H),
      du.subarray(r * H, (r + 1) * H),
      ab.subarray(o, o + H),
      ab.subarray(o + H, o + 2 * H),
      H,
    );
  }
}
