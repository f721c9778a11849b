// The chat prompt format shared by the WeChat bot, the web chat and `npm run chat`:
//
//   [system line]
//   User: <oldest kept user message>
//   Bot: <its reply>
//   ...
//   User: <the new message>
//   Bot:
//
// The model continues after the final "Bot:"; the reply ends at the first stop string: a new
// "User:"/"Bot:" line, a blank line (end of a paragraph or poem in the pre-training text) or the
// end-of-text token's text. One line per turn (newlines inside a message become spaces) so no
// message can forge a turn. When a token budget is given, whole old turns are dropped first (the
// model would otherwise cut the oldest tokens mid-turn). The prefixes stay English for both
// languages: the pre-trained model knows "User"/"Bot" as words from its English text, and one
// fixed format keeps the stop strings simple.

export interface ChatTurn {
  role: 'user' | 'bot';
  text: string;
}

export const USER_PREFIX = 'User:';
export const BOT_PREFIX = 'Bot:';
export const END_OF_TEXT = '<|endoftext|>';

/** Stop strings for a chat reply. */
export const CHAT_STOP = [`\n${USER_PREFIX}`, `\n${BOT_PREFIX}`, '\n\n', END_OF_TEXT];

/** One line per turn: newlines inside a message become spaces so a turn cannot fake a prefix. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' ').replaceAll(END_OF_TEXT, '').trim();
}

export interface ChatPrompt {
  prompt: string;
  stop: string[];
  /** History turns left out to fit the budget (oldest first). */
  droppedTurns: number;
}

export interface ChatPromptOptions {
  /** A first line describing the bot (optional). */
  system?: string;
  /** Token budget for the whole prompt (e.g. context length − reply tokens); needs countTokens. */
  maxPromptTokens?: number;
  countTokens?: (text: string) => number;
}

/**
 * The prompt for the bot's next reply to `message` after `history` (oldest first). The third
 * argument is the system line, or options with a token budget.
 */
export function buildChatPrompt(history: ChatTurn[], message: string, options?: string | ChatPromptOptions): ChatPrompt {
  const o: ChatPromptOptions = typeof options === 'string' ? { system: options } : (options ?? {});
  const head = o.system ? [oneLine(o.system)] : [];
  const tail = [`${USER_PREFIX} ${oneLine(message)}`, BOT_PREFIX];
  const turns = history.map((t) => `${t.role === 'user' ? USER_PREFIX : BOT_PREFIX} ${oneLine(t.text)}`);
  let dropped = 0;
  if (o.maxPromptTokens !== undefined && o.countTokens) {
    // Drop the oldest turns until the prompt fits; the new message itself is never dropped.
    while (dropped < turns.length && o.countTokens([...head, ...turns.slice(dropped), ...tail].join('\n')) > o.maxPromptTokens) dropped++;
  }
  return { prompt: [...head, ...turns.slice(dropped), ...tail].join('\n'), stop: CHAT_STOP, droppedTurns: dropped };
}

/** Cleans a generated reply: cuts at any stop string, drops a repeated "Bot:" prefix, trims. */
export function cleanReply(text: string): string {
  let t = text.replace(/^\s*Bot:\s*/, '');
  for (const s of CHAT_STOP) {
    const i = t.indexOf(s);
    if (i >= 0) t = t.slice(0, i);
  }
  return t.trim();
}
