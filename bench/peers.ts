/**
 * llama.cpp as a peer engine, through node-llama-cpp (npm, with a prebuilt CPU binary per
 * platform), installed on demand into .cache/peers/ (git-ignored) and never a dependency of
 * lmdyn. Only the CPU binary for this platform is installed (`--omit=optional` skips the CUDA and
 * Vulkan builds, ~700 MB). Offline, or on a platform without a prebuilt binary, `llamaCppPeer`
 * says why the peer is unavailable instead of throwing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const NODE_LLAMA_CPP_VERSION = '3.21.1';

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
  /** The llama.cpp build inside the binary (e.g. "b6123"), when node-llama-cpp says. */
  llamaCppRelease: string | null;
  loadModel(path: string): Promise<LlamaCppModel>;
}

export type PeerResult = { ok: true; peer: LlamaCppPeer } | { ok: false; reason: string };

/** The platform package holding llama.cpp's CPU binary for this machine, or null. */
function binaryPackage(): string | null {
  const os = { linux: 'linux', darwin: 'mac', win32: 'win' }[process.platform as string];
  if (!os || !['x64', 'arm64'].includes(process.arch)) return null;
  const suffix = os === 'mac' && process.arch === 'arm64' ? '-metal' : '';
  return `@node-llama-cpp/${os}-${process.arch}${suffix}`;
}

/** Installs node-llama-cpp into .cache/peers/ on first use (npm registry), then loads it. */
export async function llamaCppPeer(
  root = process.cwd(),
  log: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<PeerResult> {
  const dir = resolve(root, '.cache', 'peers', `node-llama-cpp-${NODE_LLAMA_CPP_VERSION}`);
  const entry = join(dir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
  const binary = binaryPackage();
  if (!binary)
    return {
      ok: false,
      reason: `no prebuilt llama.cpp binary for ${process.platform}-${process.arch}`,
    };
  if (!existsSync(entry)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"name":"lmdyn-peers","private":true}\n');
    log(`installing node-llama-cpp@${NODE_LLAMA_CPP_VERSION} (${binary}) into ${dir} ...`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const r = spawnSync(
      npm,
      [
        'install',
        '-E',
        `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`,
        `${binary}@${NODE_LLAMA_CPP_VERSION}`,
        '--omit=optional',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
      ],
      { cwd: dir, encoding: 'utf8', timeout: 600_000 },
    );
    if (r.status !== 0 || !existsSync(entry)) {
      const why = (r.stderr || r.error?.message || 'npm failed').trim().split('\n').slice(-1)[0];
      return {
        ok: false,
        reason: `could not install node-llama-cpp@${NODE_LLAMA_CPP_VERSION}: ${why}`,
      };
    }
  }
  try {
    const mod = (await import(pathToFileURL(entry).href)) as {
      getLlama(o: object): Promise<{
        loadModel(o: { modelPath: string }): Promise<LlamaCppModel>;
        llamaCppRelease?: { release?: string };
      }>;
      LlamaLogLevel: Record<string, string>;
    };
    const llama = await mod.getLlama({
      gpu: false,
      build: 'never',
      logLevel: mod.LlamaLogLevel.error,
    });
    return {
      ok: true,
      peer: {
        version: NODE_LLAMA_CPP_VERSION,
        llamaCppRelease: llama.llamaCppRelease?.release ?? null,
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
    const input: ControlledItem[] = tokens.map((t) => [
      t,
      { generateNext: { probabilities: true, options } },
    ]);
    const out = await ctx.getSequence().controlledEvaluate(input);
    return tokens.map((_, i) => {
      const p = out[i]?.next.probabilities;
      if (!p) throw new Error(`llama.cpp returned no probabilities at position ${i}`);
      return p;
    });
  } finally {
    await ctx.dispose();
  }
}
