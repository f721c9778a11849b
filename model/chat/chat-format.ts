// The contract every chat format keeps (nemo-lines, openai-gpt, cdial, ...): how a conversation
// becomes the prompt's token ids, where a reply ends and how its text is cleaned, and the sampling
// the model was meant to be used with. The bot, the web chat, `npm run chat`, fine-tuning and
// bench:chat all go through it, so a model folder decides its own format (chat_format.json).

export interface ChatTurn {
  role: 'user' | 'bot';
  text: string;
}

export interface ChatPromptIds {
  /** The prompt's token ids, ready for the engine. */
  ids: number[];
  /** Per-position token types (CDial-GPT speaker embeddings), same length as ids. */
  tokenTypes?: number[];
  /** Token type every generated token takes (CDial: id of [speaker2]). */
  replyTokenType?: number;
  /** Whole oldest turns left out to fit the budget. */
  droppedTurns: number;
}

export interface ChatSamplingDefaults {
  temperature?: number;
  topP?: number;
  topK?: number;
  maxNewTokens?: number;
  minNewTokens?: number;
}

export interface ChatFormat {
  readonly name: 'nemo-lines' | 'openai-gpt' | 'cdial' | string;
  buildPrompt(history: ChatTurn[], message: string, opts: { system?: string; maxPromptTokens: number }): ChatPromptIds;
  /** On decoded text. */
  readonly stopStrings: string[];
  /** Token ids that end a reply (eos; CDial: any special token). */
  readonly stopIds: number[];
  readonly defaults: ChatSamplingDefaults;
  cleanReply(text: string): string;
}

/** What a format needs from a tokenizer (BpeTokenizer fits; so does a WordPiece vocab.txt one). */
export interface ChatTokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  tokenToId(token: string): number | undefined;
  readonly eosId?: number;
}

/** Cuts text at the first of `stops` (the reply ends there). */
export function cutAtFirstStop(text: string, stops: readonly string[]): string {
  let end = text.length;
  for (const s of stops) {
    if (!s) continue;
    const i = text.indexOf(s);
    if (i >= 0 && i < end) end = i;
  }
  return text.slice(0, end);
}

/**
 * Keeps the newest whole turns that fit: `render(k)` gives the prompt's ids when the oldest k
 * turns are left out; the new message itself is never dropped (the engine cuts from the left if
 * even that alone is too long).
 */
export function fitTurns(turnCount: number, maxPromptTokens: number, render: (dropped: number) => ChatPromptIds): ChatPromptIds {
  let dropped = 0;
  let p = render(0);
  while (p.ids.length > maxPromptTokens && dropped < turnCount) {
    dropped++;
    p = render(dropped);
  }
  return p;
}
