// nemo-lines v1, the project's own format (the text rules are in model/chat-format.ts): one
// "User: …" / "Bot: …" line per turn, the prompt ends with "Bot:", the reply ends at a new turn
// line, a blank line or <|endoftext|>. The prompt text is tokenized on its own, as in training.
import { buildChatPrompt, CHAT_STOP, cleanReply } from './format.js';
import type { ChatFormat, ChatPromptIds, ChatSamplingDefaults, ChatTokenizer, ChatTurn } from './chat-format.js';

export const NEMO_LINES = 'nemo-lines';

/** The sampling the project's chat models are used with unless chat_format.json says otherwise. */
export const NEMO_LINES_DEFAULTS: ChatSamplingDefaults = { temperature: 0.8, topK: 40, topP: 0.95, maxNewTokens: 64, minNewTokens: 1 };

export class NemoLinesFormat implements ChatFormat {
  readonly name = NEMO_LINES;
  readonly stopStrings: string[];
  readonly stopIds: number[];

  constructor(
    private readonly tokenizer: ChatTokenizer,
    readonly defaults: ChatSamplingDefaults = NEMO_LINES_DEFAULTS,
    extra: { stopStrings?: string[]; stopIds?: number[] } = {},
  ) {
    this.stopStrings = [...new Set([...CHAT_STOP, ...(extra.stopStrings ?? [])])];
    const eos = tokenizer.eosId;
    this.stopIds = [...new Set([...(eos === undefined ? [] : [eos]), ...(extra.stopIds ?? [])])];
  }

  buildPrompt(history: ChatTurn[], message: string, opts: { system?: string; maxPromptTokens: number }): ChatPromptIds {
    const p = buildChatPrompt(history, message, {
      system: opts.system,
      maxPromptTokens: opts.maxPromptTokens,
      countTokens: (t) => this.tokenizer.encode(t).length,
    });
    return { ids: this.tokenizer.encode(p.prompt), droppedTurns: p.droppedTurns };
  }

  cleanReply(text: string): string {
    let t = cleanReply(text);
    for (const s of this.stopStrings) {
      const i = t.indexOf(s);
      if (i >= 0) t = t.slice(0, i);
    }
    return t.trim();
  }
}
