// First run without ADMIN_PASSWORD/ADMIN_PASSWORD_HASH: a one-time password is generated, only its
// hash is kept in Redis, it is printed once, and a sign-in with it can only choose a new password.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { openTestStore } from '../../core/testing.js';
import { duplicateKeys } from '../../core/test/json-keys.js';
import { AdminPassword } from '../admin-password.js';
import { startServer } from './child-server.js';
import { Client, field, startHarness, TEST_PASSWORD, type Harness } from './harness.js';

const PASSWORD_LINE = /generated the admin password (\S+) /;

function oneTimePassword(lines: string[]): string {
  const found = lines.map((l) => PASSWORD_LINE.exec(l)?.[1]).filter(Boolean);
  assert.equal(found.length, 1, `the password is printed exactly once:\n${lines.join('')}`);
  return found[0]!;
}

describe('first run without an admin password', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ password: false });
  });
  after(() => h.close());

  test('the panel works with the printed one-time password, which must be replaced before anything else', async () => {
    const c = h.client({ 'X-Forwarded-For': '192.0.2.10' });
    assert.deepEqual((await c.get('/api/admin/session')).body, { signedIn: false });
    assert.equal((await c.post('/api/admin/login', { password: 'not the password' })).status, 401);
    const password = oneTimePassword(h.logLines);
    assert.ok(password.length >= 20, 'a strong password');
    // Only the hash is stored.
    const stored = (await h.store.redis.get(`${h.store.prefix}admin:password`))!;
    assert.ok(!stored.includes(password));
    assert.match(stored, /"hash":"scrypt\$/);

    const login = await c.post('/api/admin/login', { password });
    assert.equal(login.status, 200);
    assert.equal(field(login, 'mustChangePassword'), true);
    c.csrf = field<string>(login, 'csrfToken');
    assert.equal(field(await c.get('/api/admin/session'), 'mustChangePassword'), true);
    for (const [method, path] of [['GET', '/api/admin/keys/current'], ['POST', '/api/admin/keys/rotate'], ['GET', '/api/admin/audit']]) {
      const r = await c.request(method, path, method === 'GET' ? undefined : {});
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.equal(field(r, 'code'), 'password_change_required');
    }
    const short = await c.post('/api/admin/password', { password: 'short' });
    assert.equal(short.status, 400);
    assert.ok(!short.text.includes('"short"'), 'the rejected password is not echoed');
    assert.equal(field(await c.post('/api/admin/password', { password }), 'code'), 'same_password');

    const oldCookie = c.cookies.get('nemo_admin');
    const changed = await c.post('/api/admin/password', { password: TEST_PASSWORD });
    assert.equal(changed.status, 200, changed.text);
    c.csrf = field<string>(changed, 'csrfToken');
    assert.notEqual(c.cookies.get('nemo_admin'), oldCookie, 'a new session at the password change');
    assert.equal((await c.get('/api/admin/keys/current')).status, 200, 'the panel is open now');

    const again = h.client({ 'X-Forwarded-For': '192.0.2.11' });
    assert.equal((await again.post('/api/admin/login', { password })).status, 401, 'the one-time password is gone');
    const normal = await again.post('/api/admin/login', { password: TEST_PASSWORD });
    assert.equal(field(normal, 'mustChangePassword'), false);
    again.csrf = field<string>(normal, 'csrfToken');
    // A later change asks for the current password.
    assert.equal((await again.post('/api/admin/password', { password: 'another good password' })).status, 403);
    assert.equal((await again.post('/api/admin/password', { current: TEST_PASSWORD, password: 'another good password' })).status, 200);

    const audit = field<{ action: string; actor: string }[]>(await c.get('/api/admin/audit'), 'items');
    assert.ok(audit.some((e) => e.action === 'password.change' && e.actor === 'admin'), JSON.stringify(audit));
    assert.equal(oneTimePassword(h.logLines), password, 'printed once, never again');
    for (const line of h.logLines) assert.deepEqual(duplicateKeys(line), [], line);
  });
});

test('an explicit ADMIN_PASSWORD wins: nothing is generated and the panel cannot change it', async () => {
  const h = await startHarness();
  try {
    const c = await h.admin({ 'X-Forwarded-For': '192.0.2.20' });
    assert.equal(await h.store.redis.exists(`${h.store.prefix}admin:password`), 0);
    const r = await c.post('/api/admin/password', { current: TEST_PASSWORD, password: 'a brand new password' });
    assert.equal(r.status, 409);
    assert.equal(field(r, 'code'), 'password_from_environment');
    assert.ok(!h.logLines.some((l) => PASSWORD_LINE.test(l)));
  } finally {
    await h.close();
  }
});

test('several processes on one Redis: one generates and prints, the others use the stored hash silently', async () => {
  const store = await openTestStore('first-run');
  try {
    const lines: string[][] = [];
    const processes = Array.from({ length: 4 }, (_, i) => {
      lines[i] = [];
      const log = pino(new Writable({ write: (c, _e, cb) => { lines[i].push(String(c)); cb(); } }));
      return new AdminPassword(store, {}, log);
    });
    await Promise.all(processes.map((p) => p.ensure()));
    const password = oneTimePassword(lines.flat());
    const hashes = await Promise.all(processes.map(async (p) => (await p.current()).hash));
    assert.equal(new Set(hashes).size, 1, 'one shared hash');
    const { verifyPassword } = await import('../password.js');
    assert.equal(await verifyPassword(password, hashes[0]), true);
  } finally {
    await store.cleanup();
  }
});

test('npm start twice on one Redis without a password: one process prints it, both accept it; logs have no repeated keys', async () => {
  const store = await openTestStore('first-run-start');
  const env = { REDIS_PREFIX: store.prefix, ADMIN_PASSWORD: '', ADMIN_PASSWORD_HASH: '', MODEL_DIR: '/nonexistent/nemo-model' };
  const servers = await Promise.all([startServer(env), startServer(env)]);
  try {
    const lines = servers.flatMap((s) => s.lines.join('').split('\n').filter(Boolean));
    const password = oneTimePassword(lines);
    for (const line of lines) assert.deepEqual(duplicateKeys(line), [], line);
    for (const s of servers) {
      const login = await new Client(s.url).post('/api/admin/login', { password });
      assert.equal(login.status, 200);
      assert.equal(field(login, 'mustChangePassword'), true);
    }
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
    await Promise.all(servers.map((s) => s.exit));
    await store.cleanup();
  }
});
