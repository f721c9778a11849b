// Chat settings the operator changes at run time from the admin panel (generation parameters,
// rate limit and quota, greeting texts). Defaults come from the environment (BOT_*); overrides
// live in one Redis hash shared by every process, and a pub/sub message tells every process to
// apply them at once. Used by server/ (the panel) and by whoever owns a ChatSession (bot, web chat).
import { z } from 'zod';
import { guard, type Store } from '../redis.js';
import type { Logger } from '../logger.js';
import { watchChannel } from '../watch-channel.js';

export const chatSettingsSchema = z.object({
  temperature: z.number().min(0).max(2),
  topK: z.number().int().min(0).max(100_000),
  topP: z.number().gt(0).max(1),
  maxNewTokens: z.number().int().min(1).max(1024),
  rateLimit: z.number().int().min(1).max(10_000),
  rateWindowSeconds: z.number().int().min(1).max(86_400),
  dailyQuota: z.number().int().min(0).max(1_000_000),
  /** Shown to chatters who have not sent the key yet (how to get it). */
  keyHelpText: z.string().trim().min(1).max(500),
  /** Greeting after a successful verification (empty: the built-in greeting). */
  welcomeText: z.string().trim().max(500),
  /** The web chat's greeting above the key field. */
  webGreeting: z.string().trim().max(500),
});

export type ChatSettings = z.infer<typeof chatSettingsSchema>;
export type ChatSettingsPatch = Partial<ChatSettings>;

export interface SettingsView {
  values: ChatSettings;
  defaults: ChatSettings;
  /** Fields that differ from the environment's defaults. */
  overridden: (keyof ChatSettings)[];
  updatedAt?: string;
  actor?: string;
}

/** The environment's values, from a BotConfig (bot/config.ts). */
export function defaultChatSettings(c: {
  BOT_TEMPERATURE: number; BOT_TOP_K: number; BOT_TOP_P: number; BOT_MAX_NEW_TOKENS: number;
  BOT_RATE_LIMIT: number; BOT_RATE_WINDOW_SECONDS: number; BOT_DAILY_QUOTA: number; BOT_KEY_HELP_TEXT: string;
}): ChatSettings {
  return {
    temperature: c.BOT_TEMPERATURE, topK: c.BOT_TOP_K, topP: c.BOT_TOP_P, maxNewTokens: c.BOT_MAX_NEW_TOKENS,
    rateLimit: c.BOT_RATE_LIMIT, rateWindowSeconds: c.BOT_RATE_WINDOW_SECONDS, dailyQuota: c.BOT_DAILY_QUOTA,
    keyHelpText: c.BOT_KEY_HELP_TEXT, welcomeText: '', webGreeting: 'Enter the access key from our official account to start chatting.',
  };
}

const FIELDS = Object.keys(chatSettingsSchema.shape) as (keyof ChatSettings)[];

export class RuntimeSettings {
  constructor(
    private readonly store: Store,
    readonly defaults: ChatSettings,
    private readonly log?: Logger,
  ) {}

  private get key(): string {
    return this.store.key('settings', 'chat');
  }

  private get channel(): string {
    return this.store.key('settings', 'events');
  }

  async get(): Promise<SettingsView> {
    const raw = await guard(() => this.store.redis.hgetall(this.key));
    const values: ChatSettings = { ...this.defaults };
    const overridden: (keyof ChatSettings)[] = [];
    for (const f of FIELDS) {
      if (raw[f] === undefined) continue;
      try {
        const parsed = chatSettingsSchema.shape[f].safeParse(JSON.parse(raw[f]));
        if (parsed.success) {
          (values as Record<string, unknown>)[f] = parsed.data;
          if (parsed.data !== this.defaults[f]) overridden.push(f);
        }
      } catch {
        this.log?.warn({ field: f }, 'ignoring an unreadable stored chat setting');
      }
    }
    return { values, defaults: this.defaults, overridden, updatedAt: raw._updatedAt, actor: raw._actor };
  }

  /** Validates and stores `patch` (unknown fields are refused); every process applies it. */
  async update(patch: unknown, actor: string): Promise<SettingsView> {
    const clean = chatSettingsSchema.partial().strict().parse(patch);
    const fields: Record<string, string> = { _updatedAt: new Date().toISOString(), _actor: actor };
    for (const [k, v] of Object.entries(clean)) fields[k] = JSON.stringify(v);
    await guard(() => this.store.redis.multi().hset(this.key, fields).publish(this.channel, 'changed').exec());
    return this.get();
  }

  /** Back to the environment's defaults. */
  async reset(actor: string): Promise<SettingsView> {
    await guard(() =>
      this.store.redis.multi().del(this.key).hset(this.key, { _updatedAt: new Date().toISOString(), _actor: actor }).publish(this.channel, 'changed').exec(),
    );
    return this.get();
  }

  /**
   * Calls `listener` with the current values now and after every change made by any process.
   * Returns a function that stops watching.
   */
  async watch(listener: (values: ChatSettings) => void): Promise<() => Promise<void>> {
    return watchChannel(this.store, this.channel, () =>
      this.get().then(
        (v) => listener(v.values),
        (err: Error) => this.log?.warn({ err: err.message }, 'chat settings not reloaded'),
      ));
  }
}

/** The live objects a ChatSession reads (structural: bot/ChatSession's config, limits and texts fit). */
export interface ChatSettingsTarget {
  config: {
    BOT_TEMPERATURE: number; BOT_TOP_K: number; BOT_TOP_P: number; BOT_MAX_NEW_TOKENS: number;
    BOT_RATE_LIMIT: number; BOT_RATE_WINDOW_SECONDS: number; BOT_DAILY_QUOTA: number; BOT_KEY_HELP_TEXT: string;
  };
  limits?: { options: { rateLimit: number; windowMs: number; dailyQuota: number } };
  texts?: { options: { keyHelp: string }; welcome(isOperator: boolean): string; help(isOperator: boolean): string };
}

/** Applies settings to a running chat in place (the chat reads these fields at every message). */
export function applyChatSettings(v: ChatSettings, t: ChatSettingsTarget): void {
  Object.assign(t.config, {
    BOT_TEMPERATURE: v.temperature, BOT_TOP_K: v.topK, BOT_TOP_P: v.topP, BOT_MAX_NEW_TOKENS: v.maxNewTokens,
    BOT_RATE_LIMIT: v.rateLimit, BOT_RATE_WINDOW_SECONDS: v.rateWindowSeconds, BOT_DAILY_QUOTA: v.dailyQuota,
    BOT_KEY_HELP_TEXT: v.keyHelpText,
  });
  if (t.limits) Object.assign(t.limits.options, { rateLimit: v.rateLimit, windowMs: v.rateWindowSeconds * 1000, dailyQuota: v.dailyQuota });
  if (t.texts) {
    t.texts.options.keyHelp = v.keyHelpText;
    const texts = t.texts;
    const builtIn = Object.getPrototypeOf(texts).welcome as (isOperator: boolean) => string;
    // An own property shadows the class's greeting only while a custom one is set.
    if (v.welcomeText) texts.welcome = (isOperator: boolean) => `${v.welcomeText}\n${texts.help(isOperator)}`;
    else if (builtIn) texts.welcome = builtIn.bind(texts);
  }
}
