// Which chat format a model folder uses: its chat_format.json, else the one its tokenizer implies
// (the project's BPE → nemo-lines, GPT-1's BPE → openai-gpt, a vocab.txt with [speaker1] → cdial).
// Formats register a factory by name, so a new one plugs in without touching the callers.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CdialFormat } from './cdial-format.js';
import type { ChatFormat, ChatTokenizer } from './chat-format.js';
import { ChatFormatError, declaredDefaults, readChatFormatDeclaration, type ChatFormatDeclaration } from './declaration.js';
import { NEMO_LINES, NEMO_LINES_DEFAULTS, NemoLinesFormat } from './nemo-lines.js';
import { OPENAI_GPT, OPENAI_GPT_DEFAULTS, OpenAiGptFormat } from './openai-gpt.js';

export type ChatFormatFactory = (tokenizer: ChatTokenizer, declaration: ChatFormatDeclaration | null) => ChatFormat;

const factories = new Map<string, ChatFormatFactory>();

export function registerChatFormat(name: string, factory: ChatFormatFactory): void {
  factories.set(name, factory);
}

export function chatFormatNames(): string[] {
  return [...factories.keys()].sort();
}

/** Stop token names from the declaration, as ids; an unknown name is an error naming it. */
function declaredStopIds(tokenizer: ChatTokenizer, d: ChatFormatDeclaration | null): number[] {
  return (d?.stop_tokens ?? []).map((t) => {
    const id = tokenizer.tokenToId(t);
    if (id === undefined) throw new ChatFormatError(`chat_format.json: stop token ${JSON.stringify(t)} is not in the vocabulary`);
    return id;
  });
}

registerChatFormat(NEMO_LINES, (tok, d) =>
  new NemoLinesFormat(tok, declaredDefaults(NEMO_LINES_DEFAULTS, d), { stopStrings: d?.stop_strings, stopIds: declaredStopIds(tok, d) }));
registerChatFormat(OPENAI_GPT, (tok, d) =>
  new OpenAiGptFormat(tok, {
    preamble: d?.preamble, defaults: declaredDefaults(OPENAI_GPT_DEFAULTS, d), stopStrings: d?.stop_strings, stopIds: declaredStopIds(tok, d),
  }));

registerChatFormat('cdial', (tok) => new CdialFormat(tok));

/** The format a folder without chat_format.json gets, from its tokenizer files. */
export function impliedFormat(dir: string): string {
  const vocabTxt = path.join(dir, 'vocab.txt');
  if (existsSync(vocabTxt) && /^\[speaker1\]$/m.test(readFileSync(vocabTxt, 'utf8'))) return 'cdial';
  const cfg = path.join(dir, 'tokenizer_config.json');
  if (existsSync(cfg)) {
    try {
      const type = (JSON.parse(readFileSync(cfg, 'utf8')) as { type?: unknown }).type;
      if (type === 'nemo-bpe') return NEMO_LINES;
    } catch {
      // An unreadable tokenizer config is reported by the tokenizer loader, not here.
    }
  }
  return OPENAI_GPT;
}

export interface ResolvedChatFormat {
  format: ChatFormat;
  /** 'chat_format.json' or 'tokenizer' (implied). */
  source: 'chat_format.json' | 'tokenizer';
}

/** The chat format of the model in `dir`, built on its tokenizer. */
export async function chatFormatFor(dir: string, tokenizer: ChatTokenizer): Promise<ResolvedChatFormat> {
  const declaration = await readChatFormatDeclaration(dir);
  const name = declaration?.format ?? impliedFormat(dir);
  const factory = factories.get(name);
  if (!factory) {
    throw new ChatFormatError(`${path.join(dir, 'chat_format.json')}: unknown chat format ${JSON.stringify(name)} (known: ${chatFormatNames().join(', ')})`);
  }
  return { format: factory(tokenizer, declaration), source: declaration ? 'chat_format.json' : 'tokenizer' };
}
