// The key service's per-message and dashboard reads in their faster forms: authorisation() as one
// script call (also after the server lost its script cache) and failedAttemptsHourly(), the
// compact per-hour counts the usage endpoint uses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyService } from '../keys/key-service.js';
import { openTestStore } from '../testing.js';
import { keyConfig, MINUTE, TestClock } from './keys-helpers.js';

const HOUR = 60 * MINUTE;

test('failedAttemptsHourly() counts known failures in their hours, for windows up to 90 days', async () => {
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
    // The traffic above, by hour; the clock now stands at 2026-04-13T04:30Z.
    const sent: Record<string, number> = {
      '2026-03-08T13:00:00.000Z': 1,
      '2026-03-15T16:00:00.000Z': 2,
      '2026-03-22T19:00:00.000Z': 3,
      '2026-03-29T22:00:00.000Z': 4,
      '2026-04-06T01:00:00.000Z': 5,
    };
    const windows: Array<[hours: number, first: string, length: number, sum: number]> = [
      [1, '2026-04-13T04:00:00.000Z', 1, 0],
      [24, '2026-04-12T05:00:00.000Z', 24, 0],
      [720, '2026-03-14T05:00:00.000Z', 720, 2 + 3 + 4 + 5],
      [24 * 90, '2026-01-13T05:00:00.000Z', 24 * 90, 1 + 2 + 3 + 4 + 5],
      [10_000, '2026-01-13T05:00:00.000Z', 24 * 90, 1 + 2 + 3 + 4 + 5],
    ];
    for (const [hours, first, length, sum] of windows) {
      const { startMs, counts } = await keys.failedAttemptsHourly(hours);
      assert.equal(new Date(startMs).toISOString(), first, `${hours} hours start`);
      assert.equal(counts.length, length, `${hours} hours, at most 90 days`);
      assert.equal(counts.reduce((a, b) => a + b, 0), sum, `${hours} hours sum`);
      counts.forEach((count, i) => {
        const hour = new Date(startMs + i * HOUR).toISOString();
        assert.equal(count, sent[hour] ?? 0, hour);
      });
    }
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
