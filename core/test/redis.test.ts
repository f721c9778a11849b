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

test('pipelined() is a separate auto-pipelined connection; the shared one and key checks through KeyService stay plain', async () => {
  const { KeyService } = await import('../keys/key-service.js');
  const { coreSchema } = await import('../config.js');
  const { parseEnv } = await import('../env.js');
  const store = await openTestStore('pipelined');
  const keys = new KeyService(store, parseEnv(coreSchema, {}));
  try {
    // Until the second connection is up, callers get the shared one (never a connection that fails).
    assert.equal(store.pipelined(), store.redis);
    const deadline = Date.now() + 3000;
    while (store.pipelined() === store.redis && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const fast = store.pipelined();
    assert.notEqual(fast, store.redis);
    assert.equal(fast.options.enableAutoPipelining, true);
    assert.equal(store.redis.options.enableAutoPipelining, false, 'the shared connection is not auto-pipelined');
    // Verification runs its script over it (defined there on first use) and gives the same answers.
    const { key } = await keys.current();
    assert.equal((await keys.verify('u1', key)).ok, true);
    assert.equal((await keys.authorisation('u1')).authorised, true);
    assert.equal(typeof (fast as unknown as { nemoKeyVerify?: unknown }).nemoKeyVerify, 'function');
    assert.equal(store.redis.options.enableAutoPipelining, false);
  } finally {
    await keys.stop();
    await store.cleanup();
  }
  assert.equal(store.pipelined(), store.redis, 'no new connection after close');
});
