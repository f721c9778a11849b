// The chat prompt format: history turns as "User: ..." / "Bot: ..." lines, ending with "Bot:" for
// the model to continue; the reply ends where the model starts the next "User:" line.
// (A first simple version; the pre-training engineer may refine it to match the training data.)

export interface ChatTurn {
  role: 'user' | 'bot';
  text: string;
}

export const USER_PREFIX = 'User:';
export const BOT_PREFIX = 'Bot:';

/** Stop strings for a chat reply. */
export const CHAT_STOP = [`\n${USER_PREFIX}`, `\n${BOT_PREFIX}`];

/** One line per turn: newlines inside a message become spaces so a turn cannot fake a prefix. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

export interface ChatPrompt {
  prompt: string;
  stop: string[];
}

/**
 * The prompt for the bot's next reply to `message` after `history` (oldest first). The model
 * keeps only the newest tokens when this is too long, so old turns fall off first.
 */
export function buildChatPrompt(history: ChatTurn[], message: string, system?: string): ChatPrompt {
  const lines: string[] = [];
  if (system) lines.push(oneLine(system));
  for (const t of history) lines.push(`${t.role === 'user' ? USER_PREFIX : BOT_PREFIX} ${oneLine(t.text)}`);
  lines.push(`${USER_PREFIX} ${oneLine(message)}`);
  lines.push(BOT_PREFIX);
  return { prompt: lines.join('\n'), stop: CHAT_STOP };
}

/** Cleans a generated reply (trims, drops a leading "Bot:" the model may repeat). */
export function cleanReply(text: string): string {
  return text.replace(/^\s*Bot:\s*/, '').trim();
}
