/**
 * The models a dashboard may open: exactly those the person who started the server allowed
 * (`--model`, repeatable), or by default every model found in ./models and the model lmdyn ships
 * (models-shipped/). The page names a model by its id; anything else is refused.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { firstModelIn, modelFolders, shippedModel } from '../io/discover.js';
import { HttpError } from './validate.js';

export interface AllowedModel {
  /** What the page sends back: the model's path (or hub id) as given. */
  id: string;
  /** Short name for the menu. */
  label: string;
}

/** `specs` as allowed models (paths resolved), or every model in `folders` and the shipped one. */
export function allowedModels(
  specs: readonly string[] = [],
  folders: readonly string[] = modelFolders(),
): AllowedModel[] {
  if (specs.length > 0) {
    return specs.map((s) => {
      const id = s.startsWith('hf:') || !existsSync(s) ? s : resolve(s);
      return { id, label: labelOf(id) };
    });
  }
  const out: AllowedModel[] = [];
  for (const dir of folders) {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      let found: string | null = null;
      try {
        found = statSync(p).isDirectory() ? firstModelIn(p) : null;
        if (!found && statSync(p).isDirectory() && existsSync(join(p, 'config.json'))) found = p;
      } catch {
        continue;
      }
      if (found && !out.some((m) => m.id === found)) out.push({ id: found, label: labelOf(found) });
    }
  }
  const shipped = shippedModel();
  if (shipped && !out.some((m) => m.id === shipped))
    out.push({ id: shipped, label: labelOf(shipped) });
  return out;
}

/** The allowed model the page asked for, or a 403 naming what is allowed. */
export function checkModel(allowed: readonly AllowedModel[], id: string): AllowedModel {
  const m = allowed.find((a) => a.id === id);
  if (!m) {
    const list = allowed.map((a) => a.label).join(', ') || 'none';
    throw new HttpError(
      403,
      `model "${id}" is not one this server allows (allowed: ${list}); start lmdyn serve with --model to allow another`,
    );
  }
  return m;
}

function labelOf(id: string): string {
  if (id.startsWith('hf:')) return id.slice(3);
  const isFile = existsSync(id) && statSync(id).isFile();
  return isFile ? `${basename(resolve(id, '..'))}/${basename(id)}` : basename(id);
}
