// Chat commands: `#help`, `#reset`, `#status` for everyone; `#rotate`, `#stats` for operators.
// Full-width ＃ and upper case work too (NFKC), as chatters type them on phone keyboards.

export type CommandName = 'help' | 'reset' | 'status' | 'rotate' | 'stats' | 'unknown';

const KNOWN = new Set<CommandName>(['help', 'reset', 'status', 'rotate', 'stats']);
const ALIASES: Record<string, CommandName> = { 帮助: 'help', 重置: 'reset', 状态: 'status' };

/** The command in `text`, or null when the text is ordinary chat. */
export function parseCommand(text: string): { name: CommandName; args: string } | null {
  const t = text.normalize('NFKC').trim();
  const m = /^#(\S+)\s*([\s\S]*)$/u.exec(t);
  if (!m) return null;
  const word = m[1].toLowerCase();
  const name = KNOWN.has(word as CommandName) ? (word as CommandName) : ALIASES[word];
  // A lone `#` or `#1` in chat is not meant as a command; `#something` with letters is.
  if (!name) return /^\p{L}/u.test(word) ? { name: 'unknown', args: m[2] } : null;
  return { name, args: m[2] };
}
