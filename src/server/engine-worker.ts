/**
 * The dashboard's engine thread: opens models (kept for the next request), generates token by
 * token through the library (api.ts generateText, the sampler's own code path) and posts each
 * step as an event — the token, the distribution it was drawn from, and the hidden state's place
 * in a PCA of the trajectory so far — and runs lens analyses. The HTTP thread stays free while
 * this one computes; a shared flag stops a generation whose page went away.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import { generateText, openModel } from '../api.js';
import { encodePrompt, type Model } from '../model/model.js';
import { entropy } from '../stats/describe.js';
import { LmdynError, type StopSignal } from '../errors.js';
import { IncrementalText, label, topTokens } from './incremental-text.js';
import { LIVE_LENSES } from './live-lenses.js';
import { LiveTrajectory } from './live-trajectory.js';
import type { EngineEvent, EngineJob } from './engine.js';

const port: MessagePort = (() => {
  // Internal invariant, not user input: only the server starts this file, as a worker thread.
  if (!parentPort) throw new Error('engine-worker runs as a worker thread');
  return parentPort;
})();

const models = new Map<string, Promise<Model>>();

function model(spec: string): Promise<Model> {
  let m = models.get(spec);
  if (!m) {
    m = openModel(spec);
    models.set(spec, m);
    m.catch(() => models.delete(spec));
  }
  return m;
}

port.on('message', (job: EngineJob) => {
  void run(job);
});

// Jobs run one at a time, in arrival order.
let queue: Promise<void> = Promise.resolve();

function run(job: EngineJob): Promise<void> {
  queue = queue.then(async () => {
    const post = (event: EngineEvent) => port.postMessage({ id: job.id, event });
    const cancelled = new Int32Array(job.cancel);
    try {
      if (Atomics.load(cancelled, 0) !== 0) {
        if (job.kind === 'lens') throw new Stopped();
        return post({ type: 'done', finishReason: 'stopped', generated: 0, tokensPerSecond: 0 });
      }
      const m = await model(job.model);
      if (job.kind === 'generate') generate(m, job, post, cancelled);
      else {
        const lens = LIVE_LENSES[job.lens];
        if (!lens) throw new LmdynError('bad_argument', `no lens named ${job.lens}`);
        // The lens checks this between its prompts and steps; the HTTP thread sets the flag.
        const signal: StopSignal = {
          throwIfAborted: () => {
            if (Atomics.load(cancelled, 0) !== 0) throw new Stopped();
          },
        };
        post({ type: 'result', result: lens.run(m, job.model, job.params, signal) });
      }
    } catch (err) {
      if (err instanceof Stopped)
        return post({ type: 'error', message: 'stopped: its client went away', status: 499 });
      const user = err instanceof LmdynError;
      post({
        type: 'error',
        message: err instanceof Error ? err.message : String(err),
        status: user ? 400 : 500,
      });
    }
  });
  return queue;
}

class Stopped extends Error {}

function generate(
  m: Model,
  job: Extract<EngineJob, { kind: 'generate' }>,
  post: (e: EngineEvent) => void,
  cancelled: Int32Array,
): void {
  const last = `blocks.${m.config.nLayers - 1}.hook_resid_post`;
  const promptIds = encodePrompt(m, job.prompt);
  post({
    type: 'start',
    model: job.model,
    promptIds,
    promptPieces: promptIds.map((id) => label(m.tokenizer, id)),
    hook: last,
    dim: m.config.dim,
    seqLen: m.config.seqLen,
  });
  const traj = new LiveTrajectory(m.config.dim, 3);
  const stream = new IncrementalText(m.tokenizer, promptIds);
  const result = generateText(m, {
    promptIds,
    maxTokens: job.maxTokens,
    sampling: job.sampling,
    seed: job.seed,
    hooks: [
      {
        filter: last,
        fn: (act, ctx) => {
          // act: [rows, d], one row per new position (every prompt position at the prefill)
          const update = traj.add(
            act,
            ctx.rows.map((r) => r.pos),
          );
          if (update) post(update);
        },
      },
    ],
    onStep: (step) => {
      const top = topTokens(step.probs, job.topN).map(([id, p]): [number, string, number] => [
        id,
        label(m.tokenizer, id),
        p,
      ]);
      post({
        type: 'token',
        step: step.step,
        position: step.position,
        id: step.token,
        piece: label(m.tokenizer, step.token),
        text: stream.push(step.token),
        p: step.probs[step.token],
        entropy: entropy(step.probs),
        top,
      });
      return Atomics.load(cancelled, 0) !== 0 ? 'stop' : undefined;
    },
  });
  const final = traj.refit();
  if (final) post(final);
  post({
    type: 'done',
    finishReason: result.finishReason,
    generated: result.ids.length,
    tokensPerSecond: result.tokensPerSecond,
    tail: stream.flush(),
  });
}
