// Synthetic-Persona-Chat (google-research-datasets, CC BY 4.0): CSV with two persona columns and a
// conversation column of `User 1: …` / `User 2: …` lines. User 1 is the user, User 2 the bot; User 2's
// persona can become the system line.
import { parse } from 'csv-parse/sync';
import { DialogueDataError, readSourceText, type Message, type SourceConversation } from './conversation.js';

export interface PersonaDialogue {
  persona: string[];
  turns: { speaker: 1 | 2; text: string }[];
}

export function parsePersonaChat(text: string, file: string): PersonaDialogue[] {
  let rows: string[][];
  try {
    rows = parse(text, { relax_column_count: false, skip_empty_lines: true }) as string[][];
  } catch (err) {
    throw new DialogueDataError(`${file}: not valid CSV: ${(err as Error).message}`);
  }
  const header = rows.shift();
  if (!header || header.length < 3 || !/conversation/i.test(header[2] as string)) {
    throw new DialogueDataError(`${file}: expected the columns "user 1 personas,user 2 personas,Best Generated Conversation"`);
  }
  return rows.map((row, r) => {
    const turns: PersonaDialogue['turns'] = [];
    for (const line of (row[2] as string).split(/\r?\n/)) {
      // A few conversations are in Markdown (`*User 1:* …`) or carry stage directions ("[A few minutes later]", "* * *").
      const m = /^\s*(?:\*\s*)?User ([12]):\*?\s*(.*)$/.exec(line);
      const rest = line.trim();
      if (m) turns.push({ speaker: m[1] === '1' ? 1 : 2, text: m[2] as string });
      else if (rest === '' || /^\[.*\]$|^[*\s]+$/.test(rest)) continue;
      else if (turns.length > 0) (turns.at(-1) as { text: string }).text += ` ${rest}`;
    }
    if (turns.length === 0) throw new DialogueDataError(`${file}: row ${r + 2}: no "User 1:" / "User 2:" turns`);
    return { persona: (row[1] as string).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== ''), turns };
  });
}

const PLACEHOLDER = /\[[a-z][\w' ]*\]/i;

/** Merges consecutive turns of one speaker, so roles alternate. */
function alternate(turns: PersonaDialogue['turns']): Message[] {
  const out: Message[] = [];
  for (const t of turns) {
    const role = t.speaker === 1 ? 'user' : 'assistant';
    const last = out.at(-1);
    if (last && last.role === role) last.content += ` ${t.text}`;
    else out.push({ role, content: t.text });
  }
  return out;
}

export async function* personaChatConversations(file: string, options: { personaSystem?: boolean } = {}): AsyncGenerator<SourceConversation> {
  const text = await readSourceText(file);
  for (const [i, d] of parsePersonaChat(text, file).entries()) {
    // Turns with an unfilled template slot ("I'm [user 1 name].", "I'm from [country].") are cut out; the parts around
    // them stay, as parts of one dialogue (one split).
    const segments: Message[][] = [[]];
    for (const m of alternate(d.turns)) {
      if (PLACEHOLDER.test(m.content)) segments.push([]);
      else (segments.at(-1) as Message[]).push(m);
    }
    for (const [k, messages] of segments.filter((seg) => seg.length > 1).entries()) {
      if (k === 0 && options.personaSystem && d.persona.length > 0) messages.unshift({ role: 'system', content: d.persona.join(' ') });
      yield { messages, source: 'persona-chat', lang: 'en', group: `persona-chat:${i}` };
    }
  }
}
