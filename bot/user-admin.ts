// The admin panel's Users actions (ban/unban, reset quota, clear memory, per-user chat state),
// acting on exactly the Redis keys the bot and the web chat use.
import type { Store } from '../core/redis.js';
import { Bans, type BanEntry } from './bans.js';
import type { BotConfig } from './config.js';
import { ConversationMemory } from './conversation.js';
import { Limits, type QuotaStatus } from './limits.js';

export interface UserChatState {
  userId: string;
  banned: BanEntry | null;
  quota: QuotaStatus;
  memoryTurns: number;
}

export class UserAdmin {
  readonly bans: Bans;
  private readonly limits: Limits;
  private readonly memory: ConversationMemory;

  constructor(store: Store, config: Pick<BotConfig, 'BOT_RATE_LIMIT' | 'BOT_RATE_WINDOW_SECONDS' | 'BOT_DAILY_QUOTA' | 'BOT_QUOTA_TZ' | 'BOT_MEMORY_TURNS' | 'BOT_MEMORY_TOKENS' | 'BOT_MEMORY_IDLE_MINUTES'>) {
    this.bans = new Bans(store);
    this.limits = new Limits(store, {
      rateLimit: config.BOT_RATE_LIMIT, windowMs: config.BOT_RATE_WINDOW_SECONDS * 1000,
      dailyQuota: config.BOT_DAILY_QUOTA, timeZone: config.BOT_QUOTA_TZ,
    });
    // Token counts are only needed when appending, which the admin never does.
    this.memory = new ConversationMemory(store, {
      maxTurns: config.BOT_MEMORY_TURNS, maxTokens: config.BOT_MEMORY_TOKENS,
      idleMs: config.BOT_MEMORY_IDLE_MINUTES * 60_000, countTokens: () => 0,
    });
  }

  ban(userId: string, actor: string, reason = ''): Promise<BanEntry> {
    return this.bans.ban(userId, actor, reason);
  }

  /** False when the user was not banned. */
  unban(userId: string): Promise<boolean> {
    return this.bans.unban(userId);
  }

  listBanned(): Promise<BanEntry[]> {
    return this.bans.list();
  }

  /** Clears today's quota and the rate-limit window. */
  resetQuota(userId: string): Promise<void> {
    return this.limits.reset(userId);
  }

  /** Forgets the user's conversation; false when there was none. */
  clearMemory(userId: string): Promise<boolean> {
    return this.memory.clear(userId);
  }

  async state(userId: string): Promise<UserChatState> {
    const [banned, quota, memoryTurns] = await Promise.all([this.bans.get(userId), this.limits.status(userId), this.memory.size(userId)]);
    return { userId, banned, quota, memoryTurns };
  }
}
