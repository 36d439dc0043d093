/**
 * Lenses the dashboard computes on demand, on the chosen model and a prompt, through their
 * library functions (POST /api/lens/<name>). Each entry checks its request fields on the HTTP
 * thread and runs in the engine thread; the answer is the lens's report and its figures, drawn
 * by the page from the same blocks as the report. A lens with a library that takes a model and
 * a prompt adds one entry here (and a form in web/index.html).
 */
import type { Model } from '../model/model.js';
import { analyzeCoupling } from '../lenses/coupling/analyze.js';
import { couplingPlots } from '../report/lenses/coupling-plots.js';
import { analyzeGravity } from '../lenses/gravity/analyze.js';
import { defaultReferencePath } from '../io/data.js';
import { gravityPlots } from '../report/lenses/gravity-plots.js';
import { analyzeSimplex } from '../lenses/simplex/analyze.js';
import { simplexPlots } from '../report/lenses/simplex-plots.js';
import { readTextFile } from '../io/text.js';
import type { PlotSpec } from '../report/plot.js';
import { booleanField, HttpError, numberField, stringField, type Body } from './validate.js';
import { cite } from '../papers.js';
import type { StopSignal } from '../errors.js';

export type LensParams = Record<string, unknown>;

export interface LiveLens {
  title: string;
  /** Request fields besides `model`. */
  fields: readonly string[];
  /** Checks the fields (HTTP thread); throws HttpError with a one-line message. */
  params: (body: Body) => LensParams;
  /** Runs the lens (engine thread); it ends early, throwing, once `signal` says so. */
  run: (
    model: Model,
    spec: string,
    p: LensParams,
    signal?: StopSignal,
  ) => { report: unknown; plots: { name: string; spec: PlotSpec }[] };
}

const seedRule = { min: 0, max: 2 ** 32 - 1, integer: true, default: 1 };
const temperatureRule = { min: 0, minExclusive: true, max: 100, default: 1 };

function nonEmptyPrompt(body: Body, max: number, what: string): string {
  const prompt = stringField(body, 'prompt', { maxLength: max });
  if (prompt.trim() === '') throw new HttpError(400, `"prompt" must not be empty: ${what}`);
  return prompt;
}

export const LIVE_LENSES: Readonly<Record<string, LiveLens>> = {
  coupling: {
    title: `Coupling (${cite('coupling')})`,
    fields: ['prompt', 'randomTwin', 'k', 'seed'],
    params: (body) => {
      const kRaw = body.k ?? [10];
      if (!Array.isArray(kRaw) || kRaw.length === 0 || kRaw.length > 3) {
        throw new HttpError(400, '"k" must be a list of 1 to 3 whole numbers in [1, 1024]');
      }
      return {
        prompt: nonEmptyPrompt(body, 2000, 'the coupling lens follows a prompt’s tokens'),
        randomTwin: booleanField(body, 'randomTwin', true),
        seed: numberField(body, 'seed', seedRule),
        k: kRaw.map((v, i) =>
          numberField({ [`k[${i}]`]: v }, `k[${i}]`, { min: 1, max: 1024, integer: true }),
        ),
      };
    },
    run: (model, spec, p, signal) => {
      const report = analyzeCoupling(model, {
        prompts: [p.prompt as string],
        randomTwin: p.randomTwin as boolean,
        k: p.k as number[],
        seed: p.seed as number,
        modelSpec: spec,
        signal,
      });
      return { report, plots: couplingPlots(report) };
    },
  },
  simplex: {
    title: `Simplex flows (${cite('simplex')})`,
    fields: ['prompt', 'temperature', 'topK', 'topP', 'seed'],
    params: (body) => ({
      prompt: stringField(body, 'prompt', { maxLength: 2000, default: '' }),
      temperature: numberField(body, 'temperature', temperatureRule),
      topK: numberField(body, 'topK', { min: 0, max: 1_000_000, integer: true, default: 0 }),
      topP: numberField(body, 'topP', { min: 0, minExclusive: true, max: 1, default: 1 }),
      seed: numberField(body, 'seed', seedRule),
    }),
    run: (model, spec, p, signal) => {
      const report = analyzeSimplex(model, {
        prompt: p.prompt as string,
        temperature: p.temperature as number,
        ...((p.topK as number) > 0 ? { topK: p.topK as number } : {}),
        ...((p.topP as number) < 1 ? { topP: p.topP as number } : {}),
        seed: p.seed as number,
        modelSpec: spec,
        signal,
      });
      return { report, plots: simplexPlots(report) };
    },
  },
  gravity: {
    title: `Information gravity (${cite('gravity')})`,
    fields: ['prompt', 'temperature', 'seed'],
    params: (body) => ({
      prompt: nonEmptyPrompt(body, 2000, 'the potential is read at the prompt’s last position'),
      temperature: numberField(body, 'temperature', temperatureRule),
      seed: numberField(body, 'seed', seedRule),
    }),
    run: (model, spec, p, signal) => {
      const report = analyzeGravity(model, {
        prompts: [p.prompt as string],
        temperature: p.temperature as number,
        reference: {
          texts: readTextFile(defaultReferencePath()),
          source: 'data/corpus/reference.txt (shipped with lmdyn)',
        },
        paraphrases: null,
        seed: p.seed as number,
        modelSpec: spec,
        signal,
      });
      return { report, plots: gravityPlots(report) };
    },
  },
};
