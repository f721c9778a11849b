// The key service's per-message and dashboard reads in their faster forms: authorisation() as one
// script call (also after the server lost its script cache) and failedAttemptsHourly(), the
// compact form of failedAttemptsByHour() that the usage endpoint uses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyService } from '../keys/key-service.js';
import { openTestStore } from '../testing.js';
import { keyConfig, MINUTE, TestClock } from './keys-helpers.js';

const HOUR = 60 * MINUTE;

test('failedAttemptsHourly() holds exactly the counts and hours of failedAttemptsByHour()', async () => {
  const clock = new TestClock(Date.parse('2026-03-01T10:30:00Z'));
  const store = await openTestStore('keys-hourly');
  const keys = new KeyService(store, keyConfig({ KEY_GLOBAL_FAIL_LIMIT: 0 }), undefined, { now: clock.now });
  try {
    const { key } = await keys.current();
    const wrong = key === '000000' ? '111111' : '000000';
    // Failures 0, 1, 2 … in hours spread over 40 days (users differ, so no lockout interferes).
    for (let h = 0; h < 6; h++) {
      for (let i = 0; i < h; i++) await keys.verify(`u-${h}-${i}`, wrong);
      clock.advance(7 * 24 * HOUR + 3 * HOUR);
    }
    for (const hours of [1, 24, 720, 24 * 90, 10_000]) {
      const byHour = await keys.failedAttemptsByHour(hours);
      const compact = await keys.failedAttemptsHourly(hours);
      assert.equal(compact.counts.length, byHour.length, `${hours} hours`);
      assert.deepEqual(compact.counts, byHour.map((b) => b.count));
      assert.equal(new Date(compact.startMs).toISOString(), byHour[0].start);
      assert.equal(byHour.at(-1)!.start, new Date(Math.floor(clock.t / HOUR) * HOUR).toISOString(), 'ends with the current hour');
    }
    const all = await keys.failedAttemptsHourly(24 * 90);
    assert.equal(all.counts.length, 24 * 90, 'at most 90 days');
    assert.equal(all.counts.reduce((a, b) => a + b, 0), 0 + 1 + 2 + 3 + 4 + 5);
    assert.equal(await keys.failedAttempts(), 15);
  } finally {
    await keys.stop();
    await store.cleanup();
  }
});

test('authorisation() by script gives the same answers, also after SCRIPT FLUSH', async () => {
  const clock = new TestClock(Date.parse('2026-03-01T10:30:00Z'));
  const store = await openTestStore('keys-auth');
  const keys = new KeyService(store, keyConfig({ KEY_GRACE_MINUTES: 10 }), undefined, { now: clock.now });
  try {
    assert.deepEqual(await keys.authorisation('nobody'), { authorised: false, needsNewKey: false });
    const { key, version } = await keys.current();
    assert.equal((await keys.verify('ann', key)).ok, true);
    await store.redis.script('FLUSH');
    assert.deepEqual(await keys.authorisation('ann'), { authorised: true, version, until: null, needsNewKey: false });
    await keys.rotate('admin', 'tester');
    const during = await keys.authorisation('ann');
    assert.deepEqual(during, { authorised: true, version, until: new Date(clock.t + 10 * MINUTE).toISOString(), needsNewKey: false });
    clock.advance(11 * MINUTE);
    assert.deepEqual(await keys.authorisation('ann'), { authorised: false, version, needsNewKey: true });
    await assert.rejects(keys.authorisation(''), TypeError);
  } finally {
    await keys.stop();
    await store.cleanup();
  }
});
