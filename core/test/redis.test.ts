import assert from 'node:assert/strict';
import { test } from 'node:test';
import { guard, RedisUnavailableError, Store } from '../redis.js';
import { openTestStore, TempRedis } from '../testing.js';

test('keys are prefixed so parallel users of one server do not collide', async () => {
  const a = await openTestStore('a');
  const b = await openTestStore('b');
  try {
    await a.redis.set(a.key('x'), '1');
    await b.redis.set(b.key('x'), '2');
    assert.equal(await a.redis.get(a.key('x')), '1');
    assert.equal(await b.redis.get(b.key('x')), '2');
    assert.notEqual(a.key('x'), b.key('x'));
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});

test('commands fail fast with RedisUnavailableError while Redis is down, and resume after', async () => {
  const server = await TempRedis.start();
  const store = new Store({ url: server.url, prefix: 'p:' });
  try {
    await store.open();
    await store.redis.set(store.key('a'), 'v');
    await server.stop();
    const t0 = Date.now();
    await assert.rejects(guard(() => store.redis.get(store.key('a'))), RedisUnavailableError);
    assert.ok(Date.now() - t0 < 4000, 'fails fast instead of hanging');
    await server.start();
    let value: string | null = null;
    for (let i = 0; i < 60 && value === null; i++) {
      try {
        await guard(() => store.redis.set(store.key('a'), 'w'));
        value = await store.redis.get(store.key('a'));
      } catch (err) {
        assert.ok(err instanceof RedisUnavailableError);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.equal(value, 'w');
  } finally {
    await store.close();
    await server.stop();
  }
});

test('open() on a dead address rejects with a clear RedisUnavailableError', async () => {
  const store = new Store({ url: 'redis://127.0.0.1:1/0', prefix: 'p:' });
  await assert.rejects(store.open(), (err: unknown) => err instanceof RedisUnavailableError && /Cannot connect to Redis/.test(err.message));
  await store.close();
});
