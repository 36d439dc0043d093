// The README's library example: open a model, generate, read the residual stream, record a
// trace and apply the coupling lens. Run from the repository root: node examples/library.mjs [model]
import { fileURLToPath } from 'node:url';
import { openModel, generateText, runWithCache, recordTrace, writeTrace, analyzeCoupling } from 'lmdyn';

// The model lmdyn ships (models-shipped/lmdyn-tiny-260K), or the one named on the command line.
const spec = process.argv[2] ?? fileURLToPath(new URL('../models-shipped/lmdyn-tiny-260K/model.bin', import.meta.url));
const model = await openModel(spec);

const out = generateText(model, { prompt: 'Once upon a time', maxTokens: 24, sampling: { temperature: 0 } });
console.log(JSON.stringify(out.text));

const { cache } = runWithCache(model, out.promptIds, ['blocks.*.hook_resid_post']);
const resid = cache.get('blocks.4.hook_resid_post'); // { data: Float32Array, shape: [1, positions, d] }
console.log('blocks.4.hook_resid_post', resid.shape);

const trace = recordTrace(model, { prompt: 'Once upon a time', samples: 2, maxTokens: 16, sampling: { temperature: 0.8 }, seed: 1 });
writeTrace('runs/example-trace', trace, { force: true });
console.log('trace states', [...trace.states.keys()].length, 'hooks, positions', trace.positions);

const report = analyzeCoupling(model, { prompts: ['Once upon a time, there was a little girl'], randomTwin: true, seed: 1 });
for (const w of [report.trained, report.random_twin]) {
  console.log(w.weights, 'LSS', w.lss.mean.toFixed(3), `(${w.lss.tag})`, 'growth', w.growth.rate.toFixed(3), `(${w.growth.tag})`);
}
