/**
 * The bench's peer engine: llama.cpp, through node-llama-cpp's prebuilt CPU binary. It is never a
 * dependency of lmdyn: `ensurePeer` installs the pinned version on demand into `.cache/peers/`
 * (ignored by git) with npm, and says why when it cannot (offline, no npm). Each measurement runs
 * in a child process of its own, like lmdyn's rows (bench/generation.ts), so its peak RSS and its
 * threads are its own.
 *
 * What is measured, on the same GGUF file lmdyn runs:
 *   decode tok/s  — greedy tokens from [BOS]: (N − 1) / (time of token N − time of token 1), the
 *                   tokens after the first, as lmdyn's generateBatch counts its decode phase;
 *   prefill tok/s — a P-token prompt evaluated without generating (best of three, fresh context);
 *   peak RSS      — VmHWM of the child.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { peakRssMiB } from './rss.js';

export const PEER_PACKAGE = 'node-llama-cpp';
export const PEER_VERSION = '3.21.1';

export type PeerInfo =
  | { available: true; dir: string; version: string; llamaCpp: string }
  | { available: false; reason: string };

export interface PeerSetup {
  tokens: number;
  promptLengths: number[];
  threads: number;
  /** The model's vocabulary size, for the prefill prompts (the same ids lmdyn's bench uses). */
  vocabSize: number;
}

export interface PeerResult {
  threads: number;
  decodeTokS: number;
  /** Prompt length → prefill tok/s. */
  prefillTokS: Record<number, number>;
  peakRssMiB: number;
  /** The first greedy ids from [BOS] (for checking both engines run the same weights). */
  greedy: number[];
}

/** The prefill prompt of length n: the ids lmdyn's bench uses too. */
export function benchPrompt(n: number, vocabSize: number): number[] {
  return Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % (vocabSize - 1)));
}

/** Installs node-llama-cpp@PEER_VERSION into ROOT/.cache/peers once; null reason when ready. */
export function ensurePeer(root: string = repositoryRoot()): PeerInfo {
  const dir = resolve(root, '.cache', 'peers');
  const pkg = join(dir, 'node_modules', PEER_PACKAGE, 'package.json');
  if (!installedVersionIs(pkg)) {
    if (process.env.LMDYN_BENCH_NO_PEER) {
      return { available: false, reason: 'LMDYN_BENCH_NO_PEER is set' };
    }
    mkdirSync(dir, { recursive: true });
    try {
      execFileSync(
        'npm',
        [
          'install',
          '--prefix',
          dir,
          '--no-save',
          '--no-audit',
          '--no-fund',
          '--loglevel=error',
          // Only this platform's prebuilt CPU binary (about 85 MB instead of every GPU build).
          '--omit=optional',
          '--ignore-scripts',
          `${PEER_PACKAGE}@${PEER_VERSION}`,
          `@node-llama-cpp/${process.platform}-${process.arch}@${PEER_VERSION}`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 },
      );
    } catch (e) {
      const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim().split('\n').pop();
      return {
        available: false,
        reason: `npm could not install ${PEER_PACKAGE}@${PEER_VERSION}: ${stderr || String(e)}`,
      };
    }
    if (!installedVersionIs(pkg)) {
      return { available: false, reason: `${PEER_PACKAGE} did not install into ${dir}` };
    }
  }
  const info = join(dir, 'node_modules', PEER_PACKAGE, 'llama', 'llama.cpp.info.json');
  let llamaCpp = 'unknown';
  try {
    const j = JSON.parse(readFileSync(info, 'utf8')) as { tag?: string };
    llamaCpp = j.tag ?? llamaCpp;
  } catch {
    // the binary still runs; the release tag is only reported
  }
  return { available: true, dir, version: PEER_VERSION, llamaCpp };
}

function installedVersionIs(pkg: string): boolean {
  if (!existsSync(pkg)) return false;
  try {
    return (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version === PEER_VERSION;
  } catch {
    return false;
  }
}

function repositoryRoot(): string {
  // this file runs as dist/bench/peer.js
  return fileURLToPath(new URL('../../', import.meta.url));
}

const CHILD_FLAG = '--peer-child';

/** Measures the peer on `gguf` in a fresh process. */
export function peerInChild(peer: PeerInfo, gguf: string, setup: PeerSetup): PeerResult {
  if (!peer.available) throw new Error(`peer unavailable: ${peer.reason}`);
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, [self, CHILD_FLAG, peer.dir, gguf, JSON.stringify(setup)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 900_000,
  });
  if (r.status !== 0) {
    const why = (r.stderr || '').trim().split('\n').slice(-3).join(' | ');
    throw new Error(`llama.cpp bench failed on ${gguf} (exit ${r.status}): ${why}`);
  }
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as PeerResult;
}

// The slice of node-llama-cpp's API the bench uses (its types are not installed with lmdyn).
interface Sequence {
  evaluate(tokens: number[], options: { temperature: number }): AsyncGenerator<number>;
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
}
interface Context {
  getSequence(): Sequence;
  dispose(): Promise<void>;
}
interface LlamaModel {
  createContext(options: {
    contextSize: number;
    batchSize: number;
    threads: number;
  }): Promise<Context>;
}
interface NodeLlamaCpp {
  getLlama(options: { gpu: false; build: 'never'; logLevel: string }): Promise<{
    loadModel(options: { modelPath: string }): Promise<LlamaModel>;
  }>;
}

async function child(dir: string, gguf: string, setup: PeerSetup): Promise<PeerResult> {
  const entry = join(dir, 'node_modules', PEER_PACKAGE, 'dist', 'index.js');
  const lib = (await import(pathToFileURL(entry).href)) as NodeLlamaCpp;
  const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  const model = await llama.loadModel({ modelPath: gguf });
  const longest = Math.max(...setup.promptLengths, setup.tokens + 1);
  const contextSize = Math.max(512, 2 ** Math.ceil(Math.log2(longest + 8)));
  const fresh = () =>
    model.createContext({ contextSize, batchSize: contextSize, threads: setup.threads });

  // Warm-up, then decode: greedy from [BOS].
  let ctx = await fresh();
  const warm = ctx.getSequence().evaluate([1], { temperature: 0 });
  await warm.next();
  await warm.return(undefined);
  await ctx.dispose();
  ctx = await fresh();
  const greedy: number[] = [];
  let tFirst = 0;
  let tLast = 0;
  for await (const token of ctx.getSequence().evaluate([1], { temperature: 0 })) {
    tLast = performance.now();
    if (greedy.length === 0) tFirst = tLast;
    greedy.push(token);
    if (greedy.length >= setup.tokens) break;
  }
  await ctx.dispose();
  const decodeTokS = ((greedy.length - 1) / (tLast - tFirst)) * 1000;

  const prefillTokS: Record<number, number> = {};
  for (const n of setup.promptLengths) {
    const prompt = benchPrompt(n, setup.vocabSize);
    let best = Infinity;
    for (let r = 0; r < 3; r++) {
      const c = await fresh();
      const t0 = performance.now();
      await c.getSequence().evaluateWithoutGeneratingNewTokens(prompt);
      best = Math.min(best, performance.now() - t0);
      await c.dispose();
    }
    prefillTokS[n] = (n / best) * 1000;
  }
  return {
    threads: setup.threads,
    decodeTokS,
    prefillTokS,
    peakRssMiB: peakRssMiB(),
    greedy: greedy.slice(0, 16),
  };
}

if (process.argv[2] === CHILD_FLAG) {
  const [dir, gguf, setup] = process.argv.slice(3);
  child(dir, gguf, JSON.parse(setup) as PeerSetup).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
