/**
 * Plain summaries of recorded generations, for tables and reports: the mean of a per-step
 * quantity over the recorded steps (NaN marks steps past a sample's end), the share of distinct
 * generated tokens, and a sweep configuration's row of both (read through the run-folder store).
 */
import { join } from 'node:path';
import { readTraceHeader, readTraceSteps } from './store.js';
import type { Trace, TraceSample } from './types.js';

/** The mean of the finite values; null when there are none. */
export function meanFinite(a: ArrayLike<number>): number | null {
  let s = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) continue;
    s += a[i];
    n++;
  }
  return n > 0 ? s / n : null;
}

/** Distinct generated tokens over generated tokens, pooled over samples; null when none. */
export function distinctRatio(samples: readonly Pick<TraceSample, 'ids'>[]): number | null {
  const all = samples.flatMap((s) => s.ids);
  return all.length > 0 ? new Set(all).size / all.length : null;
}

export interface ConfigSummary {
  mean_logprob: number | null;
  mean_entropy: number | null;
  distinct: number | null;
}

/** One recorded sweep configuration (`dir` inside `sweepDir`), from its per-step tensors only. */
export function configSummary(sweepDir: string, dir: string): ConfigSummary {
  const folder = join(sweepDir, dir);
  const header = readTraceHeader(folder, 'size');
  const steps = readTraceSteps(folder, ['logprob', 'entropy']);
  return {
    mean_logprob: meanFinite(steps.get('logprob')!),
    mean_entropy: meanFinite(steps.get('entropy')!),
    distinct: distinctRatio(header.samples),
  };
}

/** Each sample's mean log-probability and entropy of its sampled tokens (nats). */
export function sampleStepMeans(trace: Trace): { logprob: number | null; entropy: number | null }[] {
  return trace.samples.map((_, i) => ({
    logprob: meanFinite(trace.logprob.subarray(i * trace.steps, (i + 1) * trace.steps)),
    entropy: meanFinite(trace.entropy.subarray(i * trace.steps, (i + 1) * trace.steps)),
  }));
}
