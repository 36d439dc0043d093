/**
 * `lmdyn analyze simplex`: the simplex lens (papers.md §4).
 *   --model M --prompt P [--temperature T] [--top-k K] [--top-p P] --out DIR
 *       both flows on the context's logits, closed forms, faces, MWU maps → DIR/simplex.json + figures;
 *       with --loops also a generation grid over temperature × repetition/frequency/presence penalties.
 *   --sweep DIR
 *       loop statistics of a `lmdyn sweep` folder → DIR/simplex.json + DIR/simplex_*.svg
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { openModel as openSpec } from '../api.js';
import { LmdynError } from '../errors.js';
import { defaultGrid } from '../lenses/simplex/equilibrium.js';
import {
  analyzeSimplex,
  analyzeSweepLoops,
  type SimplexReport,
} from '../lenses/simplex/analyze.js';
import { readSweepGenerations } from '../lenses/simplex/generations.js';
import { writeSimplexRun, writeSweepLoops } from '../report/lenses/simplex.js';
import type { LoopReport, PathOptions } from '../lenses/simplex/path.js';
import { checkOutDir } from '../trace/io.js';
import type { LensRegistrar } from './analyze.js';
import { parseInteger, parseNumber } from './args.js';
import { addJsonFlag, openModel, printResult } from './common.js';
import { cite } from '../papers.js';

interface SimplexFlags {
  json?: boolean;
  model?: string;
  tokenizer?: string;
  prompt: string;
  temperature: number;
  topK?: number;
  topP?: number;
  starts: number;
  tMax?: number;
  eta: number;
  seed: number;
  sweep?: string;
  loops?: boolean;
  loopTemperatures: number[];
  repetitionPenalties: number[];
  frequencyPenalties: number[];
  presencePenalties: number[];
  loopSamples: number;
  loopTokens: number;
  sigmas: number[];
  trials: number;
  horizon: number;
  maxLoops: number;
  responseTokens: number;
  responseSamples: number;
  minRepeats: number;
  minSpan: number;
  maxPeriod: number;
  png?: boolean;
  out?: string;
  force?: boolean;
}

export const registerSimplexLens: LensRegistrar = (analyze) => {
  const cmd = analyze
    .command('simplex')
    .description(
      `replicator flows to the softmax equilibrium, faces, loops in generations (${cite('simplex')})`,
    )
    .option(
      '-m, --model <M>',
      'model file, folder or hf:owner/name (with --sweep: overrides the sweep’s model)',
    )
    .option('-z, --tokenizer <T>', 'tokenizer overriding the model’s own')
    .option('-i, --prompt <P>', 'the context whose next-token logits are the scores s', '')
    .option('-t, --temperature <T>', 'temperature T > 0 of the flows', positive('--temperature'), 1)
    .option(
      '--top-k <K>',
      'also run the flows on the sampler’s top-k face',
      parseInteger('--top-k', 1),
    )
    .option(
      '-p, --top-p <P>',
      'also run the flows on the sampler’s top-p face',
      parseNumber('--top-p', 0, 1, { openMin: true }),
    )
    .option(
      '--starts <N>',
      'random interior starts besides the uniform point',
      parseInteger('--starts', 0, 100),
      3,
    )
    .option('--t-max <T>', 'integrate to this time (default max(3, 10/T))', positive('--t-max'))
    .option('--eta <η>', 'step of the multiplicative-weights maps', positive('--eta'), 0.1)
    .option(
      '-s, --seed <S>',
      'seed of the random starts, the loop grid and the noise trials',
      parseInteger('--seed', 0, 2 ** 32 - 1),
      1,
    )
    .option(
      '--sweep <DIR>',
      'loop statistics of a `lmdyn sweep` folder, written to DIR/simplex.json',
    )
    .option(
      '--loops',
      'with --model: generate a grid (temperature × repetition/frequency/presence penalties, with --top-k/--top-p if given) and measure loops',
    )
    .option(
      '--loop-temperatures <LIST>',
      'grid temperatures (0 = greedy)',
      numberList('--loop-temperatures', 0, 100),
      [0, 0.5, 1],
    )
    .option(
      '--repetition-penalties <LIST>',
      'grid repetition penalties',
      numberList('--repetition-penalties', 0.01, 100),
      [1],
    )
    .option(
      '--frequency-penalties <LIST>',
      'grid frequency penalties',
      numberList('--frequency-penalties', -10, 10),
      [0, 0.5, 1],
    )
    .option(
      '--presence-penalties <LIST>',
      'grid presence penalties',
      numberList('--presence-penalties', -10, 10),
      [0, 0.5],
    )
    .option(
      '--loop-samples <N>',
      'samples per grid point (sample i uses seed + i)',
      parseInteger('--loop-samples', 1, 10000),
      8,
    )
    .option(
      '--loop-tokens <N>',
      'tokens per grid sample at most',
      parseInteger('--loop-tokens', 1),
      200,
    )
    .option(
      '--sigmas <LIST>',
      'logit noise levels of the escape trials',
      numberList('--sigmas', 0, 100),
      [0, 0.01, 0.1, 0.5],
    )
    .option(
      '--trials <N>',
      'noisy continuations per loop and σ',
      parseInteger('--trials', 1, 10000),
      16,
    )
    .option(
      '--horizon <N>',
      'steps a continuation must stay on the cycle (at least one period)',
      parseInteger('--horizon', 1, 100000),
      24,
    )
    .option(
      '--max-loops <N>',
      'loops per configuration whose escape is measured (0 = none)',
      parseInteger('--max-loops', 0),
      8,
    )
    .option(
      '--response-tokens <M>',
      'tokens of the score-response matrix A',
      parseInteger('--response-tokens', 2, 64),
      6,
    )
    .option(
      '--response-samples <N>',
      'samples per configuration whose A is measured (0 = none)',
      parseInteger('--response-samples', 0),
      4,
    )
    .option(
      '--min-repeats <N>',
      'a loop repeats its cycle at least N times at the end',
      parseInteger('--min-repeats', 2),
      3,
    )
    .option(
      '--min-span <N>',
      'a loop covers at least N tokens at the end',
      parseInteger('--min-span', 2),
      6,
    )
    .option('--max-period <N>', 'longest cycle searched', parseInteger('--max-period', 1), 128)
    .option('--png', 'also write PNG figures')
    .option('-o, --out <DIR>', 'output folder (with --model)')
    .option('--force', 'overwrite a non-empty output folder');
  addJsonFlag(cmd, 'the report (as written to simplex.json)')
    .action(async (flags: SimplexFlags, command: Command) => {
      const log = (line: string) => process.stderr.write(line + '\n');
      const path: PathOptions = {
        loop: { minRepeats: flags.minRepeats, minSpan: flags.minSpan, maxPeriod: flags.maxPeriod },
        sigmas: flags.sigmas,
        trials: flags.trials,
        horizon: flags.horizon,
        maxLoops: flags.maxLoops,
        responseTokens: flags.responseTokens,
        responseSamples: flags.responseSamples,
      };
      if (flags.sweep) {
        if (flags.out)
          throw new LmdynError('bad_argument', '--sweep writes into the sweep folder; drop --out');
        if (flags.loops)
          throw new LmdynError(
            'bad_argument',
            '--loops generates its own grid; it does not go with --sweep',
          );
        const contextFlags = ['prompt', 'temperature', 'topK', 'topP', 'tMax'].filter(
          (k) => command.getOptionValueSource(k) === 'cli',
        );
        if (contextFlags.length) {
          throw new LmdynError(
            'bad_argument',
            `--sweep measures loops only; drop ${contextFlags.map(flagName).join(', ')}`,
          );
        }
        const dir = resolve(flags.sweep);
        const set = readSweepGenerations(dir);
        const spec = flags.model ?? set.model;
        const model = await openSpec(spec, {
          tokenizer: flags.tokenizer ?? set.tokenizer ?? undefined,
        });
        const report = analyzeSweepLoops(set, model, {
          ...path,
          seed: flags.seed,
          log,
          modelSpec: spec,
        });
        await writeSweepLoops(dir, report, { png: flags.png });
        printResult(
          flags.json,
          { out: dir, report },
          `simplex: loops in ${set.configs.length} configurations → ${dir}/simplex.json\n${loopTable(report.loops)}`,
        );
        return;
      }
      if (!flags.out)
        throw new LmdynError(
          'bad_argument',
          'give --out DIR (or --sweep DIR for the loop statistics of a sweep)',
        );
      const out = resolve(flags.out);
      checkOutDir(out, flags.force ?? false);
      checkFlowWork(flags.temperature, flags.tMax, flags.eta);
      const { model, label } = await openModel(flags, log);
      const report = analyzeSimplex(model, {
        prompt: flags.prompt,
        temperature: flags.temperature,
        topK: flags.topK,
        topP: flags.topP,
        starts: flags.starts,
        tMax: flags.tMax,
        eta: flags.eta,
        seed: flags.seed,
        modelSpec: label,
        loopGrid: flags.loops
          ? {
              temperature: flags.loopTemperatures,
              repetitionPenalty: flags.repetitionPenalties,
              frequencyPenalty: flags.frequencyPenalties,
              presencePenalty: flags.presencePenalties,
              samples: flags.loopSamples,
              maxTokens: flags.loopTokens,
            }
          : undefined,
        path,
        log,
      });
      await writeSimplexRun(out, report, { png: flags.png });
      printResult(flags.json, { out, report }, summary(report, out));
    });
};

/** The headline numbers of a context report. */
export function summary(report: SimplexReport, out: string): string {
  const c = report.checks;
  const p = report.flows.paper;
  const e = report.flows.entropic;
  const lines = [
    `simplex: ${report.model.vocab_size} tokens, T = ${report.temperature}, prompt ${JSON.stringify(report.prompt)} → ${out}`,
    `paper’s flow (${p.equation}): from uniform passes π_T at t = 1, F peaks at t = ${c.paper_free_energy_peak_t_uniform}; ` +
      `at t = ${fmt(p.long_run.t)} ‖p − π_T‖₁ = ${fmt(p.long_run.l1_to_equilibrium)}, distance to the argmax vertex ${fmt(p.long_run.l1_to_argmax_vertex)}`,
    `entropic flow (${e.equation}): converges to π_T, at t = ${fmt(e.long_run.t)} ‖p − π_T‖₁ = ${fmt(e.long_run.l1_to_equilibrium)}; ` +
      `F non-decreasing (min step increment ${fmt(c.entropic_free_energy_min_increment)})`,
    `closed forms: max ‖p_numerical − p_closed‖₁ = ${fmt(c.closed_form_max_l1)}; time rescaling ${fmt(c.rescaling_max_l1)}; ` +
      `|Σp − 1| ≤ ${fmt(c.sum_max_error)}; min log p ${fmt(c.min_log_p)} (interior: ${c.interior})`,
    ...report.faces.map(
      (f) =>
        `face ${f.name}: |S| = ${f.support_size}, entropic limit vs the sampler ‖·‖₁ = ${fmt(f.entropic_limit.l1_vs_sampler)}, ` +
        `paper’s flow at t = 1 vs the sampler ${fmt(f.paper_at_t1.l1_vs_sampler)}`,
    ),
  ];
  if (report.loops) lines.push(loopTable(report.loops));
  return lines.join('\n');
}

/** One line per configuration: loop rate, period, time to loop, escape by σ, asymmetry. */
export function loopTable(loops: LoopReport): string {
  const sigmas = loops.options.sigmas;
  const head = `config | loops/distinct sequences | loop rate [95% CI] | mean period | median time to loop | ${sigmas.map((s) => `escape σ=${s}`).join(' | ')} | asymmetry (model)`;
  const rows = loops.configs.map((c) => {
    const s = c.summary;
    const esc = c.escape.by_sigma.map((b) =>
      b.probability === null ? '–' : `${b.probability.toFixed(2)} (${b.escaped}/${b.trials})`,
    );
    const a = c.score_response;
    return [
      c.label,
      `${s.loops}/${s.distinct_sequences}${s.distinct_sequences < s.samples ? ` (of ${s.samples} samples)` : ''}`,
      `${s.loop_rate.toFixed(2)} [${s.loop_rate_ci95[0].toFixed(2)}, ${s.loop_rate_ci95[1].toFixed(2)}]`,
      s.mean_period === null ? '–' : s.mean_period.toFixed(1),
      s.time_to_loop === null ? '–' : String(s.time_to_loop.median),
      ...esc,
      `${a.asymmetry.mean === null ? '–' : a.asymmetry.mean.toFixed(2)} (${a.asymmetry_model.mean === null ? '–' : a.asymmetry_model.mean.toFixed(2)})`,
    ].join(' | ');
  });
  return [head, ...rows].join('\n');
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return v === 0
    ? '0'
    : Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4
      ? v.toExponential(2)
      : v.toPrecision(4);
}

function flagName(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** Integration steps of one flow at most (RK4 steps and multiplicative-weights maps alike). */
export const MAX_FLOW_STEPS = 1_000_000;

/** Refuses a flow horizon whose steps (t_max · steps per unit time, t_max / η) would not end. */
function checkFlowWork(T: number, tMax: number | undefined, eta: number): void {
  const grid = defaultGrid(T, tMax);
  const steps = Math.max(grid.tMax * grid.stepsPerUnit, grid.tMax / eta);
  if (steps > MAX_FLOW_STEPS) {
    throw new LmdynError(
      'bad_argument',
      `t_max ${grid.tMax}${tMax === undefined ? ` (10/T at T = ${T})` : ''} with η ${eta} means ${Math.round(steps).toExponential(2)} integration steps per flow, over the limit of ${MAX_FLOW_STEPS}; lower --t-max, raise --eta or the temperature`,
    );
  }
}

function positive(flag: string) {
  return (value: string): number => {
    const v = Number(value);
    if (value.trim() === '' || !Number.isFinite(v) || v <= 0) {
      throw new LmdynError('bad_argument', `${flag} must be a number > 0, got '${value}'`);
    }
    return v;
  };
}

function numberList(flag: string, min: number, max: number) {
  const one = parseNumber(flag, min, max);
  return (value: string): number[] => {
    const parts = value.split(',').map((s) => s.trim());
    if (parts.some((p) => p === ''))
      throw new LmdynError('bad_argument', `${flag} takes comma-separated numbers, got '${value}'`);
    const vals = parts.map(one);
    if (new Set(vals).size !== vals.length)
      throw new LmdynError('bad_argument', `${flag} lists a value twice: '${value}'`);
    return vals;
  };
}
