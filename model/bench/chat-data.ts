// Reading chat JSONL (one conversation per line, the ecosystem's format):
//   {"messages":[{"role":"system"|"user"|"assistant","content":"…"}, …], "source":"…"}
// into the assistant turns bench:chat scores: each with the turns before it as history.
import { readFile } from 'node:fs/promises';
import type { ChatTurn } from '../chat/chat-format.js';

export interface ChatExample {
  /** Index of the conversation (line order, counting conversations only). */
  conversation: number;
  system?: string;
  history: ChatTurn[];
  message: string;
  reply: string;
}

const ROLES = new Set(['system', 'user', 'assistant']);

/** Every assistant turn that answers a user message; bad lines stop with their line number. */
export function parseChatJsonl(text: string, file: string): ChatExample[] {
  const out: ChatExample[] = [];
  let conversation = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const where = `${file}:${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new Error(`${where}: not JSON (${(err as Error).message})`);
    }
    const messages = (obj as { messages?: unknown })?.messages;
    if (!Array.isArray(messages) || messages.length === 0) throw new Error(`${where}: expected {"messages": [...]} with at least one message`);
    let system: string | undefined;
    const turns: ChatTurn[] = [];
    let assistants = 0;
    messages.forEach((m: { role?: unknown; content?: unknown }, j) => {
      if (typeof m?.role !== 'string' || !ROLES.has(m.role)) throw new Error(`${where}: message ${j + 1} has an unknown role ${JSON.stringify(m?.role)}`);
      if (typeof m.content !== 'string' || !m.content.trim()) throw new Error(`${where}: message ${j + 1} has empty content`);
      if (m.role === 'system') {
        system = system === undefined ? m.content : `${system} ${m.content}`;
        return;
      }
      if (m.role === 'assistant') {
        assistants++;
        const last = turns.at(-1);
        if (last?.role === 'user') out.push({ conversation, system, history: turns.slice(0, -1), message: last.text, reply: m.content });
      }
      turns.push({ role: m.role === 'user' ? 'user' : 'bot', text: m.content });
    });
    if (assistants === 0) throw new Error(`${where}: the conversation has no assistant turn`);
    conversation++;
  });
  return out;
}

export async function readChatJsonl(file: string): Promise<ChatExample[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseChatJsonl(text, file);
}
