/**
 * One line per result for the report's summary table: what a reader checks first (how much was
 * recorded, the lens's headline numbers with their tags). Read from the result's own JSON, never
 * recomputed; a field that is missing leaves the line shorter, a kind not listed gets its first
 * tagged metrics.
 */
import { num } from './html.js';
import { pValue } from './format.js';
import type { FoundResult } from './scan.js';
import { isObject, taggedMetrics } from './summary.js';

type Json = Record<string, unknown>;

export function headlineOf(result: FoundResult): string | null {
  try {
    const own = HEADLINES[result.kind]?.(result.json);
    if (own) return own;
  } catch {
    // a result of an older layout: fall back to its tagged metrics
  }
  const tagged = taggedMetrics(result.json).slice(0, 3);
  return tagged.length > 0
    ? tagged.map((m) => `${m.path} ${num(m.value)} (${m.tag})`).join('; ')
    : null;
}

const HEADLINES: Readonly<Record<string, (json: Json) => string | null>> = {
  trace: (j) => {
    const samples = arr(j.samples);
    return `${samples.length} samples, ${num(j.steps ?? null)} steps at most`;
  },
  sweep: (j) => {
    const plan = obj(j.plan);
    return `${arr(j.configs).length} decoding configurations × ${num(plan.samples ?? null)} samples × ${num(plan.maxTokens ?? null)} tokens`;
  },
  dmet: (j) => {
    const parts: string[] = [];
    const region = obj(j.balanced_region);
    const configs = arr(region.configs).map(obj);
    if (configs.length > 0)
      parts.push(
        `balanced region (${str(region.tag)}): ${configs.map((c) => `T ${num(c.temperature ?? null)} · p ${num(c.top_p ?? null)}`).join(', ')}`,
      );
    const trend = obj(obj(j.temperature_trend).metrics);
    const strongest = Object.entries(trend)
      .map(([name, m]) => ({ name, rho: obj(m).spearman_rho, p: obj(m).spearman_p }))
      .filter(
        (m): m is { name: string; rho: number; p: number } =>
          typeof m.rho === 'number' && typeof m.p === 'number',
      )
      .sort((a, b) => Math.abs(b.rho) - Math.abs(a.rho))[0];
    if (strongest)
      parts.push(
        `strongest temperature trend: ${strongest.name} (Spearman ρ ${num(strongest.rho)}, p ${pValue(strongest.p)})`,
      );
    return parts.join('; ') || null;
  },
  sde: (j) => {
    const sets = arr(j.datasets).map(obj);
    const value = (d: Json, name: string) => {
      const h = arr(d.headline)
        .map(obj)
        .find((x) => x.name === name);
      return h && typeof h.value === 'number' ? h.value : null;
    };
    const mean = (name: string) => {
      const v = sets.map((d) => value(d, name)).filter((x): x is number => x !== null);
      return v.length > 0 ? v.reduce((a, b) => a + b, 0) / v.length : null;
    };
    const nll = mean('test NLL');
    const base = mean('test NLL, constant baseline');
    return `${sets.length} data sets; mean test NLL ${num(nll)} nats against ${num(base)} for the constant baseline (proposed, lower is better)`;
  },
  gravity: (j) => {
    const h = obj(obj(j.sensitivity).headline);
    if (typeof h.spearman_rho !== 'number') return null;
    return `sensitivity: Spearman(JSD, ${str(h.x)}) ρ ${num(h.spearman_rho)}, p ${pValue(h.spearman_p as number)} over ${num(h.n ?? null)} ${str(h.level)} (proposed)`;
  },
  simplex: (j) => {
    const e = obj(j.equilibrium);
    const parts: string[] = [];
    if (typeof e.free_energy_max === 'number')
      parts.push(
        `equilibrium π_T: F max ${num(e.free_energy_max)}, entropy ${num(e.entropy ?? null)} (${str(e.tag)})`,
      );
    const configs = arr(obj(j.loops).configs);
    if (configs.length > 0) parts.push(`loops over ${configs.length} decoding configurations`);
    return parts.join('; ') || null;
  },
  coupling: (j) => {
    const first = (w: unknown) => obj(arr(obj(obj(w).model_coupling).by_k)[0]);
    const t = first(j.trained);
    if (typeof t.value !== 'number') return null;
    const r = first(j.random_twin);
    return `model coupling m_K (K = ${num(t.k ?? null)}) ${num(t.value)}${typeof r.value === 'number' ? ` against ${num(r.value)} for the random twin` : ''}; LSS ${num(obj(obj(j.trained).lss).mean ?? null)}`;
  },
  'coupling-training': (j) => {
    const rows = arr(j.rows).map(obj);
    if (rows.length < 2) return null;
    const a = rows[0];
    const b = rows[rows.length - 1];
    return `${rows.length} checkpoints: validation loss ${num(a.val_loss ?? null)} → ${num(b.val_loss ?? null)}, coupling m_K ${num(a.coupling ?? null)} → ${num(b.coupling ?? null)}`;
  },
  training: (j) => {
    const f = obj(j.final);
    return `${num(j.steps_done ?? null)} steps; validation loss ${num(obj(f.val_loss).value ?? null)} (perplexity ${num(obj(f.val_perplexity).value ?? null)})`;
  },
};

function str(v: unknown): string {
  return typeof v === 'string' ? v : '–';
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function obj(v: unknown): Json {
  return isObject(v) ? v : {};
}
