// Small Redis-backed state: login state for the panel, bans, de-duplication across processes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Store } from '../../core/redis.js';
import { openTestStore, TEST_REDIS_URL } from '../../core/testing.js';
import { Bans, bansKey } from '../bans.js';
import { MessageDedup } from '../dedup.js';
import { getLoginState, loginStateKey, setLoginState } from '../login-state.js';

test('login state: never run → logged out; written states round-trip; damaged values read as logged out', async () => {
  const store = await openTestStore('login');
  try {
    assert.deepEqual(await getLoginState(store), { state: 'logged-out', since: new Date(0).toISOString() });
    const s = await setLoginState(store, { state: 'waiting-for-scan', qrcode: 'https://login.weixin.qq.com/l/x' });
    assert.deepEqual(await getLoginState(store), s);
    assert.ok(Date.parse(s.since) > Date.now() - 5000);
    await store.redis.set(loginStateKey(store), '{"state":"dancing"}');
    assert.equal((await getLoginState(store)).state, 'logged-out');
    await store.redis.set(loginStateKey(store), 'not json');
    assert.equal((await getLoginState(store)).state, 'logged-out');
  } finally {
    await store.cleanup();
  }
});

test('bans: ban, list newest first, reasons bounded, damaged entries still listed', async () => {
  const store = await openTestStore('bans');
  const bans = new Bans(store);
  try {
    await bans.ban('a', 'admin:x', 'spam');
    await new Promise((r) => setTimeout(r, 5));
    await bans.ban('b', 'admin:y', 'r'.repeat(5000));
    assert.equal(await bans.isBanned('a'), true);
    assert.equal(await bans.isBanned('c'), false);
    const list = await bans.list();
    assert.deepEqual(list.map((e) => e.userId), ['b', 'a']);
    assert.equal(list[0].reason.length, 500);
    await store.redis.hset(bansKey(store), 'd', '{broken');
    assert.ok((await bans.list()).some((e) => e.userId === 'd'));
    assert.equal(await bans.isBanned('d'), true);
  } finally {
    await store.cleanup();
  }
});

test('dedup: exactly one of several processes claims a message id', async () => {
  const store = await openTestStore('dedup');
  const others = await Promise.all([1, 2, 3].map(() => new Store({ url: TEST_REDIS_URL, prefix: store.prefix }).open()));
  try {
    const dedups = [store, ...others].map((s) => new MessageDedup(s));
    const claims = await Promise.all(dedups.map((d) => d.claim('msg-42')));
    assert.equal(claims.filter(Boolean).length, 1);
    assert.equal(await dedups[0].claim('msg-42'), false, 'redelivery to the same process');
    assert.ok((await store.redis.ttl(store.key('bot', 'seen', 'msg-42'))) > 0, 'ids expire');
  } finally {
    await Promise.all(others.map((o) => o.close()));
    await store.cleanup();
  }
});
