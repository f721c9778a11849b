// One incoming chat text in, the reply parts out: bans, the key flow, commands, limits, memory,
// generation and usage recording. Channel-independent (no Wechaty here): the WeChat bot and the
// web chat both call `ChatSession.handle`, so chatters meet the same rules everywhere.
import { normaliseAttempt, type KeyShape } from '../core/keys/normalise.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { guard, RedisUnavailableError, type Store } from '../core/redis.js';
import { Bans } from './bans.js';
import { parseCommand } from './commands.js';
import { ConversationMemory, type Turn } from './conversation.js';
import { Limits } from './limits.js';
import { splitReply, truncateInput } from './split.js';
import { BotTexts } from './texts.js';
import type { BotConfig } from './config.js';
import { type BlockedWords, type ChatFormat, type ChatPromptIds, ChatResponder, type ChatTurn, type GenerationResult, GeneratorBusyError, GeneratorTimeoutError, type ReplyOutcome, type SamplingOptions, type TextGenerator } from '../model/index.js';

/** What the chat needs from the key service (core/keys/key-service.ts KeyService fits this). */
export interface KeyGate {
  verify(userId: string, attempt: string): Promise<
    | { ok: true; version: number; authorisedUntil: string | null }
    | { ok: false; reason: string; attemptsLeft?: number; lockedUntil?: string; global?: boolean; lockedNow?: boolean }
  >;
  authorisation(userId: string): Promise<{ authorised: boolean; version?: number; until?: string | null; needsNewKey: boolean }>;
  current(): Promise<{ version: number; nextRotationAt: string | null }>;
  rotate(by: 'admin', actor?: string): Promise<{ version: number }>;
  lockStatus?(userId: string): Promise<{ locked: boolean; until?: string | null; lockedUntil?: string | null } | null | undefined>;
  failedAttempts?(): Promise<number>;
}

/** What the chat needs from usage statistics (core/usage/usage-recorder.ts UsageRecorder fits this). */
export interface UsageSink {
  record(e: { userId: string; channel: string; tokensIn: number; tokensOut: number; latencyMs: number; outcome: string }): Promise<void>;
  touchUser?(u: { userId: string; displayName: string; channel: string }): Promise<void>;
  series?(range: '24h'): Promise<{ totals: UsageTotals }>;
}

export interface UsageTotals {
  messages: number;
  activeUsers: number;
  tokensIn: number;
  tokensOut: number;
  errors: number;
  latencyP50: number | null;
  latencyP95: number | null;
}

/**
 * 'resampled' / 'fallback' / 'blocked': a model reply that needed another try, was replaced by the
 * polite fallback line, or was (or answered) a blocked word (model/chat/reply.ts).
 */
export type ChatOutcome = 'ok' | 'error' | 'busy' | 'timeout' | 'denied' | 'limited' | Exclude<ReplyOutcome, 'ok'>;

export interface IncomingChat {
  /** 'wechat' | 'web' | …: recorded in usage. */
  channel: string;
  /** Unique across channels (the web chat prefixes its ids). */
  userId: string;
  displayName?: string;
  text: string;
  /** In a group the key is never accepted (it would be posted to everyone). */
  context?: 'private' | 'group';
  isOperator?: boolean;
  /** Streams the model's text as it is generated (web chat). */
  onText?: (chunk: string) => void;
  /** Called when the reply takes its unit of daily quota (the web chat notes it on its reply lock). */
  onQuotaTaken?: () => void;
  /** What was streamed is void: the reply is being generated again (or replaced). */
  onRetry?: () => void;
  signal?: AbortSignal;
}

export interface ChatReply {
  /** Ordered message parts to send; empty means send nothing. */
  parts: string[];
  outcome: ChatOutcome;
  /** What happened, for logs and tests. */
  kind:
    | 'ignored' | 'banned' | 'rate-limited' | 'quota' | 'how-to-get-key' | 'wrong-key' | 'locked' | 'key-changed'
    | 'verified' | 'verify-in-private' | 'non-text' | 'command' | 'reply' | 'unavailable' | 'busy' | 'timeout' | 'error'
    | 'interrupted';
  /** A real (well-formed) key guess failed: 'wrong-key', or the 'locked' its last try caused. */
  wrongKey?: boolean;
  /** The generation behind a 'reply'. */
  generation?: GenerationResult;
  /** The prompt sent to the model, as text (logs; tests compare with the format's own). */
  prompt?: string;
  /** The prompt as the chat format built it: ids and, for CDial-GPT, the token types the engine gets. */
  promptIds?: ChatPromptIds;
  /** Generations behind a 'reply' (1 unless the reply was resampled or replaced). */
  attempts?: number;
  /**
   * 'interrupted' (the generation was cancelled: shutdown, the web visitor left): the text
   * generated until then. It is never remembered as the bot's turn and costs no quota.
   */
  partial?: string;
}

/** A generation that ended before its turn did (cancelled, or its deadline passed mid-reply). */
class GenerationInterrupted extends Error {
  constructor(readonly partial: string) {
    super('generation interrupted');
    this.name = 'GenerationInterrupted';
  }
}

export interface ChatSessionDeps {
  store: Store;
  keys: KeyGate;
  usage: UsageSink;
  generator: TextGenerator;
  /** Default: the model's own chat format (its folder's chat_format.json or tokenizer). */
  format?: ChatFormat;
  /** The blocked-words filter on replies (BOT_BLOCKED_WORDS_FILE + the built-in list). */
  blockedWords?: BlockedWords;
  config: BotConfig;
  keyShape: KeyShape;
  logger?: Logger;
  /** Fixed sampling seed (tests, reproducible demos); a fresh one per reply otherwise. */
  seed?: number;
  now?: () => number;
}

export class ChatSession {
  readonly memory: ConversationMemory;
  readonly limits: Limits;
  readonly bans: Bans;
  readonly texts: BotTexts;
  /** The reply pipeline shared with the web chat and `npm run chat` (model/chat/reply.ts). */
  readonly responder: ChatResponder;
  private readonly log: Logger;
  /** Display names already written to the usage index (saves a round trip per message). */
  private readonly knownNames = new Map<string, string>();

  constructor(private readonly deps: ChatSessionDeps) {
    const c = deps.config;
    this.log = deps.logger ?? silentLogger;
    this.memory = new ConversationMemory(deps.store, {
      maxTurns: c.BOT_MEMORY_TURNS, maxTokens: c.BOT_MEMORY_TOKENS, idleMs: c.BOT_MEMORY_IDLE_MINUTES * 60_000,
      countTokens: (t) => deps.generator.countTokens(t),
    });
    this.limits = new Limits(deps.store, {
      rateLimit: c.BOT_RATE_LIMIT, windowMs: c.BOT_RATE_WINDOW_SECONDS * 1000, dailyQuota: c.BOT_DAILY_QUOTA,
      timeZone: c.BOT_QUOTA_TZ, now: deps.now,
    });
    this.bans = new Bans(deps.store);
    this.texts = new BotTexts({ keyHelp: c.BOT_KEY_HELP_TEXT, timeZone: c.BOT_QUOTA_TZ, now: deps.now });
    this.responder = new ChatResponder(deps.generator, {
      format: deps.format, blockedWords: deps.blockedWords, checkInput: c.BOT_BLOCK_INPUT, maxTries: c.BOT_REPLY_TRIES,
    });
  }

  /** The live settings (the admin panel's runtime settings change fields of this object in place). */
  get config(): BotConfig {
    return this.deps.config;
  }

  /** Handles one message; never rejects (every failure becomes a polite reply and an outcome). */
  async handle(msg: IncomingChat): Promise<ChatReply> {
    const { reply, settled } = await this.respond(msg);
    await settled;
    return reply;
  }

  /**
   * Like handle(), but resolves as soon as the reply is known; `settled` resolves once the
   * bookkeeping that need not delay the chatter (memory, usage) is written. Neither rejects.
   * The next message of the same chat must wait for `settled` (its memory depends on it).
   */
  async respond(msg: IncomingChat): Promise<{ reply: ChatReply; settled: Promise<void> }> {
    const started = performance.now();
    const raw = msg.text.trim();
    if (!raw) return { reply: { parts: [], outcome: 'ok', kind: 'ignored' }, settled: Promise.resolve() };
    const { text, cut } = truncateInput(raw, this.deps.config.BOT_MAX_INPUT_CHARS);
    let reply: ChatReply;
    let remember: { turn: Turn; epoch: string } | null = null;
    let quotaTaken = false;
    try {
      const routed = await this.route(msg, text, () => {
        quotaTaken = true;
      });
      reply = routed.reply;
      remember = routed.remember ?? null;
      if (cut && reply.kind === 'reply') reply.parts.unshift(this.texts.inputCut(this.deps.config.BOT_MAX_INPUT_CHARS));
    } catch (err) {
      reply = this.failure(err, msg);
      if (quotaTaken && reply.outcome !== 'ok') {
        // The user got no answer from the model: the attempt should not cost them quota.
        await this.limits.refund(msg.userId).catch(() => undefined);
      }
    }
    const latencyMs = performance.now() - started;
    // Memory and usage are independent writes: sent together, they share one round trip.
    const settled = Promise.all([
      remember
        ? this.memory.append(msg.userId, remember.turn, remember.epoch).catch((err: unknown) => {
          this.log.warn({ err: (err as Error).message, userId: msg.userId }, 'turn not remembered');
        })
        : undefined,
      this.record(msg, reply, latencyMs),
    ]).then(() => undefined);
    return { reply, settled };
  }

  /**
   * An image, voice message, file or sticker: a short polite reply (nothing for banned or
   * rate-limited users, so a burst of stickers does not get a burst of answers).
   */
  async handleNonText(msg: Omit<IncomingChat, 'text'>): Promise<ChatReply> {
    const started = performance.now();
    let reply: ChatReply;
    try {
      if (await this.bans.isBanned(msg.userId)) reply = { parts: [], outcome: 'denied', kind: 'banned' };
      else if (!(await this.limits.hit(msg.userId, false)).allowed) reply = { parts: [], outcome: 'limited', kind: 'rate-limited' };
      else reply = { parts: [this.texts.nonText()], outcome: 'ok', kind: 'non-text' };
    } catch (err) {
      reply = this.failure(err, { ...msg, text: '' });
    }
    await this.record({ ...msg, text: '' }, reply, performance.now() - started);
    return reply;
  }

  private async route(
    msg: IncomingChat, text: string, tookQuota: () => void,
  ): Promise<{ reply: ChatReply; remember?: { turn: Turn; epoch: string } }> {
    const reply = (r: ChatReply): { reply: ChatReply } => ({ reply: r });
    const { keys, config } = this.deps;
    // Independent reads in parallel: one round trip instead of two.
    const [banned, auth] = await Promise.all([this.bans.isBanned(msg.userId), keys.authorisation(msg.userId)]);
    if (banned) return reply({ parts: [this.texts.banned()], outcome: 'denied', kind: 'banned' });
    const command = parseCommand(text);

    if (!auth.authorised) {
      const candidate = normaliseAttempt(text, this.deps.keyShape);
      // A key sent in private costs nothing of the chat allowance (the key's own lockout limits
      // guessing); everything else from a chatter without a key counts as a message.
      if (candidate.kind !== 'candidate' || msg.context === 'group') {
        const limited = await this.limits.hit(msg.userId, false);
        if (!limited.allowed) return reply(this.limitedReply(limited));
      }
      if (command?.name === 'help') return reply({ parts: [this.texts.howToGetKey()], outcome: 'denied', kind: 'how-to-get-key' });
      if (msg.context === 'group') {
        return reply({ parts: [candidate.kind === 'candidate' ? this.texts.keyNotInGroup() : this.texts.verifyInPrivate()], outcome: 'denied', kind: 'verify-in-private' });
      }
      if (candidate.kind === 'candidate') {
        const res = await keys.verify(msg.userId, text);
        if (res.ok) return reply({ parts: [this.texts.welcome(!!msg.isOperator)], outcome: 'ok', kind: 'verified' });
        if (res.reason === 'locked') {
          const text = res.global ? this.texts.verificationPaused(res.lockedUntil) : this.texts.lockedOut(res.lockedUntil);
          return reply({ parts: [text], outcome: 'denied', kind: 'locked', ...(res.lockedNow ? { wrongKey: true } : {}) });
        }
        if (res.reason === 'wrong') return reply({ parts: [this.texts.wrongKey(res.attemptsLeft)], outcome: 'denied', kind: 'wrong-key', wrongKey: true });
      }
      if (auth.needsNewKey && auth.version !== undefined && (await this.firstReauthNotice(msg.userId, auth.version))) {
        return reply({ parts: [this.texts.keyChanged()], outcome: 'denied', kind: 'key-changed' });
      }
      const lock = keys.lockStatus ? await keys.lockStatus(msg.userId) : null;
      if (lock?.locked) return reply({ parts: [this.texts.lockedOut(lock.lockedUntil ?? lock.until ?? undefined)], outcome: 'denied', kind: 'locked' });
      return reply({ parts: [this.texts.howToGetKey()], outcome: 'denied', kind: 'how-to-get-key' });
    }

    if (command) {
      const limited = await this.limits.hit(msg.userId, false);
      if (!limited.allowed) return reply(this.limitedReply(limited));
      return reply({ parts: [await this.runCommand(command.name, msg, auth.until ?? null)], outcome: 'ok', kind: 'command' });
    }

    // The history read is harmless if the limit then says no: both in one round trip.
    // The memory's epoch goes with the turn: a #reset / clear during generation wins (see conversation.ts).
    const [limited, memory] = await Promise.all([this.limits.hit(msg.userId, true), this.memory.read(msg.userId)]);
    if (!limited.allowed) return reply(this.limitedReply(limited));
    if (config.BOT_DAILY_QUOTA > 0) {
      tookQuota();
      msg.onQuotaTaken?.();
    }

    const sampling = this.sampling();
    const r = await this.responder.reply({
      history: toChatTurns(memory.turns),
      message: text,
      sampling,
      seed: sampling.seed,
      timeoutMs: config.BOT_GENERATION_TIMEOUT_MS,
      signal: msg.signal,
      onText: msg.onText,
      onRetry: msg.onRetry,
    });
    const prompt = r.prompt ? this.deps.generator.decode(r.prompt.ids) : undefined;
    // Tokens over every try: resampling costs what it costs.
    const generation = r.generation ? { ...r.generation, promptTokens: r.promptTokens, completionTokens: r.completionTokens } : undefined;
    // A cut-off reply is not a turn of the conversation: neither it nor the message that asked for
    // it is remembered (the chatter is asked to send the message again), and the quota comes back.
    if (generation?.finishReason === 'timeout') throw new GeneratorTimeoutError();
    if (generation?.finishReason === 'aborted') throw new GenerationInterrupted(r.text);
    const outcome: ChatOutcome = r.outcome;
    const answer = r.text;
    if (r.outcome !== 'ok') this.log.info({ userId: msg.userId, outcome: r.outcome, rejected: r.rejected }, 'model reply replaced or resampled');
    const replied: ChatReply = { parts: splitReply(answer, config.BOT_REPLY_PART_CHARS), outcome, kind: 'reply', generation, prompt, promptIds: r.prompt, attempts: r.attempts };
    // The fallback line is not the model's turn: it stays out of the memory (and of later prompts).
    if (r.outcome === 'fallback' || r.outcome === 'blocked') return { reply: replied };
    return { reply: replied, remember: { turn: { user: text, bot: answer }, epoch: memory.epoch } };
  }

  /** The sampling options every chat reply uses (tests reuse them to reproduce a reply). */
  sampling(): SamplingOptions {
    const c = this.deps.config;
    return {
      maxNewTokens: replyTokenBudget(c, this.deps.generator),
      temperature: c.BOT_TEMPERATURE,
      topK: c.BOT_TOP_K,
      topP: c.BOT_TOP_P,
      repetitionPenalty: c.BOT_REPETITION_PENALTY,
      seed: this.deps.seed ?? Math.floor(Math.random() * 2 ** 31),
    };
  }

  private async runCommand(name: string, msg: IncomingChat, until: string | null): Promise<string> {
    const { keys, usage, generator } = this.deps;
    switch (name) {
      case 'help':
        return this.texts.help(!!msg.isOperator);
      case 'reset':
        return this.texts.reset(await this.memory.clear(msg.userId));
      case 'status': {
        const [quota, current, turns] = await Promise.all([this.limits.status(msg.userId), keys.current(), this.memory.size(msg.userId)]);
        return this.texts.status({
          authorisedUntil: until, nextRotationAt: current.nextRotationAt, remainingToday: quota.remainingToday,
          dailyQuota: quota.dailyQuota, quotaResetsAt: quota.resetsAt, memoryTurns: turns,
        });
      }
      case 'rotate': {
        if (!msg.isOperator) return this.texts.operatorOnly();
        const rotated = await keys.rotate('admin', `${msg.channel}:${msg.userId}`);
        this.log.info({ version: rotated.version, by: msg.userId }, 'key rotated by operator command');
        return this.texts.rotated(rotated.version);
      }
      case 'stats': {
        if (!msg.isOperator) return this.texts.operatorOnly();
        const failed = keys.failedAttempts ? await keys.failedAttempts() : undefined;
        const s = generator.stats();
        const lines = ['📊 24h:'];
        if (usage.series) {
          const t = (await usage.series('24h')).totals;
          lines.push(`messages ${t.messages}, active users ${t.activeUsers}, errors ${t.errors}`);
          lines.push(`tokens in ${t.tokensIn}, out ${t.tokensOut}`);
          if (t.latencyP50 !== null) lines.push(`latency p50 ${Math.round(t.latencyP50)} ms, p95 ${Math.round(t.latencyP95 ?? 0)} ms`);
        }
        if (failed !== undefined) lines.push(`failed key attempts (all time): ${failed}`);
        lines.push(`model ${generator.info().name}: active ${s.active}, queued ${s.queued}/${s.maxQueue}`);
        return lines.join('\n');
      }
      default:
        return this.texts.unknownCommand();
    }
  }

  private limitedReply(d: Exclude<Awaited<ReturnType<Limits['hit']>>, { allowed: true }>): ChatReply {
    if (d.reason === 'rate') return { parts: [this.texts.rateLimited(d.retryAt)], outcome: 'limited', kind: 'rate-limited' };
    return { parts: [this.texts.quotaExceeded(d.retryAt, this.deps.config.BOT_DAILY_QUOTA)], outcome: 'limited', kind: 'quota' };
  }

  /** True the first time a user who must re-authorise for key generation `version` writes. */
  private async firstReauthNotice(userId: string, version: number): Promise<boolean> {
    const key = this.deps.store.key('bot', 'reauth', userId, version);
    return (await guard(() => this.deps.store.redis.set(key, '1', 'EX', 30 * 86_400, 'NX'))) === 'OK';
  }

  private failure(err: unknown, msg: IncomingChat): ChatReply {
    const tryAgain = [this.texts.tryAgainShortly()];
    if (err instanceof GeneratorBusyError) return { parts: tryAgain, outcome: 'busy', kind: 'busy' };
    if (err instanceof GeneratorTimeoutError) return { parts: tryAgain, outcome: 'timeout', kind: 'timeout' };
    if (err instanceof GenerationInterrupted) return { parts: tryAgain, outcome: 'error', kind: 'interrupted', partial: err.partial };
    if (err instanceof RedisUnavailableError) {
      this.log.warn({ userId: msg.userId, channel: msg.channel }, 'redis unavailable while handling a chat message');
      return { parts: tryAgain, outcome: 'error', kind: 'unavailable' };
    }
    if ((err as Error)?.name === 'AbortError' || msg.signal?.aborted) return { parts: [], outcome: 'error', kind: 'error' };
    this.log.error({ err, userId: msg.userId, channel: msg.channel }, 'chat message failed');
    return { parts: tryAgain, outcome: 'error', kind: 'error' };
  }

  private async record(msg: IncomingChat, reply: ChatReply, latencyMs: number): Promise<void> {
    const { usage } = this.deps;
    const name = msg.displayName ?? msg.userId;
    const nameChanged = this.knownNames.get(msg.userId) !== name;
    try {
      await Promise.all([
        usage.record({
          userId: msg.userId, channel: msg.channel, outcome: reply.outcome, latencyMs: Math.round(latencyMs * 100) / 100,
          tokensIn: reply.generation?.promptTokens ?? 0, tokensOut: reply.generation?.completionTokens ?? 0,
        }),
        nameChanged ? usage.touchUser?.({ userId: msg.userId, displayName: name, channel: msg.channel }) : undefined,
      ]);
      if (nameChanged) {
        if (this.knownNames.size >= 10_000) this.knownNames.clear();
        this.knownNames.set(msg.userId, name);
      }
    } catch (err) {
      // Statistics must never cost the chatter their reply (e.g. Redis went away meanwhile).
      this.log.warn({ err: (err as Error).message, userId: msg.userId }, 'usage not recorded');
    }
  }
}

/**
 * New tokens for one reply: BOT_MAX_NEW_TOKENS, but half the context at most, so a reply never
 * squeezes the conversation out of the prompt (and a small model's context does not turn the
 * setting into a rejected request).
 */
export function replyTokenBudget(config: Pick<BotConfig, 'BOT_MAX_NEW_TOKENS'>, generator: Pick<TextGenerator, 'info'>): number {
  return Math.max(1, Math.min(config.BOT_MAX_NEW_TOKENS, Math.floor(generator.info().contextLength / 2)));
}

/** Remembered exchanges as the chat format's turns. */
export function toChatTurns(turns: Turn[]): ChatTurn[] {
  return turns.flatMap((t) => [{ role: 'user' as const, text: t.user }, { role: 'bot' as const, text: t.bot }]);
}
