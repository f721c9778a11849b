// KeyService on a real Redis: generation, verification, normalisation, grace, lockout,
// authorisation, the sybil breaker, schedule validation, and 1,000 concurrent verifications.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidScheduleError, KeyService } from '../keys/key-service.js';
import { deleteByPrefix, openTestStore } from '../testing.js';
import { fullWidth, keyConfig, MINUTE, sleep, TestClock, DAY } from './keys-helpers.js';

async function setup(overrides = {}, clock?: TestClock) {
  const store = await openTestStore('keys');
  const keys = new KeyService(store, keyConfig(overrides), undefined, clock ? { now: clock.now } : {});
  return { store, keys, done: () => store.cleanup() };
}

test('keys are CSPRNG strings of the configured shape and never repeat the previous key', async () => {
  const { keys, done } = await setup({ KEY_LENGTH: 4, KEY_ALPHABET: 'AB' });
  try {
    let prev = (await keys.current()).key;
    assert.match(prev, /^[AB]{4}$/);
    for (let i = 0; i < 40; i++) {
      const next = (await keys.rotate('admin', 'tester')).key;
      assert.match(next, /^[AB]{4}$/);
      assert.notEqual(next, prev, 'a rotation must change the key, even with only 16 possible keys');
      prev = next;
    }
    const def = await setup();
    try {
      assert.match((await def.keys.current()).key, /^[0-9]{6}$/);
    } finally {
      await def.done();
    }
  } finally {
    await done();
  }
});

test('current(), rotate() and history() record who rotated and when each key retired', async () => {
  const { keys, done } = await setup();
  try {
    const first = await keys.current();
    assert.equal(first.version, 1);
    assert.equal(first.by, 'init');
    assert.ok(first.nextRotationAt && Date.parse(first.nextRotationAt) > Date.now());
    assert.ok(first.expiresAt && Date.parse(first.expiresAt) - Date.parse(first.nextRotationAt) === 10 * MINUTE);
    const second = await keys.rotate('admin', 'alice');
    const third = await keys.rotate('cli');
    assert.equal(third.version, 3);
    const h = await keys.history();
    assert.deepEqual(h.map((e) => [e.version, e.by, e.actor]), [[3, 'cli', undefined], [2, 'admin', 'alice'], [1, 'init', undefined]]);
    assert.equal(h[0].retiredAt, null);
    assert.equal(h[1].retiredAt, third.createdAt);
    assert.equal(h[2].retiredAt, second.createdAt);
    assert.equal(h[1].key, second.key);
    assert.equal((await keys.history(1)).length, 1);
  } finally {
    await done();
  }
});

test('odd input is normalised; empty, emoji-only and huge input never costs a try', async () => {
  const { keys, done } = await setup();
  try {
    const { key } = await keys.current();
    for (const attempt of ['', '   ', '\n\t', '😀', '🙂🙂🙂', '“”']) {
      assert.deepEqual(await keys.verify('u-empty', attempt), { ok: false, reason: 'empty' }, JSON.stringify(attempt));
    }
    for (const attempt of ['x'.repeat(10 * 1024), '1'.repeat(10 * 1024), '12345', '1234567', 'hello!', `${key.slice(0, 3)}😀${key.slice(3)}`]) {
      assert.deepEqual(await keys.verify('u-empty', attempt), { ok: false, reason: 'malformed' });
    }
    assert.deepEqual(await keys.lockStatus('u-empty'), { locked: false, failures: 0, attemptsLeft: 5 });
    assert.equal(await keys.failedAttempts(), 0);
    const accepted = [key, ` ${key} `, `"${key}"。`, `「${key}」`, fullWidth(key), `${key.slice(0, 3)} ${key.slice(3)}`, `🔑${key}!!`, `\u3000${fullWidth(key)}\u3000`];
    for (const [i, attempt] of accepted.entries()) {
      const r = await keys.verify(`u-ok-${i}`, attempt);
      assert.equal(r.ok, true, `should accept ${JSON.stringify(attempt)}`);
    }
    await assert.rejects(keys.verify('', key), TypeError);
    await assert.rejects(keys.verify('x'.repeat(300), key), TypeError);
  } finally {
    await done();
  }
});

test('a single-case alphabet accepts either case', async () => {
  const { keys, done } = await setup({ KEY_ALPHABET: 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789', KEY_LENGTH: 8 });
  try {
    const { key } = await keys.current();
    assert.equal((await keys.verify('u', key.toLowerCase())).ok, true);
  } finally {
    await done();
  }
});

test('the previous key is accepted only during the grace window', async () => {
  const clock = new TestClock(Date.parse('2026-03-01T10:00:00Z'));
  const { keys, done } = await setup({ KEY_GRACE_MINUTES: 10 }, clock);
  try {
    const old = (await keys.current()).key;
    clock.advance(MINUTE);
    const fresh = (await keys.rotate('admin')).key;
    clock.advance(9 * MINUTE);
    const inGrace = await keys.verify('late-user', old);
    assert.equal(inGrace.ok, true);
    assert.equal(inGrace.ok && inGrace.authorisedUntil, new Date(Date.parse('2026-03-01T10:11:00Z')).toISOString());
    assert.equal((await keys.authorisation('late-user')).authorised, true);
    clock.advance(2 * MINUTE);
    assert.deepEqual(await keys.authorisation('late-user'), { authorised: false, version: 1, needsNewKey: true });
    assert.deepEqual(await keys.verify('later-user', old), { ok: false, reason: 'wrong', attemptsLeft: 4 });
    assert.equal((await keys.verify('later-user', fresh)).ok, true);
  } finally {
    await done();
  }
});

test('authorisation follows the key generation (KEY_REAUTH=0), revoke forgets the user', async () => {
  const { store, keys, done } = await setup();
  try {
    assert.deepEqual(await keys.authorisation('bob'), { authorised: false, needsNewKey: false });
    const v1 = await keys.current();
    assert.deepEqual(await keys.verify('bob', v1.key), { ok: true, version: 1, authorisedUntil: null });
    assert.deepEqual(await keys.authorisation('bob'), { authorised: true, version: 1, until: null, needsNewKey: false });
    const ttl = await store.redis.pttl(store.key('keys', 'user', 'bob'));
    assert.ok(ttl > 89 * DAY && ttl <= 90 * DAY, 'an idle user record expires with the usage retention');
    await keys.rotate('admin');
    // Still inside the previous key's grace window: authorised until it ends.
    const during = await keys.authorisation('bob');
    assert.equal(during.authorised, true);
    assert.ok(during.until);
    const strict = new KeyService(store, keyConfig({ KEY_GRACE_MINUTES: 0 }));
    assert.deepEqual(await strict.authorisation('bob'), { authorised: false, version: 1, needsNewKey: true });
    await keys.revoke('bob');
    assert.deepEqual(await strict.authorisation('bob'), { authorised: false, needsNewKey: false });
  } finally {
    await done();
  }
});

test('KEY_REAUTH=N keeps a user authorised across rotations for N days', async () => {
  const clock = new TestClock(Date.parse('2026-03-01T10:00:00Z'));
  const { keys, done } = await setup({ KEY_REAUTH: 2, KEY_GRACE_MINUTES: 0 }, clock);
  try {
    const r = await keys.verify('carol', (await keys.current()).key);
    assert.equal(r.ok && r.authorisedUntil, '2026-03-03T10:00:00.000Z');
    clock.advance(DAY);
    await keys.rotate('admin');
    assert.deepEqual(await keys.authorisation('carol'), { authorised: true, version: 1, until: '2026-03-03T10:00:00.000Z', needsNewKey: false });
    clock.advance(DAY + MINUTE);
    assert.deepEqual(await keys.authorisation('carol'), { authorised: false, version: 1, needsNewKey: true });
  } finally {
    await done();
  }
});

test('wrong guesses lock a user out; a locked user cannot get in even with the right key; the lock expires', async () => {
  const { store, keys, done } = await setup({ KEY_MAX_ATTEMPTS: 3, KEY_LOCKOUT_MINUTES: 15 });
  try {
    const { key } = await keys.current();
    const wrong = key === '000000' ? '111111' : '000000';
    assert.deepEqual(await keys.verify('mallory', wrong), { ok: false, reason: 'wrong', attemptsLeft: 2 });
    assert.deepEqual(await keys.verify('mallory', wrong), { ok: false, reason: 'wrong', attemptsLeft: 1 });
    const locked = await keys.verify('mallory', wrong);
    assert.equal(locked.ok, false);
    assert.equal(!locked.ok && locked.reason, 'locked');
    const until = !locked.ok && locked.lockedUntil ? Date.parse(locked.lockedUntil) : 0;
    assert.ok(Math.abs(until - (Date.now() + 15 * MINUTE)) < 5000, 'locked for KEY_LOCKOUT_MINUTES');
    const withRight = await keys.verify('mallory', key);
    assert.equal(!withRight.ok && withRight.reason, 'locked');
    assert.equal((await keys.authorisation('mallory')).authorised, false);
    assert.equal((await keys.lockStatus('mallory')).locked, true);
    assert.equal(await keys.failedAttempts(), 3, 'guesses while locked are not even compared');
    // Other users are unaffected.
    assert.equal((await keys.verify('alice', key)).ok, true);
    // Let the lock run out (shorten its TTL instead of waiting 15 minutes).
    const ttl = await store.redis.pttl(store.key('keys', 'lock', 'mallory'));
    assert.ok(ttl > 14 * MINUTE && ttl <= 15 * MINUTE);
    await store.redis.pexpire(store.key('keys', 'lock', 'mallory'), 30);
    await sleep(80);
    assert.deepEqual(await keys.lockStatus('mallory'), { locked: false, failures: 0, attemptsLeft: 3 });
    assert.equal((await keys.verify('mallory', key)).ok, true);
    // unlock() lifts a lock at once.
    for (let i = 0; i < 3; i++) await keys.verify('eve', wrong);
    assert.equal((await keys.lockStatus('eve')).locked, true);
    await keys.unlock('eve');
    assert.equal((await keys.verify('eve', key)).ok, true);
  } finally {
    await done();
  }
});

test('failed attempts are counted globally and per hour', async () => {
  const clock = new TestClock(Date.parse('2026-03-01T10:30:00Z'));
  const { keys, done } = await setup({ KEY_GLOBAL_FAIL_LIMIT: 0 }, clock);
  try {
    const { key } = await keys.current();
    const wrong = key === '000000' ? '111111' : '000000';
    await keys.verify('a', wrong);
    clock.advance(60 * MINUTE);
    await keys.verify('b', wrong);
    await keys.verify('c', wrong);
    assert.equal(await keys.failedAttempts(), 3);
    assert.deepEqual(await keys.failedAttemptsHourly(3), { startMs: Date.parse('2026-03-01T09:00:00.000Z'), counts: [0, 1, 2] });
  } finally {
    await done();
  }
});

test('the global circuit breaker stops new users after too many failures but lets known users in', async () => {
  const { keys, done } = await setup({ KEY_GLOBAL_FAIL_LIMIT: 5 });
  try {
    const { key } = await keys.current();
    const wrong = key === '000000' ? '111111' : '000000';
    assert.equal((await keys.verify('regular', key)).ok, true);
    await keys.rotate('admin');
    const { key: fresh } = await keys.current();
    // A sybil attack: many fresh accounts, one guess each (per-user lockout never triggers).
    for (let i = 0; i < 5; i++) assert.equal((await keys.verify(`sybil-${i}`, wrong)).ok, false);
    assert.deepEqual((await keys.breakerStatus()).tripped, true);
    const blocked = await keys.verify('sybil-99', fresh);
    assert.equal(blocked.ok, false);
    assert.equal(!blocked.ok && blocked.reason, 'locked');
    assert.equal(!blocked.ok && blocked.global, true);
    assert.equal((await keys.authorisation('sybil-99')).authorised, false, 'even the right key is refused while tripped');
    // A user who was authorised before is not a new account: still allowed.
    assert.equal((await keys.verify('regular', fresh)).ok, true);
    // Known users' mistakes do not feed the breaker.
    const before = (await keys.breakerStatus()).failuresLastHour;
    await keys.verify('regular', wrong);
    assert.equal((await keys.breakerStatus()).failuresLastHour, before);
  } finally {
    await done();
  }
});

test('1,000 users verifying at once: every right key authorises, every wrong one counts once', async () => {
  const { keys, done } = await setup({ KEY_GLOBAL_FAIL_LIMIT: 0 });
  try {
    const { key } = await keys.current();
    const wrong = key === '000000' ? '111111' : '000000';
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => keys.verify(`user-${i}`, i % 2 ? key : wrong)));
    assert.equal(results.filter((r) => r.ok).length, 500);
    assert.ok(results.every((r, i) => (i % 2 ? r.ok : !r.ok && r.reason === 'wrong' && r.attemptsLeft === 4)));
    assert.equal(await keys.failedAttempts(), 500);
    const auth = await Promise.all(Array.from({ length: 1000 }, (_, i) => keys.authorisation(`user-${i}`)));
    assert.ok(auth.every((a, i) => a.authorised === (i % 2 === 1)));
  } finally {
    await done();
  }
});

test('a rotation between the digest cache and the check is noticed (no false failure)', async () => {
  const { store, keys, done } = await setup();
  try {
    await keys.current();
    await keys.verify('warm', '000000'); // fills this instance's digest cache
    const other = new KeyService(store, keyConfig());
    const { key } = await other.rotate('admin');
    // `keys` has not started, so it heard nothing over pub/sub: its cache is stale.
    assert.equal((await keys.verify('fresh', key)).ok, true);
    assert.deepEqual(await keys.lockStatus('fresh'), { locked: false, failures: 0, attemptsLeft: 5 });
  } finally {
    await done();
  }
});

test('schedules are validated with clear errors and give the next five run times', async () => {
  const { keys, done } = await setup();
  try {
    const def = await keys.getSchedule();
    assert.equal(def.cron, '0 0 * * *');
    assert.equal(def.tz, 'Asia/Shanghai');
    assert.equal(def.source, 'config');
    assert.equal(def.nextRuns.length, 5);
    for (const r of def.nextRuns) assert.match(r, /T16:00:00\.000Z$/, 'midnight in Shanghai is 16:00 UTC');
    await assert.rejects(keys.setSchedule('not a cron', 'UTC'), InvalidScheduleError);
    await assert.rejects(keys.setSchedule('0 0 * * *', 'Mars/Olympus'), (e: Error) => e instanceof InvalidScheduleError && /time zone/.test(e.message));
    await assert.rejects(keys.setSchedule('61 0 * * *', 'UTC'), /not a valid cron/);
    await assert.rejects(keys.setSchedule('', 'UTC'), /empty/);
    await assert.rejects(keys.setSchedule('0 0 31 2 *', 'UTC'), InvalidScheduleError);
    await assert.rejects(keys.setSchedule('0 0 30 2 *', 'UTC'), /^InvalidScheduleError: "0 0 30 2 \*" never fires: its day of the month never occurs in its month/);
    await assert.rejects(keys.setSchedule('0 0 0 31 4,6 *', 'UTC'), /never fires/, 'with a seconds field');
    await assert.rejects(keys.setSchedule('0 0 32 2 *', 'UTC'), /not a valid cron/, 'day 32 is simply invalid');
    const weekly = await keys.setSchedule(' 0 0 * * 1 ', 'UTC', 'admin-ann');
    assert.equal(weekly.cron, '0 0 * * 1');
    assert.equal(weekly.source, 'stored');
    assert.equal(weekly.nextRuns.length, 5);
    for (const r of weekly.nextRuns) assert.equal(new Date(r).getUTCDay(), 1);
    const again = await keys.getSchedule();
    assert.equal(again.cron, '0 0 * * 1');
    assert.equal(again.actor, 'admin-ann');
    assert.equal((await keys.current()).nextRotationAt, weekly.nextRuns[0]);
  } finally {
    await done();
  }
});

test('changing KEY_LENGTH replaces a key that no longer fits, once, at start', async () => {
  const { store, keys, done } = await setup();
  try {
    const six = await keys.current();
    assert.equal(six.key.length, 6);
    const eightA = new KeyService(store, keyConfig({ KEY_LENGTH: 8 }));
    const eightB = new KeyService(store, keyConfig({ KEY_LENGTH: 8 }));
    await Promise.all([eightA.start(), eightB.start()]);
    const cur = await eightA.current();
    assert.equal(cur.key.length, 8);
    assert.equal(cur.version, 2, 'two processes starting together replace it only once');
    assert.equal((await eightB.verify('u', cur.key)).ok, true);
    await Promise.all([eightA.stop(), eightB.stop()]);
  } finally {
    await done();
  }
});

test('a key re-created by another process after Redis lost its data is not judged by a stale cache', async () => {
  const { store, keys, done } = await setup();
  try {
    const old = await keys.current();
    assert.equal((await keys.verify('a', old.key)).ok, true); // fills this instance's digest cache
    await deleteByPrefix(store); // Redis lost everything (no persistence, FLUSHDB, ...)
    const other = new KeyService(store, keyConfig());
    const fresh = await other.current();
    assert.equal(fresh.version, 1, 'same version number as the cached key');
    if (fresh.key !== old.key) {
      assert.equal((await keys.verify('b', fresh.key)).ok, true);
      assert.deepEqual((await keys.verify('c', old.key)).ok, false);
    }
    assert.equal((await keys.lockStatus('b')).failures, 0);
  } finally {
    await done();
  }
});

test('the current key names the previous one while its grace window is open, and until when', async () => {
  const clock = new TestClock(Date.parse('2026-03-01T10:00:00Z'));
  const { keys, done } = await setup({ KEY_GRACE_MINUTES: 10 }, clock);
  try {
    const first = await keys.current();
    assert.equal(first.previous, undefined, 'no previous key before any rotation');
    clock.advance(MINUTE);
    const second = await keys.rotate('admin');
    assert.deepEqual(second.previous, { key: first.key, version: first.version, retiredAt: '2026-03-01T10:01:00.000Z', acceptedUntil: '2026-03-01T10:11:00.000Z' });
    clock.advance(9 * MINUTE);
    assert.equal((await keys.verify('u1', first.key)).ok, true, 'the gate agrees: still accepted');
    assert.equal((await keys.current()).previous?.key, first.key);
    clock.advance(MINUTE);
    assert.equal((await keys.current()).previous, undefined, 'gone when the window closes');
    assert.equal((await keys.verify('u2', first.key)).ok, false, 'and the gate refuses it then');
  } finally {
    await done();
  }
});
