// Usage statistics in Redis: per-message counters in hourly and daily hashes (one Lua script call
// per message), active users as HyperLogLogs, a fixed-bucket latency histogram, per-user totals
// and a "users seen" index for the admin panel. Old data goes away by key expiry
// (USAGE_RETENTION_DAYS).
import type { CoreConfig } from '../config.js';
import { guard, type Store } from '../redis.js';
import { LATENCY_BOUNDS_MS, latencyBucket, quantile } from './latency-histogram.js';
import { addDays, DAY_MS, dayKey, dayStart, HOUR_MS, hourIndex } from './time-buckets.js';

export type UsageRange = '24h' | '7d' | '30d' | '90d';
export const USAGE_RANGES: readonly UsageRange[] = ['24h', '7d', '30d', '90d'];

export interface UsageEvent {
  userId: string;
  channel: 'wechat' | 'web' | string;
  tokensIn: number;
  tokensOut: number;
  latencyMs: number;
  /** Chat replies also 'resampled' | 'fallback' | 'blocked' (model/chat/reply.ts). */
  outcome: 'ok' | 'error' | 'busy' | 'timeout' | 'denied' | 'limited' | 'resampled' | 'fallback' | 'blocked' | string;
  at?: Date;
}

export interface UsageCounts {
  messages: number;
  tokensIn: number;
  tokensOut: number;
  /** Outcomes 'error' and 'timeout'. */
  errors: number;
  activeUsers: number;
  /** Estimated from the histogram; null without samples. */
  latencyP50: number | null;
  latencyP95: number | null;
  latencyAvg: number | null;
  outcomes: Record<string, number>;
  channels: Record<string, number>;
}

export interface UsageBucket extends UsageCounts {
  /** ISO start of the hour (24h) or of the local day (7d/30d/90d). */
  start: string;
}

export interface UsageSeries {
  range: UsageRange;
  granularity: 'hour' | 'day';
  buckets: UsageBucket[];
  totals: UsageCounts;
}

export interface LatencyHistogram {
  /** le: the bucket's upper bound in ms; null for the overflow bucket. */
  buckets: Array<{ le: number | null; count: number }>;
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface UserSummary {
  userId: string;
  displayName: string | null;
  channel: string | null;
  firstSeen: string | null;
  lastSeen: string | null;
  messagesToday: number;
  messages: number;
  tokensIn: number;
  tokensOut: number;
  errors: number;
}

export interface UserListOptions {
  limit?: number;
  offset?: number;
  /** Case-insensitive substring of the display name or id; scans at most `maxScan` most recent users. */
  query?: string;
  maxScan?: number;
}

export interface UsageRecorderOptions {
  now?: () => Date;
}

type UsageConfig = Pick<CoreConfig, 'USAGE_RETENTION_DAYS'> & Partial<Pick<CoreConfig, 'USAGE_TZ'>>;

const RANGE_SPEC: Record<UsageRange, { granularity: 'hour' | 'day'; count: number }> = {
  '24h': { granularity: 'hour', count: 24 },
  '7d': { granularity: 'day', count: 7 },
  '30d': { granularity: 'day', count: 30 },
  '90d': { granularity: 'day', count: 90 },
};
const ERROR_OUTCOMES = new Set(['error', 'timeout']);

// One message, atomically, in one call (a MULTI would queue some 45 commands client-side).
// KEYS: hour hash, day hash, hour HLL, day HLL, userday hash, user hash, users zset.
// ARGV: tokensIn, tokensOut, isError, latency, 'o:<outcome>', 'c:<channel>', 'lat:<bucket>',
//       hour TTL s, day TTL s, userId, ISO time, channel, user TTL s, time ms.
const RECORD_SCRIPT = `
for i = 1, 2 do
  local k = KEYS[i]
  redis.call('HINCRBY', k, 'messages', 1)
  redis.call('HINCRBY', k, 'tokensIn', ARGV[1])
  redis.call('HINCRBY', k, 'tokensOut', ARGV[2])
  redis.call('HINCRBY', k, 'errors', ARGV[3])
  redis.call('HINCRBY', k, 'latencySum', ARGV[4])
  redis.call('HINCRBY', k, ARGV[5], 1)
  redis.call('HINCRBY', k, ARGV[6], 1)
  redis.call('HINCRBY', k, ARGV[7], 1)
  redis.call('EXPIRE', k, ARGV[7 + i])
end
redis.call('PFADD', KEYS[3], ARGV[10])
redis.call('EXPIRE', KEYS[3], ARGV[8])
redis.call('PFADD', KEYS[4], ARGV[10])
redis.call('EXPIRE', KEYS[4], ARGV[9])
redis.call('HINCRBY', KEYS[5], ARGV[10], 1)
redis.call('EXPIRE', KEYS[5], ARGV[9])
local u = KEYS[6]
redis.call('HINCRBY', u, 'messages', 1)
redis.call('HINCRBY', u, 'tokensIn', ARGV[1])
redis.call('HINCRBY', u, 'tokensOut', ARGV[2])
redis.call('HINCRBY', u, 'errors', ARGV[3])
redis.call('HSETNX', u, 'firstSeen', ARGV[11])
redis.call('HSET', u, 'lastSeen', ARGV[11], 'channel', ARGV[12])
redis.call('EXPIRE', u, ARGV[13])
redis.call('ZADD', KEYS[7], 'GT', ARGV[14], ARGV[10])
return 1
`;

// A user seen (name, channel), in one call. KEYS: user hash, users zset. ARGV: ISO time, channel
// ('' = leave as is), '1' to set the display name, display name, user TTL s, time ms.
const TOUCH_SCRIPT = `
redis.call('HSETNX', KEYS[1], 'firstSeen', ARGV[1])
redis.call('HSET', KEYS[1], 'lastSeen', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'channel', ARGV[2]) end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'displayName', ARGV[4]) end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], 'GT', ARGV[6], ARGV[7])
return 1
`;

// A whole chart in one call (one reply to decode instead of two per bucket).
// KEYS: n counter hashes, then their n HLLs. Returns per bucket the hash as a flat field/value
// list and the HLL count, then the count of the union of all n HLLs.
const SERIES_SCRIPT = `
local n = #KEYS / 2
local out = {}
local users = {}
for i = 1, n do
  out[2 * i - 1] = redis.call('HGETALL', KEYS[i])
  out[2 * i] = redis.call('PFCOUNT', KEYS[n + i])
  users[i] = KEYS[n + i]
end
out[2 * n + 1] = redis.call('PFCOUNT', unpack(users))
return out
`;

interface Slot {
  start: string;
  counters: string;
  users: string;
}

interface UsageScripts {
  nemoUsageRecord(...args: (string | number)[]): Promise<unknown>;
  nemoUsageTouch(...args: (string | number)[]): Promise<unknown>;
  nemoUsageSeries(numKeys: number, ...keys: string[]): Promise<Array<string[] | number>>;
}
const LABEL = /^[A-Za-z0-9_.-]{1,32}$/;
const MAX_NAME = 200;

export class UsageRecorder {
  private readonly store: Store;
  private readonly retentionDays: number;
  private readonly tz: string;
  private readonly now: () => Date;
  private readonly slotCache = new Map<UsageRange, { anchor: string; slots: readonly Slot[] }>();

  constructor(store: Store, config: UsageConfig, options: UsageRecorderOptions = {}) {
    this.store = store;
    this.retentionDays = config.USAGE_RETENTION_DAYS;
    this.tz = config.USAGE_TZ ?? 'Asia/Shanghai';
    this.now = options.now ?? (() => new Date());
    // ioredis runs these by EVALSHA and falls back to EVAL when the server lost its script cache.
    store.redis.defineCommand('nemoUsageRecord', { numberOfKeys: 7, lua: RECORD_SCRIPT });
    store.redis.defineCommand('nemoUsageTouch', { numberOfKeys: 2, lua: TOUCH_SCRIPT });
    store.redis.defineCommand('nemoUsageSeries', { lua: SERIES_SCRIPT });
  }

  private get scripts(): UsageScripts {
    return this.store.redis as unknown as UsageScripts;
  }

  /** Counts one message (any outcome). One atomic script call. */
  async record(e: UsageEvent): Promise<void> {
    checkUserId(e.userId);
    const at = e.at ?? this.now();
    if (Number.isNaN(at.getTime())) throw new TypeError('usage event has an invalid date');
    const tokensIn = count(e.tokensIn, 'tokensIn');
    const tokensOut = count(e.tokensOut, 'tokensOut');
    const latency = count(e.latencyMs, 'latencyMs');
    const outcome = label(e.outcome);
    const channel = label(e.channel);
    const hour = hourIndex(at);
    const day = dayKey(at, this.tz);
    const retentionS = this.retentionDays * 86_400;
    const nowMs = this.now().getTime();
    const hourTtl = Math.max(1, Math.ceil(((hour + 1) * HOUR_MS - nowMs) / 1000) + retentionS);
    const dayTtl = Math.max(1, Math.ceil((dayStart(day, this.tz).getTime() + DAY_MS - nowMs) / 1000) + retentionS);
    const isError = ERROR_OUTCOMES.has(outcome) ? 1 : 0;
    const b = this.store.prefix + 'usage:';
    await guard(() => this.scripts.nemoUsageRecord(
      b + 'h:' + hour, b + 'd:' + day, b + 'uh:' + hour, b + 'ud:' + day, b + 'userday:' + day, b + 'user:' + e.userId, b + 'users',
      tokensIn, tokensOut, isError, latency, 'o:' + outcome, 'c:' + channel, 'lat:' + latencyBucket(latency),
      hourTtl, dayTtl, e.userId, at.toISOString(), channel, retentionS, at.getTime(),
    ));
  }

  /** Notes that a user was seen (display name and channel for the Users page). */
  async touchUser(u: { userId: string; displayName?: string; channel?: string; at?: Date }): Promise<void> {
    checkUserId(u.userId);
    const at = u.at ?? this.now();
    const named = u.displayName !== undefined;
    await guard(() => this.scripts.nemoUsageTouch(
      this.k('user', u.userId), this.k('users'),
      at.toISOString(), u.channel === undefined ? '' : label(u.channel), named ? '1' : '0', named ? u.displayName!.slice(0, MAX_NAME) : '',
      this.retentionDays * 86_400, at.getTime(), u.userId,
    ));
  }

  async series(range: UsageRange, now: Date = this.now()): Promise<UsageSeries> {
    const spec = RANGE_SPEC[range];
    if (!spec) throw new RangeError(`unknown range ${String(range)}; expected one of ${USAGE_RANGES.join(', ')}`);
    const slots = this.slots(range, now);
    const res = await guard(() => this.scripts.nemoUsageSeries(2 * slots.length, ...slots.map((s) => s.counters), ...slots.map((s) => s.users)));
    if (!Array.isArray(res) || res.length !== 2 * slots.length + 1) throw new Error('usage query returned an unexpected answer');
    const totalHist = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
    const totals = emptyCounts();
    let latencySum = 0;
    const buckets: UsageBucket[] = slots.map((s, i) => {
      const h = hashFrom(res[2 * i]);
      const users = Number(res[2 * i + 1] ?? 0);
      const hist = histFrom(h);
      const b = countsFrom(h, users, hist);
      hist.forEach((c, j) => (totalHist[j] += c));
      latencySum += Number(h.latencySum ?? 0);
      totals.messages += b.messages;
      totals.tokensIn += b.tokensIn;
      totals.tokensOut += b.tokensOut;
      totals.errors += b.errors;
      addInto(totals.outcomes, b.outcomes);
      addInto(totals.channels, b.channels);
      return { start: s.start, ...b };
    });
    totals.activeUsers = Number(res[res.length - 1] ?? 0);
    totals.latencyP50 = quantile(totalHist, 0.5);
    totals.latencyP95 = quantile(totalHist, 0.95);
    totals.latencyAvg = totals.messages ? Math.round(latencySum / totals.messages) : null;
    return { range, granularity: spec.granularity, buckets, totals };
  }

  async latencyHistogram(range: UsageRange, now: Date = this.now()): Promise<LatencyHistogram> {
    if (!RANGE_SPEC[range]) throw new RangeError(`unknown range ${String(range)}; expected one of ${USAGE_RANGES.join(', ')}`);
    const slots = this.slots(range, now);
    const p = this.store.redis.pipeline();
    for (const s of slots) p.hgetall(s.counters);
    const res = await guard(() => p.exec());
    const hist = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
    for (const [, h] of res ?? []) histFrom((h ?? {}) as Record<string, string>).forEach((c, j) => (hist[j] += c));
    return {
      buckets: hist.map((c, i) => ({ le: i < LATENCY_BOUNDS_MS.length ? LATENCY_BOUNDS_MS[i] : null, count: c })),
      count: hist.reduce((a, b) => a + b, 0),
      p50: quantile(hist, 0.5),
      p95: quantile(hist, 0.95),
      p99: quantile(hist, 0.99),
    };
  }

  /** One user's totals, or null when never seen (or expired). */
  async userTotals(userId: string): Promise<UserSummary | null> {
    checkUserId(userId);
    const [summary] = await this.summaries([userId]);
    return summary ?? null;
  }

  /** Users by most recent activity, newest first; optional name/id substring search. */
  async listUsers(options: UserListOptions = {}): Promise<{ total: number; users: UserSummary[]; scanned?: number }> {
    const limit = clampInt(options.limit ?? 50, 1, 500);
    const offset = clampInt(options.offset ?? 0, 0, 1_000_000);
    const z = this.k('users');
    await this.pruneUsers();
    const query = options.query?.trim().toLowerCase();
    if (!query) {
      const [total, ids] = await guard(() => Promise.all([this.store.redis.zcard(z), this.store.redis.zrevrange(z, offset, offset + limit - 1)]));
      return { total, users: await this.summaries(ids) };
    }
    // Search: walk the most recent users in pages and filter by name/id (bounded work).
    const maxScan = clampInt(options.maxScan ?? 20_000, 1, 1_000_000);
    const matches: string[] = [];
    let scanned = 0;
    const page = 500;
    while (scanned < maxScan) {
      const ids = await guard(() => this.store.redis.zrevrange(z, scanned, Math.min(scanned + page, maxScan) - 1));
      if (ids.length === 0) break;
      const p = this.store.redis.pipeline();
      for (const id of ids) p.hget(this.k('user', id), 'displayName');
      const names = (await guard(() => p.exec())) ?? [];
      ids.forEach((id, i) => {
        const name = String(names[i]?.[1] ?? '');
        if (name.toLowerCase().includes(query) || id.toLowerCase().includes(query)) matches.push(id);
      });
      scanned += ids.length;
    }
    return { total: matches.length, users: await this.summaries(matches.slice(offset, offset + limit)), scanned };
  }

  // ---------------------------------------------------------------- internals

  private k(...parts: (string | number)[]): string {
    return this.store.key('usage', ...parts);
  }

  /** Drops index entries for users whose hash expired. */
  private async pruneUsers(): Promise<void> {
    const cutoff = this.now().getTime() - this.retentionDays * DAY_MS;
    await guard(() => this.store.redis.zremrangebyscore(this.k('users'), '-inf', `(${cutoff}`));
  }

  private async summaries(ids: string[]): Promise<UserSummary[]> {
    if (ids.length === 0) return [];
    const today = this.k('userday', dayKey(this.now(), this.tz));
    const p = this.store.redis.pipeline();
    for (const id of ids) p.hgetall(this.k('user', id)).hget(today, id);
    const res = (await guard(() => p.exec())) ?? [];
    const out: UserSummary[] = [];
    ids.forEach((userId, i) => {
      const h = (res[2 * i]?.[1] ?? {}) as Record<string, string>;
      if (!h.lastSeen) return;
      out.push({
        userId,
        displayName: h.displayName ?? null,
        channel: h.channel ?? null,
        firstSeen: h.firstSeen ?? null,
        lastSeen: h.lastSeen ?? null,
        messagesToday: Number(res[2 * i + 1]?.[1] ?? 0),
        messages: Number(h.messages ?? 0),
        tokensIn: Number(h.tokensIn ?? 0),
        tokensOut: Number(h.tokensOut ?? 0),
        errors: Number(h.errors ?? 0),
      });
    });
    return out;
  }

  /** The buckets of a range ending at `now`; the same until the hour (or day) changes, so kept. */
  private slots(range: UsageRange, now: Date): readonly Slot[] {
    const spec = RANGE_SPEC[range];
    const anchor = spec.granularity === 'hour' ? String(hourIndex(now)) : dayKey(now, this.tz);
    const cached = this.slotCache.get(range);
    if (cached?.anchor === anchor) return cached.slots;
    let slots: Slot[];
    if (spec.granularity === 'hour') {
      const last = Number(anchor);
      slots = Array.from({ length: spec.count }, (_, i) => {
        const h = last - spec.count + 1 + i;
        return { start: new Date(h * HOUR_MS).toISOString(), counters: this.k('h', h), users: this.k('uh', h) };
      });
    } else {
      slots = Array.from({ length: spec.count }, (_, i) => {
        const d = addDays(anchor, i - spec.count + 1);
        return { start: dayStart(d, this.tz).toISOString(), counters: this.k('d', d), users: this.k('ud', d) };
      });
    }
    this.slotCache.set(range, { anchor, slots });
    return slots;
  }
}

function emptyCounts(): UsageCounts {
  return { messages: 0, tokensIn: 0, tokensOut: 0, errors: 0, activeUsers: 0, latencyP50: null, latencyP95: null, latencyAvg: null, outcomes: {}, channels: {} };
}

function histFrom(h: Record<string, string>): number[] {
  return Array.from({ length: LATENCY_BOUNDS_MS.length + 1 }, (_, i) => Number(h[`lat:${i}`] ?? 0));
}

/** A flat HGETALL reply (field, value, field, value …) as an object. */
function hashFrom(flat: unknown): Record<string, string> {
  const h: Record<string, string> = {};
  if (!Array.isArray(flat)) return h;
  for (let i = 0; i + 1 < flat.length; i += 2) h[String(flat[i])] = String(flat[i + 1]);
  return h;
}

function countsFrom(h: Record<string, string>, activeUsers: number, hist: number[] = histFrom(h)): UsageCounts {
  const messages = Number(h.messages ?? 0);
  const outcomes: Record<string, number> = {};
  const channels: Record<string, number> = {};
  for (const [f, v] of Object.entries(h)) {
    if (f.startsWith('o:')) outcomes[f.slice(2)] = Number(v);
    else if (f.startsWith('c:')) channels[f.slice(2)] = Number(v);
  }
  return {
    messages,
    tokensIn: Number(h.tokensIn ?? 0),
    tokensOut: Number(h.tokensOut ?? 0),
    errors: Number(h.errors ?? 0),
    activeUsers,
    latencyP50: quantile(hist, 0.5),
    latencyP95: quantile(hist, 0.95),
    latencyAvg: messages ? Math.round(Number(h.latencySum ?? 0) / messages) : null,
    outcomes,
    channels,
  };
}

function addInto(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** Outcome and channel names become hash field names: keep them short and plain. */
function label(v: unknown): string {
  return typeof v === 'string' && LABEL.test(v) ? v : 'other';
}

function count(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TypeError(`usage event ${name} must be a finite number ≥ 0`);
  return Math.round(v);
}

function clampInt(v: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, Math.floor(Number.isFinite(v) ? v : min)));
}

function checkUserId(userId: unknown): asserts userId is string {
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > 256) throw new TypeError('userId must be a string of 1-256 characters');
}
