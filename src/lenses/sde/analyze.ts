/**
 * The SDE lens (papers.md §2): generation read as dX = μ(X, t) dt + σ(X, t) dW on the
 * last-layer states of a trace (or of every configuration of a sweep). States are reduced by a
 * PCA fitted on the training trajectories; μ and a diagonal σ are MLPs fitted by the
 * Euler–Maruyama likelihood; the fit is validated by simulation and studied (analyses.ts).
 * Returns the report (sde.json) and the reusable model (sde-model.json: weights, PCA, time
 * convention). With a model given, nothing is fitted: the traces are projected with its PCA
 * and simulated with its networks.
 *
 * Tags: the SDE form is [exact: paper] (§2.2); states, estimation, validation and analyses are
 * [proposed] (§2.3–2.5).
 */
import { LmdynError } from '../../errors.js';
import type { SamplingConfig } from '../../decode/sampling.js';
import { createRng } from '../../tensor/rng.js';
import type { Trace } from '../../trace/types.js';
import { VERSION } from '../../version.js';
import { analyzeDataset, type DatasetAnalysis } from './analyses.js';
import type { KmOptions } from './km.js';
import {
  fitSde,
  sdeNll,
  type FitHistory,
  type FitOptions,
  type SdeLoss,
  type SdeNetwork,
} from './model.js';
import {
  applySplit,
  planSplit,
  timeConvention,
  type Path,
  type Split,
  type SplitPlan,
  type TimeConvention,
} from './paths.js';
import {
  fitStatePca,
  projectPaths,
  traceTrajectories,
  type StateKind,
  type StatePca,
} from './states.js';
import { cite, paperRef } from '../../papers.js';

import type { Tag } from '../tag.js';

export type { Tag };

export const DEFAULT_DIMS = 8;

export interface SdeOptions {
  /** PCA dimensions k (default 8; papers.md §2.3 suggests 2, 4, 8, 16). */
  dims?: number;
  /** Seeds the split, the networks' initialisation and minibatches, and the simulations (default 1). */
  seed?: number;
  /** State hook (default ln_final.hook_normalized, else the last resid_post). */
  hook?: string;
  state?: StateKind;
  /** Time convention (default unit: t ∈ [0, 1], Δt = 1/N_max). */
  time?: 'unit' | 'step';
  fit?: Omit<FitOptions, 'seed' | 'log'>;
  /** Simulated paths per real start (default 16). */
  replicas?: number;
  km?: KmOptions;
  /** A fitted model (sde-model.json) to simulate instead of fitting. */
  model?: SdeModelFile;
  log?: (line: string) => void;
}

/** One data set: a trace, with its decoding configuration (a sweep gives one per grid point). */
export interface SdeInput {
  label: string;
  dir: string;
  trace: Trace;
}

export interface SdeReport {
  lens: 'sde';
  spec: string;
  lmdyn_version: string;
  /** The model the traces came from (as named when they were recorded). */
  model: string;
  options: Record<string, unknown>;
  source: { kind: 'trace' | 'sweep'; dir: string; model: string; mode: string; prompt: string };
  seed: number;
  tags: Record<
    'model_form' | 'states' | 'estimation' | 'validation' | 'analyses',
    { tag: Tag; source: string }
  >;
  states: {
    tag: Tag;
    hook: string;
    hook_note: string;
    state: StateKind;
    trajectory: string;
    d: number;
    k: number;
    pca: { explained_variance_ratio: number[]; fitted_on_states: number; fitted_on: string };
  };
  time: TimeConvention & { tag: Tag };
  estimation: {
    tag: Tag;
    source: string;
    from_model_file: boolean;
    loss: SdeLoss;
    loss_definition: string;
    networks: string;
    options: Record<string, unknown>;
  };
  datasets: DatasetReport[];
  across_temperatures: { tag: Tag; definition: string; rows: AcrossRow[] } | null;
}

export interface DatasetReport {
  label: string;
  /** The headline numbers of this data set (tagged, for reports that read `value` fields). */
  headline: { name: string; tag: Tag; definition: string; value: number | null }[];
  dir: string;
  sampling: Pick<SamplingConfig, 'temperature' | 'topP' | 'topK' | 'repetitionPenalty'>;
  paths: number;
  lengths: { min: number; max: number; mean: number };
  split: {
    mode: SplitPlan['mode'];
    train_paths: number;
    validation_paths: number;
    test_paths: number;
    increments: { train: number; validation: number; test: number };
  };
  fit: {
    tag: Tag;
    seed: number | null;
    epochs: number;
    best_epoch: number;
    stopped_by: string;
    seconds: number;
    history: FitHistory[];
  };
  validation: { tag: Tag; source: string } & Pick<
    DatasetAnalysis,
    'nll' | 'ks_increments' | 'mmd_end_states'
  >;
  analyses: { tag: Tag; source: string } & Omit<
    DatasetAnalysis,
    'nll' | 'ks_increments' | 'mmd_end_states' | 'figures'
  >;
  figures: DatasetAnalysis['figures'];
}

export interface AcrossRow {
  label: string;
  temperature: number;
  top_p: number;
  paths: number;
  increments: number;
  nll_test: number;
  nll_constant_test: number;
  drift_norm: number;
  diffusion_norm: number;
  snr: number;
  msd_alpha_real: number | null;
  msd_alpha_simulated: number | null;
  ks_mean: number;
  mmd2: number;
  trace_ratio_mean: number;
}

/** sde-model.json: everything needed to project new traces and simulate. */
export interface SdeModelFile {
  format: 'lmdyn-sde-model';
  version: 1;
  lmdyn_version: string;
  spec: string;
  source: { kind: 'trace' | 'sweep'; dir: string; model: string };
  seed: number;
  states: { hook: string; state: StateKind; d: number; k: number; pca: StatePca };
  time: TimeConvention;
  models: {
    label: string;
    sampling: DatasetReport['sampling'];
    loss: SdeLoss;
    network: SdeNetworkJson;
  }[];
}

export interface SdeNetworkJson {
  k: number;
  time_input: boolean;
  sigma_floor: number;
  norm: SdeNetwork['norm'];
  drift: { sizes: number[]; activation: 'tanh'; params: number[] };
  /** [A (k × k, row-major), b (k)] of the linear drift term, scaled units. */
  drift_linear: number[];
  diffusion: { sizes: number[]; activation: 'tanh'; params: number[] };
}

const SOURCES = {
  model_form: {
    tag: 'proposed' as const,
    source:
      `${cite('sde')}: the paper’s form dX(t) = μ(X(t), t) dt + σ(X(t), t) dW(t) with μ, σ neural networks; σ diagonal and the linear drift term beside the network are ours`,
  },
  states: { tag: 'proposed' as const, source: cite('sde') },
  estimation: { tag: 'proposed' as const, source: cite('sde') },
  validation: { tag: 'proposed' as const, source: `${cite('sde')} (validation)` },
  analyses: { tag: 'proposed' as const, source: cite('sde') },
};

const LOSS_DEFINITION: Record<SdeLoss, string> = {
  nll: 'joint Euler–Maruyama Gaussian NLL Σ_i [(Δx_i − μ_iΔt)²/(2σ_i²Δt) + ½log(2πσ_i²Δt)] (preferred in §2.4)',
  'two-loss':
    'drift loss mean‖u − μ̃√Δt‖² and diffusion loss mean‖(u − μ̃√Δt)⊙² − σ̃⊙²‖² with μ detached, on increments standardised per component (u = Δx/(c√Δt), μ̃ = μ/c, σ̃ = σ/c)',
};

export function analyzeSde(
  inputs: readonly SdeInput[],
  source: { kind: 'trace' | 'sweep'; dir: string },
  options: SdeOptions = {},
): { report: SdeReport; model: SdeModelFile } {
  if (inputs.length === 0) throw new LmdynError('bad_argument', 'no traces to analyse');
  const seed = options.seed ?? 1;
  const log = options.log ?? (() => {});
  const given = options.model;
  const hook = given ? given.states.hook : options.hook;
  const stateKind = given ? given.states.state : (options.state ?? 'last');
  const raws = inputs.map((inp) => traceTrajectories(inp.trace, { hook, state: stateKind }));
  const d = raws[0].d;
  if (raws.some((r) => r.d !== d || r.hook !== raws[0].hook)) {
    throw new LmdynError(
      'bad_argument',
      'the traces record different state widths or hooks; analyse them separately',
    );
  }
  if (given && given.states.d !== d) {
    throw new LmdynError(
      'bad_argument',
      `the model file was fitted on ${given.states.d}-dimensional states, the trace has ${d}`,
    );
  }
  raws.forEach((r, i) => {
    if (r.paths.filter((p) => p.len >= 2).length === 0) {
      throw new LmdynError(
        'bad_argument',
        `${inputs[i].dir}: no sample has two recorded states (generate at least one token)`,
      );
    }
  });

  // split plans first (on lengths alone), then the PCA on the training paths
  const rng = createRng(seed);
  const plans: SplitPlan[] = raws.map((r) =>
    given
      ? allHeldOut(r.paths)
      : planSplit(
          r.paths.map((p) => p.len),
          rng,
        ),
  );
  const dims = options.dims ?? DEFAULT_DIMS;
  const pca = given
    ? given.states.pca
    : fitStatePca(
        raws.flatMap((r, i) => plans[i].trainPaths.map((j) => r.paths[j])),
        d,
        dims,
      );
  const k = pca.k;
  const projected = raws.map((r) => projectPaths(r.paths, pca));
  const nMax = Math.max(
    ...projected.flatMap((ps, i) => plans[i].trainPaths.map((j) => ps[j].len - 1)),
  );
  const time = given ? given.time : timeConvention(options.time ?? 'unit', nMax);

  const fitOpts = options.fit ?? {};
  const datasets: DatasetReport[] = [];
  const models: SdeModelFile['models'] = [];
  inputs.forEach((inp, i) => {
    const paths = projected[i];
    const split = applySplit(paths, plans[i], k, time.dt);
    const sampling = samplingOf(inp.trace);
    let network: SdeNetwork;
    let fitBlock: DatasetReport['fit'];
    let nllFit: { train: number; validation: number };
    let loss: SdeLoss;
    if (given) {
      const entry =
        given.models.length === 1
          ? given.models[0]
          : given.models.find((m) => m.label === inp.label);
      if (!entry) {
        throw new LmdynError(
          'bad_argument',
          `the model file has no model for '${inp.label}' (it has ${given.models.map((m) => m.label).join(', ')})`,
        );
      }
      network = networkFromJson(entry.network);
      loss = entry.loss;
      const all = sdeNll(network, split.train).mean;
      nllFit = { train: all, validation: all };
      fitBlock = {
        tag: 'proposed',
        seed: null,
        epochs: 0,
        best_epoch: 0,
        stopped_by: 'model file',
        seconds: 0,
        history: [],
      };
    } else {
      if (split.train.n < 2)
        throw new LmdynError('bad_argument', `${inp.dir}: fewer than 2 training increments`);
      const fitSeed = seed + 1000 * (i + 1);
      log(`sde: fitting ${inp.label} (${split.train.n} training increments, k = ${k})`);
      const fit = fitSde(split.train, split.validation, { ...fitOpts, seed: fitSeed, log });
      network = fit.network;
      loss = fit.options.loss;
      nllFit = fit.nll;
      fitBlock = {
        tag: 'proposed',
        seed: fitSeed,
        epochs: fit.epochs,
        best_epoch: fit.bestEpoch,
        stopped_by: fit.stoppedBy,
        seconds: fit.seconds,
        history: fit.history,
      };
    }
    const analysis = analyzeDataset(network, paths, split, nllFit, {
      seed: seed + 1000 * (i + 1),
      replicas: options.replicas,
      km: options.km,
    });
    const { nll, ks_increments, mmd_end_states, figures, ...rest } = analysis;
    const lens = paths.map((p) => p.len);
    datasets.push({
      label: inp.label,
      headline: headlines(analysis),
      dir: inp.dir,
      sampling,
      paths: paths.length,
      lengths: {
        min: Math.min(...lens),
        max: Math.max(...lens),
        mean: lens.reduce((a, b) => a + b, 0) / lens.length,
      },
      split: splitSummary(split, given !== undefined),
      fit: fitBlock,
      validation: { ...SOURCES.validation, nll, ks_increments, mmd_end_states },
      analyses: { ...SOURCES.analyses, ...rest },
      figures,
    });
    models.push({ label: inp.label, sampling, loss, network: networkToJson(network) });
  });

  const first = inputs[0].trace;
  const report: SdeReport = {
    lens: 'sde',
    spec: paperRef('sde'),
    lmdyn_version: VERSION,
    model: first.meta.model.spec,
    options: {
      dims: k,
      seed,
      state: stateKind,
      time: time.kind,
      from_model_file: given !== undefined,
      ...(given ? {} : fitOpts),
    },
    source: {
      ...source,
      model: first.meta.model.spec,
      mode: first.meta.mode,
      prompt: first.samples[0]?.prompt ?? '',
    },
    seed,
    tags: SOURCES,
    states: {
      tag: 'proposed',
      hook: raws[0].hook,
      hook_note: raws[0].note,
      state: stateKind,
      trajectory:
        'x_0 = state at the last prompt position (the state that produced the first token), x_j = state at the j-th generated (or teacher-forced) token; projected on a PCA of the pooled training trajectories',
      d,
      k,
      pca: {
        explained_variance_ratio: pca.explainedVarianceRatio,
        fitted_on_states: pca.fittedOn,
        fitted_on: given
          ? 'the model file’s PCA (fitted when the model was)'
          : inputs.length > 1
            ? 'training paths of every configuration, pooled'
            : 'training paths',
      },
    },
    time: { ...time, tag: 'proposed' },
    estimation: {
      ...SOURCES.estimation,
      from_model_file: given !== undefined,
      loss: models[0].loss,
      loss_definition: LOSS_DEFINITION[models[0].loss],
      networks: `μ_θ, σ_φ: separate MLPs on [x̃, t̃] (standardised), ${models[0].network.drift.sizes.join(' → ')}, tanh; μ = c·(o + A·x̃ + b) with the linear (OU) term started at least squares, σ = c·(softplus(a) + ${models[0].network.sigma_floor}), c_i = std(Δx_i)/√Δt; Adam, minibatches, early stopping on the validation NLL (best epoch kept, step halved on plateaus)`,
      options: given
        ? { model_file: true }
        : { ...fitOpts, dims, replicas: options.replicas ?? 16 },
    },
    datasets,
    across_temperatures: inputs.length > 1 ? acrossTemperatures(datasets) : null,
  };
  const model: SdeModelFile = {
    format: 'lmdyn-sde-model',
    version: 1,
    lmdyn_version: VERSION,
    spec: paperRef('sde'),
    source: { ...source, model: first.meta.model.spec },
    seed,
    states: { hook: raws[0].hook, state: stateKind, d, k, pca },
    time,
    models,
  };
  return { report, model };
}

/**
 * The residual checks, whether they pass or fail: the worst component's KS p against N(0, 1),
 * Jarque–Bera p, and the largest |skewness| and |excess kurtosis| of the standardised residuals.
 */
function residualHeadlines(a: DatasetAnalysis): DatasetReport['headline'] {
  const per = a.residuals.per_component;
  const p = 'proposed' as const;
  const minOf = (v: number[]) => (v.length ? Math.min(...v) : null);
  const maxAbs = (v: number[]) => (v.length ? Math.max(...v.map(Math.abs)) : null);
  const ksP = minOf(per.map((c) => c.ks.p));
  const jbP = minOf(per.map((c) => c.jarque_bera_p));
  const verdict = (q: number | null) =>
    q === null ? 'not computed' : q >= 0.05 ? 'passes at α = 0.05' : 'FAILS at α = 0.05';
  return [
    {
      name: 'residuals: KS p vs N(0, 1) (worst component)',
      tag: p,
      definition: `standardised residuals (Δx − μΔt)/(σ√Δt), ${a.residuals.scope}; ${verdict(ksP)}`,
      value: ksP,
    },
    {
      name: 'residuals: Jarque–Bera p (worst component)',
      tag: p,
      definition: verdict(jbP),
      value: jbP,
    },
    {
      name: 'residuals: largest |skewness|',
      tag: p,
      definition: '0 for Gaussian residuals',
      value: maxAbs(per.map((c) => c.skewness)),
    },
    {
      name: 'residuals: largest |excess kurtosis|',
      tag: p,
      definition: '0 for Gaussian residuals',
      value: maxAbs(per.map((c) => c.kurtosis)),
    },
  ];
}

function headlines(a: DatasetAnalysis): DatasetReport['headline'] {
  const p = 'proposed' as const;
  const finite = (v: number | null) => (v === null || !Number.isFinite(v) ? null : v);
  return [
    {
      name: 'test NLL',
      tag: p,
      definition: 'Euler–Maruyama NLL per held-out increment (nats)',
      value: finite(a.nll.model.test),
    },
    {
      name: 'test NLL, constant baseline',
      tag: p,
      definition: 'Brownian motion with drift fitted to the training increments',
      value: finite(a.nll.constant_test),
    },
    {
      name: 'test NLL, Kramers–Moyal',
      tag: p,
      definition: 'binned conditional moments',
      value: finite(a.nll.kramers_moyal_test),
    },
    {
      name: 'test NLL, linear OU / VAR(1)',
      tag: p,
      definition:
        'linear drift A x + b, constant diagonal σ, fitted to the training increments (the baseline to beat)',
      value: finite(a.nll.linear_test),
    },
    ...residualHeadlines(a),
    {
      name: 'KS distance of increments',
      tag: p,
      definition: 'mean over components, real vs simulated',
      value: finite(a.ks_increments.mean_d),
    },
    {
      name: 'MMD² of end states',
      tag: p,
      definition: 'real vs simulated end states',
      value: finite(a.mmd_end_states.mmd2),
    },
    {
      name: 'moments: mean error',
      tag: p,
      definition: 'RMS over steps of ‖m_real − m_sim‖ / √tr Cov(all real states)',
      value: finite(a.moments.summary.mean_error_relative),
    },
    {
      name: 'moments: tr Σ sim / real',
      tag: p,
      definition: 'Σ_t tr Σ_sim / Σ_t tr Σ_real',
      value: finite(a.moments.summary.trace_ratio_mean),
    },
    {
      name: 'mean ‖μ‖',
      tag: p,
      definition: 'along the real trajectories',
      value: finite(a.along_trajectories.mean.drift_norm),
    },
    {
      name: 'mean ‖σ‖',
      tag: p,
      definition: 'along the real trajectories',
      value: finite(a.along_trajectories.mean.diffusion_norm),
    },
    {
      name: 'SNR',
      tag: p,
      definition: '‖μ‖Δt/(‖σ‖√Δt), mean along the trajectories',
      value: finite(a.along_trajectories.mean.snr),
    },
    {
      name: 'MSD exponent α (real)',
      tag: p,
      definition: 'log-log slope of the mean squared displacement',
      value: finite(a.msd.alpha_real),
    },
    {
      name: 'MSD exponent α (simulated)',
      tag: p,
      definition: 'same on simulated paths',
      value: finite(a.msd.alpha_simulated),
    },
    {
      name: 'fixed points',
      tag: p,
      definition: 'zeros of μ inside the data range',
      value: a.fixed_points.found.length,
    },
  ];
}

function acrossTemperatures(
  datasets: readonly DatasetReport[],
): NonNullable<SdeReport['across_temperatures']> {
  return {
    tag: 'proposed',
    definition:
      `one fit per decoding configuration in a shared PCA and time convention (${cite('sde')}, toolkit extension: σ expected to grow with T, μ to dominate at low T)`,
    rows: datasets.map((d) => ({
      label: d.label,
      temperature: d.sampling.temperature,
      top_p: d.sampling.topP,
      paths: d.paths,
      increments:
        d.split.increments.train + d.split.increments.validation + d.split.increments.test,
      nll_test: d.validation.nll.model.test,
      nll_constant_test: d.validation.nll.constant_test,
      nll_linear_test: d.validation.nll.linear_test,
      drift_norm: d.analyses.along_trajectories.mean.drift_norm,
      diffusion_norm: d.analyses.along_trajectories.mean.diffusion_norm,
      snr: d.analyses.along_trajectories.mean.snr,
      msd_alpha_real: d.analyses.msd.alpha_real,
      msd_alpha_simulated: d.analyses.msd.alpha_simulated,
      ks_mean: d.validation.ks_increments.mean_d,
      mmd2: d.validation.mmd_end_states.mmd2,
      trace_ratio_mean: d.analyses.moments.summary.trace_ratio_mean,
    })),
  };
}

function splitSummary(split: Split, fromFile: boolean): DatasetReport['split'] {
  return {
    mode: split.mode,
    train_paths: fromFile ? 0 : split.trainPaths.length,
    validation_paths: fromFile ? 0 : split.validationPaths.length,
    test_paths: split.testPaths.length,
    increments: fromFile
      ? { train: 0, validation: 0, test: split.test.n }
      : { train: split.train.n, validation: split.validation.n, test: split.test.n },
  };
}

/** With a model from file every path is held out (train = validation = test = all). */
function allHeldOut(paths: readonly Path[]): SplitPlan {
  const all = paths.map((_, i) => i).filter((i) => paths[i].len >= 2);
  return {
    mode: 'paths',
    trainPaths: all,
    validationPaths: all,
    testPaths: all,
    assignment: null,
    fractions: { validation: 0, test: 1 },
  };
}

function samplingOf(trace: Trace): DatasetReport['sampling'] {
  const s = trace.meta.decoding;
  return {
    temperature: s.temperature,
    topP: s.topP,
    topK: s.topK,
    repetitionPenalty: s.repetitionPenalty,
  };
}

export function networkToJson(net: SdeNetwork): SdeNetworkJson {
  return {
    k: net.k,
    time_input: net.timeInput,
    sigma_floor: net.sigmaFloor,
    norm: net.norm,
    drift: { sizes: net.drift.sizes, activation: 'tanh', params: Array.from(net.drift.params) },
    drift_linear: Array.from(net.driftLinear),
    diffusion: {
      sizes: net.diffusion.sizes,
      activation: 'tanh',
      params: Array.from(net.diffusion.params),
    },
  };
}

export function networkFromJson(j: SdeNetworkJson): SdeNetwork {
  return {
    k: j.k,
    timeInput: j.time_input,
    sigmaFloor: j.sigma_floor,
    norm: j.norm,
    drift: { sizes: j.drift.sizes, activation: 'tanh', params: Float64Array.from(j.drift.params) },
    driftLinear: Float64Array.from(j.drift_linear),
    diffusion: {
      sizes: j.diffusion.sizes,
      activation: 'tanh',
      params: Float64Array.from(j.diffusion.params),
    },
  };
}

/** Checks the shape of a parsed sde-model.json (one line per problem). */
export function validateModelFile(value: unknown, path: string): SdeModelFile {
  const bad = (why: string) =>
    new LmdynError('bad_format', `${path} is not an lmdyn SDE model: ${why}`);
  if (!value || typeof value !== 'object') throw bad('not a JSON object');
  const m = value as Partial<SdeModelFile>;
  if (m.format !== 'lmdyn-sde-model') throw bad(`format is '${String(m.format)}'`);
  if (m.version !== 1) throw bad(`version ${String(m.version)} is not supported`);
  const st = m.states;
  if (
    !st ||
    !st.pca ||
    !Array.isArray(st.pca.components) ||
    st.pca.components.length !== st.k ||
    st.pca.mean.length !== st.d
  ) {
    throw bad('the PCA does not match its stated d and k');
  }
  if (!m.time || !(m.time.dt > 0)) throw bad('no time convention');
  if (!Array.isArray(m.models) || m.models.length === 0) throw bad('no fitted models');
  for (const e of m.models) {
    const n = e.network;
    for (const net of [n.drift, n.diffusion]) {
      const expected = net.sizes.slice(1).reduce((a, s, i) => a + s * net.sizes[i] + s, 0);
      if (
        net.params.length !== expected ||
        net.sizes[net.sizes.length - 1] !== n.k ||
        n.k !== st.k
      ) {
        throw bad(`model '${e.label}': the network sizes and parameters disagree`);
      }
    }
    if (!Array.isArray(n.drift_linear) || n.drift_linear.length !== n.k * n.k + n.k) {
      throw bad(`model '${e.label}': the linear drift term has the wrong size`);
    }
  }
  return m as SdeModelFile;
}
