import type { Command } from 'commander';
import type { Model } from '../model/model.js';
import { absentHookPoints, extraHookPoints } from '../model/hooks.js';
import { describeRopeScaling } from '../model/rope.js';
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
    norm: normSummary(c),
    mlp: c.mlp,
    positional:
      (c.positional === 'learned'
        ? 'learned'
        : c.ropeDim === c.headDim
          ? `rope (theta ${c.ropeTheta}${c.ropeLocalTheta === undefined ? '' : `; sliding layers theta ${c.ropeLocalTheta}`})`
          : `rope (theta ${c.ropeTheta}, first ${c.ropeDim} of ${c.headDim} dims per head)`) +
      (c.ropeScaling ? `, scaled: ${describeRopeScaling(c.ropeScaling)}` : ''),
    ...(c.embedScale === undefined
      ? {}
      : {
          embed_scale: `${c.embedScale} (√${c.dim} = ${Math.sqrt(c.dim)} in the weights' dtype)`,
        }),
    attention: attentionSummary(c),
    residual: isParallel(c)
      ? 'parallel (x + attn(ln1(x)) + mlp(ln2(x)))'
      : 'sequential (x_mid = x + attn(ln1(x)); x_mid + mlp(ln2(x_mid)))',
    tied_embeddings: c.tiedEmbeddings,
    ...(c.finalSoftcap === undefined
      ? {}
      : { logits: `soft-capped, ${c.finalSoftcap}·tanh(logits / ${c.finalSoftcap})` }),
    parameters: parameterCount(c),
    ...tensorTypes(model),
    tokenizer: `${model.tokenizer.kind}, ${model.tokenizer.vocabSize} tokens, bos ${model.tokenizer.bosId}, eos ${model.tokenizer.eosId}`,
    hooks_absent: absentHookPoints(c)
      .map((h) => `${h.name} (${h.why})`)
      .join('; '),
    ...extraHooks(c),
  };
}

/** The architecture's own hook points, when it has some (Qwen3's q/k norms, Gemma's post-norms). */
function extraHooks(c: ModelConfig): Record<string, string> {
  const extra = extraHookPoints(c);
  if (extra.length === 0) return {};
  return { hooks_extra: extra.map((h) => `${h.name} (${h.what})`).join('; ') };
}

/** The norm, its epsilon, and Gemma's post-norms / Qwen3's and Gemma 3's q/k norms. */
function normSummary(c: ModelConfig): string {
  const extra = [
    ...(c.postNorms ? ['post-norms of the attention and MLP outputs'] : []),
    ...(c.qkNorm ? ['q/k norms per head'] : []),
  ];
  return `${c.norm} (eps ${c.normEps})${extra.length ? `; ${extra.join('; ')}` : ''}`;
}

/** Score scale, and which layers attend to a window rather than the whole prefix. */
function attentionSummary(c: ModelConfig): string {
  const scale = attentionScale(c);
  let kind = Math.abs(scale * Math.sqrt(c.headDim) - 1) < 1e-12 ? 'q·k/√d' : `q·k × ${scale}`;
  if (c.attnSoftcap !== undefined) kind += `, soft-capped at ${c.attnSoftcap}`;
  const local = (c.attnWindow ?? [])
    .map((w, l) => (w === null ? null : `${l}: ${w}`))
    .filter((x) => x !== null);
  const windows = c.attnWindow ?? [];
  if (windows.length > 0 && windows.every((w) => w !== null && w === windows[0]))
    return `causal, ${kind}, every layer a sliding window of ${windows[0]} positions (its own included)`;
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
