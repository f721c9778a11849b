// Chat training data: JSONL, one conversation per line, in the ecosystem's chat format
//   {"messages":[{"role":"system"|"user"|"assistant","content":"…"}, …], "source":"…"}
// Every bad line (not JSON, no assistant turn, unknown role, empty content) is reported with its
// line number, and nothing starts on a broken file.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { FinetuneDataError } from '../data.js';

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
const MAX_REPORTED = 20;

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
  const conversations: Conversation[] = [];
  const lines: number[] = [];
  const problems: string[] = [];
  const badLines: number[] = [];
  let bad = 0;
  const report = (line: number, msg: string) => {
    bad++;
    if (problems.length < MAX_REPORTED) {
      problems.push(`  line ${line}: ${msg}`);
      badLines.push(line);
    }
  };
  content.split('\n').forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.replace(/\r$/, '').replace(/^\uFEFF/, '');
    if (line.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (err) {
      report(lineNo, `not valid JSON (${(err as Error).message})`);
      return;
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      report(lineNo, `expected a JSON object like ${CHAT_LINE_SHAPE}`);
      return;
    }
    const r = conversation.safeParse(json);
    if (!r.success) {
      const msg = r.error.issues.map((iss) => {
        const where = iss.path.length ? `"${iss.path.join('.')}"` : 'line';
        if (iss.path.length === 1 && iss.path[0] === 'messages' && !Object.hasOwn(json as object, 'messages')) return `"messages" is missing`;
        return `${where} ${iss.message}`;
      });
      report(lineNo, [...new Set(msg)].join('; '));
      return;
    }
    conversations.push({ messages: r.data.messages as ChatMessage[], source: r.data.source });
    lines.push(lineNo);
  });
  if (bad > 0) {
    const more = bad > problems.length ? `\n  … and ${bad - problems.length} more bad lines` : '';
    throw new FinetuneDataError(`${file}: ${bad} bad line${bad === 1 ? '' : 's'} for task chat (expected ${CHAT_LINE_SHAPE}):\n${problems.join('\n')}${more}`, file, badLines);
  }
  if (conversations.length === 0) throw new FinetuneDataError(`${file}: no conversations (expected one JSON object per line, ${CHAT_LINE_SHAPE})`, file);
  return { file, conversations, lines };
}

/** Reads and parses a JSONL file of conversations. */
export async function readConversations(file: string): Promise<LoadedConversations> {
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FinetuneDataError(`${file}: cannot read (${code === 'ENOENT' ? 'no such file' : code ?? String(err)})`, file);
  }
  return parseConversations(content, file);
}
