/**
 * Path dependence on real generations (papers.md §4.3 item 4, [proposed]): per decoding
 * configuration, the loop rate, periods and time to loop (loops.ts), the escape probability of
 * the loops under Gaussian logit noise and the asymmetry of the score response to penalty counts
 * (dynamics.ts), laid out against temperature and the repetition / frequency / presence
 * penalties.
 */
import type { Model } from '../../model/model.js';
import type { SamplingConfig } from '../../decode/sampling.js';
import { escapeTrials, mixSeed, scoreResponse, type ScoreResponse } from './dynamics.js';
import type { GenerationSet } from './generations.js';
import {
  DEFAULT_LOOP_OPTIONS,
  loopSummary,
  median,
  wilsonInterval,
  type Loop,
  type LoopOptions,
  type LoopSummary,
} from './loops.js';
import { cite } from '../../papers.js';

export interface PathOptions {
  loop?: Partial<LoopOptions>;
  /** Logit noise levels (σ = 0 is the sampler's own escape rate). Default 0, 0.01, 0.1, 0.5. */
  sigmas?: readonly number[];
  /** Noisy continuations per loop and σ (default 16). */
  trials?: number;
  /** Steps a continuation must stay on the cycle (default 24; at least one period). */
  horizon?: number;
  /** Loops per configuration whose escape is measured (default 8; 0 = skip). */
  maxLoops?: number;
  /** Size of the token set of the score response A (default 6). */
  responseTokens?: number;
  /** Samples per configuration whose A is measured, looping ones first (default 4; 0 = skip). */
  responseSamples?: number;
  seed?: number;
  log?: (line: string) => void;
}

export const DEFAULT_SIGMAS = [0, 0.01, 0.1, 0.5] as const;

export interface LoopConfigReport {
  label: string;
  dir: string | null;
  sampling: SamplingConfig;
  /**
   * Heatmap axes: temperature; the first varying penalty (`penalty_name`, its value as text, or
   * 'fixed'); one panel per value of the other varying penalties and settings ('all' if none).
   */
  axes: { temperature: number; penalty_name: string; penalty: string; panel: string };
  summary: LoopSummary;
  per_sample: {
    seed: number;
    finish_reason: string;
    generated: number;
    loop: (Loop & { cycle_text: string }) | null;
  }[];
  escape: {
    tag: 'proposed';
    loops_used: number;
    horizon: { min: number; max: number } | null;
    by_sigma: {
      sigma: number;
      /** Continuations run (loops × trials). */
      draws: number;
      /** Independent trials: draws, with a deterministic loop's copies counted once. */
      trials: number;
      escaped: number;
      probability: number | null;
      ci95: [number, number];
      mean_steps_to_escape: number | null;
    }[];
  };
  score_response: {
    tag: 'proposed';
    samples_used: number;
    asymmetry: { mean: number | null; median: number | null; values: number[] };
    asymmetry_model: { mean: number | null; median: number | null; values: number[] };
    /** √((m − 1)/(m + 1)): the asymmetry an m×m matrix of iid entries has (in mean square), for scale. */
    iid_reference: number | null;
    /** The first sample's A, for inspection. */
    example: (ScoreResponse & { sample: number; token_text: string[] }) | null;
  };
}

export interface LoopReport {
  tag: 'proposed';
  source: string;
  definitions: Record<string, string>;
  options: {
    loop: LoopOptions;
    sigmas: number[];
    trials: number;
    horizon: number;
    max_loops: number;
    response_tokens: number;
    response_samples: number;
    seed: number;
  };
  generations: {
    source: 'sweep' | 'grid';
    sweep_dir: string | null;
    model: string;
    tokenizer: string | null;
    prompt: string;
    max_tokens: number;
    missing_configs: string[];
  };
  /** Sampling fields that vary across the configurations. */
  varying: string[];
  configs: LoopConfigReport[];
}

const SHORT: Record<keyof SamplingConfig, string> = {
  temperature: 'T',
  topK: 'top-k',
  topP: 'top-p',
  minP: 'min-p',
  repetitionPenalty: 'rep',
  frequencyPenalty: 'freq',
  presencePenalty: 'pres',
};
const PENALTIES: (keyof SamplingConfig)[] = [
  'repetitionPenalty',
  'frequencyPenalty',
  'presencePenalty',
];
const PENALTY_NAME: Partial<Record<keyof SamplingConfig, string>> = {
  repetitionPenalty: 'repetition penalty θ',
  frequencyPenalty: 'frequency penalty α_f',
  presencePenalty: 'presence penalty α_p',
};
const OTHERS: (keyof SamplingConfig)[] = ['topK', 'topP', 'minP'];

/** Whether every trial at this σ replays the same continuation (no noise, no sampling randomness). */
function deterministicTrials(sigma: number, s: SamplingConfig): boolean {
  return sigma === 0 && (s.temperature === 0 || s.topK === 1);
}

export function analyzePathDependence(
  set: GenerationSet,
  model: Model,
  options: PathOptions = {},
): LoopReport {
  const loopOptions = { ...DEFAULT_LOOP_OPTIONS, ...options.loop };
  const sigmas = [...(options.sigmas ?? DEFAULT_SIGMAS)];
  const trials = options.trials ?? 16;
  const horizon = options.horizon ?? 24;
  const maxLoops = options.maxLoops ?? 8;
  const responseTokens = options.responseTokens ?? 6;
  const responseSamples = options.responseSamples ?? 4;
  const seed = options.seed ?? 1;
  const varying = (Object.keys(SHORT) as (keyof SamplingConfig)[]).filter(
    (key) => new Set(set.configs.map((c) => c.sampling[key])).size > 1,
  );
  const xKey = PENALTIES.find((k) => varying.includes(k)) ?? null;
  const panelKeys = [...PENALTIES, ...OTHERS].filter((k) => k !== xKey && varying.includes(k));
  const text = (ids: readonly number[]) => model.tokenizer.decode(ids);

  const configs = set.configs.map((config, ci): LoopConfigReport => {
    const s = config.sampling;
    const label = [
      `T ${s.temperature}`,
      ...varying.filter((k) => k !== 'temperature').map((k) => `${SHORT[k]} ${s[k]}`),
    ].join(' · ');
    options.log?.(`simplex: loops in ${label} (${config.samples.length} samples)`);
    const {
      summary,
      loops,
      first: distinct,
    } = loopSummary(
      config.samples.map((x) => ({ ids: x.ids, finishReason: x.finishReason })),
      loopOptions,
    );

    // Escape under logit noise, for the first `maxLoops` loops.
    // Identical sequences (greedy decoding repeats one for every seed) are measured once, and
    // the trials of a deterministic continuation (σ = 0 with greedy or top-k 1 sampling) are
    // copies of one trial: they count once per loop.
    const looping = config.samples.map((_, i) => i).filter((i) => loops[i] !== null && distinct[i]);
    const pooled = sigmas.map((sigma) => ({ sigma, draws: 0, trials: 0, escaped: 0, steps: 0 }));
    const horizons: number[] = [];
    for (const i of looping.slice(0, maxLoops)) {
      const x = config.samples[i];
      const result = escapeTrials(model, [...x.promptIds, ...x.ids], x.ids.length, loops[i]!, s, {
        sigmas,
        trials,
        horizon,
        seed: mixSeed(seed, ci, i),
      });
      if (!result) continue;
      horizons.push(result.horizon);
      result.by_sigma.forEach((r, k) => {
        const copies = deterministicTrials(r.sigma, s) ? r.trials : 1;
        pooled[k].draws += r.trials;
        pooled[k].trials += r.trials / copies;
        pooled[k].escaped += r.escaped / copies;
        pooled[k].steps += ((r.mean_steps_to_escape ?? 0) * r.escaped) / copies;
      });
    }

    // Score response A, looping samples first.
    const order = [
      ...looping,
      ...config.samples.map((_, i) => i).filter((i) => loops[i] === null && distinct[i]),
    ];
    const responses: { sample: number; r: ScoreResponse }[] = [];
    for (const i of order) {
      if (responses.length >= responseSamples) break;
      const x = config.samples[i];
      const r = scoreResponse(model, [...x.promptIds, ...x.ids], x.ids, s, responseTokens);
      if (r) responses.push({ sample: i, r });
    }
    const stats = (values: number[]) => ({
      mean: values.length ? values.reduce((a, b) => a + b, 0) / values.length : null,
      median: values.length ? median([...values].sort((a, b) => a - b)) : null,
      values,
    });
    const asym = responses.flatMap(({ r }) => (r.asymmetry === null ? [] : [r.asymmetry]));
    const asymModel = responses.flatMap(({ r }) =>
      r.asymmetry_model === null ? [] : [r.asymmetry_model],
    );

    return {
      label,
      dir: config.dir,
      sampling: s,
      axes: {
        temperature: s.temperature,
        penalty_name: (xKey && PENALTY_NAME[xKey]) || 'penalties',
        penalty: xKey ? String(s[xKey]) : 'fixed',
        panel: panelKeys.length ? panelKeys.map((k) => `${SHORT[k]} ${s[k]}`).join(' · ') : 'all',
      },
      summary,
      per_sample: config.samples.map((x, i) => {
        const l = loops[i];
        return {
          seed: x.seed,
          finish_reason: x.finishReason,
          generated: x.ids.length,
          loop: l ? { ...l, cycle_text: text(l.cycle) } : null,
        };
      }),
      escape: {
        tag: 'proposed',
        loops_used: horizons.length,
        horizon: horizons.length
          ? { min: Math.min(...horizons), max: Math.max(...horizons) }
          : null,
        by_sigma: pooled.map((p) => ({
          sigma: p.sigma,
          draws: p.draws,
          trials: p.trials,
          escaped: p.escaped,
          probability: p.trials ? p.escaped / p.trials : null,
          ci95: wilsonInterval(p.escaped, p.trials),
          mean_steps_to_escape: p.escaped ? p.steps / p.escaped : null,
        })),
      },
      score_response: {
        tag: 'proposed',
        samples_used: responses.length,
        asymmetry: stats(asym),
        asymmetry_model: stats(asymModel),
        iid_reference: responses.length
          ? Math.sqrt((responses[0].r.tokens.length - 1) / (responses[0].r.tokens.length + 1))
          : null,
        example: responses.length
          ? {
              sample: responses[0].sample,
              ...responses[0].r,
              token_text: responses[0].r.tokens.map((id) => model.tokenizer.tokenText(id)),
            }
          : null,
      },
    };
  });

  return {
    tag: 'proposed',
    source: `${cite('simplex')} (path-dependent score adjustments, loops, brittle attractors)`,
    definitions: {
      loop:
        `the generated ids end in a cycle: the longest P-periodic suffix has length ≥ max(${loopOptions.minRepeats}·P, ${loopOptions.minSpan}), P ≤ ${loopOptions.maxPeriod}; ` +
        'period = the smallest such P; a sequence ended by a stop token does not loop',
      loop_rate:
        'looping distinct sequences / distinct sequences (identical samples, e.g. greedy decoding under every seed, count once), with a 95 % Wilson interval on the distinct count',
      time_to_loop:
        'generated tokens before the periodic suffix begins (right-censored at the token budget)',
      escape:
        'from the looping sequence, continue with logits + N(0, σ²) per token and step through the sampler (same config); ' +
        'escaped if within the horizon (≥ one period, ≤ the context left) a token differs from the cycle’s continuation or ends the sequence; ' +
        'identical sequences are measured once, and a deterministic continuation (σ = 0 with greedy or top-k 1 sampling) counts as one trial per loop; the 95 % Wilson interval is on those independent trials',
      score_response:
        'A_ij = s_i(context with one more token j inserted after BOS) − s_i(context), s = logits after the configuration’s penalties, ' +
        'on the most frequent generated tokens; asymmetry = ‖A − Aᵀ‖_F / ‖A + Aᵀ‖_F (0 symmetric: potential game; unbounded towards antisymmetric; ≈ √((m − 1)/(m + 1)) for iid entries); ' +
        'asymmetry_model is the same on the raw logits (the penalties’ own part is diagonal: −α_f per count)',
    },
    options: {
      loop: loopOptions,
      sigmas,
      trials,
      horizon,
      max_loops: maxLoops,
      response_tokens: responseTokens,
      response_samples: responseSamples,
      seed,
    },
    generations: {
      source: set.source,
      sweep_dir: set.sweepDir,
      model: set.model,
      tokenizer: set.tokenizer,
      prompt: set.prompt,
      max_tokens: set.maxTokens,
      missing_configs: set.missing,
    },
    varying,
    configs,
  };
}
