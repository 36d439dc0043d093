import { openModel as open, type Model } from '../api.js';
import { defaultModel } from './models.js';

export interface ModelFlags {
  model?: string;
  tokenizer?: string;
}

/** Opens --model (or the default model, saying which) with --tokenizer if given. */
export async function openModel(flags: ModelFlags, log: (line: string) => void = (l) => process.stderr.write(l + '\n')): Promise<{ model: Model; label: string }> {
  let spec = flags.model;
  if (!spec) {
    const choice = defaultModel();
    spec = choice.spec;
    log(`model: ${spec} (${choice.why})`);
  }
  const model = await open(spec, { tokenizer: flags.tokenizer });
  return { model, label: spec };
}
