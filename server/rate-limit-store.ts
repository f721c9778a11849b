// A Redis store for express-rate-limit, so limits hold across every server process sharing Redis.
// Each counter is one key: INCR, and PEXPIRE NX starts the window at the first hit (fixed window).
import type { ClientRateLimitInfo, Options, Store as RateStore } from 'express-rate-limit';
import { guard, type Store } from '../core/redis.js';

export class RedisRateLimitStore implements RateStore {
  windowMs = 60_000;
  readonly localKeys = false;
  readonly prefix: string;

  constructor(
    private readonly store: Store,
    name: string,
  ) {
    this.prefix = store.key('ratelimit', name, '');
  }

  init(options: Options): void {
    this.windowMs = options.windowMs;
  }

  private info(hits: number, pttl: number): ClientRateLimitInfo {
    return { totalHits: hits, resetTime: new Date(Date.now() + (pttl > 0 ? pttl : this.windowMs)) };
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const k = this.prefix + key;
    const res = await guard(() => this.store.redis.multi().get(k).pttl(k).exec());
    const hits = Number(res?.[0]?.[1] ?? 0);
    return hits ? this.info(hits, Number(res?.[1]?.[1] ?? -1)) : undefined;
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    const k = this.prefix + key;
    const res = await guard(() => this.store.redis.multi().incr(k).pexpire(k, this.windowMs, 'NX').pttl(k).exec());
    return this.info(Number(res?.[0]?.[1] ?? 1), Number(res?.[2]?.[1] ?? -1));
  }

  async decrement(key: string): Promise<void> {
    const k = this.prefix + key;
    // Never below zero, and never create a key that would live forever.
    await guard(() =>
      this.store.redis.eval("local v = redis.call('GET', KEYS[1]); if v and tonumber(v) > 0 then redis.call('DECR', KEYS[1]) end; return 0", 1, k),
    );
  }

  async resetKey(key: string): Promise<void> {
    await guard(() => this.store.redis.del(this.prefix + key));
  }
}
