import type { Command } from 'commander';
import type { Model } from '../model/model.js';
import { absentHookPoints, extraHookPoints } from '../model/hooks.js';
import { describeRopeScaling } from '../model/rope.js';
import { attentionScale, isParallel, parameterCount, type ModelConfig } from '../model/types.js';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { planWeights } from '../io/load.js';
import { formatBytes, type WeightsDecision } from '../io/resident.js';
import { weightBytes } from '../model/quantize.js';
import { addWeightsFlags, openModel, type ModelFlags } from './common.js';
import { defaultModel } from '../io/discover.js';

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
    ...residentWeights(model),
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

/** How the weights are held: the choice, why, and the bytes the matrices take as loaded. */
function residentWeights(model: Model): Record<string, unknown> {
  const d = model.source.details.weights as WeightsDecision | undefined;
  const bytes = weightBytes(model.transformer.weights);
  const held = Object.entries(bytes)
    .filter(([, b]) => b > 0)
    .map(([f, b]) => `${f} ${formatBytes(b)}`)
    .join(' + ');
  return {
    ...(d ? { weights: `${d.format} (${d.requested === 'auto' ? `auto: ${d.why}` : 'asked for'})` } : {}),
    weight_matrices_resident: held,
  };
}

/**
 * The resident size per choice from the file's header and the choice --weights makes, before any
 * weight is read (a local model only; a hub model is downloaded by the load that follows).
 */
function headerLines(spec: string, flags: InfoFlags): Record<string, string> {
  if (!existsSync(spec)) return {};
  const { sizes, decision } = planWeights(resolve(spec), {
    weights: flags.weights ?? flags.quantize,
    weightsBudget: flags.weightsBudget,
  });
  const b = sizes.bytes;
  return {
    resident_size: `f32 ${formatBytes(b.f32)} · f16/bf16 ${formatBytes(b['16-bit'])} · q8_0 ${formatBytes(b.q8_0)} (from the file header, before loading; ${sizes.matrixValues.toLocaleString('en-US')} matrix + ${sizes.vectorValues.toLocaleString('en-US')} vector values)`,
    weights: `${decision.format} (${decision.requested === 'auto' ? `auto: ${decision.why}` : 'asked for'})`,
  };
}

interface InfoFlags extends ModelFlags {
  json?: boolean;
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description(
      'print format, architecture, shapes, parameter count, resident weight size and tokenizer of a model',
    )
    .option('-m, --model <M>', 'model file, folder or hf:owner/name')
    .option('-z, --tokenizer <T>', 'tokenizer file or folder overriding the model’s own')
    .option('--json', 'print JSON')
    .action(async (flags: InfoFlags) => {
      let spec = flags.model;
      if (spec === undefined) {
        const choice = defaultModel();
        spec = choice.spec;
        process.stderr.write(`model: ${spec} (${choice.why})\n`);
      }
      // The header's sizes first: printed even when loading then fails (a partial download).
      const early = headerLines(spec, flags);
      const width = 24;
      const print = (entries: [string, unknown][]): void => {
        for (const [k, v] of entries) {
          const value = typeof v === 'number' ? v.toLocaleString('en-US') : String(v);
          process.stdout.write(`${k.padEnd(width)}  ${value}\n`);
        }
      };
      if (!flags.json) print(Object.entries(early));
      const { model, label } = await openModel({ ...flags, model: spec });
      const info = describeModel(model, label);
      if (flags.json) {
        process.stdout.write(JSON.stringify({ ...info, ...early }) + '\n');
        return;
      }
      print(Object.entries(info).filter(([k]) => !(k in early)));
    });
  addWeightsFlags(program.commands[program.commands.length - 1]);
}
