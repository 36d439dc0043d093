import type { Command } from 'commander';
import type { Model } from '../api.js';
import { parameterCount } from '../model/types.js';
import { openModel, type ModelFlags } from './common.js';

export function describeModel(model: Model, label: string): Record<string, unknown> {
  const c = model.config;
  return {
    model: label,
    path: model.source.path,
    format: model.source.format,
    architecture: c.architecture,
    source_architecture: c.sourceArchitecture,
    dim: c.dim,
    hidden_dim: c.hiddenDim,
    layers: c.nLayers,
    heads: c.nHeads,
    kv_heads: c.nKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    context: c.seqLen,
    norm: `${c.norm} (eps ${c.normEps})`,
    mlp: c.mlp,
    positional: c.positional === 'rope' ? `rope (theta ${c.ropeTheta})` : 'learned',
    tied_embeddings: c.tiedEmbeddings,
    parameters: parameterCount(c),
    tokenizer: `${model.tokenizer.kind}, ${model.tokenizer.vocabSize} tokens, bos ${model.tokenizer.bosId}, eos ${model.tokenizer.eosId}`,
  };
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('print format, architecture, shapes, parameter count and tokenizer of a model')
    .option('-m, --model <M>', 'model file, folder or hf:owner/name')
    .option('-z, --tokenizer <T>', 'tokenizer file or folder overriding the model’s own')
    .option('--json', 'print JSON')
    .action(async (flags: ModelFlags & { json?: boolean }) => {
      const { model, label } = await openModel(flags);
      const info = describeModel(model, label);
      if (flags.json) {
        process.stdout.write(JSON.stringify(info) + '\n');
        return;
      }
      const width = Math.max(...Object.keys(info).map((k) => k.length));
      for (const [k, v] of Object.entries(info)) {
        const value = typeof v === 'number' ? v.toLocaleString('en-US') : String(v);
        process.stdout.write(`${k.padEnd(width)}  ${value}\n`);
      }
    });
}
