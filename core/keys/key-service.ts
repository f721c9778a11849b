// The access-key system: the current key and its rotation (scheduled exactly once per slot across
// every process sharing Redis, caught up after downtime), verification with lockouts and a global
// circuit breaker, and per-user authorisation. Keys are secrets: they are returned to callers that
// must show them (admin panel, CLI) but never logged or published.
import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createTask, type ScheduledTask } from 'node-cron';
import type { CoreConfig } from '../config.js';
import { silentLogger, type Logger } from '../logger.js';
import { guard, toStoreError, type Store } from '../redis.js';
import { AUTH_LUA, ROTATE_LUA, VERIFY_LUA } from './key-scripts.js';
import { normaliseAttempt, type KeyShape } from './normalise.js';
import { InvalidScheduleError, latestSlot, nextRuns, validateSchedule, type Schedule } from './schedule.js';
import { isTimeZone } from '../env.js';

export { InvalidScheduleError, type Schedule };

/** Who caused a rotation. 'init' is the very first key of a deployment. */
export type RotationCause = 'schedule' | 'admin' | 'cli' | 'init';

export interface CurrentKey {
  key: string;
  version: number;
  createdAt: string;
  /** The last moment this key is accepted under the current schedule (next rotation + grace). */
  expiresAt: string | null;
  nextRotationAt: string | null;
  by: RotationCause;
  actor?: string;
}

export interface KeyHistoryEntry {
  version: number;
  key: string;
  createdAt: string;
  /** When the next key replaced it (null for the current key). */
  retiredAt: string | null;
  by: RotationCause;
  actor?: string;
  /** For scheduled rotations: the scheduled instant (ISO) this rotation was for. */
  slot?: string;
}

export interface ScheduleInfo {
  cron: string;
  tz: string;
  /** The next five run times (ISO). */
  nextRuns: string[];
  /** Where the schedule comes from: set at run time (panel / CLI) or the environment default. */
  source: 'stored' | 'config';
  updatedAt?: string;
  actor?: string;
}

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

export interface RotationEvent {
  version: number;
  at: string;
  by: RotationCause;
}

export interface BreakerStatus {
  tripped: boolean;
  /** Estimated failed attempts by never-authorised users over the last hour. */
  failuresLastHour: number;
  limit: number;
}

type KeyConfigFields =
  | 'KEY_LENGTH' | 'KEY_ALPHABET' | 'KEY_ROTATE_CRON' | 'KEY_ROTATE_TZ' | 'KEY_GRACE_MINUTES'
  | 'KEY_MAX_ATTEMPTS' | 'KEY_LOCKOUT_MINUTES' | 'KEY_REAUTH' | 'USAGE_RETENTION_DAYS';

/** The configuration KeyService reads: a CoreConfig fits; the breaker limit defaults to 100. */
export type KeyServiceConfig = Pick<CoreConfig, KeyConfigFields> & Partial<Pick<CoreConfig, 'KEY_GLOBAL_FAIL_LIMIT'>>;

export interface KeyServiceOptions {
  /** Injectable clock for tests (grace windows, catch-up). */
  now?: () => Date;
  /** How many history entries Redis keeps. */
  historyMax?: number;
  /** Longest wait between retries of a failed scheduled rotation. */
  maxRetryMs?: number;
  /**
   * How often to check for a missed slot besides the cron timer (default 60 s). node-cron skips a
   * run that fires more than a second late (a busy event loop at midnight); this catches it.
   */
  safetyIntervalMs?: number;
  /**
   * Verify key attempts over the store's auto-pipelined connection (Store.pipelined; default
   * true): verifications issued in the same tick share one write, roughly doubling throughput
   * under load. The shared connection (every other command) is left without auto-pipelining.
   */
  autoPipelining?: boolean;
}

const HOUR = 3_600_000;
const MINUTE = 60_000;
const DAY = 24 * HOUR;
const MAX_USER_ID = 256;

interface KeyCache {
  curV: number;
  curStamp: string;
  curDigest: Buffer;
  prevV: number;
  prevDigest: Buffer | null;
}

type RedisWithScripts = Redis & {
  nemoKeyRotate(...args: (string | number)[]): Promise<[number, number]>;
  nemoKeyVerify(...args: (string | number)[]): Promise<[string, number | string | undefined, string | undefined]>;
  nemoKeyAuth(current: string, previous: string, user: string): Promise<(string | null)[]>;
};

function defineKeyScripts(redis: Redis): void {
  if (typeof (redis as RedisWithScripts).nemoKeyRotate === 'function') return;
  redis.defineCommand('nemoKeyRotate', { numberOfKeys: 4, lua: ROTATE_LUA });
  redis.defineCommand('nemoKeyVerify', { numberOfKeys: 9, lua: VERIFY_LUA });
  redis.defineCommand('nemoKeyAuth', { numberOfKeys: 3, lua: AUTH_LUA });
}

export class KeyService {
  private readonly store: Store;
  private readonly config: KeyServiceConfig;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly historyMax: number;
  private readonly maxRetryMs: number;
  private readonly shape: KeyShape;
  private readonly alphabet: string[];
  private readonly channel: string;
  /** Prefix of every key this service owns: `<REDIS_PREFIX>keys:`. */
  private readonly base: string;
  // A per-process HMAC key: digests are compared, never raw keys, and they mean nothing outside.
  private readonly hmacKey = randomBytes(32);
  // Compared against when there is no previous key, so both comparisons always run.
  private readonly noDigest = randomBytes(32);
  private cache: KeyCache | null = null;
  private schedule: Schedule;
  private task: ScheduledTask | null = null;
  private subscriber: Redis | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private safetyTimer: NodeJS.Timeout | null = null;
  private readonly safetyIntervalMs: number;
  private retryDelay = 0;
  private started = false;
  private lastNotifiedVersion = 0;
  private lastBreakerWarning = 0;
  private readonly autoPipelining: boolean;
  private readonly rotateListeners = new Set<(e: RotationEvent) => unknown>();
  private readonly scheduleListeners = new Set<(s: ScheduleInfo) => unknown>();

  constructor(store: Store, config: KeyServiceConfig, logger: Logger = silentLogger, options: KeyServiceOptions = {}) {
    this.store = store;
    this.config = config;
    this.log = logger;
    this.now = options.now ?? (() => new Date());
    this.historyMax = options.historyMax ?? 1000;
    this.maxRetryMs = options.maxRetryMs ?? 30_000;
    this.safetyIntervalMs = options.safetyIntervalMs ?? 60_000;
    this.shape = { length: config.KEY_LENGTH, alphabet: config.KEY_ALPHABET };
    this.alphabet = [...config.KEY_ALPHABET];
    this.channel = store.key('keys', 'events');
    this.base = store.key('keys', '');
    this.schedule = { cron: config.KEY_ROTATE_CRON, tz: config.KEY_ROTATE_TZ };
    this.autoPipelining = options.autoPipelining ?? true;
    defineKeyScripts(store.redis);
  }

  /**
   * The connection for verify(): the store's auto-pipelined one (bursts of key attempts share
   * writes) unless autoPipelining is off. Everything else, including the per-message
   * authorisation(), uses the plain shared connection (see Store.pipelined).
   */
  private verifyConnection(): RedisWithScripts {
    if (!this.autoPipelining) return this.store.redis as RedisWithScripts;
    const c = this.store.pipelined();
    defineKeyScripts(c);
    return c as RedisWithScripts;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Loads the schedule, makes sure a key exists, subscribes to rotations, starts the timer and catches up. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.loadSchedule();
    await this.ensureKey();
    await this.reshapeKey();
    this.lastNotifiedVersion = (await this.readCurrent())?.version ?? 0;
    await this.subscribe();
    this.startTimer();
    this.safetyTimer = setInterval(() => void this.tick(), this.safetyIntervalMs);
    this.safetyTimer.unref();
    await this.tick();
  }

  async stop(): Promise<void> {
    this.started = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.safetyTimer) clearInterval(this.safetyTimer);
    this.safetyTimer = null;
    if (this.task) await this.task.destroy();
    this.task = null;
    const sub = this.subscriber;
    this.subscriber = null;
    if (sub) {
      sub.removeAllListeners('message');
      sub.removeAllListeners('ready');
      try {
        if (sub.status === 'ready') await sub.quit();
        else sub.disconnect();
      } catch {
        sub.disconnect();
      }
    }
  }

  /** Fires in every process sharing Redis (via pub/sub) when the key rotates. Returns an unsubscribe. */
  onRotate(listener: (e: RotationEvent) => unknown): () => void {
    this.rotateListeners.add(listener);
    return () => this.rotateListeners.delete(listener);
  }

  /** Fires in every started process when the schedule is changed at run time. */
  onScheduleChange(listener: (s: ScheduleInfo) => unknown): () => void {
    this.scheduleListeners.add(listener);
    return () => this.scheduleListeners.delete(listener);
  }

  // ---------------------------------------------------------------- the key

  /** The current key (created on first use), with the next rotation time. */
  async current(): Promise<CurrentKey> {
    let cur = await this.readCurrent();
    if (!cur) {
      await this.ensureKey();
      cur = await this.readCurrent();
      if (!cur) throw new Error('the current key vanished right after it was created');
    }
    const next = await this.nextRotation();
    return {
      ...cur,
      nextRotationAt: next ? next.toISOString() : null,
      expiresAt: next ? new Date(next.getTime() + this.graceMs).toISOString() : null,
    };
  }

  /** Replaces the key now; the previous one stays valid for KEY_GRACE_MINUTES. */
  async rotate(by: 'schedule' | 'admin' | 'cli', actor?: string): Promise<CurrentKey> {
    await this.runRotate('force', by, actor ?? '', 0);
    return this.current();
  }

  /**
   * Rotates for the scheduled instant `slot` unless some process already did (exactly once per
   * slot across processes). Returns true when this call rotated. Public so tests can drive slots.
   */
  async runScheduledSlot(slot: Date): Promise<boolean> {
    const [rotated, version] = await this.runRotate('slot', 'schedule', '', slot.getTime());
    if (rotated) this.log.info({ version, slot: slot.toISOString() }, 'access key rotated on schedule');
    return rotated === 1;
  }

  /** Newest first. */
  async history(limit = 50): Promise<KeyHistoryEntry[]> {
    const n = Math.max(1, Math.min(Math.floor(limit) || 50, this.historyMax));
    const raw = await guard(() => this.store.redis.lrange(this.k('history'), 0, n - 1));
    const entries: KeyHistoryEntry[] = [];
    for (const line of raw) {
      try {
        const e = JSON.parse(line) as { version: number; key: string; createdAt: string; by: RotationCause; actor?: string; slot?: number };
        entries.push({
          version: e.version, key: e.key, createdAt: e.createdAt, retiredAt: null, by: e.by,
          ...(e.actor ? { actor: e.actor } : {}),
          ...(typeof e.slot === 'number' ? { slot: new Date(e.slot).toISOString() } : {}),
        });
      } catch {
        this.log.warn('skipping an unreadable key history entry');
      }
    }
    for (let i = 1; i < entries.length; i++) entries[i].retiredAt = entries[i - 1].createdAt;
    return entries;
  }

  // ---------------------------------------------------------------- schedule

  async getSchedule(): Promise<ScheduleInfo> {
    const stored = await this.readStoredSchedule();
    const s = stored ?? this.configSchedule;
    return this.describeSchedule(s, stored ? 'stored' : 'config', stored?.updatedAt, stored?.actor);
  }

  /** Validates and stores a schedule; every started process switches to it at once. */
  async setSchedule(cron: string, tz: string, actor?: string): Promise<ScheduleInfo> {
    const s = validateSchedule(cron, tz);
    const updatedAt = this.now().toISOString();
    const msg = JSON.stringify({ type: 'schedule', cron: s.cron, tz: s.tz });
    await guard(() =>
      this.store.redis
        .multi()
        .hset(this.k('schedule'), { cron: s.cron, tz: s.tz, updatedAt, actor: actor ?? '' })
        .publish(this.channel, msg)
        .exec(),
    );
    this.log.info({ cron: s.cron, tz: s.tz, actor }, 'key rotation schedule changed');
    this.applySchedule(s, 'stored');
    return this.describeSchedule(s, 'stored', updatedAt, actor);
  }

  /** Forgets the run-time schedule: every started process goes back to KEY_ROTATE_CRON / KEY_ROTATE_TZ. */
  async resetSchedule(actor?: string): Promise<ScheduleInfo> {
    const msg = JSON.stringify({ type: 'schedule-reset' });
    await guard(() => this.store.redis.multi().del(this.k('schedule')).publish(this.channel, msg).exec());
    this.log.info({ actor }, 'key rotation schedule reset to the configured default');
    this.applySchedule(this.configSchedule, 'config');
    return this.describeSchedule(this.configSchedule, 'config');
  }

  // ---------------------------------------------------------------- verification

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
          nowMs, cache.curStamp, match, this.graceMs, this.config.KEY_MAX_ATTEMPTS, this.lockoutMs,
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
    const graceEnd = prevV && Number(prevV) === version ? Number(prevRetired) + this.graceMs : 0;
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

  /** Failed attempts ever (well-formed wrong guesses, by anyone). */
  async failedAttempts(): Promise<number> {
    return Number((await guard(() => this.store.redis.get(this.k('failed', 'total')))) ?? 0);
  }

  /** Failed attempts per hour, oldest first, ending with the current hour (for charts). */
  async failedAttemptsByHour(hours = 24): Promise<Array<{ start: string; count: number }>> {
    const { startMs, counts } = await this.failedAttemptsHourly(hours);
    return counts.map((count, i) => ({ start: new Date(startMs + i * HOUR).toISOString(), count }));
  }

  /**
   * The same as plain counts: `counts[i]` is the hour starting at `startMs + i` hours. The
   * dashboard asks for 720 hours at a time; this form skips 720 dates and objects per request.
   */
  async failedAttemptsHourly(hours = 24): Promise<{ startMs: number; counts: number[] }> {
    const n = Math.max(1, Math.min(Math.floor(hours), 24 * 90));
    const first = Math.floor(this.now().getTime() / HOUR) - n + 1;
    const prefix = this.base + 'failed:h:';
    const names = new Array<string>(n);
    for (let i = 0; i < n; i++) names[i] = prefix + (first + i);
    const values = await guard(() => this.store.redis.mget(names));
    const counts = new Array<number>(n);
    for (let i = 0; i < n; i++) counts[i] = values[i] == null ? 0 : Number(values[i]);
    return { startMs: first * HOUR, counts };
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

  // ---------------------------------------------------------------- internals

  private get graceMs(): number {
    return this.config.KEY_GRACE_MINUTES * MINUTE;
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
    return this.store.key('keys', ...parts);
  }

  private digest(value: string): Buffer {
    return createHmac('sha256', this.hmacKey).update(value).digest();
  }

  private generateKey(): string {
    let s = '';
    for (let i = 0; i < this.config.KEY_LENGTH; i++) s += this.alphabet[randomInt(this.alphabet.length)];
    return s;
  }

  private async runRotate(mode: 'force' | 'init' | 'ifversion' | 'slot', by: RotationCause, actor: string, slotMs: number): Promise<[number, number]> {
    const a = this.generateKey();
    let b = this.generateKey();
    while (b === a) b = this.generateKey();
    const now = this.now();
    const res = await guard(() =>
      (this.store.redis as RedisWithScripts).nemoKeyRotate(
        this.k('current'), this.k('previous'), this.k('history'), this.k('lastSlot'),
        a, b, now.getTime(), now.toISOString(), by, actor, mode, slotMs, this.historyMax, this.channel,
      ),
    );
    if (res[0] === 1) {
      this.cache = null;
      if (mode !== 'slot') this.log.info({ version: res[1], by, actor: actor || undefined }, 'access key rotated');
    }
    return [Number(res[0]), Number(res[1])];
  }

  private async ensureKey(): Promise<void> {
    await this.runRotate('init', 'init', '', 0);
  }

  /**
   * After KEY_LENGTH or KEY_ALPHABET changed, the stored key can no longer be typed in a valid
   * shape (it would be refused as malformed until the next rotation): replace it once.
   */
  private async reshapeKey(): Promise<void> {
    const cur = await this.readCurrent();
    if (!cur) return;
    const chars = [...cur.key];
    const alphabet = new Set(this.alphabet);
    if (chars.length === this.config.KEY_LENGTH && chars.every((c) => alphabet.has(c))) return;
    const [rotated] = await this.runRotate('ifversion', 'init', 'KEY_LENGTH/KEY_ALPHABET changed', cur.version);
    if (rotated) this.log.warn('the key did not match KEY_LENGTH/KEY_ALPHABET any more; replaced it');
  }

  private async readCurrent(): Promise<Omit<CurrentKey, 'nextRotationAt' | 'expiresAt'> | null> {
    const h = await guard(() => this.store.redis.hgetall(this.k('current')));
    if (!h.key || !h.version) return null;
    return { key: h.key, version: Number(h.version), createdAt: h.createdAt, by: h.by as RotationCause, ...(h.actor ? { actor: h.actor } : {}) };
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

  private async readStoredSchedule(): Promise<(Schedule & { updatedAt?: string; actor?: string }) | null> {
    const h = await guard(() => this.store.redis.hgetall(this.k('schedule')));
    if (!h.cron || !h.tz) return null;
    try {
      const s = validateSchedule(h.cron, h.tz);
      return { ...s, ...(h.updatedAt ? { updatedAt: h.updatedAt } : {}), ...(h.actor ? { actor: h.actor } : {}) };
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'ignoring an invalid stored key schedule; using KEY_ROTATE_CRON');
      return null;
    }
  }

  private async loadSchedule(): Promise<void> {
    const stored = await this.readStoredSchedule();
    if (stored) this.applySchedule({ cron: stored.cron, tz: stored.tz }, 'stored');
    else this.applySchedule(this.configSchedule, 'config');
  }

  private get configSchedule(): Schedule {
    return { cron: this.config.KEY_ROTATE_CRON, tz: this.config.KEY_ROTATE_TZ };
  }

  private describeSchedule(s: Schedule, source: 'stored' | 'config', updatedAt?: string, actor?: string): ScheduleInfo {
    return {
      cron: s.cron,
      tz: s.tz,
      nextRuns: nextRuns(s, 5, this.now()).map((d) => d.toISOString()),
      source,
      ...(updatedAt ? { updatedAt } : {}),
      ...(actor ? { actor } : {}),
    };
  }

  private async nextRotation(): Promise<Date | null> {
    const s = this.started ? this.schedule : ((await this.readStoredSchedule()) ?? this.schedule);
    return nextRuns(s, 1, this.now())[0] ?? null;
  }

  private applySchedule(s: Schedule, source: 'stored' | 'config'): void {
    const changed = s.cron !== this.schedule.cron || s.tz !== this.schedule.tz;
    this.schedule = s;
    if (changed && this.started) this.startTimer();
    if (changed) {
      const info = this.describeSchedule(s, source);
      for (const l of this.scheduleListeners) safeCall(() => l(info), this.log);
    }
  }

  /** (Re)creates the node-cron task for the current schedule. */
  private startTimer(): void {
    if (this.task) void this.task.destroy();
    this.task = null;
    if (!this.started || !isTimeZone(this.schedule.tz)) return;
    const cronLog = this.log.child({ part: 'key-cron' });
    this.task = createTask(this.schedule.cron, () => this.tick(), {
      timezone: this.schedule.tz,
      name: `nemo-key-rotation-${this.store.prefix}`,
      noOverlap: true,
      logger: {
        info: (m) => cronLog.debug(m),
        warn: (m) => cronLog.warn(m),
        error: (m) => cronLog.error(m instanceof Error ? m.message : m),
        debug: (m) => cronLog.debug(m instanceof Error ? m.message : m),
      },
    });
    this.task.on('execution:missed', () => void this.tick());
    void this.task.start();
  }

  /** Rotates for the latest scheduled slot if nobody did; on Redis trouble retries with backoff. */
  private async tick(): Promise<void> {
    if (!this.started) return;
    const slot = latestSlot(this.schedule, this.now());
    try {
      if (slot) await this.runScheduledSlot(slot);
      this.retryDelay = 0;
      await this.notifyIfRotated();
    } catch (err) {
      this.retryDelay = Math.min(this.retryDelay ? this.retryDelay * 2 : 1000, this.maxRetryMs);
      this.log.warn({ err: (err as Error).message, retryInMs: this.retryDelay }, 'scheduled key rotation failed; will retry');
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        void this.tick();
      }, this.retryDelay);
      this.retryTimer.unref();
    }
  }

  private async subscribe(): Promise<void> {
    const sub = await this.store.duplicate();
    this.subscriber = sub;
    sub.on('message', (_channel: string, message: string) => this.onMessage(message));
    // After an outage: pick up rotations and schedule changes missed meanwhile, and catch up slots.
    sub.on('ready', () => {
      this.cache = null;
      void this.resync();
    });
    await sub.subscribe(this.channel);
  }

  private async resync(): Promise<void> {
    try {
      await this.loadSchedule();
      await this.tick();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'resync after reconnect failed');
    }
  }

  private onMessage(message: string): void {
    let msg: { type?: string; version?: number; at?: string; by?: RotationCause; cron?: string; tz?: string };
    try {
      msg = JSON.parse(message);
    } catch {
      return;
    }
    if (msg.type === 'rotated' && typeof msg.version === 'number') {
      this.cache = null;
      this.emitRotation({ version: msg.version, at: msg.at ?? this.now().toISOString(), by: msg.by ?? 'schedule' }, true);
    } else if (msg.type === 'schedule-reset') {
      this.applySchedule(this.configSchedule, 'config');
    } else if (msg.type === 'schedule' && msg.cron && msg.tz) {
      try {
        this.applySchedule(validateSchedule(msg.cron, msg.tz), 'stored');
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'ignoring an invalid schedule announcement');
      }
    }
  }

  /**
   * Announcements arrive in publish order, one per rotation, so any new version is news (even a
   * lower one: a wiped Redis starts again at 1). Polled versions only count when higher, so a
   * slow poll cannot replay an older rotation after a newer announcement.
   */
  private emitRotation(e: RotationEvent, announced = false): void {
    if (announced ? e.version === this.lastNotifiedVersion : e.version <= this.lastNotifiedVersion) return;
    this.lastNotifiedVersion = e.version;
    for (const l of this.rotateListeners) safeCall(() => l(e), this.log);
  }

  /** Covers a rotation announcement lost while the subscriber was disconnected. */
  private async notifyIfRotated(): Promise<void> {
    const cur = await this.readCurrent();
    if (cur && cur.version > this.lastNotifiedVersion) this.emitRotation({ version: cur.version, at: cur.createdAt, by: cur.by });
  }
}

function checkUserId(userId: unknown): asserts userId is string {
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > MAX_USER_ID) {
    throw new TypeError(`userId must be a string of 1-${MAX_USER_ID} characters`);
  }
}

/** Listener failures (sync or async) are logged, never allowed to crash the process. */
function safeCall(fn: () => unknown, log: Logger): void {
  const report = (err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'a key event listener failed');
  try {
    const r = fn();
    if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(report);
  } catch (err) {
    report(err);
  }
}
