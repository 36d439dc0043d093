/**
 * Query-formulation sensitivity (papers.md §3.3, §3.4 experiment 4, [proposed]): for each
 * paraphrase pair, S = JSD(P(·|q) ‖ P(·|q')) against the curvature κ and the metric length
 * δᵀGδ of the state shift δ = q' − q; Spearman and Pearson correlations with p-values and
 * Benjamini–Hochberg q-values over the whole table (it reports many tests: the smallest raw p of a
 * dozen is not evidence on its own).
 */
import { encodePrompt, type Model } from '../../model/model.js';
import { correlate, type Correlation } from '../coupling/correlate.js';
import { benjaminiHochberg } from '../../stats/multiple.js';
import {
  boltzmann,
  entropyOf,
  finalNormOf,
  fisher,
  fisherQuadratic,
  jensenShannon,
  potential,
  pulledBackKappa,
  queryStates,
  type Classifier,
  type Fisher,
} from './field.js';

export interface ParaphraseSet {
  id: string;
  /** The file's "domain" field, else its base name (tinystories, general). */
  domain: string;
  paraphrases: string[];
}

export interface SensitivityMember {
  text: string;
  prompt_ids: number[];
  kappa: number;
  /** κ pulled back through the final norm (field.ts pulledBackKappa). */
  kappa_pre_norm: number;
  entropy: number;
}

export interface SensitivitySet {
  id: string;
  domain: string;
  members: SensitivityMember[];
  /** Means over the set's members (κ) and pairs (JSD, δᵀGδ). */
  mean_jsd: number;
  mean_kappa: number;
  mean_kappa_pre_norm: number;
  mean_dgd: number;
}

export interface SensitivityPair {
  set: string;
  domain: string;
  i: number;
  j: number;
  jsd: number;
  /** ½(κ_i + κ_j). */
  kappa_mean: number;
  kappa_pre_norm_mean: number;
  /** ½(δᵀG(q_i)δ + δᵀG(q_j)δ), δ = q_j − q_i (symmetrised, as JSD is). */
  dgd: number;
  /** ‖δ‖₂. */
  shift: number;
}

export interface CorrelationRow {
  level: 'pairs' | 'sets';
  domain: string;
  x: 'kappa' | 'kappa_pre_norm' | 'dgd';
  n: number;
  spearman_rho: number | null;
  spearman_p: number | null;
  /** Benjamini–Hochberg q over every p-value of the table (Spearman and Pearson, all rows). */
  spearman_q: number | null;
  pearson_r: number | null;
  pearson_p: number | null;
  pearson_q: number | null;
}

export interface Sensitivity {
  temperature: number;
  sets: SensitivitySet[];
  pairs: SensitivityPair[];
  correlations: CorrelationRow[];
  /**
   * Headline: Spearman(set-mean JSD, set-mean κ) over all sets. Sets, not pairs, are the units:
   * pairs of one set share members, so pair-level p-values are optimistic.
   */
  headline: CorrelationRow;
}

export function analyzeSensitivity(
  model: Model,
  c: Classifier,
  sets: readonly ParaphraseSet[],
  T: number,
): Sensitivity {
  const norm = finalNormOf(model);
  const texts = sets.flatMap((s) => s.paraphrases);
  const states = queryStates(
    model,
    texts.map((t) => encodePrompt(model, t)),
  );
  let next = 0;
  const outSets: SensitivitySet[] = [];
  const pairs: SensitivityPair[] = [];
  for (const set of sets) {
    const members = set.paraphrases.map((text) => {
      const st = states[next++];
      const p = boltzmann(potential(c, st.q), T);
      const f = fisher(c, p, T);
      return { text, st, f, kappaPre: pulledBackKappa(c, f, st.x, norm) };
    });
    const mine: SensitivityPair[] = [];
    for (let i = 0; i < members.length; i++) {
      for (let j = i + 1; j < members.length; j++) {
        const a = members[i];
        const b = members[j];
        const delta = a.st.q.map((x, k) => b.st.q[k] - x);
        mine.push({
          set: set.id,
          domain: set.domain,
          i,
          j,
          jsd: jensenShannon(a.f.p, b.f.p),
          kappa_mean: 0.5 * (a.f.kappa + b.f.kappa),
          kappa_pre_norm_mean: 0.5 * (a.kappaPre + b.kappaPre),
          dgd: 0.5 * (fisherQuadratic(c, a.f, delta) + fisherQuadratic(c, b.f, delta)),
          shift: Math.hypot(...delta),
        });
      }
    }
    pairs.push(...mine);
    outSets.push({
      id: set.id,
      domain: set.domain,
      members: members.map((m) => memberOf(m.text, m.st.ids, m.f, m.kappaPre)),
      mean_jsd: mean(mine.map((p) => p.jsd)),
      mean_kappa: mean(members.map((m) => m.f.kappa)),
      mean_kappa_pre_norm: mean(members.map((m) => m.kappaPre)),
      mean_dgd: mean(mine.map((p) => p.dgd)),
    });
  }
  const domains = ['all', ...new Set(sets.map((s) => s.domain))];
  const correlations: CorrelationRow[] = [];
  for (const domain of domains) {
    const ss = outSets.filter((s) => domain === 'all' || s.domain === domain);
    const ps = pairs.filter((p) => domain === 'all' || p.domain === domain);
    const jsdS = ss.map((s) => s.mean_jsd);
    const jsdP = ps.map((p) => p.jsd);
    correlations.push(
      row(
        'sets',
        domain,
        'kappa',
        correlate(
          ss.map((s) => s.mean_kappa),
          jsdS,
        ),
      ),
      row(
        'sets',
        domain,
        'kappa_pre_norm',
        correlate(
          ss.map((s) => s.mean_kappa_pre_norm),
          jsdS,
        ),
      ),
      row(
        'sets',
        domain,
        'dgd',
        correlate(
          ss.map((s) => s.mean_dgd),
          jsdS,
        ),
      ),
      row(
        'pairs',
        domain,
        'kappa',
        correlate(
          ps.map((p) => p.kappa_mean),
          jsdP,
        ),
      ),
      row(
        'pairs',
        domain,
        'kappa_pre_norm',
        correlate(
          ps.map((p) => p.kappa_pre_norm_mean),
          jsdP,
        ),
      ),
      row(
        'pairs',
        domain,
        'dgd',
        correlate(
          ps.map((p) => p.dgd),
          jsdP,
        ),
      ),
    );
  }
  // One family: every p-value the table reports (both statistics, every row).
  const q = benjaminiHochberg(correlations.flatMap((r) => [r.spearman_p, r.pearson_p]));
  correlations.forEach((r, i) => {
    r.spearman_q = q[2 * i];
    r.pearson_q = q[2 * i + 1];
  });
  return { temperature: T, sets: outSets, pairs, correlations, headline: correlations[0] };
}

function memberOf(text: string, ids: number[], f: Fisher, kappaPre: number): SensitivityMember {
  return {
    text,
    prompt_ids: ids,
    kappa: f.kappa,
    kappa_pre_norm: kappaPre,
    entropy: entropyOf(f.p),
  };
}

function row(
  level: CorrelationRow['level'],
  domain: string,
  x: CorrelationRow['x'],
  c: Correlation,
): CorrelationRow {
  return {
    level,
    domain,
    x,
    n: c.n,
    spearman_rho: c.spearmanRho,
    spearman_p: c.spearmanP,
    spearman_q: null,
    pearson_r: c.pearsonR,
    pearson_p: c.pearsonP,
    pearson_q: null,
  };
}

function mean(x: readonly number[]): number {
  return x.length ? x.reduce((a, b) => a + b, 0) / x.length : NaN;
}
