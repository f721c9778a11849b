// UsageRecorder after known traffic: what series(), latencyHistogram(), userTotals() and
// listUsers() report must be what the events say (counted here by plain folds over the list, with
// local days from Intl), across hours, a local midnight and 40 days. Also: the scripts survive a
// server that lost its script cache, and the per-zone day cache agrees with Intl.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LATENCY_BOUNDS_MS, quantile } from '../usage/latency-histogram.js';
import { dayKey, DAY_MS, HOUR_MS } from '../usage/time-buckets.js';
import { UsageRecorder, USAGE_RANGES, type UsageEvent } from '../usage/usage-recorder.js';
import { openTestStore } from '../testing.js';

const TZ = 'Asia/Shanghai';
const RETENTION_DAYS = 45;

const dayFormat = new Intl.DateTimeFormat('en-CA', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit' });
const localDay = (t: number): string => dayFormat.format(new Date(t));
const plain = (v: string): string => (/^[A-Za-z0-9_.-]{1,32}$/.test(v) ? v : 'other');

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
      // Spread over 40 days (within retention), hours and a local-midnight boundary.
      at: new Date(nowMs - ((i * 7919) % (40 * 24)) * HOUR_MS - (i % 3) * 60_000),
    });
  }
  return list;
}

/** What a set of events adds up to, counted directly. */
function fold(list: UsageEvent[]) {
  const outcomes: Record<string, number> = {};
  const channels: Record<string, number> = {};
  const hist = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  let latencySum = 0;
  for (const e of list) {
    outcomes[plain(e.outcome)] = (outcomes[plain(e.outcome)] ?? 0) + 1;
    channels[plain(e.channel)] = (channels[plain(e.channel)] ?? 0) + 1;
    const ms = Math.round(e.latencyMs);
    latencySum += ms;
    const i = LATENCY_BOUNDS_MS.findIndex((le) => ms <= le);
    hist[i < 0 ? LATENCY_BOUNDS_MS.length : i]++;
  }
  return {
    messages: list.length,
    tokensIn: list.reduce((a, e) => a + Math.round(e.tokensIn), 0),
    tokensOut: list.reduce((a, e) => a + Math.round(e.tokensOut), 0),
    errors: list.filter((e) => e.outcome === 'error' || e.outcome === 'timeout').length,
    activeUsers: new Set(list.map((e) => e.userId)).size,
    latencyAvg: list.length ? Math.round(latencySum / list.length) : null,
    outcomes,
    channels,
    hist,
  };
}

test('after known traffic, series() and latencyHistogram() report exactly what was recorded, for every range', async () => {
  const nowMs = Date.parse('2026-03-10T15:59:30Z'); // 23:59:30 in Shanghai: some events fall on the next local day
  const store = await openTestStore('usage-series');
  try {
    const usage = new UsageRecorder(store, { USAGE_RETENTION_DAYS: RETENTION_DAYS, USAGE_TZ: TZ }, { now: () => new Date(nowMs) });
    const list = events(nowMs);
    for (const e of list) await usage.record(e);
    await usage.record({ userId: 'late', channel: 'wechat', tokensIn: 1, tokensOut: 1, latencyMs: 1, outcome: 'ok' }); // `at` defaults to now
    list.push({ userId: 'late', channel: 'wechat', tokensIn: 1, tokensOut: 1, latencyMs: 1, outcome: 'ok', at: new Date(nowMs) });
    const currentHour = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
    for (const range of USAGE_RANGES) {
      const s = await usage.series(range);
      const hourly = range === '24h';
      assert.equal(s.granularity, hourly ? 'hour' : 'day');
      assert.equal(s.buckets.length, { '24h': 24, '7d': 7, '30d': 30, '90d': 90 }[range], `${range} buckets`);
      const inRange: UsageEvent[] = [];
      s.buckets.forEach((b, i) => {
        const start = Date.parse(b.start);
        let mine: UsageEvent[];
        if (hourly) {
          assert.equal(start, currentHour - (23 - i) * HOUR_MS, `${range} bucket ${i} start`);
          mine = list.filter((e) => e.at!.getTime() >= start && e.at!.getTime() < start + HOUR_MS);
        } else {
          assert.equal(localDay(start), localDay(nowMs - (s.buckets.length - 1 - i) * DAY_MS), `${range} bucket ${i} day`);
          assert.match(b.start, /T16:00:00\.000Z$/, 'a day starts at local midnight (UTC+8)');
          mine = list.filter((e) => localDay(e.at!.getTime()) === localDay(start));
        }
        inRange.push(...mine);
        const { hist, ...want } = fold(mine);
        const got = { messages: b.messages, tokensIn: b.tokensIn, tokensOut: b.tokensOut, errors: b.errors, activeUsers: b.activeUsers, latencyAvg: b.latencyAvg, outcomes: b.outcomes, channels: b.channels };
        assert.deepEqual(got, want, `${range} bucket ${b.start}`);
        assert.equal(b.latencyP50, quantile(hist, 0.5));
      });
      const { hist, ...want } = fold(inRange);
      const t = s.totals;
      assert.deepEqual(
        { messages: t.messages, tokensIn: t.tokensIn, tokensOut: t.tokensOut, errors: t.errors, activeUsers: t.activeUsers, latencyAvg: t.latencyAvg, outcomes: t.outcomes, channels: t.channels },
        want,
        `${range} totals`,
      );
      assert.ok(hourly || t.messages > 0, `${range} has data`);
      const lat = await usage.latencyHistogram(range);
      assert.deepEqual(lat.buckets.map((b) => b.count), hist, `${range} latency histogram`);
      assert.deepEqual(lat.buckets.map((b) => b.le), [...LATENCY_BOUNDS_MS, null]);
      assert.equal(lat.count, inRange.length);
      assert.equal(lat.p95, quantile(hist, 0.95));
    }
    const hour = await usage.series('24h');
    assert.equal(hour.buckets.at(-1)!.outcomes.ok >= 1, true, 'the default-time event lands in the current hour');
    const day90 = await usage.series('90d');
    assert.equal(day90.totals.messages, list.length, 'all 40 days lie inside 90 days');
  } finally {
    await store.cleanup();
  }
});

test('after known traffic and name updates, userTotals() and listUsers() report each user as recorded', async () => {
  const nowMs = Date.parse('2026-03-10T15:59:30Z');
  const store = await openTestStore('usage-users');
  try {
    const usage = new UsageRecorder(store, { USAGE_RETENTION_DAYS: RETENTION_DAYS, USAGE_TZ: TZ }, { now: () => new Date(nowMs) });
    const list = events(nowMs);
    for (const e of list) await usage.record(e);
    const touches = [
      { userId: 'wxid_2', displayName: '', at: new Date(nowMs) }, // an empty name is still a name; the channel stays
      { userId: 'wxid_3', displayName: '三号', channel: 'odd channel!', at: new Date(nowMs + 1000) },
      { userId: 'fresh', displayName: 'x'.repeat(500), channel: 'web', at: new Date(nowMs - 1000) },
    ];
    for (const t of touches) await usage.touchUser(t);
    const ids = [...new Set([...list.map((e) => e.userId), 'fresh'])];
    const latest = new Map<string, number>();
    for (const e of [...list, ...touches]) latest.set(e.userId, Math.max(latest.get(e.userId) ?? 0, e.at!.getTime()));
    for (const id of ids) {
      const mine = list.filter((e) => e.userId === id);
      const touch = touches.find((t) => t.userId === id);
      const { messages, tokensIn, tokensOut, errors } = fold(mine);
      const lastChannel = touch?.channel ?? mine.at(-1)?.channel;
      const first = mine[0]?.at ?? touch!.at;
      assert.deepEqual(await usage.userTotals(id), {
        userId: id,
        displayName: touch ? touch.displayName.slice(0, 200) : null,
        channel: lastChannel === undefined ? null : plain(lastChannel),
        firstSeen: first.toISOString(),
        lastSeen: (touch?.at ?? mine.at(-1)!.at!).toISOString(),
        messagesToday: mine.filter((e) => localDay(e.at!.getTime()) === localDay(nowMs)).length,
        messages, tokensIn, tokensOut, errors,
      }, id);
    }
    assert.equal(await usage.userTotals('never-seen'), null);
    const all = await usage.listUsers({ limit: 500 });
    assert.equal(all.total, ids.length);
    assert.deepEqual(all.users.map((u) => u.userId).sort(), [...ids].sort());
    const order = all.users.map((u) => latest.get(u.userId)!);
    assert.deepEqual(order, [...order].sort((a, b) => b - a), 'newest activity first');
    assert.equal(all.users[0].userId, 'wxid_3');
    assert.deepEqual((await usage.listUsers({ query: '三号' })).users.map((u) => u.userId), ['wxid_3']);
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
