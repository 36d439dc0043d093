/**
 * What any result says about itself, read without knowing its lens: the provenance (model,
 * seed, lmdyn version, configuration) and the headline metrics — the numbers stated by every
 * object that carries a papers.md `tag` (and the mean/value of objects under a tagged one).
 */

export interface Provenance {
  lens: string | null;
  spec: string | null;
  model: string | null;
  seed: number | null;
  version: string | null;
  /** Configuration-like fields (options, decoding, plan, config, …) as found. */
  config: Record<string, unknown>;
}

export interface TaggedMetric {
  /** Dotted path from the root; array items are named by their k/name/id/weights field when present. */
  path: string;
  value: number | boolean | null;
  tag: string;
  /** The `source` (or `definition`) of the tagged object, if any. */
  source: string | null;
}

const CONFIG_KEYS = [
  'options',
  'config',
  'decoding',
  'plan',
  'grid',
  'settings',
  'parameters',
  'k',
  'prompts',
];
const MAX_ROWS = 300;

export function provenanceOf(json: Record<string, unknown>): Provenance {
  const meta = isObject(json.meta) ? json.meta : {};
  const pick = (...vals: unknown[]) => vals.find((v) => v !== undefined && v !== null);
  const modelField = pick(
    json.model,
    meta.model,
    isObject(json.plan) ? json.plan.model : undefined,
  );
  const version = pick(json.lmdyn_version, json.lmdyn, meta.lmdyn, json.version);
  const seed = pick(json.seed, meta.seed, isObject(json.plan) ? json.plan.seed : undefined);
  const config: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    if (json[key] !== undefined) config[key] = json[key];
    else if (meta[key] !== undefined) config[key] = meta[key];
  }
  return {
    lens: typeof json.lens === 'string' ? json.lens : null,
    spec: typeof json.spec === 'string' ? json.spec : null,
    model: modelName(modelField),
    seed: typeof seed === 'number' ? seed : null,
    version: typeof version === 'string' ? version : version === undefined ? null : String(version),
    config,
  };
}

/**
 * Every tagged metric in `json`, in document order (at most 300): each number or boolean stated
 * directly by an object with a `tag`, and the `mean`/`value` of objects below a tagged one.
 */
export function taggedMetrics(json: unknown): TaggedMetric[] {
  const rows: TaggedMetric[] = [];
  const walk = (
    v: unknown,
    path: string,
    inherited: { tag: string; source: string | null } | null,
  ): void => {
    if (rows.length >= MAX_ROWS) return;
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        if (isObject(item) || Array.isArray(item))
          walk(item, `${path}[${itemName(item, i)}]`, inherited);
      });
      return;
    }
    if (!isObject(v)) return;
    const own =
      typeof v.tag === 'string'
        ? {
            tag: v.tag,
            source:
              typeof v.source === 'string'
                ? v.source
                : typeof v.definition === 'string'
                  ? v.definition
                  : null,
          }
        : null;
    const tagged = own ?? inherited;
    if (tagged) {
      // a tagged object: every number (or pass/fail) it states directly; under one: mean and value
      const keys = own ? Object.keys(v).filter((k) => k !== 'tag') : ['mean', 'value'];
      for (const key of keys) {
        const x = v[key];
        if (
          typeof x === 'number' ||
          typeof x === 'boolean' ||
          (x === null && (key === 'mean' || key === 'value') && key in v)
        ) {
          rows.push({
            path: path ? `${path}.${key}` : key,
            value: x,
            tag: tagged.tag,
            source: tagged.source,
          });
        }
      }
    }
    for (const [key, child] of Object.entries(v)) {
      if (key === 'per_prompt' || key === 'per_sample') continue; // raw arrays, never headlines
      if (isObject(child) || Array.isArray(child))
        walk(child, path ? `${path}.${key}` : key, tagged);
    }
  };
  walk(json, '', null);
  return rows;
}

function itemName(item: unknown, i: number): string {
  if (isObject(item)) {
    for (const key of ['k', 'name', 'id', 'weights', 'label', 'metric']) {
      const v = item[key];
      if (typeof v === 'string' || typeof v === 'number') return `${key}=${v}`;
    }
  }
  return String(i);
}

function modelName(m: unknown): string | null {
  if (typeof m === 'string') return m;
  if (isObject(m)) {
    for (const key of ['spec', 'hub_id', 'hubId', 'path', 'name'])
      if (typeof m[key] === 'string') return m[key] as string;
  }
  if (Array.isArray(m))
    return (
      m
        .map(modelName)
        .filter((x) => x !== null)
        .join(', ') || null
    );
  return null;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
