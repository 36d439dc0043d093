/**
 * The generation loop's logits-processor hook (Hugging Face's LogitsProcessor shape) and its
 * shared-prompt prefill, on stories260K. References: the model's own next-token logits from one
 * separate forward pass (argmax by hand), closed forms of a processor that leaves one token, and
 * each request generated alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openModel } from '../../src/api.js';
import type { Model } from '../../src/model/model.js';
import { generateBatch, type GenerationRequest } from '../../src/decode/generate.js';
import { LmdynError } from '../../src/errors.js';
import { model } from '../helpers/paths.js';

const PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421];
let cached: Promise<Model> | undefined;
const stories = () => (cached ??= openModel(model('stories260K', 'stories260K.bin')));

/** argmax of the last position's logits, from a fresh single-sequence forward pass. */
function argmaxNext(m: Model, ids: readonly number[], banned: number): number {
  const tf = m.transformer;
  const V = tf.config.vocabSize;
  const z = tf.forward(tf.newCache(1, ids.length), [{ seq: 0, tokens: ids }]).logits.slice(0, V);
  let best = -1;
  for (let i = 0; i < V; i++) if (i !== banned && (best < 0 || z[i] > z[best])) best = i;
  return best;
}

test('the processor sees each step the prompt plus the ids generated so far, once per token', async () => {
  const m = await stories();
  const seen: { seq: number; step: number; history: number[] }[] = [];
  const { outputs } = generateBatch(
    m.transformer,
    [0, 1].map((i) => ({
      promptIds: PROMPT,
      maxTokens: 5,
      sampling: { temperature: 1 },
      seed: 10 + i,
    })),
    {
      logitsProcessor: (_z, history, { seq, step }) =>
        void seen.push({ seq, step, history: [...history] }),
    },
  );
  for (const [seq, out] of outputs.entries()) {
    const mine = seen.filter((s) => s.seq === seq);
    assert.deepEqual(
      mine.map((s) => s.step),
      [0, 1, 2, 3, 4],
    );
    mine.forEach((s, t) => assert.deepEqual(s.history, [...PROMPT, ...out.ids.slice(0, t)]));
  }
});

test('a processor that bans the greedy token: the next token is the runner-up of a separate forward pass', async () => {
  const m = await stories();
  const first = argmaxNext(m, PROMPT, -1);
  const { outputs } = generateBatch(
    m.transformer,
    [{ promptIds: PROMPT, maxTokens: 1, sampling: { temperature: 0 } }],
    {
      logitsProcessor: (z) => void (z[first] = -Infinity),
    },
  );
  assert.equal(outputs[0].ids[0], argmaxNext(m, PROMPT, first));
});

test('a processor that leaves one token forces it at any temperature; the step callback still sees the raw logits', async () => {
  const m = await stories();
  const forced = 300;
  let rawMax = -Infinity;
  const { outputs } = generateBatch(
    m.transformer,
    [{ promptIds: PROMPT, maxTokens: 6, sampling: { temperature: 1.3, topP: 0.9 }, seed: 4 }],
    {
      logitsProcessor: (z) => {
        for (let i = 0; i < z.length; i++) if (i !== forced) z[i] = -Infinity;
      },
      onStep: ({ logits }) =>
        void (rawMax = Math.max(rawMax, ...Array.from(logits).filter((v) => v !== logits[forced]))),
    },
  );
  assert.deepEqual(outputs[0].ids, Array(6).fill(forced));
  assert.ok(
    Number.isFinite(rawMax),
    'GenerationStep.logits are the model’s, not the processed ones',
  );
});

test('sharedPrompt: each sequence equals the same request generated alone; mismatched prompts or hooks are bad_argument', async () => {
  const m = await stories();
  const requests: GenerationRequest[] = [3, 4, 5].map((seed) => ({
    promptIds: PROMPT,
    maxTokens: 8,
    sampling: { temperature: 1 },
    seed,
  }));
  const shared = generateBatch(m.transformer, requests, { sharedPrompt: true }).outputs;
  requests.forEach((r, i) =>
    assert.deepEqual(
      shared[i].ids,
      generateBatch(m.transformer, [r]).outputs[0].ids,
      `seed ${r.seed}`,
    ),
  );
  const bad = (f: () => unknown) =>
    assert.throws(f, (e: unknown) => e instanceof LmdynError && e.code === 'bad_argument');
  bad(() =>
    generateBatch(m.transformer, [requests[0], { ...requests[1], promptIds: [1, 2] }], {
      sharedPrompt: true,
    }),
  );
  bad(() =>
    generateBatch(m.transformer, requests, {
      sharedPrompt: true,
      hooks: [{ name: 'hook_embed', fn: () => undefined } as never],
    }),
  );
});
