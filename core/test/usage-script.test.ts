// UsageRecorder.record() runs one Lua script per message. These tests replay the same events
// through the former 45-command MULTI (kept here as the reference) under a second prefix and
// demand identical Redis contents: hash fields and counts, HyperLogLog counts, the latency
// histogram, the users index scores and every key's TTL. They also check that series() (one
// script call) answers exactly what the former per-bucket pipeline computed, and that the
// script survives a server that lost its script cache.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { latencyBucket } from '../usage/latency-histogram.js';
import { dayKey, dayStart, DAY_MS, HOUR_MS, hourIndex } from '../usage/time-buckets.js';
import { UsageRecorder, type UsageEvent } from '../usage/usage-recorder.js';
import { openTestStore } from '../testing.js';
import type { Store } from '../redis.js';

const TZ = 'Asia/Shanghai';
const RETENTION_DAYS = 45;

/** The pre-script implementation of record(), verbatim in effect (the reference). */
async function recordByMulti(store: Store, e: UsageEvent, nowMs: number): Promise<void> {
  const k = (...parts: (string | number)[]) => store.key('usage', ...parts);
  const label = (v: string) => (/^[A-Za-z0-9_.-]{1,32}$/.test(v) ? v : 'other');
  const at = e.at ?? new Date(nowMs);
  const latency = Math.round(e.latencyMs);
  const tokensIn = Math.round(e.tokensIn);
  const tokensOut = Math.round(e.tokensOut);
  const outcome = label(e.outcome);
  const channel = label(e.channel);
  const hour = hourIndex(at);
  const day = dayKey(at, TZ);
  const retentionS = RETENTION_DAYS * 86_400;
  const hourTtl = Math.max(1, Math.ceil(((hour + 1) * HOUR_MS - nowMs) / 1000) + retentionS);
  const dayTtl = Math.max(1, Math.ceil((dayStart(day, TZ).getTime() + DAY_MS - nowMs) / 1000) + retentionS);
  const isError = outcome === 'error' || outcome === 'timeout' ? 1 : 0;
  const m = store.redis.multi();
  for (const [key, ttl] of [[k('h', hour), hourTtl], [k('d', day), dayTtl]] as const) {
    m.hincrby(key, 'messages', 1).hincrby(key, 'tokensIn', tokensIn).hincrby(key, 'tokensOut', tokensOut)
      .hincrby(key, 'errors', isError).hincrby(key, 'latencySum', latency).hincrby(key, `o:${outcome}`, 1)
      .hincrby(key, `c:${channel}`, 1).hincrby(key, `lat:${latencyBucket(latency)}`, 1).expire(key, ttl);
  }
  m.pfadd(k('uh', hour), e.userId).expire(k('uh', hour), hourTtl);
  m.pfadd(k('ud', day), e.userId).expire(k('ud', day), dayTtl);
  m.hincrby(k('userday', day), e.userId, 1).expire(k('userday', day), dayTtl);
  const user = k('user', e.userId);
  m.hincrby(user, 'messages', 1).hincrby(user, 'tokensIn', tokensIn).hincrby(user, 'tokensOut', tokensOut).hincrby(user, 'errors', isError);
  const iso = at.toISOString();
  m.hsetnx(user, 'firstSeen', iso).hset(user, 'lastSeen', iso).hset(user, 'channel', channel).expire(user, retentionS);
  m.zadd(k('users'), 'GT', at.getTime(), e.userId);
  await m.exec();
}

/** The pre-script touchUser() (the reference). */
async function touchByMulti(store: Store, u: { userId: string; displayName?: string; channel?: string; at: Date }): Promise<void> {
  const user = store.key('usage', 'user', u.userId);
  const iso = u.at.toISOString();
  const m = store.redis.multi().hsetnx(user, 'firstSeen', iso).hset(user, 'lastSeen', iso);
  if (u.channel) m.hset(user, 'channel', /^[A-Za-z0-9_.-]{1,32}$/.test(u.channel) ? u.channel : 'other');
  if (u.displayName !== undefined) m.hset(user, 'displayName', u.displayName.slice(0, 200));
  m.expire(user, RETENTION_DAYS * 86_400).zadd(store.key('usage', 'users'), 'GT', u.at.getTime(), u.userId);
  await m.exec();
}

/** Everything under the store's usage prefix, by key name without the prefix. */
async function dump(store: Store): Promise<Map<string, { type: string; ttl: number; value: unknown }>> {
  const names = (await store.redis.keys(`${store.prefix}usage:*`)).sort();
  const out = new Map<string, { type: string; ttl: number; value: unknown }>();
  for (const name of names) {
    const type = await store.redis.type(name);
    const ttl = await store.redis.ttl(name);
    let value: unknown;
    if (type === 'hash') value = await store.redis.hgetall(name);
    else if (type === 'zset') value = await store.redis.zrange(name, '0', '-1', 'WITHSCORES');
    else if (type === 'string') value = await store.redis.pfcount(name); // HyperLogLogs are strings
    else value = type;
    out.set(name.slice(store.prefix.length), { type, ttl, value });
  }
  return out;
}

function events(nowMs: number): UsageEvent[] {
  const outcomes = ['ok', 'ok', 'ok', 'error', 'timeout', 'busy', 'denied', 'limited', 'odd outcome!'];
  const list: UsageEvent[] = [];
  for (let i = 0; i < 120; i++) {
    list.push({
      userId: i % 7 === 0 ? `用户-${i % 5} 🙂` : `wxid_${i % 13}`,
      channel: i % 4 === 0 ? 'web' : i % 29 === 0 ? 'x'.repeat(40) : 'wechat',
      tokensIn: (i * 17) % 300,
      tokensOut: i % 3 === 0 ? 0 : (i * 7) % 90,
      latencyMs: [0, 3.4, 49.5, 120, 480, 999.6, 2500, 7000, 45_000, 70_000][i % 10],
      outcome: outcomes[i % outcomes.length],
      // Spread over 40 days (within retention: expired keys would vanish mid-test), hours and a local-midnight boundary.
      at: new Date(nowMs - ((i * 7919) % (40 * 24)) * HOUR_MS - (i % 3) * 60_000),
    });
  }
  list.push({ userId: 'late', channel: 'wechat', tokensIn: 1, tokensOut: 1, latencyMs: 1, outcome: 'ok' }); // `at` defaults to now
  return list;
}

test('record() and touchUser() by script write exactly what the former MULTIs wrote (counts, HLLs, histogram, index, TTLs)', async () => {
  const nowMs = Date.parse('2026-03-10T15:59:30Z'); // 23:59:30 in Shanghai: next events cross midnight
  const viaScript = await openTestStore('usage-script');
  const viaMulti = await openTestStore('usage-multi');
  try {
    const usage = new UsageRecorder(viaScript, { USAGE_RETENTION_DAYS: RETENTION_DAYS, USAGE_TZ: TZ }, { now: () => new Date(nowMs) });
    const list = events(nowMs);
    for (const e of list) {
      await usage.record(e);
      await recordByMulti(viaMulti, e, nowMs);
    }
    const touches = [
      { userId: 'wxid_1', displayName: '新名字 🙂', channel: 'wechat', at: new Date(nowMs - 5 * DAY_MS) }, // older: index keeps the newer score
      { userId: 'wxid_2', displayName: '', at: new Date(nowMs) }, // empty name is still a name; no channel given
      { userId: 'wxid_3', channel: 'odd channel!', at: new Date(nowMs + 1000) },
      { userId: 'fresh', displayName: 'x'.repeat(500), channel: 'web', at: new Date(nowMs) },
    ];
    for (const t of touches) {
      await usage.touchUser(t);
      await touchByMulti(viaMulti, t);
    }
    const [a, b] = await Promise.all([dump(viaScript), dump(viaMulti)]);
    assert.ok(a.size > 50, `expected many keys, got ${a.size}`);
    assert.deepEqual([...a.keys()], [...b.keys()], 'the same keys');
    for (const [name, x] of a) {
      const y = b.get(name)!;
      assert.equal(x.type, y.type, name);
      assert.deepEqual(x.value, y.value, name);
      // Written within a second or two of each other: TTLs agree to that.
      assert.ok(Math.abs(x.ttl - y.ttl) <= 2, `${name}: TTL ${x.ttl} vs ${y.ttl}`);
      if (!name.endsWith('usage:users')) assert.ok(x.ttl > 0, `${name} must expire`);
    }
    const hour = a.get(`usage:h:${hourIndex(new Date(nowMs))}`)!.value as Record<string, string>;
    const inHour = list.filter((e) => hourIndex(e.at ?? new Date(nowMs)) === hourIndex(new Date(nowMs))).length;
    assert.equal(hour.messages, String(inHour), 'the default-time event lands in the current hour');
  } finally {
    await viaScript.cleanup();
    await viaMulti.cleanup();
  }
});

test('series() by script answers what the former per-bucket pipeline computed', async () => {
  const nowMs = Date.parse('2026-03-10T04:00:00Z');
  const store = await openTestStore('usage-series');
  try {
    const usage = new UsageRecorder(store, { USAGE_RETENTION_DAYS: 90, USAGE_TZ: TZ }, { now: () => new Date(nowMs) });
    for (const e of events(nowMs)) await usage.record(e);
    for (const range of ['24h', '7d', '30d', '90d'] as const) {
      const s = await usage.series(range);
      // Reference: the old reads (HGETALL + PFCOUNT per bucket, PFCOUNT over all) via a pipeline.
      const names = s.buckets.map((bk) => {
        const start = new Date(bk.start);
        return range === '24h'
          ? [store.key('usage', 'h', hourIndex(start)), store.key('usage', 'uh', hourIndex(start))]
          : [store.key('usage', 'd', dayKey(start, TZ)), store.key('usage', 'ud', dayKey(start, TZ))];
      });
      const p = store.redis.pipeline();
      for (const [h, u] of names) p.hgetall(h).pfcount(u);
      p.pfcount(...names.map(([, u]) => u));
      const res = (await p.exec())!;
      let messages = 0;
      s.buckets.forEach((bk, i) => {
        const h = res[2 * i][1] as Record<string, string>;
        assert.equal(bk.messages, Number(h.messages ?? 0), `${range} bucket ${i} messages`);
        assert.equal(bk.tokensIn, Number(h.tokensIn ?? 0));
        assert.equal(bk.tokensOut, Number(h.tokensOut ?? 0));
        assert.equal(bk.errors, Number(h.errors ?? 0));
        assert.equal(bk.activeUsers, Number(res[2 * i + 1][1]));
        const outcomes = Object.fromEntries(Object.entries(h).filter(([f]) => f.startsWith('o:')).map(([f, v]) => [f.slice(2), Number(v)]));
        assert.deepEqual(bk.outcomes, outcomes);
        messages += bk.messages;
      });
      assert.equal(s.totals.messages, messages);
      assert.equal(s.totals.activeUsers, Number(res.at(-1)![1]), `${range} distinct users`);
      assert.ok(range === '24h' || s.totals.messages > 0, `${range} has data`);
    }
  } finally {
    await store.cleanup();
  }
});

test('record() and series() still work after the server flushed its script cache', async () => {
  const store = await openTestStore('usage-noscript');
  try {
    const usage = new UsageRecorder(store, { USAGE_RETENTION_DAYS: 7, USAGE_TZ: TZ });
    const e = { userId: 'u', channel: 'wechat', tokensIn: 2, tokensOut: 3, latencyMs: 10, outcome: 'ok' };
    await usage.record(e);
    await store.redis.script('FLUSH');
    await usage.record(e);
    await store.redis.script('FLUSH');
    const s = await usage.series('24h');
    assert.equal(s.totals.messages, 2);
    assert.equal(s.totals.tokensOut, 6);
    assert.equal(s.totals.activeUsers, 1);
  } finally {
    await store.cleanup();
  }
});

test('day keys from the per-zone cache agree with Intl around midnights and clock changes', () => {
  const zones = ['Asia/Shanghai', 'UTC', 'Europe/Berlin', 'America/Santiago', 'Asia/Kolkata', 'Australia/Lord_Howe'];
  const fresh = (t: number, tz: string) =>
    new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(t));
  // Walk 2026-03-25 .. 2026-04-10 (European and Chilean/Australian DST changes) in 17-minute steps,
  // in order (the cache's common case) and then backwards (every lookup a miss at first).
  const from = Date.parse('2026-03-25T00:00:00Z');
  const to = Date.parse('2026-04-10T00:00:00Z');
  for (const tz of zones) {
    for (let t = from; t < to; t += 17 * 60_000) assert.equal(dayKey(new Date(t), tz), fresh(t, tz), `${tz} at ${new Date(t).toISOString()}`);
    for (let t = to; t > from; t -= 53 * 60_000) assert.equal(dayKey(new Date(t), tz), fresh(t, tz), `${tz} at ${new Date(t).toISOString()}`);
  }
});
