// The chat-format contract every format implements (nemo-lines, openai-gpt, cdial): a prompt as
// token ids (and token types for models with speaker embeddings), how a reply ends, and the
// sampling defaults the model was made for.

export interface ChatTurn { role: 'user' | 'bot'; text: string }

export interface ChatPromptIds {
  /** the prompt's token ids, ready for the engine */
  ids: number[];
  /** per-position token types (CDial-GPT speaker embeddings), same length as ids */
  tokenTypes?: number[];
  /** token type every generated token takes (CDial: id of [speaker2]) */
  replyTokenType?: number;
  /** whole oldest turns left out to fit the budget */
  droppedTurns: number;
}

export interface ChatFormat {
  readonly name: 'nemo-lines' | 'openai-gpt' | 'cdial' | string;
  buildPrompt(history: ChatTurn[], message: string, opts: { system?: string; maxPromptTokens: number }): ChatPromptIds;
  /** on decoded text */
  readonly stopStrings: string[];
  /** token ids that end a reply (eos; CDial: any special token) */
  readonly stopIds: number[];
  readonly defaults: { temperature?: number; topP?: number; topK?: number; maxNewTokens?: number; minNewTokens?: number };
  cleanReply(text: string): string;
}
