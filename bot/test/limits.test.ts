import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Store } from '../../core/redis.js';
import { openTestStore, TEST_REDIS_URL } from '../../core/testing.js';
import { Limits, limitKeys } from '../limits.js';

test('sliding window: the 7th message within a minute is refused and told when to continue', async () => {
  const store = await openTestStore('limits');
  let now = Date.UTC(2026, 0, 1, 3, 0, 0);
  const limits = new Limits(store, { rateLimit: 6, windowMs: 60_000, dailyQuota: 100, timeZone: 'Asia/Shanghai', now: () => now });
  try {
    for (let i = 0; i < 6; i++) {
      const d = await limits.hit('u1', false);
      assert.equal(d.allowed, true, `message ${i + 1} allowed`);
      now += 1000;
    }
    const refused = await limits.hit('u1', false);
    assert.equal(refused.allowed, false);
    assert.ok(!refused.allowed && refused.reason === 'rate');
    if (!refused.allowed && refused.reason === 'rate') {
      // The oldest hit (t=0) leaves the window at t=60s; now is t=6s.
      assert.equal(refused.retryAfterMs, 54_000);
      assert.equal(refused.retryAt.getTime(), now + 54_000);
    }
    // Refused hits are not recorded: after the first hit leaves the window exactly one more fits.
    now += 54_001;
    assert.equal((await limits.hit('u1', false)).allowed, true);
    assert.equal((await limits.hit('u1', false)).allowed, false);
    // Other users are not affected.
    assert.equal((await limits.hit('u2', false)).allowed, true);
  } finally {
    await store.cleanup();
  }
});

test('daily quota counts only consumed replies, refunds, and resets at local midnight', async () => {
  const store = await openTestStore('quota');
  // 2026-01-01 15:59:00 UTC = 23:59 in Shanghai.
  let now = Date.UTC(2026, 0, 1, 15, 59, 0);
  const limits = new Limits(store, { rateLimit: 1000, windowMs: 60_000, dailyQuota: 3, timeZone: 'Asia/Shanghai', now: () => now });
  try {
    assert.equal((await limits.hit('u', false)).allowed, true, 'a command does not use quota');
    for (let i = 0; i < 3; i++) {
      const d = await limits.hit('u', true);
      assert.ok(d.allowed);
      if (d.allowed) assert.equal(d.remainingToday, 2 - i);
    }
    const over = await limits.hit('u', true);
    assert.ok(!over.allowed && over.reason === 'quota');
    if (!over.allowed && over.reason === 'quota') assert.equal(over.retryAt.toISOString(), '2026-01-01T16:00:00.000Z');
    await limits.refund('u');
    assert.equal((await limits.status('u')).remainingToday, 1);
    assert.equal((await limits.hit('u', true)).allowed, true);
    const ttl = await store.redis.ttl(limitKeys.quota(store, 'u', limits.day(now)));
    assert.ok(ttl > 86_400 && ttl <= 2 * 86_400, 'quota counters expire by themselves');
    now += 61_000; // past midnight in Shanghai
    const s = await limits.status('u');
    assert.equal(s.usedToday, 0);
    assert.equal((await limits.hit('u', true)).allowed, true);
  } finally {
    await store.cleanup();
  }
});

test('concurrent hits never overshoot the limit (one atomic script)', async () => {
  const store = await openTestStore('limits-race');
  const limits = new Limits(store, { rateLimit: 6, windowMs: 60_000, dailyQuota: 10, timeZone: 'UTC' });
  // A second connection on the same prefix, as a second process would have.
  const other = await new Store({ url: TEST_REDIS_URL, prefix: store.prefix }).open();
  const limits2 = new Limits(other, limits.options);
  try {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? limits : limits2).hit('same', true)));
    assert.equal(results.filter((r) => r.allowed).length, 6);
    assert.equal((await limits.status('same')).usedToday, 6);
  } finally {
    await other.close();
    await store.cleanup();
  }
});

test('quota 0 means unlimited; reset clears the window and the count', async () => {
  const store = await openTestStore('limits-reset');
  const limits = new Limits(store, { rateLimit: 2, windowMs: 60_000, dailyQuota: 0, timeZone: 'UTC' });
  try {
    const d = await limits.hit('u', true);
    assert.ok(d.allowed && d.remainingToday === null);
    await limits.hit('u', true);
    assert.equal((await limits.hit('u', true)).allowed, false);
    await limits.reset('u');
    assert.equal((await limits.hit('u', true)).allowed, true);
  } finally {
    await store.cleanup();
  }
});
