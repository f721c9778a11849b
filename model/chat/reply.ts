// The one reply pipeline for WeChat, the web chat and `npm run chat`: the model's chat format
// builds the prompt, the model generates, and the reply is checked before anyone sees it. A reply
// that is empty or punctuation only, starts a new turn, is in a language the user did not write
// in, or contains a blocked word is resampled with a new seed (bounded tries); when every try
// fails, a short polite line in the user's language is sent instead. The outcome says which.
import { randomInt } from 'node:crypto';
import type { GenerationResult, SamplingOptions, TextGenerator } from '../inference/generator.js';
import type { ChatFormat, ChatPromptIds, ChatTurn } from './chat-format.js';
import { BlockedStreamGuard, type BlockedWords } from './blocked-words.js';
import { hasContent, messageLanguage, replyMatchesLanguage, type ChatLanguage } from './language.js';

export type ReplyOutcome = 'ok' | 'resampled' | 'fallback' | 'blocked';
export type RejectReason = 'empty' | 'new-turn' | 'language' | 'blocked';

export const DEFAULT_REPLY_TRIES = 3;

/** The polite lines sent instead of a reply that failed every check. */
export const FALLBACK_TEXT: Record<'zh' | 'en', string> = {
  zh: '抱歉，我没想好怎么回答，换个说法再问我一次好吗？',
  en: "Sorry, I don't have a good answer to that. Could you put it another way?",
};
export const BLOCKED_INPUT_TEXT: Record<'zh' | 'en', string> = {
  zh: '抱歉，这个我不能回答。我们聊点别的吧。',
  en: "Sorry, I can't answer that. Let's talk about something else.",
};

export interface ReplyRequest {
  history: ChatTurn[];
  message: string;
  system?: string;
  /** Sampling over the format's defaults (undefined fields keep the format's). */
  sampling?: Omit<SamplingOptions, 'stop' | 'stopIds' | 'seed'>;
  /** Seed of the first try; later tries take new seeds derived from it. Random when absent. */
  seed?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Streams the reply's text as it is generated (blocked words never pass). */
  onText?: (chunk: string) => void;
  /** A streamed try was rejected: what was streamed is void, the next try streams afresh. */
  onRetry?: () => void;
}

export interface ChatReplyResult {
  /** What to send (never empty). */
  text: string;
  outcome: ReplyOutcome;
  /** Generations made (0 when the message itself was blocked). */
  attempts: number;
  /** Why each rejected try was rejected, in order. */
  rejected: RejectReason[];
  /** Every try's cleaned text and verdict (null: accepted), in order. */
  tries: Array<{ text: string; rejected: RejectReason | null }>;
  /** The last generation (its finishReason says whether it was cut off). */
  generation?: GenerationResult;
  /** Tokens over every try. */
  promptTokens: number;
  completionTokens: number;
  prompt?: ChatPromptIds;
  language: ChatLanguage;
}

export interface ChatResponderOptions {
  /** Default: the generator's own (the model folder's). */
  format?: ChatFormat;
  blockedWords?: BlockedWords;
  /** Also refuse messages containing a blocked word (without generating). */
  checkInput?: boolean;
  /** Generations per reply before the fallback line (default 3). */
  maxTries?: number;
  /** Reply texts (the bot's configurable ones); default FALLBACK_TEXT / BLOCKED_INPUT_TEXT. */
  fallbackText?: (lang: 'zh' | 'en') => string;
  blockedInputText?: (lang: 'zh' | 'en') => string;
}

/** Words that open a turn in either language's convention ("User:", "用户：", "Bot:"). */
const TURN_LABEL = /^(?:user|bot|assistant|human|用户|机器人|助手)\s*[:：]/iu;

export class ChatResponder {
  private readonly maxTries: number;

  constructor(
    private readonly generator: TextGenerator,
    private readonly options: ChatResponderOptions = {},
  ) {
    this.maxTries = options.maxTries ?? DEFAULT_REPLY_TRIES;
    if (!Number.isInteger(this.maxTries) || this.maxTries < 1) throw new RangeError(`maxTries must be a positive integer (got ${this.maxTries})`);
  }

  /** The chat format replies use: the given one, else the serving model's (it may be switched live). */
  get format(): ChatFormat {
    return this.options.format ?? this.generator.chatFormat();
  }

  /** The sampling a reply uses: the format's defaults under the request's own settings. */
  sampling(req: Pick<ReplyRequest, 'sampling'>): SamplingOptions {
    return this.samplingOn(this.generator, this.format, req);
  }

  private samplingOn(generator: TextGenerator, format: ChatFormat, req: Pick<ReplyRequest, 'sampling'>): SamplingOptions {
    const d = format.defaults;
    const s = req.sampling ?? {};
    const context = generator.info().contextLength;
    const maxNewTokens = Math.max(1, Math.min(s.maxNewTokens ?? d.maxNewTokens ?? 64, Math.floor(context / 2)));
    return {
      ...s,
      temperature: s.temperature ?? d.temperature,
      topK: s.topK ?? d.topK,
      topP: s.topP ?? d.topP,
      maxNewTokens,
      minNewTokens: Math.min(maxNewTokens, s.minNewTokens ?? d.minNewTokens ?? 0),
      stop: format.stopStrings,
      stopIds: format.stopIds,
    };
  }

  /** Why a cleaned reply (from raw generated text) must not be sent, or null when it may. */
  check(raw: string, reply: string, lang: ChatLanguage, format: ChatFormat = this.format): RejectReason | null {
    if (this.options.blockedWords?.find(reply)) return 'blocked';
    const start = raw.trimStart();
    if (TURN_LABEL.test(start) || format.stopStrings.some((s) => s.trim() && start.startsWith(s.trim()))) return 'new-turn';
    if (!hasContent(reply)) return 'empty';
    if (!replyMatchesLanguage(lang, reply)) return 'language';
    return null;
  }

  async reply(req: ReplyRequest): Promise<ChatReplyResult> {
    const language = messageLanguage(req.message);
    const textLang = language === 'zh' ? 'zh' : 'en';
    const base: Omit<ChatReplyResult, 'text' | 'outcome'> = { attempts: 0, rejected: [], tries: [], promptTokens: 0, completionTokens: 0, language };
    if (this.options.checkInput && this.options.blockedWords?.find(req.message)) {
      const text = (this.options.blockedInputText ?? ((l) => BLOCKED_INPUT_TEXT[l]))(textLang);
      req.onText?.(text);
      return { ...base, text, outcome: 'blocked' };
    }
    // One model for the whole reply (prompt, tries), even if another is switched in meanwhile.
    return this.generator.use ? this.generator.use((g) => this.replyOn(g, req, base)) : this.replyOn(this.generator, req, base);
  }

  private async replyOn(generator: TextGenerator, req: ReplyRequest, base: Omit<ChatReplyResult, 'text' | 'outcome'>): Promise<ChatReplyResult> {
    const { language } = base;
    const textLang = language === 'zh' ? 'zh' : 'en';
    const format = this.options.format ?? generator.chatFormat();
    const sampling = this.samplingOn(generator, format, req);
    const context = generator.info().contextLength;
    const prompt = format.buildPrompt(req.history, req.message, { system: req.system, maxPromptTokens: Math.max(1, context - (sampling.maxNewTokens ?? 1)) });
    const firstSeed = req.seed ?? randomInt(0, 2 ** 31);
    const result: ChatReplyResult = { ...base, text: '', outcome: 'ok', prompt };
    let streamed = false;
    for (let attempt = 0; attempt < this.maxTries; attempt++) {
      if (streamed) req.onRetry?.();
      streamed = false;
      const guard = req.onText
        ? new BlockedStreamGuard(this.options.blockedWords ?? NO_WORDS, (chunk) => {
          streamed = true;
          req.onText?.(chunk);
        })
        : null;
      const generation = await generator.generate({
        ...sampling,
        prompt: prompt.ids,
        tokenTypes: prompt.tokenTypes,
        replyTokenType: prompt.replyTokenType,
        // A new seed per try: the same one would give the same reply again.
        seed: (firstSeed + attempt * 7919) % 2 ** 31,
        timeoutMs: req.timeoutMs,
        signal: req.signal,
        onText: guard ? (chunk) => guard.push(chunk) : undefined,
      });
      result.attempts++;
      result.generation = generation;
      result.promptTokens += generation.promptTokens;
      result.completionTokens += generation.completionTokens;
      const text = format.cleanReply(generation.text);
      if (generation.finishReason === 'aborted' || generation.finishReason === 'timeout') {
        // Cut off: the caller says so; only clean text goes back as the partial reply.
        result.text = this.options.blockedWords?.find(text) ? '' : text;
        return result;
      }
      const reason = this.check(generation.text, text, language, format);
      result.tries.push({ text, rejected: reason });
      if (reason === null) {
        guard?.end();
        result.text = text;
        result.outcome = attempt === 0 ? 'ok' : 'resampled';
        return result;
      }
      result.rejected.push(reason);
    }
    if (streamed) req.onRetry?.();
    result.text = (this.options.fallbackText ?? ((l) => FALLBACK_TEXT[l]))(textLang);
    result.outcome = result.rejected.includes('blocked') ? 'blocked' : 'fallback';
    req.onText?.(result.text);
    return result;
  }
}

const NO_WORDS = { find: () => null, longest: 0 } as unknown as BlockedWords;
