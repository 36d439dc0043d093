/**
 * `lmdyn demo`: everything lmdyn can do so far, on the default model, ending in a report.
 * Each capability that lands adds a section here.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { generateText } from '../api.js';
import type { Model } from '../model/model.js';
import { runWithCache } from '../hooked.js';
import { writeFileAtomic } from '../io/atomic.js';
import { writeReport } from '../report/report.js';
import { readTrace, writeTrace } from '../trace/io.js';
import { recordTrace } from '../trace/record.js';
import { runSweep } from '../trace/sweep.js';
import type { Trace } from '../trace/types.js';
import { VERSION } from '../version.js';
import { addThreadsFlag, openModel, printResult, startCliThreads, type EngineFlags, type ModelFlags } from './common.js';
import { DEMO_STEPS } from './demo-steps.js';
import type { DemoContext } from './demo-step.js';
import { describeModel } from './info.js';
import { progressPrinter } from './sweep.js';

interface DemoFlags extends ModelFlags, EngineFlags {
  json?: boolean;
  out: string;
}

export function registerDemo(program: Command): void {
  addThreadsFlag(program.command('demo'))
    .description('run everything lmdyn can do on the default model and write a report')
    .option('-m, --model <M>', 'model (default: $LMDYN_MODEL, ./models, the shipped model, then the hub)')
    .option('-z, --tokenizer <T>', 'tokenizer file or folder overriding the model’s own')
    .option('-o, --out <DIR>', 'where the report goes', 'runs/demo')
    .option('--json', 'narrate on stderr and print {out, report, html, model, greedy, sampled} as one JSON object')
    .action(async (flags: DemoFlags) => {
      await startCliThreads(flags.threads);
      const say = (line = '') => (flags.json ? process.stderr : process.stdout).write(line + '\n');
      const { model, label } = await openModel(flags, say);
      const sections: string[] = [`# lmdyn demo\n\nlmdyn ${VERSION}, ${new Date().toISOString()}`];
      const record = (title: string, body: string) => {
        say(`\n== ${title} ==\n${body}`);
        sections.push(`## ${title}\n\n${body}`);
      };

      const info = describeModel(model, label);
      record('Model', Object.entries(info).map(([k, v]) => `${k}: ${String(v)}`).join('\n'));

      const greedy = generateText(model, { prompt: '', maxTokens: 64, sampling: { temperature: 0 } });
      record(
        'Greedy generation from BOS (64 tokens)',
        `${greedy.text}\n\nids: ${greedy.ids.join(' ')}\nfinish: ${greedy.finishReason}, ${greedy.tokensPerSecond.toFixed(1)} tok/s`,
      );

      const sampled = generateText(model, {
        prompt: 'Once upon a time',
        maxTokens: 64,
        sampling: { temperature: 0.8, topP: 0.9 },
        seed: 7,
      });
      record(
        'Sampled generation (temperature 0.8, top-p 0.9, seed 7)',
        `${sampled.text}\n\nfinish: ${sampled.finishReason}, ${sampled.tokensPerSecond.toFixed(1)} tok/s`,
      );

      record('Residual stream through depth (hook points)', depthTable(model, greedy.promptIds.concat(greedy.ids.slice(0, 16))));

      const out = resolve(flags.out);
      mkdirSync(out, { recursive: true });

      const traceDir = join(out, 'trace');
      const trace = recordTrace(model, { spec: label, prompt: 'Once upon a time', samples: 4, maxTokens: 48, sampling: { temperature: 0.8 }, seed: 1 });
      writeTrace(traceDir, trace, { force: true, tokenText: (id) => model.tokenizer.decode([id]) });
      record(
        'Trace: 4 samples, every resid_post, per-step logprob and entropy',
        `${traceDir}/ (trace.json, trace.safetensors, steps.parquet)\n` +
          `tensors: ${[...trace.states.keys()].join(', ')}: [${trace.samples.length}, ${trace.positions}, ${model.config.dim}]\n` +
          `mean logprob ${fmt(meanFinite(trace.logprob))} nats, mean entropy ${fmt(meanFinite(trace.entropy))} nats`,
      );

      const sweepDir = join(out, 'sweep');
      say('\n== Decoding sweep (temperature × top-p, 4 samples × 40 tokens each) ==');
      const sweep = await runSweep(
        {
          model: model.source.hubId ?? model.source.path,
          tokenizer: flags.tokenizer ? resolve(flags.tokenizer) : null,
          prompt: 'Once upon a time',
          samples: 4,
          maxTokens: 40,
          seed: 1,
          hooks: ['blocks.*.hook_resid_post', 'ln_final.hook_normalized'],
          logits: { kind: 'topk', k: 10 },
          grid: { temperature: [0.3, 1.0, 1.5], topP: [0.5, 1.0], topK: [0], repetitionPenalty: [1] },
        },
        sweepDir,
        { force: true, onProgress: progressPrinter(process.stderr) },
      );
      const rows = sweep.configs.map((c) => {
        const t = readTrace(join(sweepDir, c.dir));
        return `T ${String(c.sampling.temperature).padEnd(4)} top-p ${String(c.sampling.topP).padEnd(4)}  mean logprob ${fmt(meanFinite(t.logprob))}  entropy ${fmt(meanFinite(t.entropy))}  distinct tokens ${distinctRatio(t)}`;
      });
      record('Decoding sweep', `${sweepDir}/sweep.json indexes ${sweep.configs.length} trace folders\n\n${rows.join('\n')}`);

      const ctx: DemoContext = { model, label, out, traceDir, sweepDir, say, record };
      for (const step of DEMO_STEPS) {
        say(`\n… ${step.name}`);
        await step.run(ctx);
      }

      const report = join(out, 'report.md');
      writeFileAtomic(report, sections.join('\n\n') + '\n');
      writeFileAtomic(
        join(out, 'demo.json'),
        JSON.stringify({ lmdyn: VERSION, model: info, greedy, sampled }, null, 1) + '\n',
      );
      say(`\nreport: ${report}`);

      // Last: every result of the demo drawn into one HTML page.
      const html = await writeReport(out);
      say(`html report: ${html.path} (${html.sections} results, ${html.plots} figures)`);
      if (flags.json) {
        printResult(true, { out, report, html: html.path, sections: html.sections, plots: html.plots, model: info, greedy, sampled }, '');
      }
    });
}

/** ‖resid_post‖ per layer at the last position, read through the hook cache. */
function depthTable(model: Model, ids: number[]): string {
  const { cache } = runWithCache(model, ids, ['hook_embed', 'blocks.*.hook_resid_post', 'ln_final.hook_normalized']);
  const last = ids.length - 1;
  const lines = [`token ${last} ('${model.tokenizer.tokenText(ids[last])}'), norm of the residual stream:`, ''];
  for (const name of cache.keys()) {
    const { data, shape } = cache.get(name);
    const w = shape[2];
    let ss = 0;
    for (let i = 0; i < w; i++) ss += data[last * w + i] ** 2;
    lines.push(`${name.padEnd(28)} ${Math.sqrt(ss).toFixed(3)}`);
  }
  return lines.join('\n');
}

function meanFinite(a: Float32Array): number {
  let s = 0;
  let n = 0;
  for (const v of a) {
    if (Number.isFinite(v)) {
      s += v;
      n++;
    }
  }
  return n > 0 ? s / n : NaN;
}

/** Distinct generated tokens over generated tokens, pooled over samples. */
function distinctRatio(t: Trace): string {
  const all = t.samples.flatMap((s) => s.ids);
  return all.length ? (new Set(all).size / all.length).toFixed(2) : '-';
}

function fmt(x: number): string {
  return x.toFixed(3);
}
