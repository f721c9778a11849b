// chat_format.json: a model folder's declaration of its chat format, stop tokens and default
// sampling (the role Hugging Face's chat_template plays), e.g.
//   {"format": "nemo-lines", "version": 1, "temperature": 0.8, "top_p": 0.95, "max_new_tokens": 64}
// Without the file the tokenizer implies the format (see registry.ts).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { ChatSamplingDefaults } from './chat-format.js';

export const CHAT_FORMAT_FILE = 'chat_format.json';

const schema = z
  .object({
    format: z.string().min(1),
    version: z.number().int().positive().default(1),
    /** openai-gpt: the scene-setting first line. */
    preamble: z.string().optional(),
    /** Extra stop strings (on decoded text) and stop tokens (by name, e.g. "<|endoftext|>"). */
    stop_strings: z.array(z.string().min(1)).optional(),
    stop_tokens: z.array(z.string().min(1)).optional(),
    temperature: z.number().min(0).max(100).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    top_k: z.number().int().min(0).optional(),
    max_new_tokens: z.number().int().min(1).optional(),
    min_new_tokens: z.number().int().min(0).optional(),
  })
  .loose();

export type ChatFormatDeclaration = z.output<typeof schema>;

export class ChatFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatFormatError';
  }
}

/** Validates a parsed chat_format.json; the error names the file and the field. */
export function parseChatFormatDeclaration(raw: unknown, file = CHAT_FORMAT_FILE): ChatFormatDeclaration {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'root';
    throw new ChatFormatError(`${file}: invalid chat format declaration at ${where}: ${issue?.message ?? 'unknown error'}`);
  }
  return parsed.data;
}

/** The folder's chat_format.json, or null when it has none. */
export async function readChatFormatDeclaration(dir: string): Promise<ChatFormatDeclaration | null> {
  const file = path.join(dir, CHAT_FORMAT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ChatFormatError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ChatFormatError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  return parseChatFormatDeclaration(raw, file);
}

/** The declaration's sampling fields over the format's own defaults. */
export function declaredDefaults(base: ChatSamplingDefaults, d: ChatFormatDeclaration | null): ChatSamplingDefaults {
  if (!d) return base;
  const out: ChatSamplingDefaults = { ...base };
  if (d.temperature !== undefined) out.temperature = d.temperature;
  if (d.top_p !== undefined) out.topP = d.top_p;
  if (d.top_k !== undefined) out.topK = d.top_k;
  if (d.max_new_tokens !== undefined) out.maxNewTokens = d.max_new_tokens;
  if (d.min_new_tokens !== undefined) out.minNewTokens = d.min_new_tokens;
  return out;
}
