// The chat format a model folder declares (chat_format.json, see the chat-format contract): chat
// fine-tuning reads the base's to check it writes the same format, and records it in its output.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NEMO_TYPE } from '../../tokenizer/config.js';
import type { BpeTokenizer } from '../../tokenizer/bpe.js';

export const CHAT_FORMAT_FILE = 'chat_format.json';
export const NEMO_LINES = 'nemo-lines';

/** What a chat-tuned model's folder records: the format, and sampling defaults that suit a short reply. */
export const NEMO_LINES_FILE = { format: NEMO_LINES, version: 1, temperature: 0.7, topP: 0.9, maxNewTokens: 64, minNewTokens: 1 } as const;

/** The format name a folder declares, or the one its tokenizer implies. */
export async function declaredFormat(dir: string, tokenizer: BpeTokenizer): Promise<string> {
  const file = path.join(dir, CHAT_FORMAT_FILE);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text !== undefined) {
    let format: unknown;
    try {
      format = (JSON.parse(text) as { format?: unknown }).format;
    } catch (err) {
      throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
    }
    if (typeof format !== 'string') throw new Error(`${file}: "format" must be a string`);
    return format;
  }
  return tokenizer.config.type === NEMO_TYPE ? NEMO_LINES : tokenizer.specialTokens.includes('[speaker1]') ? 'cdial' : 'openai-gpt';
}

export async function writeChatFormat(dir: string): Promise<void> {
  await writeFile(path.join(dir, CHAT_FORMAT_FILE), `${JSON.stringify(NEMO_LINES_FILE, null, 2)}\n`);
}
