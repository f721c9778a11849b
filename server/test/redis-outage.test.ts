// Redis going away and coming back: the API answers 503 with a clear message (never hangs, never
// 500), /healthz stays up, /readyz reports it, and everything works again once Redis returns.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openTestStore, TempRedis } from '../../core/testing.js';
import { field, startHarness, TEST_PASSWORD, type Harness } from './harness.js';

describe('Redis outage', () => {
  let redis: TempRedis;
  let h: Harness;
  before(async () => {
    redis = await TempRedis.start();
    h = await startHarness({ store: await openTestStore('outage', redis.url) });
  });
  after(async () => {
    await h.close();
    await h.store.close();
    await redis.stop();
  });

  test('503 with a clear message while Redis is down; login and the API work again after it returns', async () => {
    const c = await h.admin();
    assert.equal((await c.get('/api/admin/keys/current')).status, 200);
    await redis.stop();

    const t0 = Date.now();
    const down = await c.get('/api/admin/keys/current');
    assert.equal(down.status, 503);
    assert.equal(field(down, 'code'), 'storage_unavailable');
    assert.match(field(down, 'error'), /try again/);
    assert.ok(Date.now() - t0 < 6000, 'fails fast');
    const login = await h.client({ 'X-Forwarded-For': '10.2.0.1' }).post('/api/admin/login', { password: TEST_PASSWORD });
    assert.equal(login.status, 503, 'login too: the rate limiter and sessions live in Redis');
    const chat = await h.client().get('/api/chat/session');
    assert.equal(chat.status, 503);
    assert.equal((await h.client().get('/healthz')).status, 200, 'the process is up');
    const ready = await h.client().get('/readyz');
    assert.equal(ready.status, 503);
    const redisCheck = field<Record<string, { ok: boolean; detail?: string }>>(ready, 'checks').redis;
    // /readyz needs no login: the state, never the client library's error text.
    assert.deepEqual(redisCheck, { ok: false, detail: 'unavailable' });
    assert.doesNotMatch(ready.text, /ECONN|Error|127\.0\.0\.1|connect|closed/i);

    await redis.start();
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      await new Promise((r) => setTimeout(r, 100));
      ok = h.store.ready;
    }
    assert.ok(ok, 'reconnected');
    // This throw-away Redis keeps nothing across restarts: the old session is gone, a new login works.
    const again = await h.admin({ 'X-Forwarded-For': '10.2.0.2' });
    const cur = await again.get('/api/admin/keys/current');
    assert.equal(cur.status, 200);
    assert.match(field(cur, 'key'), /^\d{6}$/);
  });
});
