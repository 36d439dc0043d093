// TransformerLens-style calls on lmdyn (docs/library.md): tokens, a cache with TransformerLens
// shapes, the logit lens, a hook that ablates, activation patching, a steering vector, dispose.
// Run from the repository root: node examples/tlens.mjs [model]   (under a second)
import { fileURLToPath } from 'node:url';
import {
  openModel,
  generateText,
  runWithCache,
  runWithHooks,
  patchActivation,
  steeringHook,
  logitLens,
  toTokens,
  toStrTokens,
  toString,
} from 'lmdyn';

const shipped = fileURLToPath(new URL('../models-shipped/lmdyn-tiny-260K/model.bin', import.meta.url));
const model = await openModel(process.argv[2] ?? shipped);
const L = model.config.nLayers;

// Tokens: toTokens puts BOS first; toStrTokens shows one piece per token.
const tokens = toTokens(model, 'Once upon a time, there was a little girl named');
console.log('tokens', JSON.stringify(toStrTokens(model, tokens)));

// One forward pass with every hook point cached, shaped as in TransformerLens.
const { logits, cache } = runWithCache(model, tokens);
console.log('logits', logits.shape, 'resid_post', cache.get('resid_post', L - 1).shape, 'pattern', cache.get('pattern', 0).shape);
const row = cache.get('pattern', 0).at(0).at(0).at(tokens.length - 1); // head 0, last query: [key]
console.log('pattern row sum', row.data.reduce((a, b) => a + b, 0).toFixed(6));

// Logit lens: every accumulated residual state through the final norm and the unembedding.
const lens = logitLens(model, cache, { topK: 3 });
for (const layer of lens.layers) {
  const top = layer.top.map((t) => `${JSON.stringify(t.token)} ${t.prob.toFixed(3)}`).join(', ');
  console.log(`lens ${layer.label.padEnd(10)} H ${layer.entropy.toFixed(2)}  ${top}`);
}

// A hook that edits in place: zero block 1's MLP output; how much does the prediction move?
const last = (t) => t.at(0).at(-1).data;
const prob = (z, id) => Math.exp(z[id] - Math.log(z.reduce((s, v) => s + Math.exp(v), 0)));
const ablated = runWithHooks(model, tokens, {
  fwdHooks: [['blocks.1.hook_mlp_out', (act) => void act.data.fill(0)]],
}).logits;
const top = lens.layers[L].top[0];
console.log(`p(${JSON.stringify(top.token)}) ${prob(last(logits), top.id).toFixed(3)}, with blocks.1 MLP zeroed ${prob(last(ablated), top.id).toFixed(3)}`);

// Activation patching: "Lily" vs "Tim" as the first word; the clean residual stream at that
// position is written into the corrupted run, block by block (logit difference Lily − Tim).
const clean = toTokens(model, 'Lily went to the park. Then');
const corrupted = toTokens(model, 'Tim went to the park. Then');
const [lily, tim] = ['Lily', 'Tim'].map((w) => toTokens(model, w, { prependBos: false })[0]);
const diff = (t) => last(t)[lily] - last(t)[tim];
for (let l = 0; l < L; l++) {
  const r = patchActivation(model, { clean, corrupted, hook: `blocks.${l}.hook_resid_pre`, positions: [1] });
  console.log(`patch blocks.${l}.hook_resid_pre at position 1: Lily − Tim clean ${diff(r.clean).toFixed(2)} corrupted ${diff(r.corrupted).toFixed(2)} patched ${diff(r.patched).toFixed(2)}`);
}

// Steering: add the Lily − Tim difference of block 2's input during generation.
const lilyState = runWithCache(model, clean, 'blocks.2.hook_resid_pre').cache.get('resid_pre', 2).at(0).at(1).data;
const timState = runWithCache(model, corrupted, 'blocks.2.hook_resid_pre').cache.get('resid_pre', 2).at(0).at(1).data;
const direction = lilyState.map((v, i) => v - timState[i]);
const prompt = toTokens(model, 'Once upon a time, there was a boy named');
const plain = generateText(model, { promptIds: prompt, maxTokens: 24, sampling: { temperature: 0 } });
const steered = generateText(model, {
  promptIds: prompt,
  maxTokens: 24,
  sampling: { temperature: 0 },
  hooks: [steeringHook(model, 'blocks.2.hook_resid_pre', direction, { scale: 1 })],
});
console.log('plain  ', JSON.stringify(toString(model, [...prompt, ...plain.ids])));
console.log('steered', JSON.stringify(toString(model, [...prompt, ...steered.ids])));

model.dispose();
