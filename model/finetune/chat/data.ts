// Chat training data: JSONL, one conversation per line, in the ecosystem's chat format
//   {"messages":[{"role":"system"|"user"|"assistant","content":"…"}, …], "source":"…"}
// Every bad line (not JSON, no assistant turn, unknown role, empty content) is reported with its
// line number, and nothing starts on a broken file.
import { z } from 'zod';
import { parseJsonLines, readDataFile } from '../data.js';

export const CHAT_ROLES = ['system', 'user', 'assistant'] as const;
export type ChatRole = (typeof CHAT_ROLES)[number];

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface Conversation {
  messages: ChatMessage[];
  source?: string;
}

export interface LoadedConversations {
  file: string;
  conversations: Conversation[];
  /** 1-based line number of each conversation. */
  lines: number[];
}

export const CHAT_LINE_SHAPE = '{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}';
const MAX_CONTENT_CHARS = 100_000;

const message = z.object({
  role: z.string({ error: 'must be a string' }).refine((r) => (CHAT_ROLES as readonly string[]).includes(r), {
    error: (iss) => `is ${JSON.stringify(iss.input)}, not one of ${CHAT_ROLES.join(', ')}`,
  }),
  content: z
    .string({ error: 'must be a string' })
    // Content that is only whitespace becomes an empty line in the chat format.
    .refine((s) => s.trim() !== '', 'must not be empty')
    .refine((s) => s.length <= MAX_CONTENT_CHARS, `must be at most ${MAX_CONTENT_CHARS} characters`),
});
const conversation = z
  .object({
    messages: z.array(message, { error: 'must be an array of messages' }).min(1, 'must not be empty'),
    source: z.string().optional(),
  })
  .refine((c) => c.messages.some((m) => m.role === 'assistant'), { error: 'has no assistant turn', path: ['messages'], abort: true })
  // Only a reply to a user turn is trained: without one the line would teach nothing.
  .refine((c) => c.messages.some((m, i) => m.role === 'assistant' && c.messages.slice(0, i).some((p) => p.role === 'user')), {
    error: 'has no assistant turn after a user turn',
    path: ['messages'],
  });

/** Parses JSONL text; throws FinetuneDataError listing bad lines (blank lines are skipped). */
export function parseConversations(content: string, file = 'data'): LoadedConversations {
  const kind = { label: 'task chat', shape: CHAT_LINE_SHAPE, items: 'conversations', shapeAfterEachLine: false };
  const { items, lines } = parseJsonLines(content, file, conversation, kind);
  return { file, conversations: items.map((c) => ({ messages: c.messages as ChatMessage[], source: c.source })), lines };
}

/** Reads and parses a JSONL file of conversations. */
export async function readConversations(file: string): Promise<LoadedConversations> {
  return parseConversations(await readDataFile(file), file);
}
