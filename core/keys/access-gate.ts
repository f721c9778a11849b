// The gate in front of the chat: verifies key attempts (constant-time digest comparison, per-user
// lockout, a global circuit breaker against many fresh accounts) and answers whether a user is
// authorised. It never rotates; it only reads the keys the rotation wrote.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { silentLogger, type Logger } from '../logger.js';
import { guard, toStoreError, type Store } from '../redis.js';
import { DAY, defineKeyScripts, graceMs, HOUR, keyName, MINUTE, type KeyServiceConfig, type RedisWithScripts } from './key-records.js';
import { normaliseAttempt, type KeyShape } from './normalise.js';

export type VerifyResult =
  | { ok: true; version: number; authorisedUntil: string | null }
  | {
      ok: false;
      /**
       * empty: nothing that could be a key (whitespace, emoji only); malformed: not shaped like a
       * key (wrong length or characters, huge input) — neither costs a try; wrong: a real guess
       * that failed; locked: too many wrong guesses, or (global: true) the sybil circuit breaker.
       */
      reason: 'empty' | 'malformed' | 'wrong' | 'locked';
      attemptsLeft?: number;
      lockedUntil?: string;
      global?: boolean;
      /** locked by this very attempt: it was a real guess that failed, like `wrong`. */
      lockedNow?: boolean;
    };

export interface Authorisation {
  authorised: boolean;
  /** The key generation the user verified under. */
  version?: number;
  /** null: until the key rotates; an ISO time: a grace window or KEY_REAUTH period ends then. */
  until?: string | null;
  /** Was authorised under an older key and must now send the current one. */
  needsNewKey: boolean;
}

export interface LockStatus {
  locked: boolean;
  lockedUntil?: string;
  failures: number;
  attemptsLeft: number;
}

export interface BreakerStatus {
  tripped: boolean;
  /** Estimated failed attempts by never-authorised users over the last hour. */
  failuresLastHour: number;
  limit: number;
}

export interface AccessGateOptions {
  now?: () => Date;
  /** See KeyServiceOptions.autoPipelining. */
  autoPipelining?: boolean;
  /** Creates the first key when Redis holds none (the rotation's job). */
  ensureKey: () => Promise<void>;
}

const MAX_USER_ID = 256;

interface KeyCache {
  curV: number;
  curStamp: string;
  curDigest: Buffer;
  prevV: number;
  prevDigest: Buffer | null;
}

export class AccessGate {
  private readonly store: Store;
  private readonly config: KeyServiceConfig;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly shape: KeyShape;
  private readonly autoPipelining: boolean;
  private readonly ensureKey: () => Promise<void>;
  /** Prefix of every key name: `<REDIS_PREFIX>keys:`. */
  private readonly base: string;
  // A per-process HMAC key: digests are compared, never raw keys, and they mean nothing outside.
  private readonly hmacKey = randomBytes(32);
  // Compared against when there is no previous key, so both comparisons always run.
  private readonly noDigest = randomBytes(32);
  private cache: KeyCache | null = null;
  private lastBreakerWarning = 0;

  constructor(store: Store, config: KeyServiceConfig, logger: Logger = silentLogger, options: AccessGateOptions) {
    this.store = store;
    this.config = config;
    this.log = logger;
    this.now = options.now ?? (() => new Date());
    this.shape = { length: config.KEY_LENGTH, alphabet: config.KEY_ALPHABET };
    this.autoPipelining = options.autoPipelining ?? true;
    this.ensureKey = options.ensureKey;
    this.base = keyName(store, '');
    defineKeyScripts(store.redis);
  }

  /** Drops the cached key digests; called whenever the key may have changed. */
  forgetKey(): void {
    this.cache = null;
  }

  /** Checks a chatter's key attempt; on success the user is authorised (see authorisation()). */
  async verify(userId: string, attempt: string): Promise<VerifyResult> {
    checkUserId(userId);
    const candidate = normaliseAttempt(attempt, this.shape);
    if (candidate.kind === 'empty') return { ok: false, reason: 'empty' };
    if (candidate.kind === 'malformed') return { ok: false, reason: 'malformed' };
    const digest = this.digest(candidate.value);
    for (let round = 0; round < 3; round++) {
      const cache = await this.keyCache();
      // Both comparisons always run, in constant time, so timing says nothing about which matched.
      const matchCur = timingSafeEqual(digest, cache.curDigest);
      const matchPrev = timingSafeEqual(digest, cache.prevDigest ?? this.noDigest);
      const match = matchCur ? cache.curV : matchPrev && cache.prevDigest ? cache.prevV : 0;
      const nowMs = this.now().getTime();
      const hour = Math.floor(nowMs / HOUR);
      const prevHourWeight = 1 - (nowMs % HOUR) / HOUR;
      // The hot path: key names by concatenation and no extra closure (this runs ~10k times/s).
      const b = this.base;
      const res = await this.verifyConnection()
        .nemoKeyVerify(
          b + 'current', b + 'previous', b + 'user:' + userId, b + 'fails:' + userId, b + 'lock:' + userId,
          b + 'newfail:' + hour, b + 'newfail:' + (hour - 1), b + 'failed:total', b + 'failed:h:' + hour,
          nowMs, cache.curStamp, match, graceMs(this.config), this.config.KEY_MAX_ATTEMPTS, this.lockoutMs,
          this.breakerLimit, prevHourWeight.toFixed(6), this.retentionMs, this.userTtlMs,
        )
        .catch((err: unknown) => {
          throw toStoreError(err);
        });
      const [kind, value, extra] = res;
      switch (kind) {
        case 'stale':
          this.cache = null;
          continue;
        case 'ok': {
          const version = Number(value);
          return { ok: true, version, authorisedUntil: this.authorisedUntil(version === cache.curV, Number(extra ?? 0), nowMs) };
        }
        case 'locked':
        case 'lockednow':
          return { ok: false, reason: 'locked', attemptsLeft: 0, lockedUntil: new Date(nowMs + Number(value)).toISOString(), ...(kind === 'lockednow' ? { lockedNow: true } : {}) };
        case 'breaker':
          this.warnBreaker(Number(value));
          return { ok: false, reason: 'locked', global: true, lockedUntil: new Date(nowMs + this.lockoutMs).toISOString() };
        case 'wrong':
          return { ok: false, reason: 'wrong', attemptsLeft: Number(value) };
        default:
          throw new Error(`unexpected verification result ${String(kind)}`);
      }
    }
    throw new Error('the access key kept changing during verification; try again');
  }

  /** Whether the user may chat now. Cheap: one round trip. */
  async authorisation(userId: string): Promise<Authorisation> {
    checkUserId(userId);
    // Asked on every chat message: one script call (an atomic snapshot, like the MULTI it replaced).
    const b = this.base;
    const res = await guard(() => (this.store.redis as RedisWithScripts).nemoKeyAuth(b + 'current', b + 'previous', b + 'user:' + userId));
    const curV = Number(res?.[0] ?? 0);
    const [, prevV, prevRetired, userV, userAt] = res ?? [];
    if (!userV) return { authorised: false, needsNewKey: false };
    const version = Number(userV);
    const nowMs = this.now().getTime();
    const reauthEnd = this.config.KEY_REAUTH > 0 ? Number(userAt) + this.config.KEY_REAUTH * DAY : 0;
    if (version === curV && curV > 0) {
      // Current generation: authorised until the next rotation, or longer while KEY_REAUTH runs.
      return { authorised: true, version, until: reauthEnd > nowMs ? new Date(reauthEnd).toISOString() : null, needsNewKey: false };
    }
    const graceEnd = prevV && Number(prevV) === version ? Number(prevRetired) + graceMs(this.config) : 0;
    const end = Math.max(graceEnd, reauthEnd);
    if (end > nowMs) return { authorised: true, version, until: new Date(end).toISOString(), needsNewKey: false };
    return { authorised: false, version, needsNewKey: true };
  }

  /** Forgets a user's authorisation (they must send the key again, and count as new). */
  async revoke(userId: string): Promise<void> {
    checkUserId(userId);
    await guard(() => this.store.redis.del(this.k('user', userId)));
  }

  async lockStatus(userId: string): Promise<LockStatus> {
    checkUserId(userId);
    const res = await guard(() => this.store.redis.multi().pttl(this.k('lock', userId)).get(this.k('fails', userId)).exec());
    const ttl = Number(res?.[0]?.[1] ?? -2);
    const failures = Number(res?.[1]?.[1] ?? 0);
    if (ttl > 0) return { locked: true, lockedUntil: new Date(this.now().getTime() + ttl).toISOString(), failures: this.config.KEY_MAX_ATTEMPTS, attemptsLeft: 0 };
    return { locked: false, failures, attemptsLeft: Math.max(0, this.config.KEY_MAX_ATTEMPTS - failures) };
  }

  async unlock(userId: string): Promise<void> {
    checkUserId(userId);
    await guard(() => this.store.redis.del(this.k('lock', userId), this.k('fails', userId)));
  }

  /** The sybil circuit breaker's state (see README "Access keys"). */
  async breakerStatus(): Promise<BreakerStatus> {
    const nowMs = this.now().getTime();
    const hour = Math.floor(nowMs / HOUR);
    const [cur, prev] = await guard(() => this.store.redis.mget(this.k('newfail', hour), this.k('newfail', hour - 1)));
    const est = Number(cur ?? 0) + Number(prev ?? 0) * (1 - (nowMs % HOUR) / HOUR);
    const limit = this.breakerLimit;
    return { tripped: limit > 0 && est >= limit, failuresLastHour: Math.round(est), limit };
  }

  private get lockoutMs(): number {
    return this.config.KEY_LOCKOUT_MINUTES * MINUTE;
  }

  private get retentionMs(): number {
    return this.config.USAGE_RETENTION_DAYS * DAY;
  }

  /** A user's authorisation record outlives both the usage retention and any KEY_REAUTH period. */
  private get userTtlMs(): number {
    return Math.max(this.retentionMs, (this.config.KEY_REAUTH + 1) * DAY);
  }

  private get breakerLimit(): number {
    return this.config.KEY_GLOBAL_FAIL_LIMIT ?? 100;
  }

  private k(...parts: (string | number)[]): string {
    return keyName(this.store, ...parts);
  }

  /**
   * The connection for verify(): the store's auto-pipelined one (bursts of key attempts share
   * writes) unless autoPipelining is off. Everything else, including the per-message
   * authorisation(), uses the plain shared connection (see Store.pipelined).
   */
  private verifyConnection(): RedisWithScripts {
    if (!this.autoPipelining) return this.store.redis as RedisWithScripts;
    return defineKeyScripts(this.store.pipelined());
  }

  private digest(value: string): Buffer {
    return createHmac('sha256', this.hmacKey).update(value).digest();
  }

  private async keyCache(): Promise<KeyCache> {
    if (this.cache) return this.cache;
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await guard(() =>
        this.store.redis
          .multi()
          .hmget(this.k('current'), 'key', 'version', 'createdAtMs')
          .hmget(this.k('previous'), 'key', 'version')
          .exec(),
      );
      const [curKey, curV, curAt] = (res?.[0]?.[1] as (string | null)[]) ?? [];
      const [prevKey, prevV] = (res?.[1]?.[1] as (string | null)[]) ?? [];
      if (!curKey || !curV) {
        await this.ensureKey();
        continue;
      }
      this.cache = {
        curV: Number(curV),
        // Version and creation time: a wiped and re-initialised Redis restarts at version 1.
        curStamp: `${curV}:${curAt ?? ''}`,
        curDigest: this.digest(curKey),
        prevV: prevV ? Number(prevV) : 0,
        prevDigest: prevKey ? this.digest(prevKey) : null,
      };
      return this.cache;
    }
    throw new Error('no access key exists in Redis');
  }

  private authorisedUntil(current: boolean, graceEndMs: number, nowMs: number): string | null {
    const reauthEnd = this.config.KEY_REAUTH > 0 ? nowMs + this.config.KEY_REAUTH * DAY : 0;
    if (current) return reauthEnd ? new Date(reauthEnd).toISOString() : null;
    // Verified with the previous key inside its grace window: authorised until the window ends.
    return new Date(Math.max(reauthEnd, graceEndMs)).toISOString();
  }

  private warnBreaker(estimate: number): void {
    const t = Date.now();
    if (t - this.lastBreakerWarning < MINUTE) return;
    this.lastBreakerWarning = t;
    this.log.warn(
      { failuresLastHour: Math.round(estimate), limit: this.breakerLimit },
      'key circuit breaker tripped: users never authorised before cannot try keys until failures drop',
    );
  }
}

function checkUserId(userId: unknown): asserts userId is string {
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > MAX_USER_ID) {
    throw new TypeError(`userId must be a string of 1-${MAX_USER_ID} characters`);
  }
}
