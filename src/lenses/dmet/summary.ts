/**
 * DMET statistics over the decoding grid (papers.md §1.6, §1.9 steps 5–6): per-configuration
 * means, per-configuration Pearson correlations between each dynamics feature and each text
 * target, pooled regressions with a random intercept (and, alternatively, a fixed effect) per
 * configuration, Benjamini–Hochberg across each family of tests, heatmaps over
 * (temperature, top-p), the balanced region and the trend with temperature.
 */
import { correlate, correlationPValue, pearson } from '../coupling/correlate.js';
import { benjaminiHochberg } from '../../stats/multiple.js';
import {
  fixedEffectsRegression,
  isConstant,
  randomInterceptModel,
  type CoefficientTest,
} from '../../stats/regression.js';
import type { DmetConfiguration, SequenceRow } from './rows.js';
import { cite } from '../../papers.js';

/** Dynamics features, in the code's order (continuity, cluster_quality, predictability, topology). */
export const FEATURES = ['C_mean', 'silhouette', 'predictability', 'persistence'] as const;
/** Text targets, in the code's order. */
export const TARGETS = ['log_ppl', 'spelling', 'diversity', 'grammar', 'coherence'] as const;
/** Metrics summarised per configuration, on the heatmaps and along temperature. */
export const SUMMARY_METRICS = [
  'C_mean',
  'C_std',
  'C_max',
  'jumps',
  'C_norm',
  'C_cos',
  'silhouette',
  'persistence',
  'predictability',
  'log_ppl',
  'spelling',
  'diversity',
  'grammar',
  'coherence',
] as const;

/** Rows the mixed model needs (the code's statistical_thresholds.min_sample_size). */
export const MIN_REGRESSION_ROWS = 30;

type Metric = (typeof SUMMARY_METRICS)[number];

/** Bounds of the balanced region; 'median' = the median over configurations of that mean. */
export interface BalancedBounds {
  /** Largest configuration-mean C_mean in the region. */
  maxContinuity: number | 'median';
  /** Smallest configuration-mean distinct-2 diversity in the region. */
  minDiversity: number | 'median';
}

export const DEFAULT_BALANCED: BalancedBounds = { maxContinuity: 'median', minDiversity: 'median' };

export interface PearsonTest {
  config: number | null;
  feature: string;
  target: string;
  n: number;
  r: number | null;
  p: number | null;
  /** Benjamini–Hochberg q within the family. */
  q: number | null;
}

export interface RegressionReport {
  target: string;
  rows: number;
  groups: number;
  /** Coefficient tests with BH q across every coefficient of the family (all targets). */
  coefficients: (CoefficientTest & { q: number | null })[];
  /** Mixed model: how the standard errors were computed (see stats/regression.ts). */
  covariance?: string;
  extra: Record<string, number>;
  /** Why the fit was not made (too few rows, constant target, singular design); null when fitted. */
  error: string | null;
}

export interface DmetSummary {
  configurations: {
    index: number;
    dir: string;
    temperature: number;
    top_p: number;
    top_k: number;
    repetition_penalty: number;
    sequences: number;
    mean: Record<string, number | null>;
    sd: Record<string, number | null>;
  }[];
  tests: {
    features: string[];
    targets: string[];
    per_config_pearson: {
      tag: 'exact';
      source: string;
      correction: string;
      tests: PearsonTest[];
      significant_q05: number;
    };
    pooled_pearson: { tag: 'proposed'; correction: string; tests: PearsonTest[] };
    mixed_model: {
      tag: 'exact';
      source: string;
      formula: string;
      correction: string;
      fits: RegressionReport[];
    };
    fixed_effects: {
      tag: 'proposed';
      formula: string;
      correction: string;
      fits: RegressionReport[];
    };
  };
  heatmaps: {
    temperature: number[];
    top_p: number[];
    note: string;
    metrics: Record<string, (number | null)[][]>;
  };
  balanced_region: {
    tag: 'proposed';
    requested: BalancedBounds;
    bounds: { max_C_mean: number | null; min_diversity: number | null };
    definition: string;
    configs: {
      index: number;
      temperature: number;
      top_p: number;
      C_mean: number | null;
      diversity: number | null;
    }[];
  };
  temperature_trend: {
    tag: 'proposed';
    temperature: number[];
    metrics: Record<
      string,
      {
        mean: (number | null)[];
        sd: (number | null)[];
        spearman_rho: number | null;
        spearman_p: number | null;
        n: number;
      }
    >;
  };
}

export function summarize(
  rows: readonly SequenceRow[],
  configs: readonly DmetConfiguration[],
  options: { predictability: boolean; balanced?: Partial<BalancedBounds> },
): DmetSummary {
  const features = FEATURES.filter((f) => options.predictability || f !== 'predictability');
  const byConfig = new Map<number, SequenceRow[]>();
  for (const c of configs) byConfig.set(c.index, []);
  for (const r of rows) byConfig.get(r.config)?.push(r);

  const configurations = configs.map((c) => {
    const mine = byConfig.get(c.index)!;
    const mean: Record<string, number | null> = {};
    const sd: Record<string, number | null> = {};
    for (const m of SUMMARY_METRICS) {
      const s = stats(mine.map((r) => r[m]));
      mean[m] = s.mean;
      sd[m] = s.sd;
    }
    return {
      index: c.index,
      dir: c.dir,
      temperature: c.sampling.temperature,
      top_p: c.sampling.topP,
      top_k: c.sampling.topK,
      repetition_penalty: c.sampling.repetitionPenalty,
      sequences: mine.length,
      mean,
      sd,
    };
  });

  const perConfig: PearsonTest[] = [];
  for (const c of configs) {
    const mine = byConfig.get(c.index)!;
    for (const f of features)
      for (const t of TARGETS) perConfig.push(pearsonTest(c.index, f, t, mine));
  }
  withQ(perConfig);
  const pooled = features.flatMap((f) => TARGETS.map((t) => pearsonTest(null, f, t, rows)));
  withQ(pooled);

  const formula = `target ~ ${features.join(' + ')}`;
  return {
    configurations,
    tests: {
      features: [...features],
      targets: [...TARGETS],
      per_config_pearson: {
        tag: 'exact',
        source:
          'analysis/correlation_analyzer.py (Pearson per configuration); p-values: Student t, n − 2 df',
        correction:
          'Benjamini–Hochberg over all per-configuration tests (configurations × features × targets); a test whose feature or target is constant has r undefined and is left out of the family',
        tests: perConfig,
        significant_q05: perConfig.filter((t) => t.q !== null && t.q < 0.05).length,
      },
      pooled_pearson: {
        tag: 'proposed',
        correction: 'Benjamini–Hochberg over the features × targets pooled tests',
        tests: pooled,
      },
      mixed_model: {
        tag: 'exact',
        source:
          "analysis/statistical_validator.py (statsmodels MixedLM, groups = configuration), fitted by REML; Wald z-tests with statsmodels' standard errors (inverse observed information of the profiled REML likelihood); a constant target is not fitted",
        formula: `${formula} + (1 | configuration)`,
        correction:
          'Benjamini–Hochberg over the slope coefficients of every target (intercepts excluded)',
        fits: regressions(rows, features, 'mixed'),
      },
      fixed_effects: {
        tag: 'proposed',
        formula: `${formula} + configuration (one intercept per configuration)`,
        correction: 'Benjamini–Hochberg over the slope coefficients of every target',
        fits: regressions(rows, features, 'fixed'),
      },
    },
    heatmaps: heatmaps(configurations),
    balanced_region: balancedRegion(configurations, { ...DEFAULT_BALANCED, ...options.balanced }),
    temperature_trend: temperatureTrend(rows),
  };
}

function pearsonTest(
  config: number | null,
  feature: string,
  target: string,
  rows: readonly SequenceRow[],
): PearsonTest {
  const pairs = rows
    .map((r) => [num(r, feature), num(r, target)])
    .filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
  const n = pairs.length;
  const r =
    n >= 3
      ? pearson(
          pairs.map((p) => p[0]),
          pairs.map((p) => p[1]),
        )
      : null;
  return { config, feature, target, n, r, p: correlationPValue(r, n), q: null };
}

function withQ(tests: PearsonTest[]): void {
  const q = benjaminiHochberg(tests.map((t) => t.p));
  tests.forEach((t, i) => (t.q = q[i]));
}

function regressions(
  rows: readonly SequenceRow[],
  features: readonly string[],
  kind: 'mixed' | 'fixed',
): RegressionReport[] {
  const fits = TARGETS.map((target): RegressionReport => {
    const use = rows.filter(
      (r) => Number.isFinite(num(r, target)) && features.every((f) => Number.isFinite(num(r, f))),
    );
    const base: RegressionReport = {
      target,
      rows: use.length,
      groups: new Set(use.map((r) => r.config)).size,
      coefficients: [],
      extra: {},
      error: null,
    };
    if (use.length < MIN_REGRESSION_ROWS) {
      return {
        ...base,
        error: `${use.length} complete rows (the code fits only with ≥ ${MIN_REGRESSION_ROWS})`,
      };
    }
    const y = use.map((r) => num(r, target));
    const cols = features.map((f) => use.map((r) => num(r, f)));
    const groups = use.map((r) => r.config);
    // A constant target has nothing to explain: a fit would report rounding noise as significant
    // (statsmodels fails to converge there); it is skipped and stays out of the BH family.
    if (isConstant(y))
      return { ...base, error: `target constant (${target} = ${y[0]} in every row): not fitted` };
    if (constantWithinGroups(y, groups))
      return {
        ...base,
        error: `target constant within every configuration (${target} varies only between them): not fitted`,
      };
    if (kind === 'mixed') {
      const fit = randomInterceptModel(y, cols, groups, features);
      if (!fit)
        return {
          ...base,
          error: 'singular design (a feature or the target is constant or collinear)',
        };
      return {
        ...base,
        coefficients: fit.coefficients.map((c) => ({ ...c, q: null })),
        covariance: fit.covariance,
        extra: {
          sigma2: fit.sigma2,
          group_variance: fit.groupVariance,
          loglik_reml: fit.logLikReml,
          loglik_ml: fit.logLikMl,
          aic_ml: fit.aicMl,
        },
        error: null,
      };
    }
    const fit = fixedEffectsRegression(y, cols, groups, features);
    if (!fit)
      return {
        ...base,
        error: 'singular design (a feature is constant within configurations or collinear)',
      };
    return {
      ...base,
      coefficients: fit.coefficients.map((c) => ({ ...c, q: null })),
      extra: { sigma2: fit.sigma2, df: fit.df, r2_within: fit.r2 },
      error: null,
    };
  });
  const slopes = fits.flatMap((f) => f.coefficients.filter((c) => c.name !== 'Intercept'));
  const q = benjaminiHochberg(slopes.map((c) => c.p));
  slopes.forEach((c, i) => (c.q = q[i]));
  return fits;
}

/** Whether y is constant (to rounding) inside every group. */
function constantWithinGroups(y: readonly number[], groups: readonly number[]): boolean {
  const by = new Map<number, number[]>();
  groups.forEach((g, i) => (by.get(g) ?? by.set(g, []).get(g)!).push(y[i]));
  return [...by.values()].every((v) => isConstant(v));
}

function heatmaps(configurations: DmetSummary['configurations']): DmetSummary['heatmaps'] {
  const temperature = [...new Set(configurations.map((c) => c.temperature))].sort((a, b) => a - b);
  const topP = [...new Set(configurations.map((c) => c.top_p))].sort((a, b) => a - b);
  const metrics: Record<string, (number | null)[][]> = {};
  for (const m of SUMMARY_METRICS) {
    metrics[m] = temperature.map((t) =>
      topP.map(
        (p) =>
          stats(
            configurations
              .filter((c) => c.temperature === t && c.top_p === p)
              .map((c) => c.mean[m] ?? NaN),
          ).mean,
      ),
    );
  }
  return {
    temperature,
    top_p: topP,
    note: 'metrics[m][i][j] = mean of metric m over the sequences at temperature[i], top_p[j] (averaged over top-k / repetition-penalty values if the grid has several)',
    metrics,
  };
}

function balancedRegion(
  configurations: DmetSummary['configurations'],
  requested: BalancedBounds,
): DmetSummary['balanced_region'] {
  const resolve = (b: number | 'median', m: Metric) =>
    b === 'median' ? median(configurations.map((c) => c.mean[m] ?? NaN)) : b;
  const maxC = resolve(requested.maxContinuity, 'C_mean');
  const minD = resolve(requested.minDiversity, 'diversity');
  return {
    tag: 'proposed',
    requested,
    bounds: { max_C_mean: maxC, min_diversity: minD },
    definition:
      'configurations whose mean C_mean ≤ max_C_mean (smooth trajectories) and mean distinct-2 ≥ min_diversity (non-repetitive text); ' +
      `a bound given as 'median' is the median over configurations (${cite('dmet')}; the paper's bounds are not recoverable)`,
    configs: configurations
      .filter(
        (c) =>
          maxC !== null &&
          minD !== null &&
          (c.mean.C_mean ?? Infinity) <= maxC &&
          (c.mean.diversity ?? -Infinity) >= minD,
      )
      .map((c) => ({
        index: c.index,
        temperature: c.temperature,
        top_p: c.top_p,
        C_mean: c.mean.C_mean,
        diversity: c.mean.diversity,
      })),
  };
}

function median(values: readonly number[]): number | null {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const h = Math.floor(v.length / 2);
  return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

function temperatureTrend(rows: readonly SequenceRow[]): DmetSummary['temperature_trend'] {
  const temperature = [...new Set(rows.map((r) => r.temperature))].sort((a, b) => a - b);
  const metrics: DmetSummary['temperature_trend']['metrics'] = {};
  for (const m of SUMMARY_METRICS) {
    const per = temperature.map((t) =>
      stats(rows.filter((r) => r.temperature === t).map((r) => r[m])),
    );
    const c = correlate(
      rows.map((r) => r.temperature),
      rows.map((r) => r[m]),
    );
    metrics[m] = {
      mean: per.map((s) => s.mean),
      sd: per.map((s) => s.sd),
      spearman_rho: c.spearmanRho,
      spearman_p: c.spearmanP,
      n: c.n,
    };
  }
  return { tag: 'proposed', temperature, metrics };
}

function num(r: SequenceRow, key: string): number {
  return r[key as Metric] as number;
}

/** Mean and sample standard deviation of the finite values (null when there are none / one). */
function stats(values: readonly number[]): { mean: number | null; sd: number | null } {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return { mean: null, sd: null };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  if (v.length < 2) return { mean, sd: null };
  return { mean, sd: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) };
}
