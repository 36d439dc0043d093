/**
 * `npm run bench:gguf`: do the GGUF files lmdyn writes mean the same model to llama.cpp?
 *
 * lmdyn converts (1) stories260K (trained; MANIFEST.md §1) and (2) a seeded random-weight llama
 * whose rows are whole 256-value blocks (dim 256, hidden 768: stories260K's rows of 64 and 172
 * fall back to Q5_0/Q8_0/F16 under K types, as llama-quantize does, so only this model holds
 * real Q4_K/Q5_K/Q6_K blocks) to GGUF at F32, Q8_0, Q4_K, Q5_K and Q6_K. Both engines then
 * continue the same prompt ids greedily for 64 tokens from the same file: lmdyn dequantizes the
 * file's blocks at load (Q8_0 stays Q8_0), llama.cpp computes with them (K types against
 * activations quantized to Q8_K). The table gives the tokens on which they agree before the
 * first difference, lmdyn's top-1 − top-2 logit margin there and whether llama.cpp picked
 * lmdyn's runner-up (a difference is arithmetic, not a misread block, when that margin is within
 * the engines' rounding), and, teacher-forcing lmdyn's greedy text through both engines, the
 * largest difference of log-probabilities over every position's 10 likeliest tokens, beside the
 * same measure between the file and the model's F32 file in lmdyn (what quantization itself
 * changes): llama.cpp reads the blocks as lmdyn does when the first is well below the second.
 *
 * The peer is node-llama-cpp (bench/peer-check.ts), installed on demand; offline, the script says the
 * peer is unavailable and exits 0. Flags: --tokens N (default 64), --json.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fromLoaded, type Model } from '../src/model/model.js';
import type { GgmlTypeName } from '../src/io/gguf-quants.js';
import { convertToGguf, writeGgufModel, type GgufWriteResult } from '../src/io/gguf-write.js';
import { loadModel } from '../src/io/load.js';
import type { LayerWeights, ModelConfig, ModelWeights } from '../src/model/types.js';
import { newMatrix } from '../src/tensor/matrix.js';
import { createRng } from '../src/tensor/rng.js';
import { loadLlama2cTokenizer } from '../src/io/llama2c-tokenizer.js';
import { model as fixture } from '../test/helpers/paths.js';
import {
  llamaCppDistributions,
  llamaCppGreedy,
  llamaCppPeer,
  type LlamaCppPeer,
} from './peer-check.js';

export interface Row {
  model: string;
  type: GgmlTypeName;
  stored: string;
  prompt: string;
  agree: number;
  of: number;
  marginAtDifference: number | null;
  /** Whether llama.cpp's token at the first difference is lmdyn's second choice. */
  runnerUp: boolean | null;
  /** max over positions and lmdyn's top-10 tokens of |log p_lmdyn − log p_llama.cpp|. */
  maxLogProbDiff: number;
  /** The same measure between lmdyn on this file and lmdyn on the model's F32 file. */
  quantizationEffect: number;
  lmdyn: number[];
  llamaCpp: number[];
}

/** A probe prompt that visits many embedding rows. */
export const PROBE_TEXT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her big dog.';
export const DIR = join('.lmdyn-tmp', 'gguf-crosscheck');
const TYPES: GgmlTypeName[] = ['F32', 'Q8_0', 'Q4_K', 'Q5_K', 'Q6_K'];
const WIDE_SEED = 11;
/** TYPES starts with F32, so each model's F32 file exists before its quantized ones. */
const f32Of = (name: string): string => join(DIR, `${name}-F32.gguf`);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const n = Number(args[args.indexOf('--tokens') + 1] ?? 64) || 64;
  const json = args.includes('--json');
  const peer = await llamaCppPeer();
  if (!peer.ok) {
    console.log(`llama.cpp peer unavailable: ${peer.reason}`);
    return;
  }
  mkdirSync(DIR, { recursive: true });
  const rows: Row[] = [];
  const stories = fixture('stories260K', 'stories260K.bin');
  const tok = fixture('stories260K', 'tok512.bin');
  for (const type of TYPES) {
    const out = f32Of('stories260K').replace('-F32.gguf', `-${type}.gguf`);
    const written = await convertToGguf(stories, out, { type });
    for (const prompt of ['', 'Once upon a time']) {
      rows.push(
        await compare(peer.peer, 'stories260K', out, f32Of('stories260K'), written, prompt, n),
      );
    }
  }
  const wide = wideRandomLlama(WIDE_SEED);
  for (const type of TYPES) {
    const out = f32Of(`wide256-s${WIDE_SEED}`).replace('-F32.gguf', `-${type}.gguf`);
    const written = writeGgufModel(
      out,
      { ...wide, tokenizer: loadLlama2cTokenizer(tok) },
      { type },
    );
    rows.push(
      await compare(
        peer.peer,
        `wide256 (random, seed ${WIDE_SEED})`,
        out,
        f32Of(`wide256-s${WIDE_SEED}`),
        written,
        'Once upon a time',
        n,
      ),
    );
  }
  // Block-decoding probe: every layer writes zeros (wo = wDown = 0), so the logits are the F32
  // classifier applied to the normalised embedding row, which llama.cpp dequantizes with ggml's
  // dequantize_row_* (get_rows) and multiplies in f32: no activation is quantized on either side.
  const probe = wideRandomLlama(WIDE_SEED, { silentLayers: true });
  const probeF32 = f32Of(`probe256-s${WIDE_SEED}`);
  for (const type of [
    'F32',
    'F16',
    'BF16',
    'Q4_0',
    'Q4_1',
    'Q5_0',
    'Q5_1',
    'Q8_0',
    'Q4_K',
    'Q5_K',
    'Q6_K',
  ] as GgmlTypeName[]) {
    const out = probeF32.replace('-F32.gguf', `-${type}.gguf`);
    const written = writeGgufModel(
      out,
      { ...probe, tokenizer: loadLlama2cTokenizer(tok) },
      { type: 'F32', embeddingType: type },
    );
    rows.push(
      await compare(
        peer.peer,
        `probe256 (token_embd ${type}, rest F32)`,
        out,
        probeF32,
        { ...written, type },
        PROBE_TEXT,
        n,
      ),
    );
  }
  if (json) {
    console.log(
      JSON.stringify({
        peer: { nodeLlamaCpp: peer.peer.version, llamaCpp: peer.peer.llamaCppRelease },
        rows,
      }),
    );
    return;
  }
  console.log(
    `llama.cpp via node-llama-cpp ${peer.peer.version} (llama.cpp ${peer.peer.llamaCppRelease}), 1 thread; ${n} greedy tokens`,
  );
  console.log(
    '| model | --type | tensors as stored | prompt | same greedy ids | lmdyn top-1 − top-2 at first difference | llama.cpp took lmdyn’s runner-up | max abs Δ log p, llama.cpp vs lmdyn, same file | max abs Δ log p, this file vs F32 (lmdyn) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const margin = r.marginAtDifference === null ? '—' : r.marginAtDifference.toFixed(4);
    const second = r.runnerUp === null ? '—' : r.runnerUp ? 'yes' : 'no';
    console.log(
      `| ${r.model} | ${r.type} | ${r.stored} | ${r.prompt ? JSON.stringify(r.prompt.length > 20 ? r.prompt.slice(0, 16) + '…' : r.prompt) : 'BOS'} | ${r.agree}/${r.of}${r.of < n ? ' (EOS)' : ''} | ${margin} | ${second} | ${r.maxLogProbDiff.toExponential(2)} | ${r.quantizationEffect.toExponential(2)} |`,
    );
  }
}

export async function compare(
  peer: LlamaCppPeer,
  name: string,
  path: string,
  f32Path: string,
  written: GgufWriteResult,
  prompt: string,
  n: number,
): Promise<Row> {
  const m = fromLoaded(await loadModel(path));
  const promptIds = [m.tokenizer.bosId ?? 1, ...m.tokenizer.encode(prompt, { bos: false })];
  const greedy = lmdynGreedy(m, promptIds, n);
  const forcedIds = [...promptIds, ...greedy.ids.slice(0, -1)];
  const ours = { ...greedy, logProbs: logProbs(m, forcedIds) };
  const f32LogProbs = logProbs(fromLoaded(await loadModel(f32Path)), forcedIds);
  const peerModel = await peer.loadModel(path);
  let theirs: number[];
  let dists: Map<number, number>[];
  const forced = forcedIds; // lmdyn's greedy text, teacher-forced through llama.cpp too
  try {
    theirs = await llamaCppGreedy(peerModel, promptIds, n);
    dists = await llamaCppDistributions(peerModel, forced);
  } finally {
    await peerModel.dispose();
  }
  // llama.cpp's evaluate stops at an end-of-generation token (EOS here) without returning it:
  // put it back; when lmdyn also has EOS there, both texts ended and the comparison stops
  const stopped = theirs.length < n;
  if (stopped && m.tokenizer.eosId !== null) theirs = [...theirs, m.tokenizer.eosId];
  const bothEnded = stopped && ours.ids.slice(0, theirs.length).join() === theirs.join();
  const end = bothEnded ? theirs.length : n;
  let agree = 0;
  while (agree < end && ours.ids[agree] === theirs[agree]) agree++;
  const runnerUp =
    agree < end
      ? secondBest(m, [...promptIds, ...ours.ids.slice(0, agree)]) === theirs[agree]
      : null;
  return {
    model: name,
    type: written.type,
    stored: Object.entries(written.typeCounts)
      .map(([t, c]) => `${c} ${t}`)
      .join(', '),
    prompt,
    agree,
    of: end,
    marginAtDifference: agree < end ? ours.margins[agree]! : null,
    runnerUp,
    maxLogProbDiff: maxLogProbDiff(ours.logProbs, (t, pos) => Math.log(dists[pos]!.get(t) ?? 0)),
    quantizationEffect: maxLogProbDiff(ours.logProbs, (t, pos) => f32LogProbs[pos]![t]!),
    lmdyn: ours.ids,
    llamaCpp: theirs,
  };
}

/** lmdyn's second most likely next token after `ids`. */
function secondBest(m: Model, ids: number[]): number {
  const logits = m.transformer.forward(m.transformer.newCache(1, ids.length), [
    { seq: 0, tokens: ids },
  ]).logits;
  const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!);
  return order[1]!;
}

/** lmdyn's log-probabilities of the next token after every prefix of `ids`: [ids.length][V]. */
function logProbs(m: Model, ids: number[]): Float64Array[] {
  const V = m.config.vocabSize;
  const all = m.transformer.forward(
    m.transformer.newCache(1, ids.length),
    [{ seq: 0, tokens: ids }],
    {
      logits: 'all',
    },
  ).logits;
  return ids.map((_, p) => {
    const row = all.subarray(p * V, (p + 1) * V);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const lse = max + Math.log(sum);
    return Float64Array.from(row, (v) => v - lse);
  });
}

/** max |log p − log q| over every position and the 10 likeliest tokens of p there. */
function maxLogProbDiff(p: Float64Array[], q: (t: number, pos: number) => number): number {
  let worst = 0;
  p.forEach((row, pos) => {
    const top = [...row.keys()].sort((a, b) => row[b]! - row[a]!).slice(0, 10);
    for (const t of top) worst = Math.max(worst, Math.abs(row[t]! - q(t, pos)));
  });
  return worst;
}

/** Greedy ids (no stop token: llama.cpp's evaluate does not stop either) and top-1 − top-2. */
function lmdynGreedy(m: Model, prompt: number[], n: number): { ids: number[]; margins: number[] } {
  const tf = m.transformer;
  const cache = tf.newCache(1, prompt.length + n);
  let logits = tf.forward(cache, [{ seq: 0, tokens: prompt }]).logits;
  const ids: number[] = [];
  const margins: number[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let v = 1; v < logits.length; v++) if (logits[v]! > logits[best]!) best = v;
    let second = -Infinity;
    for (let v = 0; v < logits.length; v++) if (v !== best) second = Math.max(second, logits[v]!);
    ids.push(best);
    margins.push(logits[best]! - second);
    if (i + 1 < n) logits = tf.forward(cache, [{ seq: 0, tokens: [best] }]).logits;
  }
  return { ids, margins };
}

/**
 * A seeded random llama whose every matrix row is whole 256-value blocks: dim 256, hidden 768,
 * 4 layers, 8 heads (4 KV heads), the 512-token vocabulary; untied classifier. Weights
 * N(0, 1/fan_in) so activations keep their scale through the layers, embeddings N(0, 1), norms
 * 1 + N(0, 0.1²). With `silentLayers` the attention and MLP outputs are zero (wo = wDown = 0).
 */
export function wideRandomLlama(
  seed: number,
  options: { silentLayers?: boolean } = {},
): { config: ModelConfig; weights: ModelWeights } {
  const rng = createRng(seed);
  const dim = 256;
  const hidden = 768;
  const mat = (rows: number, cols: number, std = 1 / Math.sqrt(cols)) =>
    newMatrix(
      rows,
      cols,
      Float32Array.from({ length: rows * cols }, () => rng.normal() * std),
    );
  const norm = () => Float32Array.from({ length: dim }, () => 1 + rng.normal() * 0.1);
  const layers: LayerWeights[] = Array.from({ length: 4 }, () => ({
    attnNorm: norm(),
    attnNormBias: null,
    wq: mat(dim, dim),
    wk: mat(dim / 2, dim),
    wv: mat(dim / 2, dim),
    wo: options.silentLayers ? newMatrix(dim, dim, new Float32Array(dim * dim)) : mat(dim, dim),
    bq: null,
    bk: null,
    bv: null,
    bo: null,
    mlpNorm: norm(),
    mlpNormBias: null,
    wGate: mat(hidden, dim),
    wUp: mat(hidden, dim),
    bUp: null,
    wDown: options.silentLayers
      ? newMatrix(dim, hidden, new Float32Array(dim * hidden))
      : mat(dim, hidden),
    bDown: null,
  }));
  const config: ModelConfig = {
    architecture: 'llama',
    sourceArchitecture: 'llama',
    dim,
    hiddenDim: hidden,
    nLayers: 4,
    nHeads: 8,
    nKvHeads: 4,
    headDim: 32,
    vocabSize: 512,
    seqLen: 256,
    norm: 'rmsnorm',
    normEps: 1e-5,
    mlp: 'swiglu',
    positional: 'rope',
    ropeTheta: 10000,
    ropeDim: 32,
    tiedEmbeddings: false,
    bosId: 1,
    eosId: 2,
  };
  const weights: ModelWeights = {
    tokenEmbedding: mat(512, dim, 1),
    positionEmbedding: null,
    layers,
    finalNorm: norm(),
    finalNormBias: null,
    unembedding: mat(512, dim),
    unembeddingBias: null,
  };
  return { config, weights };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
