/**
 * What a training run leaves on disk, in formats every other lmdyn command loads:
 *
 * - `model.bin`: llama2.c checkpoint (version 0, the one run.c reads), with the tokenizer copied
 *   beside it (`tokenizer.bin` or `tokenizer.json`), so `lmdyn generate -m DIR/model.bin` works;
 * - `hf/`: a Hugging Face folder (config.json LlamaForCausalLM + model.safetensors, q/k rows in
 *   HF's rotate_half order) with the tokenizer;
 * - `checkpoints/step-NNNNNNNN.bin` (+ the tokenizer): the model at every checkpoint, for
 *   watching quantities change over training;
 * - `state/`: parameters and AdamW moments (state.safetensors, exact fp32) and state.json, which
 *   `--resume` continues from.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LmdynError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { writeLlama2cCheckpoint } from '../io/llama2c.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { modelConfigOf, paramLayout, weightsView, type TrainShape } from './model.js';

/** Writes the llama2.c checkpoint `path` of the f32 parameters. */
export function writeModelBin(path: string, shape: TrainShape, params: Float32Array): void {
  writeLlama2cCheckpoint(path, modelConfigOf(shape), weightsView(params, shape), { version: 0 });
}

/** Copies the tokenizer (a tokenizer.bin-style file, a tokenizer.json, or a folder holding one) into `dir`. */
export function copyTokenizer(tokenizerPath: string, dir: string): void {
  let src = tokenizerPath;
  if (statSync(src).isDirectory()) {
    const found = ['tokenizer.json', 'tokenizer.bin'].map((f) => join(src, f)).find(existsSync);
    if (!found) throw new LmdynError('not_found', `no tokenizer.json or tokenizer.bin in ${src}`);
    src = found;
  }
  if (src.endsWith('.json')) {
    copyIfNew(src, join(dir, 'tokenizer.json'));
    for (const f of ['tokenizer_config.json', 'special_tokens_map.json']) {
      const side = join(dirname(src), f);
      if (existsSync(side)) copyIfNew(side, join(dir, f));
    }
  } else {
    copyIfNew(src, join(dir, 'tokenizer.bin'));
  }
}

function copyIfNew(src: string, dst: string): void {
  if (existsSync(dst) && readFileSync(dst).equals(readFileSync(src))) return;
  copyFileSync(src, dst);
}

/**
 * A Hugging Face LlamaForCausalLM folder. HF keeps q and k rows in rotate_half order: row
 * i + j·hd/2 of a head is our interleaved row 2i + j (the inverse of io/hf.ts ropeInterleaved).
 */
export function writeHfFolder(
  dir: string,
  shape: TrainShape,
  params: Float32Array,
  tokenizerPath: string,
): void {
  mkdirSync(dir, { recursive: true });
  const hd = shape.dim / shape.nHeads;
  const tensors: TensorToWrite[] = [];
  const { tensors: layout } = paramLayout(shape);
  for (const t of layout) {
    const data = params.subarray(t.offset, t.offset + t.rows * t.cols);
    const name = hfName(t.name);
    const isQ = t.name.endsWith('attention.wq.weight');
    const isK = t.name.endsWith('attention.wk.weight');
    const values = isQ || isK ? rotateHalfRows(data, t.rows / hd, hd, t.cols) : data;
    const shapeOut = t.rows === 1 ? [t.cols] : [t.rows, t.cols];
    tensors.push({ name, dtype: 'F32', shape: shapeOut, data: values });
  }
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: shape.dim,
    intermediate_size: shape.hiddenDim,
    num_hidden_layers: shape.nLayers,
    num_attention_heads: shape.nHeads,
    num_key_value_heads: shape.nKvHeads,
    vocab_size: shape.vocabSize,
    max_position_embeddings: shape.seqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    hidden_act: 'silu',
    tie_word_embeddings: shape.tied,
    bos_token_id: 1,
    eos_token_id: 2,
    attention_bias: false,
    mlp_bias: false,
    initializer_range: 0.02,
    torch_dtype: 'float32',
  };
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  copyTokenizer(tokenizerPath, dir);
}

function hfName(name: string): string {
  if (name === 'tok_embeddings.weight') return 'model.embed_tokens.weight';
  if (name === 'norm.weight') return 'model.norm.weight';
  if (name === 'output.weight') return 'lm_head.weight';
  const m = /^layers\.(\d+)\.(.+)$/.exec(name)!;
  const map: Record<string, string> = {
    'attention_norm.weight': 'input_layernorm.weight',
    'attention.wq.weight': 'self_attn.q_proj.weight',
    'attention.wk.weight': 'self_attn.k_proj.weight',
    'attention.wv.weight': 'self_attn.v_proj.weight',
    'attention.wo.weight': 'self_attn.o_proj.weight',
    'ffn_norm.weight': 'post_attention_layernorm.weight',
    'feed_forward.w1.weight': 'mlp.gate_proj.weight',
    'feed_forward.w3.weight': 'mlp.up_proj.weight',
    'feed_forward.w2.weight': 'mlp.down_proj.weight',
  };
  return `model.layers.${m[1]}.${map[m[2]]}`;
}

function rotateHalfRows(rows: Float32Array, heads: number, hd: number, cols: number): Float32Array {
  const out = new Float32Array(rows.length);
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    const base = h * hd;
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (base + 2 * i + j) * cols;
        out.set(rows.subarray(from, from + cols), (base + i + j * half) * cols);
      }
    }
  }
  return out;
}

// ---- resumable state ---------------------------------------------------------------------------

export interface SavedState<Meta> {
  step: number;
  adamT: number;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  meta: Meta;
}

/**
 * Writes `dir/state` atomically: into state.tmp, then swapped in by renames, so a crash leaves
 * either the old state or the new one.
 */
export function saveState<Meta>(dir: string, s: SavedState<Meta>): void {
  const tmp = join(dir, 'state.tmp');
  const final = join(dir, 'state');
  const old = join(dir, 'state.old');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeSafetensors(
    join(tmp, 'state.safetensors'),
    [
      { name: 'params', dtype: 'F32', shape: [s.params.length], data: s.params },
      { name: 'adam.m', dtype: 'F32', shape: [s.m.length], data: s.m },
      { name: 'adam.v', dtype: 'F32', shape: [s.v.length], data: s.v },
    ],
    { step: String(s.step) },
  );
  writeFileAtomic(
    join(tmp, 'state.json'),
    JSON.stringify({ step: s.step, adam_t: s.adamT, ...s.meta }, null, 2) + '\n',
  );
  rmSync(old, { recursive: true, force: true });
  if (existsSync(final)) renameSync(final, old);
  renameSync(tmp, final);
  rmSync(old, { recursive: true, force: true });
}

export function loadState<Meta>(dir: string): SavedState<Meta> {
  const final = join(dir, 'state');
  const jsonPath = join(final, 'state.json');
  if (!existsSync(jsonPath)) {
    throw new LmdynError('not_found', `${dir} has no training state to resume (state/state.json)`);
  }
  const json = JSON.parse(readFileSync(jsonPath, 'utf8')) as Meta & {
    step: number;
    adam_t: number;
  };
  const { tensors } = readSafetensors(join(final, 'state.safetensors'));
  const get = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (!t || !(t.data instanceof Float32Array))
      throw new LmdynError('bad_format', `${basename(dir)}/state: missing ${name}`);
    return t.data;
  };
  return {
    step: json.step,
    adamT: json.adam_t,
    params: get('params'),
    m: get('adam.m'),
    v: get('adam.v'),
    meta: json,
  };
}
