// The model's chat prompt format (model/chat/format.ts) seen through the ChatSession's small
// interface: remembered turns become User:/Bot: lines, old turns are dropped whole to leave room
// for the reply, and the reply is cleaned the way the format defines.
import { buildChatPrompt, CHAT_STOP, cleanReply, type ChatTurn, type TextGenerator } from '../model/index.js';
import type { ChatPromptFormat } from './chat-session.js';
import type { Turn } from './conversation.js';

export interface ModelChatFormatOptions {
  /** A first line describing the bot (optional). */
  system?: string;
  /** Tokens kept free for the reply (the prompt gets the rest of the context). */
  replyTokens: () => number;
}

export function modelChatFormat(generator: TextGenerator, options: ModelChatFormatOptions): ChatPromptFormat {
  return {
    buildPrompt(history: Turn[], message: string): string {
      const turns: ChatTurn[] = history.flatMap((t) => [{ role: 'user' as const, text: t.user }, { role: 'bot' as const, text: t.bot }]);
      const budget = generator.info().contextLength - options.replyTokens();
      return buildChatPrompt(turns, message, {
        system: options.system,
        maxPromptTokens: Math.max(1, budget),
        countTokens: (t) => generator.countTokens(t),
      }).prompt;
    },
    stop: CHAT_STOP,
    clean: cleanReply,
  };
}
