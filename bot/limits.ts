// Per-user rate limit (sliding window over a sorted set) and daily quota, checked and counted in
// ONE Lua script so that concurrent messages and several processes sharing Redis never overshoot.
// Shared by the WeChat bot and the web chat: a user's limits are the same on every channel.
import { randomBytes } from 'node:crypto';

// Unique sorted-set members without a CSPRNG call per message: process tag + counter.
const PROCESS_TAG = randomBytes(6).toString('hex');
let counter = 0;
import { guard, type Store } from '../core/redis.js';

export interface LimitsOptions {
  /** Messages allowed per window. */
  rateLimit: number;
  windowMs: number;
  /** Model replies per day; 0 = unlimited. */
  dailyQuota: number;
  /** The time zone whose midnight resets the quota. */
  timeZone: string;
  now?: () => number;
}

export type LimitDecision =
  | { allowed: true; usedToday: number; remainingToday: number | null }
  | { allowed: false; reason: 'rate'; retryAt: Date; retryAfterMs: number }
  | { allowed: false; reason: 'quota'; usedToday: number; retryAt: Date };

export interface QuotaStatus {
  usedToday: number;
  /** null when the quota is off. */
  remainingToday: number | null;
  dailyQuota: number;
  resetsAt: Date;
}

// KEYS: rate zset, quota counter. ARGV: now, windowMs, limit, quota (0 = off), quota TTL s,
// unique member, consume quota (1/0). Rejected hits are not recorded, so hammering the bot while
// limited does not push the window further out.
const HIT_SCRIPT = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local retry = window
  if oldest[2] then retry = tonumber(oldest[2]) + window - now end
  return {0, 'rate', retry, 0}
end
local quota = tonumber(ARGV[4])
local consume = ARGV[7] == '1'
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if consume and quota > 0 and used >= quota then
  return {0, 'quota', 0, used}
end
redis.call('ZADD', KEYS[1], now, ARGV[6])
redis.call('PEXPIRE', KEYS[1], window)
if consume then
  used = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
end
return {1, '', 0, used}
`;

/** Key names, exported so the admin side and tests act on exactly what the bot uses. */
export const limitKeys = {
  rate: (store: Store, userId: string) => store.key('bot', 'rate', userId),
  quota: (store: Store, userId: string, day: string) => store.key('bot', 'quota', day, userId),
};

export class Limits {
  private readonly now: () => number;
  private readonly dayFormat: Intl.DateTimeFormat;
  private readonly wallFormat: Intl.DateTimeFormat;

  constructor(
    private readonly store: Store,
    readonly options: LimitsOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.dayFormat = new Intl.DateTimeFormat('en-CA', {
      timeZone: options.timeZone, year: 'numeric', month: '2-digit', day: '2-digit',
    });
    this.wallFormat = new Intl.DateTimeFormat('en-US', {
      timeZone: options.timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    store.redis.defineCommand('nemoLimitHit', { numberOfKeys: 2, lua: HIT_SCRIPT });
  }

  /**
   * Counts one message against the rate limit and, with `consumeQuota`, one reply against the
   * daily quota. Nothing is counted when the answer is "not allowed".
   */
  async hit(userId: string, consumeQuota: boolean): Promise<LimitDecision> {
    const now = this.now();
    const day = this.day(now);
    const member = `${now}-${PROCESS_TAG}-${(counter = (counter + 1) % Number.MAX_SAFE_INTEGER)}`;
    const res = (await guard(() =>
      (this.store.redis as unknown as NemoLimitCommands).nemoLimitHit(
        limitKeys.rate(this.store, userId), limitKeys.quota(this.store, userId, day),
        now, this.options.windowMs, this.options.rateLimit, this.options.dailyQuota, 2 * 86_400,
        member, consumeQuota ? '1' : '0',
      ),
    )) as [number, string, number, number];
    const [ok, reason, retryMs, used] = res;
    if (ok === 1) {
      const quota = this.options.dailyQuota;
      return { allowed: true, usedToday: Number(used), remainingToday: quota > 0 ? Math.max(0, quota - Number(used)) : null };
    }
    if (reason === 'rate') {
      const retryAfterMs = Math.max(0, Number(retryMs));
      return { allowed: false, reason: 'rate', retryAfterMs, retryAt: new Date(now + retryAfterMs) };
    }
    return { allowed: false, reason: 'quota', usedToday: Number(used), retryAt: this.nextMidnight(now) };
  }

  /** Gives back one unit of quota (the reply failed, so it should not count), on the day of `at`. */
  async refund(userId: string, at = this.now()): Promise<void> {
    const key = limitKeys.quota(this.store, userId, this.day(at));
    await guard(() => this.store.redis.eval(
      "local v = tonumber(redis.call('GET', KEYS[1]) or '0') if v > 0 then redis.call('DECR', KEYS[1]) end return 0",
      1, key,
    ));
  }

  async status(userId: string): Promise<QuotaStatus> {
    const now = this.now();
    const used = Number((await guard(() => this.store.redis.get(limitKeys.quota(this.store, userId, this.day(now))))) ?? 0);
    const quota = this.options.dailyQuota;
    return { usedToday: used, dailyQuota: quota, remainingToday: quota > 0 ? Math.max(0, quota - used) : null, resetsAt: this.nextMidnight(now) };
  }

  /** Clears today's quota and the rate window (admin action). */
  async reset(userId: string): Promise<void> {
    const now = this.now();
    await guard(() => this.store.redis.del(limitKeys.rate(this.store, userId), limitKeys.quota(this.store, userId, this.day(now))));
  }

  /** The quota day (YYYY-MM-DD in the configured time zone). */
  day(ms: number): string {
    return this.dayFormat.format(new Date(ms));
  }

  /** The next local midnight in the configured time zone, when the quota resets. */
  nextMidnight(ms: number): Date {
    const [y, m, d] = this.day(ms).split('-').map(Number);
    // Offset of the zone at `ms`: local wall-clock time read as UTC minus the real instant.
    const parts = Object.fromEntries(this.wallFormat.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
    const wall = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
    const offset = wall - Math.floor(ms / 1000) * 1000;
    return new Date(Date.UTC(y, m - 1, d + 1) - offset);
  }
}

interface NemoLimitCommands {
  nemoLimitHit(...args: (string | number)[]): Promise<unknown>;
}
