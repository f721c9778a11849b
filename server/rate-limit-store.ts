// express-rate-limit's counters in Redis (rate-limit-redis), so limits hold across every server
// process sharing Redis. Keys are `<REDIS_PREFIX>ratelimit:<name>:<client>`; a fixed window
// starts at a client's first hit. Commands go through the shared connection and guard(), so while
// Redis is down a limited route answers 503 at once, like every other Redis-backed route.
import type { IncrementResponse } from 'express-rate-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import { guard, type Store } from '../core/redis.js';

// Never below zero, and never a key without expiry (see decrement()).
const DECREMENT_LUA = "local v = redis.call('GET', KEYS[1]); if v and tonumber(v) > 0 then redis.call('DECR', KEYS[1]) end; return 0";

export class RedisRateLimitStore extends RedisStore {
  private readonly store: Store;

  constructor(store: Store, name: string) {
    super({
      prefix: store.key('ratelimit', name, ''),
      sendCommand: (command: string, ...args: string[]) => guard(() => store.redis.call(command, ...args) as Promise<RedisReply>),
    });
    this.store = store;
    // express-rate-limit sets the window in init(); a store used directly sets windowMs itself.
    this.windowMs = 60_000;
  }

  /**
   * rate-limit-redis loads its script once, in init(), and keeps the promise: a load that failed
   * (Redis down at that moment) would fail every later hit. Load on first use, and again after a
   * failed load.
   */
  override async increment(key: string): Promise<IncrementResponse> {
    const loading = this.incrementScriptSha as Promise<string> | undefined;
    if (!loading) this.incrementScriptSha = this.loadIncrementScript();
    else {
      await loading.catch(() => {
        if (this.incrementScriptSha === loading) this.incrementScriptSha = this.loadIncrementScript();
      });
    }
    return super.increment(key);
  }

  /**
   * rate-limit-redis DECRs unconditionally: a request that ends after its window expired (or
   * after an admin reset the client) would leave the count at -1 in a key that never expires.
   */
  override async decrement(key: string): Promise<void> {
    await guard(() => this.store.redis.eval(DECREMENT_LUA, 1, this.prefixKey(key)));
  }
}
