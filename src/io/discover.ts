/**
 * Which model a command uses when none is named: $LMDYN_MODEL, else the first model in
 * ./models (the working directory's), else the small model the package ships
 * (models-shipped/, trained by `lmdyn train`), else the default from the hub
 * (karpathy/tinyllamas stories260K) when online.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_HUB_MODEL = 'hf:karpathy/tinyllamas/stories260K/stories260K.bin';
export const DEFAULT_HUB_TOKENIZER = 'hf:karpathy/tinyllamas/stories260K/tok512.bin';

export interface ModelChoice {
  spec: string;
  why: string;
}

export function defaultModel(env: NodeJS.ProcessEnv = process.env): ModelChoice {
  if (env.LMDYN_MODEL) return { spec: env.LMDYN_MODEL, why: 'from $LMDYN_MODEL' };
  for (const dir of modelFolders()) {
    const found = firstModelIn(dir);
    if (found) return { spec: found, why: `first model found in ${dir}` };
  }
  const shipped = shippedModel();
  if (shipped) return { spec: shipped, why: 'the model lmdyn ships (trained by lmdyn train)' };
  return { spec: DEFAULT_HUB_MODEL, why: 'no local model found; the default from the hub' };
}

/** The folders searched for models: ./models in the working directory, when it exists. */
export function modelFolders(): string[] {
  const dir = resolve('models');
  return existsSync(dir) && statSync(dir).isDirectory() ? [dir] : [];
}

/** The repository's own small model (models-shipped/; see its README for the recipe), if present. */
export function shippedModel(): string | null {
  const projectRoot = fileURLToPath(new URL('../../../', import.meta.url));
  const path = resolve(projectRoot, 'models-shipped', SHIPPED_MODEL);
  return existsSync(path) ? path : null;
}

export const SHIPPED_MODEL = 'lmdyn-tiny-260K/model.bin';

/** The first model (by sorted name) directly in `dir` or one folder below it. */
export function firstModelIn(dir: string): string | null {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (isModelFile(p)) return p;
    if (statSync(p).isDirectory()) {
      if (existsSync(join(p, 'config.json'))) return p;
      const inner = readdirSync(p)
        .sort()
        .map((f) => join(p, f))
        .find(isModelFile);
      if (inner) return inner;
    }
  }
  return null;
}

function isModelFile(p: string): boolean {
  if (!statSync(p).isFile()) return false;
  if (p.endsWith('.gguf')) return true;
  // llama2.c checkpoints are .bin files that are not tokenizers.
  const base = p.split('/').pop() ?? '';
  return base.endsWith('.bin') && !/^tok(enizer|\d+)/.test(base);
}
