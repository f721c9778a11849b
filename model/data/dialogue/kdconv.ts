// KdConv (thu-coai, Apache-2.0): knowledge-grounded Chinese dialogues, `[{messages: [{message, attrs?}]}]`
// per domain. Speakers alternate, the first one is the user; the knowledge attributes are dropped.
import path from 'node:path';
import { DialogueDataError, readSourceJson, type SourceConversation } from './conversation.js';

export const KDCONV_DOMAINS = ['film', 'music', 'travel'] as const;

export function parseKdconv(raw: unknown, file: string): string[][] {
  if (!Array.isArray(raw)) throw new DialogueDataError(`${file}: expected an array of dialogues`);
  return raw.map((d: unknown, i) => {
    const messages = (d as { messages?: unknown }).messages;
    if (!Array.isArray(messages)) throw new DialogueDataError(`${file}: dialogue ${i} has no messages array`);
    return messages.map((m: unknown, j) => {
      const text = (m as { message?: unknown }).message;
      if (typeof text !== 'string') throw new DialogueDataError(`${file}: dialogue ${i} message ${j} has no text`);
      return text;
    });
  });
}

export async function* kdconvConversations(dir: string, split = 'dev'): AsyncGenerator<SourceConversation> {
  for (const domain of KDCONV_DOMAINS) {
    const file = path.join(dir, domain, `${split}.json`);
    for (const [i, turns] of parseKdconv(await readSourceJson(file), file).entries()) {
      yield {
        messages: turns.map((content, j) => ({ role: j % 2 === 0 ? 'user' : 'assistant', content })),
        source: 'kdconv',
        lang: 'zh',
        group: `kdconv:${domain}:${i}`,
      };
    }
  }
}
