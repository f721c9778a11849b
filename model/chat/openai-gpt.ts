// openai-gpt: plain continuation for GPT-1 (BooksCorpus, no dialogue training). A preamble sets the
// scene, then each turn is "<speaker>: <text>" on its own line, and the prompt ends with the bot's
// label. GPT-1's tokenizer lower-cases and drops newlines, so the reply also ends where the decoded
// text starts a new speaker label ("user :" as GPT-1 decodes it) or at the token limit.
import type { ChatFormat, ChatPromptIds, ChatSamplingDefaults, ChatTokenizer, ChatTurn } from './chat-format.js';
import { cutAtFirstStop, fitTurns } from './chat-format.js';

export const OPENAI_GPT = 'openai-gpt';

export const DEFAULT_PREAMBLE = 'this is a friendly conversation between a user and a helpful bot.';
export const OPENAI_GPT_DEFAULTS: ChatSamplingDefaults = { temperature: 0.7, topK: 40, topP: 0.9, maxNewTokens: 40, minNewTokens: 1 };

export interface OpenAiGptOptions {
  preamble?: string;
  userLabel?: string;
  botLabel?: string;
  defaults?: ChatSamplingDefaults;
  stopStrings?: string[];
  stopIds?: number[];
}

const oneLine = (t: string) => t.replace(/\s+/g, ' ').trim();

export class OpenAiGptFormat implements ChatFormat {
  readonly name = OPENAI_GPT;
  readonly stopStrings: string[];
  readonly stopIds: number[];
  readonly defaults: ChatSamplingDefaults;
  private readonly preamble: string;
  private readonly user: string;
  private readonly bot: string;

  constructor(private readonly tokenizer: ChatTokenizer, o: OpenAiGptOptions = {}) {
    this.preamble = oneLine(o.preamble ?? DEFAULT_PREAMBLE);
    this.user = o.userLabel ?? 'user';
    this.bot = o.botLabel ?? 'bot';
    this.defaults = o.defaults ?? OPENAI_GPT_DEFAULTS;
    // Both spellings: the raw label and GPT-1's decoding (a space before the colon).
    const labels = [this.user, this.bot].flatMap((l) => [`${l}:`, `${l} :`, `${l.toLowerCase()} :`]);
    this.stopStrings = [...new Set(['\n', ...labels.map((l) => ` ${l}`), ...(o.stopStrings ?? [])])];
    const eos = tokenizer.eosId;
    this.stopIds = [...new Set([...(eos === undefined ? [] : [eos]), ...(o.stopIds ?? [])])];
  }

  buildPrompt(history: ChatTurn[], message: string, opts: { system?: string; maxPromptTokens: number }): ChatPromptIds {
    const lines = history.map((t) => `${t.role === 'user' ? this.user : this.bot}: ${oneLine(t.text)}`);
    const head = [oneLine(opts.system ?? this.preamble)].filter(Boolean);
    const tail = [`${this.user}: ${oneLine(message)}`, `${this.bot}:`];
    return fitTurns(lines.length, opts.maxPromptTokens, (dropped) => ({
      ids: this.tokenizer.encode([...head, ...lines.slice(dropped), ...tail].join('\n')),
      droppedTurns: dropped,
    }));
  }

  cleanReply(text: string): string {
    return cutAtFirstStop(text, this.stopStrings).trim();
  }
}
