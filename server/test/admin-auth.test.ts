// Admin security: login and sessions, cookie flags, per-IP login limit,
// CSRF, session expiry, logout, audit entries, security headers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseEnv } from '../../core/env.js';
import { serverSchema } from '../config.js';
import { hashPassword, isPasswordHash, verifyPassword } from '../password.js';
import { field, startHarness, TEST_PASSWORD, type Harness } from './harness.js';

test('a short ADMIN_PASSWORD is refused at start-up with the variable named', () => {
  assert.throws(() => parseEnv(serverSchema, { ADMIN_PASSWORD: 'short' }), /ADMIN_PASSWORD: expected at least 10 characters/);
  assert.throws(() => parseEnv(serverSchema, { ADMIN_PASSWORD_HASH: 'plain-text' }), /ADMIN_PASSWORD_HASH/);
});

test('scrypt hashes: verify the right password only; the format is checked', async () => {
  const hash = await hashPassword('s3cret-пароль-密码', { N: 1024 });
  assert.ok(isPasswordHash(hash));
  assert.equal(await verifyPassword('s3cret-пароль-密码', hash), true);
  assert.equal(await verifyPassword('s3cret-пароль-密码 ', hash), false);
  assert.equal(await verifyPassword('', hash), false);
  assert.equal(await verifyPassword('x'.repeat(100_000), hash), false);
  assert.equal(isPasswordHash('scrypt$1000$8$1$abc$def'), false);
});

describe('admin authentication', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { ADMIN_LOGIN_MAX_ATTEMPTS: '3', ADMIN_SESSION_MINUTES: '5' } });
  });
  after(() => h.close());

  test('admin API without a session → 401 on every endpoint', async () => {
    const c = h.client();
    for (const [method, path] of [
      ['GET', '/api/admin/keys/current'], ['POST', '/api/admin/keys/rotate'], ['GET', '/api/admin/keys/schedule'],
      ['PUT', '/api/admin/keys/schedule'], ['GET', '/api/admin/keys/history'], ['GET', '/api/admin/usage?range=24h'],
      ['GET', '/api/admin/users'], ['GET', '/api/admin/settings'], ['GET', '/api/admin/audit'], ['POST', '/api/admin/password'],
      ['POST', '/api/admin/logout'], ['POST', '/api/admin/users/x/ban'],
    ]) {
      const r = await c.request(method, path, method === 'GET' ? undefined : {});
      assert.equal(r.status, 401, `${method} ${path}`);
    }
    // A made-up cookie is no session either.
    c.cookies.set('nemo_admin', 'forged-session-id');
    assert.equal((await c.get('/api/admin/keys/current')).status, 401);
  });

  test('login sets an HttpOnly SameSite=Strict cookie (Secure behind HTTPS) and returns a CSRF token', async () => {
    const c = h.client({ 'X-Forwarded-For': '203.0.113.10' });
    const r = await c.post('/api/admin/login', { password: TEST_PASSWORD });
    assert.equal(r.status, 200);
    assert.match(String(field(r, 'csrfToken')), /^[A-Za-z0-9_-]{20,}$/);
    const cookie = r.headers.getSetCookie().find((x) => x.startsWith('nemo_admin='))!;
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.doesNotMatch(cookie, /Secure/);
    const https = await h.client({ 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '203.0.113.11' }).post('/api/admin/login', { password: TEST_PASSWORD });
    assert.match(https.headers.getSetCookie().join('\n'), /nemo_admin=[^;]+;.*Secure/);
    // The session is stored in Redis (hashed id), with an expiry.
    const keys = await h.store.redis.keys(`${h.store.prefix}session:admin:*`);
    assert.ok(keys.length >= 2);
    const ttl = await h.store.redis.pttl(keys[0]);
    assert.ok(ttl > 0 && ttl <= 5 * 60_000, `ttl ${ttl}`);
    const id = c.cookies.get('nemo_admin')!;
    assert.ok(!keys.some((k) => k.includes(id)), 'the raw session id is not a Redis key name');
  });

  test('wrong passwords are rate-limited per IP: after the limit even the right one gets 429; other IPs are unaffected', async () => {
    const ip = { 'X-Forwarded-For': '198.51.100.7' };
    for (let i = 0; i < 3; i++) {
      const r = await h.client(ip).post('/api/admin/login', { password: `wrong-${i}` });
      assert.equal(r.status, 401, `attempt ${i}`);
      assert.equal(field(r, 'error'), 'Wrong password');
    }
    const blocked = await h.client(ip).post('/api/admin/login', { password: TEST_PASSWORD });
    assert.equal(blocked.status, 429);
    assert.ok(Number(field(blocked, 'retryAfterSeconds')) > 0);
    assert.ok(blocked.headers.get('ratelimit'), 'standard RateLimit header');
    const other = await h.client({ 'X-Forwarded-For': '198.51.100.8' }).post('/api/admin/login', { password: TEST_PASSWORD });
    assert.equal(other.status, 200);
    // Successful logins do not count: the same IP logs in many times in a row.
    for (let i = 0; i < 5; i++) assert.equal((await h.client({ 'X-Forwarded-For': '198.51.100.9' }).post('/api/admin/login', { password: TEST_PASSWORD })).status, 200);
    const audit = await h.admin({ 'X-Forwarded-For': '198.51.100.10' });
    const entries = field<{ action: string; ip: string; ok: boolean }[]>(await audit.get('/api/admin/audit?limit=200'), 'items');
    assert.equal(entries.filter((e) => e.action === 'login.failed' && e.ip === '198.51.100.7').length, 3);
    assert.ok(entries.some((e) => e.action === 'login.blocked' && e.ip === '198.51.100.7'));
    assert.ok(!JSON.stringify(entries).includes('wrong-0'), 'attempted passwords are never recorded');
  });

  test('bad login bodies: 400 for a missing password, 400 for broken JSON, 413 for a huge body', async () => {
    const c = h.client({ 'X-Forwarded-For': '192.0.2.50' });
    assert.equal((await c.post('/api/admin/login', {})).status, 400);
    assert.equal((await c.post('/api/admin/login', '{"password":')).status, 400);
    assert.equal((await c.post('/api/admin/login', { password: 'x'.repeat(40_000) })).status, 413);
  });

  test('state-changing requests without (or with a wrong) X-CSRF-Token are refused with 403', async () => {
    const c = await h.admin({ 'X-Forwarded-For': '192.0.2.60' });
    const before = field<number>(await c.get('/api/admin/keys/current'), 'version');
    const none = await c.post('/api/admin/keys/rotate', {}, { 'X-CSRF-Token': '' });
    assert.equal(none.status, 403);
    assert.equal(field(none, 'code'), 'csrf');
    assert.equal((await c.post('/api/admin/keys/rotate', {}, { 'X-CSRF-Token': 'not-the-token' })).status, 403);
    assert.equal((await c.put('/api/admin/keys/schedule', { cron: '0 0 * * *', tz: 'UTC' }, { 'X-CSRF-Token': '' })).status, 403);
    assert.equal((await c.post('/api/admin/users/someone/ban', {}, { 'X-CSRF-Token': '' })).status, 403);
    assert.equal(field<number>(await c.get('/api/admin/keys/current'), 'version'), before, 'nothing rotated');
    // Another admin session's token does not fit this session.
    const other = await h.admin({ 'X-Forwarded-For': '192.0.2.61' });
    assert.equal((await c.post('/api/admin/keys/rotate', {}, { 'X-CSRF-Token': other.csrf })).status, 403);
    const ok = await c.post('/api/admin/keys/rotate');
    assert.equal(ok.status, 200);
    assert.equal(field(ok, 'version'), before + 1);
  });

  test('sessions expire: idle expiry in Redis, the hard maximum age, and logout', async () => {
    const c = await h.admin({ 'X-Forwarded-For': '192.0.2.70' });
    assert.equal(field((await c.get('/api/admin/session')), 'signedIn'), true);
    // Idle expiry is Redis's key expiry: let it lapse.
    for (const k of await h.store.redis.keys(`${h.store.prefix}session:admin:*`)) await h.store.redis.pexpire(k, 1);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(field((await c.get('/api/admin/session')), 'signedIn'), false);
    assert.equal((await c.get('/api/admin/keys/current')).status, 401);

    const d = await h.admin({ 'X-Forwarded-For': '192.0.2.71' });
    // Pretend the session was created long ago: past ADMIN_SESSION_MAX_HOURS it ends despite activity.
    for (const k of await h.store.redis.keys(`${h.store.prefix}session:admin:*`)) {
      const s = JSON.parse((await h.store.redis.get(k))!);
      s.createdAt = Date.now() - 13 * 3_600_000;
      await h.store.redis.set(k, JSON.stringify(s), 'KEEPTTL');
    }
    assert.equal((await d.get('/api/admin/keys/current')).status, 401);

    const e = await h.admin({ 'X-Forwarded-For': '192.0.2.72' });
    const cookie = e.cookies.get('nemo_admin')!;
    assert.equal((await e.post('/api/admin/logout')).status, 200);
    e.cookies.set('nemo_admin', cookie); // a copied cookie is dead after logout
    assert.equal((await e.get('/api/admin/keys/current')).status, 401);
  });

  test('security headers: strict CSP allowing only self, no framing, no sniffing', async () => {
    const r = await h.client().get('/admin/');
    assert.equal(r.status, 200);
    const csp = r.headers.get('content-security-policy')!;
    for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'", "object-src 'none'", "frame-ancestors 'none'"]) {
      assert.ok(csp.includes(d), `${d} in ${csp}`);
    }
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:|data:/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('x-frame-options'), 'SAMEORIGIN');
    assert.equal(r.headers.get('x-powered-by'), null);
    // The chart library comes from this server, not a CDN.
    const chart = await h.client().get('/vendor/chart.umd.min.js');
    assert.equal(chart.status, 200);
    assert.match(chart.text.slice(0, 300), /Chart\.js/);
  });
});

test('two server processes on one Redis share sessions, CSRF tokens and the login limit', async () => {
  const a = await startHarness({ env: { ADMIN_LOGIN_MAX_ATTEMPTS: '2' } });
  const b = await startHarness({ env: { ADMIN_LOGIN_MAX_ATTEMPTS: '2' }, store: a.store as never });
  try {
    const onA = await a.admin({ 'X-Forwarded-For': '192.0.2.90' });
    const onB = b.client({ 'X-Forwarded-For': '192.0.2.90' });
    onB.cookies = onA.cookies;
    onB.csrf = onA.csrf;
    assert.equal(field((await onB.get('/api/admin/session')), 'signedIn'), true, 'a session made by A works on B');
    assert.equal((await onB.post('/api/admin/keys/rotate')).status, 200);
    assert.equal((await onA.post('/api/admin/logout')).status, 200);
    assert.equal(field((await onB.get('/api/admin/session')), 'signedIn'), false, 'logout on A ends it on B');

    const ip = { 'X-Forwarded-For': '192.0.2.91' };
    assert.equal((await a.client(ip).post('/api/admin/login', { password: 'wrong password 1' })).status, 401);
    assert.equal((await b.client(ip).post('/api/admin/login', { password: 'wrong password 2' })).status, 401);
    assert.equal((await a.client(ip).post('/api/admin/login', { password: TEST_PASSWORD })).status, 429, 'failures on A and B add up');
  } finally {
    await b.close();
    await a.close();
  }
});

describe('admin login behind a trusted proxy (TRUST_PROXY=loopback)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { ADMIN_LOGIN_MAX_ATTEMPTS: '3', ADMIN_LOGIN_PROXY_MAX_ATTEMPTS: '10' } });
  });
  after(() => h.close());

  test('a new X-Forwarded-For with every guess does not buy new tries: failures also count per connecting address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 14; i++) {
      statuses.push((await h.client({ 'X-Forwarded-For': `198.18.${i}.1` }).post('/api/admin/login', { password: `guess-${i}` })).status);
    }
    assert.deepEqual(statuses, [...Array(10).fill(401), ...Array(4).fill(429)]);
    // The operator on this host, not going through the proxy, still logs in.
    const direct = await h.client().post('/api/admin/login', { password: TEST_PASSWORD });
    assert.equal(direct.status, 200);
    const c = await h.admin();
    const blocked = field<{ action: string; ip: string }[]>(await c.get('/api/admin/audit?limit=100'), 'items').filter((e) => e.action === 'login.blocked');
    assert.deepEqual(blocked.map((e) => e.ip), ['127.0.0.1'], 'one entry, for the connecting address');
  });
});
