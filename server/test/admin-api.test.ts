// The admin API the panel uses: keys, schedule, usage, users, settings, bot state, audit,
// health, readiness and metrics — against a real Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InstanceLease } from '../../bot/instance-lease.js';
import { setBotWaiting, setLoginState } from '../../bot/login-state.js';
import { Bans } from '../../bot/bans.js';
import { ConversationMemory } from '../../bot/conversation.js';
import { Limits } from '../../bot/limits.js';
import { applyChatSettings } from '../../core/settings/runtime-settings.js';
import { field, startHarness, type Client, type Harness } from './harness.js';

describe('admin API', () => {
  let h: Harness;
  let c: Client;
  before(async () => {
    h = await startHarness();
    c = await h.admin();
  });
  after(() => h.close());

  test('keys: current, rotate (new key, audit entry), history newest first', async () => {
    const cur = await c.get('/api/admin/keys/current');
    assert.equal(cur.status, 200);
    const k1 = cur.body as { key: string; version: number; createdAt: string; expiresAt: string; nextRotationAt: string; graceMinutes: number };
    assert.match(k1.key, /^\d{6}$/);
    assert.equal(cur.headers.get('cache-control'), 'no-store');
    for (const f of ['version', 'createdAt', 'expiresAt', 'nextRotationAt']) assert.ok(f in k1, f);
    assert.ok(new Date(k1.expiresAt).getTime() - new Date(k1.nextRotationAt).getTime() === k1.graceMinutes * 60_000);
    const rot = await c.post('/api/admin/keys/rotate');
    assert.equal(rot.status, 200);
    const k2 = rot.body as typeof k1;
    assert.equal(k2.version, k1.version + 1);
    assert.equal((await h.keys.current()).key, k2.key);
    const hist = field<{ version: number; key: string; retiredAt: string | null }[]>(await c.get('/api/admin/keys/history'), 'items');
    assert.deepEqual(hist.slice(0, 2).map((e) => e.version), [k2.version, k1.version]);
    assert.equal(hist[1].key, k1.key);
    assert.ok(hist[1].retiredAt);
    const audit = field<{ action: string; details: { version?: number } }[]>(await c.get('/api/admin/audit'), 'items');
    assert.ok(audit.some((e) => e.action === 'keys.rotate' && e.details.version === k2.version));
    assert.ok(!JSON.stringify(audit).includes(k2.key), 'keys are not written to the audit log');
  });

  test('schedule: read, preview, save (description + five next runs), clear errors for bad input', async () => {
    const s = await c.get('/api/admin/keys/schedule');
    assert.equal(s.status, 200);
    assert.equal(field<string[]>(s, 'nextRuns').length, 5);
    assert.ok(field<unknown[]>(s, 'presets').length >= 2);
    const p = await c.get(`/api/admin/keys/schedule/preview?cron=${encodeURIComponent('0 9 * * 1')}&tz=UTC`);
    assert.equal(p.status, 200);
    assert.match(field(p, 'description'), /09:00.*Monday/);
    const saved = await c.put('/api/admin/keys/schedule', { cron: '30 8 * * *', tz: 'Asia/Shanghai' });
    assert.equal(saved.status, 200);
    assert.equal(field(saved, 'source'), 'stored');
    assert.match(field(saved, 'description'), /08:30/);
    const runs = field<string[]>(saved, 'nextRuns');
    assert.equal(runs.length, 5);
    for (const r of runs) assert.equal(new Date(r).toISOString().slice(11, 16), '00:30', 'Shanghai 08:30 = 00:30 UTC');
    assert.equal((await h.keys.getSchedule()).cron, '30 8 * * *');
    const next = field<string>(await c.get('/api/admin/keys/current'), 'nextRotationAt');
    assert.equal(next, runs[0]);

    const bad = await c.put('/api/admin/keys/schedule', { cron: '61 * * * *', tz: 'UTC' });
    assert.equal(bad.status, 400);
    assert.match(field(bad, 'error'), /not a valid cron/);
    const badTz = await c.put('/api/admin/keys/schedule', { cron: '0 0 * * *', tz: 'Mars/Olympus' });
    assert.equal(badTz.status, 400);
    assert.match(field(badTz, 'error'), /time zone/);
    assert.equal((await c.put('/api/admin/keys/schedule', { cron: 5 })).status, 400);
    assert.equal((await c.get('/api/admin/keys/schedule/preview?cron=&tz=UTC')).status, 400);
    assert.equal((await h.keys.getSchedule()).cron, '30 8 * * *', 'bad input changed nothing');
  });

  test('usage: series with failed key attempts per bucket, totals, daily series; bad range → 400', async () => {
    const now = new Date();
    for (let i = 0; i < 5; i++) {
      await h.usage.record({ userId: `wx-${i % 2}`, channel: 'wechat', tokensIn: 10, tokensOut: 20 + i, latencyMs: 100 * (i + 1), outcome: i === 4 ? 'error' : 'ok', at: now });
    }
    await h.usage.record({ userId: 'web:1', channel: 'web', tokensIn: 5, tokensOut: 7, latencyMs: 50, outcome: 'ok', at: new Date(now.getTime() - 3 * 3_600_000) });
    const before = (await h.keys.failedAttempts());
    await h.keys.verify('guesser', '000000' === (await h.keys.current()).key ? '111111' : '000000');
    assert.equal(await h.keys.failedAttempts(), before + 1);

    const r = await c.get('/api/admin/usage?range=24h');
    assert.equal(r.status, 200);
    const v = r.body as { bucketSeconds: number; buckets: { messages: number; failedKeyAttempts: number; tokensOut: number }[]; totals: Record<string, number>; daily: { buckets: unknown[] } };
    assert.equal(v.bucketSeconds, 3600);
    assert.equal(v.buckets.length, 24);
    assert.equal(v.totals.messages, 6);
    assert.equal(v.totals.errors, 1);
    assert.equal(v.totals.tokensOut, 20 + 21 + 22 + 23 + 24 + 7);
    assert.equal(v.totals.activeUsers, 3);
    assert.equal(v.totals.failedKeyAttempts, 1);
    assert.equal(v.buckets[23].messages, 5);
    assert.equal(v.buckets[23].failedKeyAttempts, 1);
    assert.equal(v.buckets[20].messages, 1);
    assert.equal(v.daily.buckets.length, 7);
    const d30 = await c.get('/api/admin/usage?range=30d');
    assert.equal(field<unknown[]>(d30, 'buckets').length, 30);
    assert.equal(field<number>(d30, 'bucketSeconds'), 86_400);
    assert.equal(field<Record<string, number>>(d30, 'totals').failedKeyAttempts, 1);
    assert.equal((await c.get('/api/admin/usage?range=1y')).status, 400);
  });

  test('users: listing with names as sent (markup kept as text), search, ban/unban, reset quota, clear memory, unlock', async () => {
    const evil = '<img src=x onerror=alert(1)>';
    await h.usage.touchUser({ userId: 'wx-evil', displayName: evil, channel: 'wechat' });
    await h.usage.record({ userId: 'wx-evil', channel: 'wechat', tokensIn: 1, tokensOut: 2, latencyMs: 10, outcome: 'ok' });
    await h.usage.touchUser({ userId: 'wx-alice', displayName: '爱丽丝 Alice 🌸', channel: 'wechat' });
    const list = await c.get('/api/admin/users');
    assert.equal(list.status, 200);
    const users = field<{ userId: string; displayName: string; messagesToday: number; banned: unknown; locked: unknown }[]>(list, 'users');
    const e = users.find((u) => u.userId === 'wx-evil')!;
    assert.equal(e.displayName, evil);
    assert.equal(e.messagesToday, 1);
    const found = field<{ userId: string }[]>(await c.get(`/api/admin/users?q=${encodeURIComponent('alice')}`), 'users');
    assert.deepEqual(found.map((u) => u.userId), ['wx-alice']);

    const bans = new Bans(h.store);
    assert.equal((await c.post('/api/admin/users/wx-evil/ban', { reason: 'spam' })).status, 200);
    assert.equal(await bans.isBanned('wx-evil'), true, 'the bot sees the ban');
    const banned = field<{ userId: string; banned: { reason: string } }[]>(await c.get('/api/admin/users?filter=banned'), 'users');
    assert.deepEqual(banned.map((u) => [u.userId, u.banned.reason]), [['wx-evil', 'spam']]);
    assert.equal((await c.post('/api/admin/users/wx-evil/unban')).status, 200);
    assert.equal(await bans.isBanned('wx-evil'), false);

    const limits = new Limits(h.store, { rateLimit: 100, windowMs: 60_000, dailyQuota: 10, timeZone: h.botConfig.BOT_QUOTA_TZ });
    await limits.hit('wx-alice', true);
    await limits.hit('wx-alice', true);
    assert.equal((await limits.status('wx-alice')).usedToday, 2);
    assert.equal((await c.post('/api/admin/users/wx-alice/reset-quota')).status, 200);
    assert.equal((await limits.status('wx-alice')).usedToday, 0);

    const mem = new ConversationMemory(h.store, { maxTurns: 5, maxTokens: 1000, idleMs: 60_000, countTokens: () => 1 });
    await mem.append('wx-alice', { user: 'hi', bot: 'hello' });
    const cleared = await c.post('/api/admin/users/wx-alice/clear-memory');
    assert.equal(field(cleared, 'hadMemory'), true);
    assert.deepEqual(await mem.history('wx-alice'), []);

    const wrong = (await h.keys.current()).key === '999999' ? '888888' : '999999';
    for (let i = 0; i < h.coreConfig.KEY_MAX_ATTEMPTS; i++) await h.keys.verify('wx-alice', wrong);
    assert.equal((await h.keys.lockStatus('wx-alice')).locked, true);
    const locked = field<{ userId: string; locked: { until: string } | null }[]>(await c.get('/api/admin/users?filter=locked'), 'users');
    assert.deepEqual(locked.map((u) => u.userId), ['wx-alice']);
    assert.equal((await c.post('/api/admin/users/wx-alice/unlock')).status, 200);
    assert.equal((await h.keys.lockStatus('wx-alice')).locked, false);

    const actions = field<{ action: string; details: { userId?: string } }[]>(await c.get('/api/admin/audit?limit=50'), 'items').map((a) => a.action);
    for (const a of ['users.ban', 'users.unban', 'users.reset-quota', 'users.clear-memory', 'users.unlock']) assert.ok(actions.includes(a), a);
    assert.equal((await c.post(`/api/admin/users/${'x'.repeat(300)}/ban`)).status, 400);
  });

  test('settings: read defaults, save (validated), applied live to a chat config; reset', async () => {
    const s = await c.get('/api/admin/settings');
    assert.equal(s.status, 200);
    const values = field<Record<string, unknown>>(s, 'values');
    assert.equal(values.temperature, h.botConfig.BOT_TEMPERATURE);
    const target = { config: { ...h.botConfig }, limits: { options: { rateLimit: 1, windowMs: 1, dailyQuota: 1 } } };
    const stop = await h.settings.watch((v) => applyChatSettings(v, target));
    try {
      const saved = await c.put('/api/admin/settings', { temperature: 0.3, topK: 5, dailyQuota: 7, welcomeText: '欢迎 <b>you</b>' });
      assert.equal(saved.status, 200);
      assert.deepEqual(field(saved, 'overridden'), ['temperature', 'topK', 'dailyQuota', 'welcomeText']);
      for (let i = 0; i < 50 && target.config.BOT_TEMPERATURE !== 0.3; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(target.config.BOT_TEMPERATURE, 0.3, 'pub/sub applied the change');
      assert.equal(target.config.BOT_TOP_K, 5);
      assert.equal(target.limits.options.dailyQuota, 7);
      const bad = await c.put('/api/admin/settings', { temperature: 9 });
      assert.equal(bad.status, 400);
      assert.match(field(bad, 'error'), /temperature/);
      assert.equal((await c.put('/api/admin/settings', { admin: true })).status, 400, 'unknown fields are refused');
      const reset = await c.post('/api/admin/settings/reset');
      assert.deepEqual(field(reset, 'overridden'), []);
      for (let i = 0; i < 50 && target.config.BOT_TEMPERATURE === 0.3; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(target.config.BOT_TEMPERATURE, h.botConfig.BOT_TEMPERATURE);
    } finally {
      await stop();
    }
  });

  test('bot state: every instance\'s login state, and the QR code of a running one while it waits for a scan', async () => {
    let b = await c.get('/api/admin/bot');
    assert.deepEqual(field(b, 'instances'), []);
    assert.equal((await c.get('/api/admin/bot/qr.svg')).status, 404);
    const lease = new InstanceLease(h.store, 'main');
    await lease.acquire();
    try {
      await setLoginState(h.store, { state: 'waiting-for-scan', qrcode: 'https://login.weixin.qq.com/l/abc123' }, 'main');
      // Another account's bot, whose process is gone: shown, but not as running and without a QR code.
      await setLoginState(h.store, { state: 'waiting-for-scan', qrcode: 'https://login.weixin.qq.com/l/old' }, 'sales');
      b = await c.get('/api/admin/bot');
      const [main, sales] = field(b, 'instances') as Array<Record<string, unknown>>;
      assert.equal(main.name, 'main');
      assert.equal(main.running, true);
      assert.equal(main.pid, process.pid);
      assert.equal(main.state, 'waiting-for-scan');
      assert.equal(main.qrcode, true, 'the login URL itself is not sent to the page');
      assert.equal(sales.name, 'sales');
      assert.equal(sales.running, false);
      assert.equal(sales.qrcode, false);
      const qr = await c.get('/api/admin/bot/qr.svg');
      assert.equal(qr.status, 200);
      assert.equal(qr.headers.get('content-type'), 'image/svg+xml; charset=utf-8');
      assert.match(qr.text, /^<svg/);
      assert.equal((await c.get('/api/admin/bot/qr.svg?name=main')).status, 200);
      assert.equal((await c.get('/api/admin/bot/qr.svg?name=sales')).status, 404, 'a stale QR code is not offered');
      const rz = await h.client().get('/readyz');
      assert.deepEqual((field(rz, 'checks') as { bot: { instances: unknown[] } }).bot.instances.map((i) => (i as { name: string }).name), ['main', 'sales']);
      // A restarted process waiting for the crashed one's name: /readyz and the panel say so.
      await setBotWaiting(h.store, 'sales', { host: 'bot-host', pid: 4343, since: new Date().toISOString() }, 60_000);
      const waiting = (field(await c.get('/api/admin/bot'), 'instances') as Array<{ name: string; waiting: { pid: number } | null }>).find((i) => i.name === 'sales');
      assert.equal(waiting?.waiting?.pid, 4343);
      const rz2 = field<{ bot: { instances: Array<{ name: string; waiting?: string }> } }>(await h.client().get('/readyz'), 'checks');
      assert.equal(rz2.bot.instances.find((i) => i.name === 'sales')?.waiting, 'for the name to be released');
      assert.equal(rz2.bot.instances.find((i) => i.name === 'main')?.waiting, undefined);
      // A bot that cannot reach WeChat: since when, the last error and when it tries next.
      const failingSince = new Date(Date.now() - 120_000).toISOString();
      await setLoginState(h.store, {
        state: 'logged-out', detail: 'cannot reach WeChat', since: failingSince,
        unreachable: { attempt: 4, lastError: 'getaddrinfo ENOTFOUND login.wx.qq.com', nextTryAt: new Date(Date.now() + 40_000).toISOString() },
      }, 'main');
      const offline = (field(await c.get('/api/admin/bot'), 'instances') as Array<{ name: string; since: string; unreachable: { attempt: number; lastError: string } | null }>)
        .find((i) => i.name === 'main');
      assert.equal(offline?.since, failingSince);
      assert.equal(offline?.unreachable?.attempt, 4);
      assert.match(offline?.unreachable?.lastError ?? '', /ENOTFOUND/);
      const rz3 = field<{ bot: { instances: Array<{ name: string; detail?: string; lastError?: string }> } }>(await h.client().get('/readyz'), 'checks');
      const main3 = rz3.bot.instances.find((i) => i.name === 'main');
      assert.match(main3?.detail ?? '', /^cannot reach WeChat — next try in (39|40) s$/);
      assert.match(main3?.lastError ?? '', /ENOTFOUND/);
    } finally {
      await lease.release();
    }
  });

  test('health, readiness and metrics', async () => {
    const hz = await h.client().get('/healthz');
    assert.equal(hz.status, 200);
    assert.equal(field(hz, 'status'), 'ok');
    const rz = await h.client().get('/readyz');
    // No model in this harness: not ready, and it says why.
    assert.equal(rz.status, 503);
    const checks = field<Record<string, { ok: boolean; detail?: string }>>(rz, 'checks');
    assert.equal(checks.redis.ok, true);
    assert.equal(checks.model.ok, false);
    const m = await h.client().get('/metrics');
    assert.equal(m.status, 200);
    for (const name of ['nemo_messages_total', 'nemo_tokens_total', 'nemo_generation_latency_seconds', 'nemo_generation_queue_depth', 'nemo_key_rotations_total', 'nemo_key_failed_attempts_total']) {
      assert.ok(m.text.includes(name), name);
    }
    assert.match(m.text, /nemo_key_rotations_total\{by="admin"\} [1-9]/);
    assert.equal((await h.client().get('/api/nothing-here')).status, 404);
  });
});

test('METRICS_TOKEN protects /metrics', async () => {
  const h = await startHarness({ env: { METRICS_TOKEN: 'a-long-metrics-token-123' } });
  try {
    assert.equal((await h.client().get('/metrics')).status, 401);
    assert.equal((await h.client({ Authorization: 'Bearer wrong-token-wrong-token' }).get('/metrics')).status, 401);
    const ok = await h.client({ Authorization: 'Bearer a-long-metrics-token-123' }).get('/metrics');
    assert.equal(ok.status, 200);
    assert.match(ok.text, /nemo_messages_total/);
  } finally {
    await h.close();
  }
});
