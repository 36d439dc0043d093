import type { Command } from 'commander';
import { blockFormatNamed, type GgmlTypeName } from '../io/gguf-quants.js';
import { convertToGguf } from '../io/gguf-write.js';

interface ConvertFlags {
  model: string;
  out: string;
  type: GgmlTypeName;
  embeddingType?: GgmlTypeName;
  outputType?: GgmlTypeName;
  tokenizer?: string;
  name?: string;
  json?: boolean;
}

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description(
      'write a model lmdyn loads (llama2.c, HF folder, GGUF) as a GGUF file llama.cpp reads',
    )
    .requiredOption('-m, --model <M>', 'model file, folder or hf:owner/name')
    .requiredOption('-o, --out <FILE>', 'the .gguf file to write')
    .option(
      '--type <T>',
      'weight matrices as f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k (norms stay f32)',
      (v: string) => blockFormatNamed(v).name,
      'F32' as GgmlTypeName,
    )
    .option(
      '--embedding-type <T>',
      'token_embd.weight as this type instead',
      (v: string) => blockFormatNamed(v).name,
    )
    .option(
      '--output-type <T>',
      'output.weight (an untied classifier) as this type instead',
      (v: string) => blockFormatNamed(v).name,
    )
    .option('-z, --tokenizer <T>', 'tokenizer file or folder overriding the model’s own')
    .option('--name <NAME>', 'general.name (default: the output file name)')
    .option('--json', 'print JSON')
    .action(async (flags: ConvertFlags) => {
      const r = await convertToGguf(flags.model, flags.out, {
        type: flags.type,
        embeddingType: flags.embeddingType,
        outputType: flags.outputType,
        tokenizer: flags.tokenizer,
        name: flags.name,
      });
      if (flags.json) {
        process.stdout.write(JSON.stringify(r) + '\n');
        return;
      }
      const counts = Object.entries(r.typeCounts)
        .map(([t, n]) => `${n} ${t}`)
        .join(', ');
      process.stdout.write(
        `wrote ${r.path}: ${r.bytes.toLocaleString('en-US')} bytes, ${r.tensors.length} tensors (${counts})\n`,
      );
      // llama-quantize's fallback, summarised per (stored type, row length)
      const fellBack = new Map<string, number>();
      for (const t of r.tensors) {
        if (t.dims.length < 2 || t.type === r.type) continue;
        if (t.name === 'token_embd.weight' && flags.embeddingType) continue;
        if (t.name === 'output.weight' && flags.outputType) continue;
        const key = `rows of ${t.dims[0]} values stored as ${t.type}`;
        fellBack.set(key, (fellBack.get(key) ?? 0) + 1);
      }
      for (const [what, n] of fellBack) {
        process.stdout.write(`  ${n} matrices with ${what} (not whole ${r.type} blocks)\n`);
      }
    });
}
