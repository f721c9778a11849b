// The current key and its rotation: on a schedule (exactly once per slot across every process
// sharing Redis, caught up after downtime), by an operator, or on first use; the run-time
// schedule; and the pub/sub that tells every process about rotations and schedule changes.
// Keys are secrets: they are returned to callers that must show them but never logged or published.
import { randomInt } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createTask, type ScheduledTask } from 'node-cron';
import type { AuditLog } from '../audit/audit-log.js';
import { isTimeZone } from '../env.js';
import { partLogger, silentLogger, type Logger } from '../logger.js';
import { guard, type Store } from '../redis.js';
import {
  defineKeyScripts, graceMs, keyName, readCurrentKey, type KeyServiceConfig, type RedisWithScripts, type RotationCause,
} from './key-records.js';
import { latestSlot, nextRuns, validateSchedule, type Schedule } from './schedule.js';

export interface CurrentKey {
  key: string;
  version: number;
  createdAt: string;
  /** The last moment this key is accepted under the current schedule (next rotation + grace). */
  expiresAt: string | null;
  nextRotationAt: string | null;
  by: RotationCause;
  actor?: string;
  /** The key this one replaced, while its grace window still lets it in (absent otherwise). */
  previous?: PreviousKey;
}

export interface PreviousKey {
  key: string;
  version: number;
  retiredAt: string;
  /** The end of its grace window (KEY_GRACE_MINUTES after retiredAt). */
  acceptedUntil: string;
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

export interface RotationEvent {
  version: number;
  at: string;
  by: RotationCause;
}

export interface KeyRotationOptions {
  now?: () => Date;
  historyMax?: number;
  maxRetryMs?: number;
  safetyIntervalMs?: number;
  /** Called whenever the key may have changed (here or in another process), so readers drop caches. */
  onKeyChanged?: () => void;
  /** Where scheduled rotations are recorded (actor "schedule"), by the one process that made them. */
  audit?: AuditLog;
}

export class KeyRotation {
  private readonly store: Store;
  private readonly config: KeyServiceConfig;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly historyMax: number;
  private readonly maxRetryMs: number;
  private readonly safetyIntervalMs: number;
  private readonly keyChanged: () => void;
  private readonly audit: AuditLog | null;
  private readonly alphabet: string[];
  private readonly channel: string;
  private schedule: Schedule;
  private task: ScheduledTask | null = null;
  private subscriber: Redis | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private safetyTimer: NodeJS.Timeout | null = null;
  private retryDelay = 0;
  private started = false;
  private lastNotifiedVersion = 0;
  private readonly rotateListeners = new Set<(e: RotationEvent) => unknown>();
  private readonly scheduleListeners = new Set<(s: ScheduleInfo) => unknown>();

  constructor(store: Store, config: KeyServiceConfig, logger: Logger = silentLogger, options: KeyRotationOptions = {}) {
    this.store = store;
    this.config = config;
    this.log = logger;
    this.now = options.now ?? (() => new Date());
    this.historyMax = options.historyMax ?? 1000;
    this.maxRetryMs = options.maxRetryMs ?? 30_000;
    this.safetyIntervalMs = options.safetyIntervalMs ?? 60_000;
    this.keyChanged = options.onKeyChanged ?? (() => {});
    this.audit = options.audit ?? null;
    this.alphabet = [...config.KEY_ALPHABET];
    this.channel = this.k('events');
    this.schedule = this.configSchedule;
    defineKeyScripts(store.redis);
  }

  // ---------------------------------------------------------------- lifecycle

  /** Loads the schedule, makes sure a key exists, subscribes to rotations, starts the timer and catches up. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.loadSchedule();
    await this.ensureKey();
    await this.reshapeKey();
    this.lastNotifiedVersion = (await readCurrentKey(this.store))?.version ?? 0;
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
    let cur = await readCurrentKey(this.store);
    if (!cur) {
      await this.ensureKey();
      cur = await readCurrentKey(this.store);
      if (!cur) throw new Error('the current key vanished right after it was created');
    }
    const [next, previous] = await Promise.all([this.nextRotation(), this.previousInGrace()]);
    return {
      ...cur,
      ...(previous ? { previous } : {}),
      nextRotationAt: next ? next.toISOString() : null,
      expiresAt: next ? new Date(next.getTime() + graceMs(this.config)).toISOString() : null,
    };
  }

  /** The previous key while its grace window is open. */
  private async previousInGrace(): Promise<PreviousKey | undefined> {
    const [key, version, retiredAt, retiredAtMs] = await guard(() => this.store.redis.hmget(this.k('previous'), 'key', 'version', 'retiredAt', 'retiredAtMs'));
    if (!key || !version || !retiredAt || !retiredAtMs) return undefined;
    const until = Number(retiredAtMs) + graceMs(this.config);
    if (until <= this.now().getTime()) return undefined;
    return { key, version: Number(version), retiredAt, acceptedUntil: new Date(until).toISOString() };
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
    if (rotated) {
      this.log.info({ version, slot: slot.toISOString() }, 'access key rotated on schedule');
      // The rotation stands whether or not its audit entry can be written.
      await this.audit?.record({ action: 'keys.rotate', actor: 'schedule', ip: '', details: { version, slot: slot.toISOString() }, ok: true })
        .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'could not write the audit entry of a scheduled rotation'));
    }
    return rotated === 1;
  }

  /** Creates the first key of a deployment; does nothing when one exists. */
  async ensureKey(): Promise<void> {
    await this.runRotate('init', 'init', '', 0);
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

  // ---------------------------------------------------------------- internals

  private k(...parts: (string | number)[]): string {
    return keyName(this.store, ...parts);
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
      this.keyChanged();
      if (mode !== 'slot') this.log.info({ version: res[1], by, actor: actor || undefined }, 'access key rotated');
    }
    return [Number(res[0]), Number(res[1])];
  }

  /**
   * After KEY_LENGTH or KEY_ALPHABET changed, the stored key can no longer be typed in a valid
   * shape (it would be refused as malformed until the next rotation): replace it once.
   */
  private async reshapeKey(): Promise<void> {
    const cur = await readCurrentKey(this.store);
    if (!cur) return;
    const chars = [...cur.key];
    const alphabet = new Set(this.alphabet);
    if (chars.length === this.config.KEY_LENGTH && chars.every((c) => alphabet.has(c))) return;
    const [rotated] = await this.runRotate('ifversion', 'init', 'KEY_LENGTH/KEY_ALPHABET changed', cur.version);
    if (rotated) this.log.warn('the key did not match KEY_LENGTH/KEY_ALPHABET any more; replaced it');
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
    const cronLog = partLogger(this.log, 'key-cron');
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
      this.keyChanged();
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
      this.keyChanged();
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
    const cur = await readCurrentKey(this.store);
    if (cur && cur.version > this.lastNotifiedVersion) this.emitRotation({ version: cur.version, at: cur.createdAt, by: cur.by });
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
