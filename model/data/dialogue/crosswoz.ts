// CrossWOZ (thu-coai, Apache-2.0): Chinese task-oriented travel dialogues, read straight from the
// published zip (`{id: {messages: [{role: 'usr'|'sys', content}]}}`); dialogue acts and states are dropped.
import { readFile } from 'node:fs/promises';
import { strFromU8, unzipSync } from 'fflate';
import { DialogueDataError, type Message, type SourceConversation } from './conversation.js';

export function parseCrosswoz(raw: unknown, file: string): { id: string; messages: Message[] }[] {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new DialogueDataError(`${file}: expected an object of dialogues by id`);
  return Object.entries(raw as Record<string, unknown>).map(([id, d]) => {
    const messages = (d as { messages?: unknown }).messages;
    if (!Array.isArray(messages)) throw new DialogueDataError(`${file}: dialogue ${id} has no messages array`);
    return {
      id,
      messages: messages.map((m: unknown, j) => {
        const { role, content } = m as { role?: unknown; content?: unknown };
        if ((role !== 'usr' && role !== 'sys') || typeof content !== 'string') {
          throw new DialogueDataError(`${file}: dialogue ${id} message ${j} needs role usr|sys and a content string`);
        }
        return { role: role === 'usr' ? 'user' : 'assistant', content } satisfies Message;
      }),
    };
  });
}

/** Dialogues of the one JSON file inside `zipFile`. */
export async function* crosswozConversations(zipFile: string): AsyncGenerator<SourceConversation> {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(await readFile(zipFile), { filter: (f) => f.name.endsWith('.json') });
  } catch (err) {
    throw new DialogueDataError(`cannot read ${zipFile}: ${(err as Error).message}`);
  }
  const names = Object.keys(entries).sort();
  if (names.length === 0) throw new DialogueDataError(`${zipFile}: no .json file inside`);
  for (const name of names) {
    let raw: unknown;
    try {
      raw = JSON.parse(strFromU8(entries[name] as Uint8Array));
    } catch (err) {
      throw new DialogueDataError(`${zipFile}/${name}: ${(err as Error).message}`);
    }
    for (const d of parseCrosswoz(raw, `${zipFile}/${name}`)) {
      yield { messages: d.messages, source: 'crosswoz', lang: 'zh', group: `crosswoz:${d.id}` };
    }
  }
}
