// The rate limiters' Redis store (rate-limit-redis behind our connection): hits counted in a fixed
// window shared by every process, counts that never go below zero or outlive their window, and a
// store that starts while Redis is down and works once it is back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Options } from 'express-rate-limit';
import { RedisUnavailableError, Store } from '../../core/redis.js';
import { openTestStore, TempRedis, TEST_REDIS_URL } from '../../core/testing.js';
import { RedisRateLimitStore } from '../rate-limit-store.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('hits add up across processes within one window, which starts at the first hit', async () => {
  const store = await openTestStore('ratelimit');
  const other = await new Store({ url: TEST_REDIS_URL, prefix: store.prefix }).open();
  try {
    const a = new RedisRateLimitStore(store, 'login');
    const b = new RedisRateLimitStore(other, 'login');
    await a.init({ windowMs: 60_000 } as Options);
    await b.init({ windowMs: 60_000 } as Options);
    const first = await a.increment('10.0.0.1');
    assert.equal(first.totalHits, 1);
    const resetAt = first.resetTime!.getTime();
    assert.ok(Math.abs(resetAt - (Date.now() + 60_000)) < 2000, 'the window ends a minute after the first hit');
    assert.equal((await b.increment('10.0.0.1')).totalHits, 2, 'another process sees the same count');
    const third = await a.increment('10.0.0.1');
    assert.equal(third.totalHits, 3);
    assert.ok(Math.abs(third.resetTime!.getTime() - resetAt) < 1000, 'later hits do not move the window');
    assert.equal((await a.increment('10.0.0.2')).totalHits, 1, 'clients are counted apart');
    assert.equal((await new RedisRateLimitStore(store, 'chat').increment('10.0.0.1')).totalHits, 1, 'limiters are counted apart');
    await b.decrement('10.0.0.1');
    assert.equal((await a.increment('10.0.0.1')).totalHits, 3, 'a successful request gives its hit back');
    await a.resetKey('10.0.0.1');
    assert.equal((await b.increment('10.0.0.1')).totalHits, 1, 'reset');
  } finally {
    await other.close();
    await store.cleanup();
  }
});

test('a hit given back after its window ended leaves nothing behind; counts never go below zero', async () => {
  const store = await openTestStore('ratelimit-late');
  try {
    const s = new RedisRateLimitStore(store, 'login');
    await s.init({ windowMs: 100 } as Options);
    await s.increment('slow');
    await sleep(250); // the request outlived its window
    await s.decrement('slow');
    await s.decrement('never-seen');
    assert.deepEqual(await store.redis.keys(`${store.prefix}*`), [], 'no key without expiry is created');
    assert.equal((await s.increment('slow')).totalHits, 1);
  } finally {
    await store.cleanup();
  }
});

test('a limiter set up while Redis is down fails fast, then counts once Redis is back', async () => {
  const redis = await TempRedis.start();
  const store = await new Store({ url: redis.url, prefix: 'rl:', commandTimeoutMs: 1000 }).open();
  try {
    await redis.stop();
    const s = new RedisRateLimitStore(store, 'login');
    await assert.rejects(s.init({ windowMs: 60_000 } as Options), RedisUnavailableError);
    await assert.rejects(s.increment('10.0.0.1'), RedisUnavailableError);
    await redis.start();
    for (let i = 0; i < 100 && !store.ready; i++) await sleep(100);
    assert.ok(store.ready, 'reconnected');
    assert.equal((await s.increment('10.0.0.1')).totalHits, 1);
    assert.equal((await s.increment('10.0.0.1')).totalHits, 2);
  } finally {
    await store.close();
    await redis.stop();
  }
});
