// One running process per bot name. A bot takes a lease on its name in Redis before it starts
// (SET NX with a TTL, renewed every third of it); a second process with the same BOT_NAME is
// refused with a message saying which process holds it. A process that dies without releasing
// the lease (kill -9, power loss) holds it for at most the TTL; a process started meanwhile waits
// for it (acquireWhenFree) and takes over then. If Redis is away for longer than
// the TTL and another process takes the name meanwhile, the renewal notices and the bot stops.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { silentLogger, type Logger } from '../core/logger.js';
import { guard, type Store } from '../core/redis.js';
import { botLeaseKey, clearBotWaiting, parseHolder, setBotWaiting, type LeaseHolder } from './login-state.js';

export class BotNameInUseError extends Error {
  constructor(readonly botName: string, readonly holder: LeaseHolder | null, ttlMs = DEFAULT_LEASE_MS) {
    super(
      `another WeChat bot named "${botName}" is running${holder ? ` (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt})` : ''}` +
        ' on this Redis: stop it, set BOT_ENABLED=false for a process that should only serve HTTP, or give this bot another' +
        ` BOT_NAME (one per WeChat account). A crashed process releases the name within ${Math.ceil(ttlMs / 1000)} s.`,
    );
    this.name = 'BotNameInUseError';
  }
}

export const DEFAULT_LEASE_MS = 30_000;

// KEYS: lease. ARGV: holder JSON, ttl ms. 1 renewed, 2 taken again (it had expired), 0 held by another.
const RENEW_LUA = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`;
const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface InstanceLeaseOptions {
  /** How long a lease outlives its process (default 30 s); renewed every third of it. */
  ttlMs?: number;
  /** Called once when another process has taken the name (the bot must stop). */
  onLost?: () => void;
  logger?: Logger;
}

export class InstanceLease {
  private readonly key: string;
  private readonly ttlMs: number;
  private readonly log: Logger;
  private value = '';
  private timer: NodeJS.Timeout | null = null;
  private holding = false;
  private waitingSince: string | null = null;

  constructor(
    private readonly store: Store,
    readonly botName: string,
    private readonly options: InstanceLeaseOptions = {},
  ) {
    this.key = botLeaseKey(store, botName);
    this.ttlMs = options.ttlMs ?? DEFAULT_LEASE_MS;
    this.log = options.logger ?? silentLogger;
  }

  get held(): boolean {
    return this.holding;
  }

  /** Takes the name or rejects with BotNameInUseError (RedisUnavailableError when Redis is away). */
  async acquire(): Promise<void> {
    if (this.holding) return;
    const holder: LeaseHolder = { token: randomBytes(12).toString('hex'), host: os.hostname(), pid: process.pid, startedAt: new Date().toISOString() };
    const value = JSON.stringify(holder);
    const ok = await guard(() => this.store.redis.set(this.key, value, 'PX', this.ttlMs, 'NX'));
    if (ok !== 'OK') {
      const current = await guard(() => this.store.redis.get(this.key)).catch(() => null);
      throw new BotNameInUseError(this.botName, parseHolder(current), this.ttlMs);
    }
    this.value = value;
    this.holding = true;
    this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /**
   * Takes the name as soon as it is free: tries, and while another process holds it, marks this
   * one as waiting (shown in /readyz and the panel) and tries again when the holder's lease runs
   * out (at the latest one lease period later). Resolves false when `signal` aborts first.
   */
  async acquireWhenFree(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      try {
        await this.acquire();
        await clearBotWaiting(this.store, this.botName).catch(() => undefined);
        this.waitingSince = null;
        return true;
      } catch (err) {
        if (err instanceof BotNameInUseError) {
          await this.markWaiting().catch(() => undefined);
        } else {
          this.log.debug({ err: (err as Error).message, bot: this.botName }, 'bot name lease not taken; trying again');
        }
      }
      const left = Number(await guard(() => this.store.redis.pttl(this.key)).catch(() => this.ttlMs));
      await sleep(left > 0 ? Math.min(left + 20, this.ttlMs) : Math.min(1000, this.ttlMs), signal);
    }
    await clearBotWaiting(this.store, this.botName).catch(() => undefined);
    this.waitingSince = null;
    return false;
  }

  /** Shows this process as waiting for the name (for two lease periods unless marked again). */
  async markWaiting(): Promise<void> {
    this.waitingSince ??= new Date().toISOString();
    await setBotWaiting(this.store, this.botName, { host: os.hostname(), pid: process.pid, since: this.waitingSince }, 2 * this.ttlMs);
  }

  /** Gives the name up (only if this process still holds it). */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.holding) return;
    this.holding = false;
    await guard(() => this.store.redis.eval(RELEASE_LUA, 1, this.key, this.value)).catch((err: unknown) => {
      this.log.warn({ err: (err as Error).message, bot: this.botName }, 'could not release the bot name (it expires by itself)');
    });
  }

  private async renew(): Promise<void> {
    if (!this.holding) return;
    let res: unknown;
    try {
      res = await guard(() => this.store.redis.eval(RENEW_LUA, 1, this.key, this.value, this.ttlMs));
    } catch (err) {
      // Redis away: keep running; the next renewal takes the name again if it expired meanwhile.
      this.log.debug({ err: (err as Error).message, bot: this.botName }, 'bot name lease not renewed');
      return;
    }
    if (Number(res) === 0 && this.holding) {
      this.holding = false;
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      this.log.error({ bot: this.botName }, 'another process has taken this bot name (Redis was unreachable for longer than the lease); this bot stops');
      this.options.onLost?.();
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
