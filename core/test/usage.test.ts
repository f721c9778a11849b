// UsageRecorder on a real Redis: counters, active users, latency percentiles, range queries,
// users seen, retention by expiry, and bad input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quantile, LATENCY_BOUNDS_MS } from '../usage/latency-histogram.js';
import { addDays, dayKey, dayStart } from '../usage/time-buckets.js';
import { UsageRecorder } from '../usage/usage-recorder.js';
import { openTestStore } from '../testing.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

async function setup(now: Date, retentionDays = 90) {
  const store = await openTestStore('usage');
  const usage = new UsageRecorder(store, { USAGE_RETENTION_DAYS: retentionDays, USAGE_TZ: 'Asia/Shanghai' }, { now: () => now });
  return { store, usage, done: () => store.cleanup() };
}

test('day buckets follow the operator time zone', () => {
  // 2026-03-01 17:00 UTC is already 2 March in Shanghai.
  assert.equal(dayKey(new Date('2026-03-01T17:00:00Z'), 'Asia/Shanghai'), '2026-03-02');
  assert.equal(dayKey(new Date('2026-03-01T17:00:00Z'), 'UTC'), '2026-03-01');
  assert.equal(dayStart('2026-03-02', 'Asia/Shanghai').toISOString(), '2026-03-01T16:00:00.000Z');
  assert.equal(dayStart('2026-03-29', 'Europe/Berlin').toISOString(), '2026-03-28T23:00:00.000Z');
  assert.equal(dayStart('2026-03-30', 'Europe/Berlin').toISOString(), '2026-03-29T22:00:00.000Z', 'after the DST switch');
  assert.equal(addDays('2026-03-01', -1), '2026-02-28');
  assert.equal(addDays('2024-02-28', 1), '2024-02-29');
});

test('latency quantiles are interpolated inside fixed buckets', () => {
  const counts = new Array(LATENCY_BOUNDS_MS.length + 1).fill(0);
  assert.equal(quantile(counts, 0.5), null);
  counts[3] = 10; // (250, 500]
  assert.equal(quantile(counts, 0.5), 375);
  assert.equal(quantile(counts, 1), 500);
  counts[LATENCY_BOUNDS_MS.length] = 90; // everything else above 60 s
  assert.equal(quantile(counts, 0.95), 60_000);
});

test('record() counts messages, tokens, errors, outcomes, channels and active users per hour', async () => {
  const now = new Date('2026-03-01T10:30:00Z');
  const { usage, done } = await setup(now);
  try {
    const at = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000);
    await usage.record({ userId: 'a', channel: 'wechat', tokensIn: 10, tokensOut: 20, latencyMs: 120, outcome: 'ok', at: at(5) });
    await usage.record({ userId: 'a', channel: 'wechat', tokensIn: 5, tokensOut: 0, latencyMs: 3000, outcome: 'timeout', at: at(4) });
    await usage.record({ userId: 'b', channel: 'web', tokensIn: 7, tokensOut: 9, latencyMs: 400, outcome: 'ok', at: at(3) });
    await usage.record({ userId: 'c', channel: 'wechat', tokensIn: 1, tokensOut: 0, latencyMs: 2, outcome: 'denied', at: at(60) });
    const s = await usage.series('24h');
    assert.equal(s.granularity, 'hour');
    assert.equal(s.buckets.length, 24);
    assert.equal(s.buckets[23].start, '2026-03-01T10:00:00.000Z');
    assert.equal(s.buckets[22].start, '2026-03-01T09:00:00.000Z');
    const cur = s.buckets[23];
    assert.deepEqual(
      [cur.messages, cur.tokensIn, cur.tokensOut, cur.errors, cur.activeUsers],
      [3, 22, 29, 1, 2],
    );
    assert.deepEqual(cur.outcomes, { ok: 2, timeout: 1 });
    assert.deepEqual(cur.channels, { wechat: 2, web: 1 });
    assert.equal(cur.latencyAvg, Math.round((120 + 3000 + 400) / 3));
    assert.ok(cur.latencyP50! > 250 && cur.latencyP50! <= 500, `p50 ${cur.latencyP50}`);
    assert.equal(s.buckets[22].messages, 1);
    assert.equal(s.buckets[21].messages, 0);
    assert.equal(s.buckets[21].latencyP50, null);
    assert.equal(s.totals.messages, 4);
    assert.equal(s.totals.activeUsers, 3, 'distinct users over the whole range, not a sum of hours');
    assert.deepEqual(s.totals.outcomes, { ok: 2, timeout: 1, denied: 1 });
  } finally {
    await done();
  }
});

test('daily ranges cover 7/30/90 local days and drop events outside the range', async () => {
  const now = new Date('2026-03-10T02:00:00Z'); // 10:00 on 10 March in Shanghai
  const { usage, done } = await setup(now);
  try {
    await usage.record({ userId: 'a', channel: 'wechat', tokensIn: 1, tokensOut: 1, latencyMs: 10, outcome: 'ok' });
    await usage.record({ userId: 'b', channel: 'wechat', tokensIn: 1, tokensOut: 1, latencyMs: 10, outcome: 'ok', at: new Date('2026-03-09T15:59:00Z') }); // 9 March 23:59 local
    await usage.record({ userId: 'a', channel: 'wechat', tokensIn: 1, tokensOut: 1, latencyMs: 10, outcome: 'ok', at: new Date(now.getTime() - 20 * DAY) });
    const week = await usage.series('7d');
    assert.equal(week.granularity, 'day');
    assert.equal(week.buckets.length, 7);
    assert.equal(week.buckets[6].start, '2026-03-09T16:00:00.000Z');
    assert.equal(week.buckets[0].start, '2026-03-03T16:00:00.000Z');
    assert.deepEqual(week.buckets.slice(5).map((b) => b.messages), [1, 1]);
    assert.equal(week.totals.messages, 2);
    assert.equal(week.totals.activeUsers, 2);
    const month = await usage.series('30d');
    assert.equal(month.buckets.length, 30);
    assert.equal(month.totals.messages, 3);
    assert.equal(month.totals.activeUsers, 2);
    assert.equal((await usage.series('90d')).buckets.length, 90);
    await assert.rejects(usage.series('1y' as never), RangeError);
    const hist = await usage.latencyHistogram('30d');
    assert.equal(hist.count, 3);
    assert.equal(hist.buckets[0].le, 50);
    assert.equal(hist.buckets[0].count, 3);
    assert.equal(hist.buckets.at(-1)!.le, null);
  } finally {
    await done();
  }
});

test('users seen: totals, today count, newest first, search by name, retention TTLs set', async () => {
  const now = new Date('2026-03-10T02:00:00Z');
  const { store, usage, done } = await setup(now, 30);
  try {
    await usage.touchUser({ userId: 'wxid_alice', displayName: '爱丽丝 Alice', channel: 'wechat', at: new Date(now.getTime() - 3 * DAY) });
    await usage.record({ userId: 'wxid_alice', channel: 'wechat', tokensIn: 3, tokensOut: 4, latencyMs: 50, outcome: 'ok', at: new Date(now.getTime() - 2 * DAY) });
    await usage.record({ userId: 'wxid_alice', channel: 'wechat', tokensIn: 3, tokensOut: 4, latencyMs: 50, outcome: 'error' });
    await usage.touchUser({ userId: 'web:42', displayName: 'Bob 🙂', channel: 'web', at: new Date(now.getTime() - HOUR) });
    const alice = await usage.userTotals('wxid_alice');
    assert.deepEqual(alice, {
      userId: 'wxid_alice',
      displayName: '爱丽丝 Alice',
      channel: 'wechat',
      firstSeen: new Date(now.getTime() - 3 * DAY).toISOString(),
      lastSeen: now.toISOString(),
      messagesToday: 1,
      messages: 2,
      tokensIn: 6,
      tokensOut: 8,
      errors: 1,
    });
    assert.equal(await usage.userTotals('nobody'), null);
    const list = await usage.listUsers();
    assert.equal(list.total, 2);
    assert.deepEqual(list.users.map((u) => u.userId), ['wxid_alice', 'web:42']);
    assert.deepEqual((await usage.listUsers({ limit: 1, offset: 1 })).users.map((u) => u.userId), ['web:42']);
    assert.deepEqual((await usage.listUsers({ query: '爱丽' })).users.map((u) => u.userId), ['wxid_alice']);
    assert.deepEqual((await usage.listUsers({ query: 'BOB' })).users.map((u) => u.userId), ['web:42']);
    assert.equal((await usage.listUsers({ query: 'zzz' })).total, 0);
    // Retention by expiry: every key written has a TTL, none longer than retention + 1 day.
    const names = await store.redis.keys(`${store.prefix}usage:*`);
    assert.ok(names.length > 5);
    for (const n of names) {
      if (n.endsWith('usage:users')) continue; // the index is pruned by score instead
      const ttl = await store.redis.ttl(n);
      assert.ok(ttl > 0 && ttl <= 31 * 86_400, `${n} has TTL ${ttl}`);
    }
  } finally {
    await done();
  }
});

test('the users index forgets users older than the retention period', async () => {
  const now = new Date('2026-03-10T02:00:00Z');
  const { usage, done } = await setup(now, 7);
  try {
    await usage.touchUser({ userId: 'old', at: new Date(now.getTime() - 8 * DAY) });
    await usage.touchUser({ userId: 'new', at: now });
    const list = await usage.listUsers();
    assert.deepEqual(list.users.map((u) => u.userId), ['new']);
    assert.equal(list.total, 1);
  } finally {
    await done();
  }
});

test('bad usage events are refused with clear errors; odd labels are kept safe', async () => {
  const now = new Date('2026-03-10T02:00:00Z');
  const { usage, done } = await setup(now);
  try {
    const ok = { userId: 'u', channel: 'wechat', tokensIn: 1, tokensOut: 1, latencyMs: 1, outcome: 'ok' };
    await assert.rejects(usage.record({ ...ok, userId: '' }), TypeError);
    await assert.rejects(usage.record({ ...ok, tokensIn: -1 }), /tokensIn/);
    await assert.rejects(usage.record({ ...ok, latencyMs: Number.NaN }), /latencyMs/);
    await assert.rejects(usage.record({ ...ok, at: new Date('nope') }), /invalid date/);
    await usage.record({ ...ok, outcome: 'weird outcome:with spaces', channel: 'x'.repeat(100) });
    const h = await usage.series('24h');
    assert.deepEqual(h.totals.outcomes, { other: 1 });
    assert.deepEqual(h.totals.channels, { other: 1 });
    await usage.touchUser({ userId: 'long-name', displayName: '名'.repeat(10_000) });
    assert.equal((await usage.userTotals('long-name'))!.displayName!.length, 200);
  } finally {
    await done();
  }
});
