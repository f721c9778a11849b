// CDial-GPT's dialogue format, as its interact.py builds it (build_input_from_segments):
//
//   ids:   [CLS] [speaker1] u1… [speaker2] b1… … [speaker1] un… [speaker2]
//   types: [CLS] [speaker1] …    [speaker2] …  … [speaker1] …    [speaker2]
//
// Every position's token type is the speaker token of its turn (the [CLS] position takes [CLS]);
// the reply continues as [speaker2]. Each message is spelt as CDial-GPT was trained on it: spaces
// removed, then every character tokenized on its own. The reply ends at any of CDial-GPT's special
// tokens. History is cut by whole turns from the oldest: at most `maxHistory` earlier utterances
// (interact.py keeps 4), and fewer when the token budget needs it. There is no system line.
import type { ChatFormat, ChatPromptIds, ChatTokenizer, ChatTurn } from './chat-format.js';

/** The special tokens interact.py stops at. */
const STOP_TOKENS = ['[CLS]', '[SEP]', '[PAD]', '[speaker1]', '[speaker2]'];

export interface CdialFormatOptions {
  /** earlier utterances kept at most (interact.py: 2 * max_history = 4) */
  maxHistory?: number;
}

export class CdialFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CdialFormatError';
  }
}

export class CdialFormat implements ChatFormat {
  readonly name = 'cdial';
  readonly stopStrings: string[] = [];
  readonly stopIds: number[];
  readonly defaults = { temperature: 0.7, topP: 0.9, maxNewTokens: 30, minNewTokens: 1 };
  private readonly cls: number;
  private readonly speaker1: number;
  private readonly speaker2: number;
  private readonly maxHistory: number;

  constructor(private readonly tokenizer: ChatTokenizer, opts: CdialFormatOptions = {}) {
    const id = (t: string) => {
      const v = tokenizer.tokenToId(t);
      if (v === undefined) throw new CdialFormatError(`the cdial chat format needs ${t} in the vocabulary`);
      return v;
    };
    this.cls = id('[CLS]');
    this.speaker1 = id('[speaker1]');
    this.speaker2 = id('[speaker2]');
    this.stopIds = STOP_TOKENS.map((t) => tokenizer.tokenToId(t)).filter((v): v is number => v !== undefined);
    this.maxHistory = opts.maxHistory ?? 4;
  }

  /** A message's ids as interact.py makes them: " ".join(list(text.replace(" ", ""))). */
  encodeUtterance(text: string): number[] {
    return this.tokenizer.encode(Array.from(text.replaceAll(' ', '')).join(' '));
  }

  buildPrompt(history: ChatTurn[], message: string, opts: { system?: string; maxPromptTokens: number }): ChatPromptIds {
    const turns = [...history, { role: 'user' as const, text: message }].map((t) => ({
      speaker: t.role === 'user' ? this.speaker1 : this.speaker2,
      ids: this.encodeUtterance(t.text),
    }));
    // [CLS] + each turn's speaker token and text + the reply's [speaker2].
    const size = (from: number) => 2 + turns.slice(from).reduce((n, t) => n + 1 + t.ids.length, 0);
    let from = Math.max(0, history.length - this.maxHistory);
    while (from < history.length && size(from) > opts.maxPromptTokens) from++;
    const last = turns[turns.length - 1];
    const over = size(from) - opts.maxPromptTokens;
    if (over > 0) {
      // The new message alone is too long: keep its end, as the reply answers the end.
      if (over >= last.ids.length) throw new CdialFormatError(`a prompt budget of ${opts.maxPromptTokens} tokens cannot hold any message`);
      last.ids = last.ids.slice(over);
    }
    const ids = [this.cls];
    const tokenTypes = [this.cls];
    for (const t of turns.slice(from)) {
      for (const id of [t.speaker, ...t.ids]) {
        ids.push(id);
        tokenTypes.push(t.speaker);
      }
    }
    ids.push(this.speaker2);
    tokenTypes.push(this.speaker2);
    return { ids, tokenTypes, replyTokenType: this.speaker2, droppedTurns: from };
  }

  cleanReply(text: string): string {
    return text.replace(/\s+/g, ' ').trim();
  }
}
