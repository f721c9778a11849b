import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openTestStore } from '../../core/testing.js';
import { ConversationMemory, conversationKey } from '../conversation.js';

// Whitespace-separated words as tokens: enough to check the budget arithmetic.
const words = (t: string) => t.split(/\s+/).filter(Boolean).length;

test('memory keeps the newest turns, bounded by turn count', async () => {
  const store = await openTestStore('mem');
  const mem = new ConversationMemory(store, { maxTurns: 3, maxTokens: 1000, idleMs: 60_000, countTokens: words });
  try {
    for (let i = 1; i <= 5; i++) await mem.append('u', { user: `q${i}`, bot: `a${i}` });
    assert.deepEqual(await mem.history('u'), [
      { user: 'q3', bot: 'a3' }, { user: 'q4', bot: 'a4' }, { user: 'q5', bot: 'a5' },
    ]);
    assert.deepEqual(await mem.history('someone-else'), []);
  } finally {
    await store.cleanup();
  }
});

test('memory drops the oldest turns beyond the token budget, keeps unicode intact', async () => {
  const store = await openTestStore('mem-tokens');
  const mem = new ConversationMemory(store, { maxTurns: 10, maxTokens: 10, idleMs: 60_000, countTokens: words });
  try {
    await mem.append('u', { user: 'one two three', bot: 'four five' }); // 5
    await mem.append('u', { user: '你好 😀', bot: 'ｆｕｌｌ width' }); // 4
    assert.equal((await mem.history('u')).length, 2);
    await mem.append('u', { user: 'a b', bot: 'c' }); // 3 → total 12 > 10: drop the first
    assert.deepEqual(await mem.history('u'), [
      { user: '你好 😀', bot: 'ｆｕｌｌ width' }, { user: 'a b', bot: 'c' },
    ]);
    // A single turn over budget leaves nothing rather than an over-long prompt.
    await mem.append('u', { user: Array(20).fill('w').join(' '), bot: 'x' });
    assert.deepEqual(await mem.history('u'), []);
  } finally {
    await store.cleanup();
  }
});

test('memory expires after inactivity and is cleared by clear()', async () => {
  const store = await openTestStore('mem-ttl');
  const mem = new ConversationMemory(store, { maxTurns: 5, maxTokens: 100, idleMs: 300, countTokens: words });
  try {
    await mem.append('u', { user: 'hi', bot: 'hello' });
    const ttl = await store.redis.pttl(conversationKey(store, 'u'));
    assert.ok(ttl > 0 && ttl <= 300);
    await new Promise((r) => setTimeout(r, 450));
    assert.deepEqual(await mem.history('u'), []);
    await mem.append('u', { user: 'again', bot: 'yes' });
    assert.equal(await mem.clear('u'), true);
    assert.equal(await mem.clear('u'), false);
    assert.equal(await mem.size('u'), 0);
  } finally {
    await store.cleanup();
  }
});

test('a damaged entry is skipped, and maxTurns 0 turns memory off', async () => {
  const store = await openTestStore('mem-bad');
  try {
    const mem = new ConversationMemory(store, { maxTurns: 5, maxTokens: 100, idleMs: 60_000, countTokens: words });
    await store.redis.rpush(conversationKey(store, 'u'), '{not json');
    await mem.append('u', { user: 'ok', bot: 'fine' });
    assert.deepEqual(await mem.history('u'), [{ user: 'ok', bot: 'fine' }]);
    const off = new ConversationMemory(store, { maxTurns: 0, maxTokens: 100, idleMs: 60_000, countTokens: words });
    await off.append('v', { user: 'x', bot: 'y' });
    assert.deepEqual(await off.history('v'), []);
    assert.equal(await store.redis.exists(conversationKey(store, 'v')), 0);
  } finally {
    await store.cleanup();
  }
});

test('an exchange read before a clear() is not appended after it (a reset wins over a reply in flight)', async () => {
  const store = await openTestStore('mem-epoch');
  try {
    const mem = new ConversationMemory(store, { maxTurns: 5, maxTokens: 100, idleMs: 60_000, countTokens: words });
    await mem.append('u', { user: 'one', bot: 'first' });
    const before = await mem.read('u');
    assert.deepEqual(before.turns, [{ user: 'one', bot: 'first' }]);
    // Nothing cleared meanwhile: stored.
    assert.equal(await mem.append('u', { user: 'two', bot: 'second' }, before.epoch), 2);
    const stale = await mem.read('u');
    assert.equal(await mem.clear('u'), true);
    assert.equal(await mem.append('u', { user: 'three', bot: 'third' }, stale.epoch), -1, 'read before the clear: refused');
    assert.deepEqual(await mem.history('u'), []);
    assert.equal(await mem.clear('u'), false, 'nothing left to forget');
    const fresh = await mem.read('u');
    assert.notEqual(fresh.epoch, stale.epoch);
    assert.equal(await mem.append('u', { user: 'four', bot: 'fourth' }, fresh.epoch), 1, 'read after the clear: stored');
    assert.ok((await store.redis.pttl(`${store.prefix}bot:mem-epoch:u`)) > 86_400_000, 'the epoch outlives any reply in flight');
  } finally {
    await store.cleanup();
  }
});
