import type { Command } from 'commander';
import type { Model } from '../model/model.js';
import { absentHookPoints } from '../model/hooks.js';
import { attentionScale, isParallel, parameterCount, type ModelConfig } from '../model/types.js';
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
    positional:
      c.positional === 'learned'
        ? 'learned'
        : c.ropeDim === c.headDim
          ? `rope (theta ${c.ropeTheta})`
          : `rope (theta ${c.ropeTheta}, first ${c.ropeDim} of ${c.headDim} dims per head)`,
    attention: attentionSummary(c),
    residual: isParallel(c)
      ? 'parallel (x + attn(ln1(x)) + mlp(ln2(x)))'
      : 'sequential (x_mid = x + attn(ln1(x)); x_mid + mlp(ln2(x_mid)))',
    tied_embeddings: c.tiedEmbeddings,
    parameters: parameterCount(c),
    ...tensorTypes(model),
    tokenizer: `${model.tokenizer.kind}, ${model.tokenizer.vocabSize} tokens, bos ${model.tokenizer.bosId}, eos ${model.tokenizer.eosId}`,
    hooks_absent: absentHookPoints(c)
      .map((h) => `${h.name} (${h.why})`)
      .join('; '),
  };
}

/** Score scale, and which layers attend to a window rather than the whole prefix. */
function attentionSummary(c: ModelConfig): string {
  const scale = attentionScale(c);
  const kind = Math.abs(scale * Math.sqrt(c.headDim) - 1) < 1e-12 ? 'q·k/√d' : `q·k × ${scale}`;
  const local = (c.attnWindow ?? [])
    .map((w, l) => (w === null ? null : `${l}: ${w}`))
    .filter((x) => x !== null);
  return local.length === 0
    ? `causal, ${kind}, every layer global`
    : `causal, ${kind}, local windows (layer: positions) ${local.join(', ')}, others global`;
}

/** A GGUF file's tensor types as stored (`37 Q5_0, 13 F32, 6 Q4_K`), before any load conversion. */
function tensorTypes(model: Model): Record<string, string> {
  const types = model.source.details.tensorTypes;
  if (!types || typeof types !== 'object') return {};
  const list = Object.entries(types as Record<string, number>).map(([t, n]) => `${n} ${t}`);
  return { tensor_types: list.join(', ') };
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
