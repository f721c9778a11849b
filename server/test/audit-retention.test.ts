// The audit log keeps administrative actions however many logins anyone gets wrong: blocked
// logins are one entry per address per window, and login noise lives in its own capped stream.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AuditLog } from '../../core/audit/audit-log.js';
import { type Client, field, type Harness, inParallel, startHarness } from './harness.js';

type Entry = { id: string; action: string; ip: string; details: Record<string, unknown> };

describe('audit log retention', () => {
  let h: Harness;
  let admin: Client;
  before(async () => {
    h = await startHarness({ env: { ADMIN_LOGIN_MAX_ATTEMPTS: '1' } });
    admin = await h.admin({ 'X-Forwarded-For': '192.0.2.1' });
  });
  after(() => h.close());

  test('10,150 blocked logins leave a rotation in the log, and are recorded once per address', async () => {
    const rot = await admin.post('/api/admin/keys/rotate');
    assert.equal(rot.status, 200);
    const flood = h.client({ 'X-Forwarded-For': '198.51.100.66' });
    assert.equal((await flood.post('/api/admin/login', { password: 'wrong-password' })).status, 401);
    let blocked = 0;
    await inParallel(10_150, 16, async () => {
      if ((await flood.post('/api/admin/login', { password: 'wrong-password' })).status === 429) blocked++;
    });
    assert.equal(blocked, 10_150);
    const items = field<Entry[]>(await admin.get('/api/admin/audit?limit=500'), 'items');
    assert.ok(items.some((e) => e.action === 'keys.rotate' && e.details.version === field(rot, 'version')), 'the rotation survived');
    assert.equal(items.filter((e) => e.action === 'login.blocked' && e.ip === '198.51.100.66').length, 1);
    assert.equal(items.filter((e) => e.action === 'login.failed' && e.ip === '198.51.100.66').length, 1);
  });

  test('failed logins from ever new addresses do not push administrative actions out either', async () => {
    const audit = new AuditLog(h.store);
    await audit.record({ action: 'keys.schedule', actor: 'admin:abc', ip: '192.0.2.1', details: { cron: '0 0 * * *' }, ok: true });
    await inParallel(10_150, 16, (i) => audit.record({ action: 'login.failed', actor: 'anonymous', ip: `10.0.${i >> 8}.${i & 255}`, details: {}, ok: false }));
    const page = await audit.list(1000);
    assert.equal(page.length, 1000);
    for (let i = 1; i < page.length; i++) assert.ok(page[i - 1].at >= page[i].at, 'newest first');
    // Page back to the end: the administrative entries are all there, the noise is capped.
    const all: Entry[] = [...page];
    for (let last = page.at(-1); last; ) {
      const next = await audit.list(1000, last.id);
      all.push(...next);
      last = next.at(-1);
    }
    assert.ok(all.some((e) => e.action === 'keys.schedule'));
    assert.ok(all.some((e) => e.action === 'keys.rotate'));
    assert.ok(all.filter((e) => e.action === 'login.failed').length <= 10_200);
    assert.equal(new Set(all.map((e) => e.id)).size, all.length, 'no entry twice across pages');
  });
});
