/**
 * Chat templates, as Hugging Face's `tokenizer.apply_chat_template` renders them: the Jinja
 * template in the model's `tokenizer_config.json` (`chat_template`, a string or a list of named
 * templates), or in `chat_template.jinja` / `chat_template.json` beside it, rendered with
 * `messages`, `bos_token`, `eos_token` and `add_generation_prompt` by @huggingface/jinja (the
 * renderer transformers.js uses). The rendered text already holds the special tokens, so it is
 * tokenized without adding BOS (HF: `add_special_tokens=False`).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Template } from '@huggingface/jinja';
import type { Model } from '../model/model.js';
import { LmdynError } from '../errors.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplate {
  template: string;
  bosToken: string | null;
  eosToken: string | null;
  /** The file the template came from. */
  source: string;
}

export interface ChatOptions {
  /** End with the assistant's turn opened (default true), as for generation. */
  addGenerationPrompt?: boolean;
  /** A template (Jinja text) or a file holding one, instead of the model's own. */
  template?: string;
}

/** The longest template text accepted (real templates are a few KB). */
const MAX_TEMPLATE_CHARS = 1 << 20;

/** The chat template of a model folder (or the folder of a model file), or null if it has none. */
export function loadChatTemplate(path: string): ChatTemplate | null {
  const dir = existsSync(path) && statSync(path).isDirectory() ? path : dirname(path);
  const configPath = join(dir, 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath) : {};
  const bosToken = tokenString(config.bos_token);
  const eosToken = tokenString(config.eos_token);
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja))
    return { template: readTemplate(jinja), bosToken, eosToken, source: jinja };
  const json = join(dir, 'chat_template.json');
  if (existsSync(json)) {
    const t = readJson(json).chat_template;
    if (typeof t === 'string') return { template: t, bosToken, eosToken, source: json };
  }
  const t = config.chat_template;
  if (typeof t === 'string') return { template: t, bosToken, eosToken, source: configPath };
  if (Array.isArray(t)) {
    // [{ name, template }]: HF picks "default"
    const named = t as { name?: unknown; template?: unknown }[];
    const def = named.find((x) => x.name === 'default') ?? named[0];
    if (def && typeof def.template === 'string') {
      return { template: def.template, bosToken, eosToken, source: configPath };
    }
  }
  return null;
}

/** Renders `messages` with `template` (HF apply_chat_template with tokenize=False). */
export function renderChat(
  template: ChatTemplate,
  messages: readonly ChatMessage[],
  options: { addGenerationPrompt?: boolean } = {},
): string {
  checkMessages(messages);
  let compiled: Template;
  try {
    compiled = new Template(template.template);
  } catch (err) {
    throw new LmdynError(
      'bad_format',
      `${template.source}: the chat template does not parse (${firstLine(err)})`,
    );
  }
  try {
    return compiled.render({
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      bos_token: template.bosToken ?? '',
      eos_token: template.eosToken ?? '',
      add_generation_prompt: options.addGenerationPrompt ?? true,
    });
  } catch (err) {
    // raise_exception(msg) in a template (its own check of the messages) throws Error(msg)
    throw new LmdynError(
      'bad_argument',
      `the chat template (${template.source}) refused the messages: ${firstLine(err)}`,
    );
  }
}

/** The model's chat template (or options.template) applied to `messages`: the text and its ids. */
export function applyChatTemplate(
  model: Model,
  messages: readonly ChatMessage[],
  options: ChatOptions = {},
): { text: string; ids: number[] } {
  const template =
    options.template !== undefined
      ? templateFrom(options.template, model)
      : loadChatTemplate(model.source.path);
  if (!template) {
    throw new LmdynError(
      'not_found',
      `${model.source.path} has no chat template (tokenizer_config.json "chat_template", chat_template.jinja); pass one with --chat-template FILE`,
    );
  }
  const text = renderChat(template, messages, options);
  const ids = model.tokenizer.encode(text, { bos: false });
  if (ids.length === 0)
    throw new LmdynError('bad_argument', 'the chat template rendered no tokens');
  if (ids.length > model.config.seqLen) {
    throw new LmdynError(
      'context_overflow',
      `the chat prompt has ${ids.length} tokens; the model's context holds ${model.config.seqLen}`,
    );
  }
  return { text, ids };
}

/** A template given as Jinja text or as a file, with the model's own special tokens. */
function templateFrom(spec: string, model: Model): ChatTemplate {
  const own = loadChatTemplate(model.source.path);
  const tok = model.tokenizer;
  const bosToken = own?.bosToken ?? (tok.bosId !== null ? tok.tokenText(tok.bosId).trim() : null);
  const eosToken = own?.eosToken ?? (tok.eosId !== null ? tok.tokenText(tok.eosId).trim() : null);
  if (!spec.includes('{') && existsSync(spec)) {
    return { template: readTemplate(spec), bosToken, eosToken, source: spec };
  }
  return { template: spec, bosToken, eosToken, source: 'the given template' };
}

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new LmdynError('bad_argument', 'a chat needs at least one message {role, content}');
  }
  messages.forEach((m, i) => {
    if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new LmdynError('bad_argument', `message ${i} must be {role: string, content: string}`);
    }
  });
}

function readTemplate(path: string): string {
  if (statSync(path).size > MAX_TEMPLATE_CHARS) {
    throw new LmdynError(
      'bad_argument',
      `${path} is larger than a chat template can be (${MAX_TEMPLATE_CHARS} bytes)`,
    );
  }
  const text = readFileSync(path, 'utf8');
  if (path.endsWith('.json')) {
    const t = (JSON.parse(text) as { chat_template?: unknown }).chat_template;
    if (typeof t !== 'string')
      throw new LmdynError('bad_format', `${path} has no "chat_template" string`);
    return t;
  }
  return text;
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new LmdynError('bad_format', `${path} is not valid JSON (${firstLine(err)})`);
  }
}

/** bos_token / eos_token: a string or an AddedToken object {content}. */
function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return null;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
