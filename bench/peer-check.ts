/**
 * llama.cpp as a reference for correctness (bench/gguf-crosscheck.ts): greedy continuations and
 * teacher-forced next-token distributions through node-llama-cpp, loaded in this process from the
 * pinned copy bench/peer.ts's `ensurePeer` installs on demand into .cache/peers/ (never a
 * dependency of lmdyn). Offline, `llamaCppPeer` says why the peer is unavailable instead of
 * throwing.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensurePeer, PEER_PACKAGE, PEER_VERSION } from './peer.js';

/** The subset of node-llama-cpp's API the checks use. */
export interface LlamaCppModel {
  tokenize(text: string, specialTokens?: boolean): number[];
  detokenize(tokens: readonly number[]): string;
  createContext(options: {
    contextSize: number;
    threads?: number;
    flashAttention?: boolean;
    experimentalKvCacheKeyType?: string;
    experimentalKvCacheValueType?: string;
  }): Promise<LlamaCppContext>;
  dispose(): Promise<void>;
}

type ControlledItem =
  number | [number, { generateNext: { probabilities: boolean; options: object } }];

interface LlamaCppContext {
  getSequence(): {
    evaluate(tokens: number[], options: { temperature: number }): AsyncGenerator<number>;
    controlledEvaluate(
      input: ControlledItem[],
    ): Promise<({ next: { probabilities?: Map<number, number> } } | undefined)[]>;
  };
  dispose(): Promise<void>;
}

export interface LlamaCppPeer {
  version: string;
  /** The llama.cpp release inside the binary (e.g. "b6123"), or 'unknown'. */
  llamaCppRelease: string;
  loadModel(path: string): Promise<LlamaCppModel>;
}

export type PeerLoad = { ok: true; peer: LlamaCppPeer } | { ok: false; reason: string };

/** Installs node-llama-cpp on first use (bench/peer.ts), then loads it into this process. */
export async function llamaCppPeer(): Promise<PeerLoad> {
  const info = ensurePeer();
  if (!info.available) return { ok: false, reason: info.reason };
  try {
    const entry = join(info.dir, 'node_modules', PEER_PACKAGE, 'dist', 'index.js');
    const mod = (await import(pathToFileURL(entry).href)) as {
      getLlama(o: object): Promise<{ loadModel(o: { modelPath: string }): Promise<LlamaCppModel> }>;
    };
    const llama = await mod.getLlama({ gpu: false, build: 'never', logLevel: 'error' });
    return {
      ok: true,
      peer: {
        version: PEER_VERSION,
        llamaCppRelease: info.llamaCpp,
        loadModel: (path) => llama.loadModel({ modelPath: path }),
      },
    };
  } catch (err) {
    return {
      ok: false,
      reason: `node-llama-cpp did not load: ${(err as Error).message.split('\n')[0]}`,
    };
  }
}

/** An f32 KV cache (llama.cpp's default is f16), so attention is computed in f32 as in lmdyn. */
const F32_KV = {
  flashAttention: false,
  experimentalKvCacheKeyType: 'F32',
  experimentalKvCacheValueType: 'F32',
};

/** llama.cpp's greedy continuation of `prompt` (token ids, BOS included), `n` tokens. */
export async function llamaCppGreedy(
  model: LlamaCppModel,
  prompt: number[],
  n: number,
  threads = 1,
): Promise<number[]> {
  const ctx = await model.createContext({
    contextSize: Math.max(64, prompt.length + n + 8),
    threads,
    ...F32_KV,
  });
  try {
    const out: number[] = [];
    for await (const t of ctx.getSequence().evaluate(prompt, { temperature: 0 })) {
      out.push(t);
      if (out.length >= n) break;
    }
    return out;
  } finally {
    await ctx.dispose();
  }
}

/**
 * llama.cpp's next-token distribution after every prefix of `tokens` (teacher-forced): one map
 * id → probability per position, softmax of the raw logits (temperature 1, no top-k/top-p/min-p).
 * The tokens go in one at a time, as in greedy decoding: llama.cpp takes other kernels for a batch
 * of tokens than for one.
 */
export async function llamaCppDistributions(
  model: LlamaCppModel,
  tokens: number[],
  threads = 1,
): Promise<Map<number, number>[]> {
  const ctx = await model.createContext({
    contextSize: Math.max(64, tokens.length + 8),
    threads,
    ...F32_KV,
  });
  try {
    const options = { temperature: 1, topK: 0, topP: 1, minP: 0 };
    const seq = ctx.getSequence();
    const out: Map<number, number>[] = [];
    for (const [i, t] of tokens.entries()) {
      const [r] = await seq.controlledEvaluate([
        [t, { generateNext: { probabilities: true, options } }],
      ]);
      const p = r?.next.probabilities;
      if (!p) throw new Error(`llama.cpp returned no probabilities at position ${i}`);
      out.push(p);
    }
    return out;
  } finally {
    await ctx.dispose();
  }
}
