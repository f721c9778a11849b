// Several KeyService processes on one Redis (separate connections, same prefix): exactly-once
// scheduled rotation, the real node-cron path, catch-up after downtime, pub/sub notifications.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyService, type RotationEvent } from '../keys/key-service.js';
import { Store } from '../redis.js';
import { openTestStore, TEST_REDIS_URL } from '../testing.js';
import { captureLog, DAY, keyConfig, sleep, TestClock, waitFor } from './keys-helpers.js';

/** `n` stores on separate connections sharing one prefix, as separate processes would. */
async function cluster(n: number) {
  const main = await openTestStore('keys-cluster');
  const stores = [main as Store];
  for (let i = 1; i < n; i++) stores.push(await new Store({ url: TEST_REDIS_URL, prefix: main.prefix }).open());
  return {
    stores,
    async done() {
      for (const s of stores.slice(1)) await s.close();
      await main.cleanup();
    },
  };
}

test('five instances racing for the same slots rotate exactly once per slot', async () => {
  const { stores, done } = await cluster(5);
  try {
    const base = Date.parse('2026-06-01T16:00:00Z');
    const clock = new TestClock(base - 3_600_000);
    const services = stores.map((s) => new KeyService(s, keyConfig(), undefined, { now: clock.now }));
    await services[0].current(); // version 1, made an hour before the first slot
    for (let slot = 0; slot < 10; slot++) {
      const slotTime = new Date(base + slot * DAY);
      const results = await Promise.all(services.map((k) => k.runScheduledSlot(slotTime)));
      assert.equal(results.filter(Boolean).length, 1, `slot ${slot}: exactly one instance rotates`);
      // A late instance (or a retry) for the same or an older slot does nothing.
      assert.equal(await services[2].runScheduledSlot(slotTime), false);
      assert.equal(await services[3].runScheduledSlot(new Date(slotTime.getTime() - DAY)), false);
    }
    assert.equal((await services[4].current()).version, 11);
    const h = await services[1].history(20);
    assert.equal(h.filter((e) => e.by === 'schedule').length, 10);
    assert.equal(new Set(h.map((e) => e.slot).filter(Boolean)).size, 10);
  } finally {
    await done();
  }
});

test('the real node-cron path with a per-second schedule rotates once per second across three instances', async () => {
  const { stores, done } = await cluster(3);
  const services = stores.map((s) => new KeyService(s, keyConfig({ KEY_ROTATE_CRON: '* * * * * *', KEY_ROTATE_TZ: 'UTC' })));
  try {
    await Promise.all(services.map((k) => k.start()));
    const t0 = Date.now();
    await sleep(3200);
    await Promise.all(services.map((k) => k.stop()));
    const elapsedS = (Date.now() - t0) / 1000;
    const h = await services[0].history(100);
    const scheduled = h.filter((e) => e.by === 'schedule');
    const slots = scheduled.map((e) => e.slot);
    assert.equal(new Set(slots).size, slots.length, 'no slot rotated twice');
    assert.ok(scheduled.length >= 2 && scheduled.length <= Math.ceil(elapsedS) + 1, `${scheduled.length} rotations in ${elapsedS}s`);
    for (const s of slots) assert.equal(Date.parse(s!) % 1000, 0, 'slots are whole seconds');
    const versions = h.map((e) => e.version);
    assert.deepEqual(versions, Array.from({ length: versions.length }, (_, i) => versions[0] - i), 'versions have no gaps');
  } finally {
    await Promise.all(services.map((k) => k.stop()));
    await done();
  }
});

test('a slot missed while every instance was down is caught up once at start', async () => {
  const { stores, done } = await cluster(3);
  try {
    // Day 1, 10:00 Shanghai: the first instance creates the key and goes down.
    const clock = new TestClock(Date.parse('2026-06-01T02:00:00Z'));
    const a = new KeyService(stores[0], keyConfig(), undefined, { now: clock.now });
    await a.start();
    assert.equal((await a.current()).version, 1);
    await a.stop();
    // Three days later two instances start together: exactly one catch-up rotation.
    clock.advance(3 * DAY);
    const b = new KeyService(stores[1], keyConfig(), undefined, { now: clock.now });
    const c = new KeyService(stores[2], keyConfig(), undefined, { now: clock.now });
    await Promise.all([b.start(), c.start()]);
    const cur = await b.current();
    assert.equal(cur.version, 2);
    assert.equal(cur.by, 'schedule');
    const [latest] = await b.history(1);
    assert.equal(latest.slot, '2026-06-03T16:00:00.000Z', 'the most recent midnight in Shanghai');
    await Promise.all([b.stop(), c.stop()]);
    // A restart within the same day does not rotate again.
    clock.advance(60_000);
    const d = new KeyService(stores[0], keyConfig(), undefined, { now: clock.now });
    await d.start();
    assert.equal((await d.current()).version, 2);
    await d.stop();
  } finally {
    await done();
  }
});

test('a rotation and a schedule change in one instance reach the others at once over pub/sub', async () => {
  const { stores, done } = await cluster(3);
  const [a, b, cli] = stores.map((s) => new KeyService(s, keyConfig()));
  try {
    await a.start();
    await b.start();
    const seenA: RotationEvent[] = [];
    const seenB: RotationEvent[] = [];
    a.onRotate((e) => seenA.push(e));
    const off = b.onRotate((e) => seenB.push(e));
    // A CLI-like instance that never started still publishes its rotation.
    const rotated = await cli.rotate('cli');
    assert.ok(await waitFor(() => seenA.length === 1 && seenB.length === 1, 3000), 'both running instances heard of it');
    assert.deepEqual(seenB[0], { version: rotated.version, at: rotated.createdAt, by: 'cli' });
    assert.ok(!JSON.stringify(seenB[0]).includes(rotated.key), 'the key itself is never published');
    off();
    await a.rotate('admin', 'ann');
    assert.ok(await waitFor(() => seenA.length === 2, 3000));
    await sleep(50);
    assert.equal(seenB.length, 1, 'an unsubscribed listener hears nothing');
    // A verifying instance sees the new key immediately.
    const { key } = await a.current();
    assert.equal((await b.verify('someone', key)).ok, true);

    const changes: string[] = [];
    b.onScheduleChange((s) => changes.push(s.cron));
    await a.setSchedule('0 0 * * 1', 'Asia/Shanghai');
    assert.ok(await waitFor(() => changes.includes('0 0 * * 1'), 3000), 'the schedule change reached the other instance');
    assert.equal((await b.getSchedule()).cron, '0 0 * * 1');
    const reset = await cli.resetSchedule('test');
    assert.equal(reset.source, 'config');
    assert.ok(await waitFor(() => changes.at(-1) === '0 0 * * *', 3000), 'the reset reached the other instance');
    assert.equal((await b.getSchedule()).source, 'config');
  } finally {
    await a.stop();
    await b.stop();
    await done();
  }
});

test('a schedule set in another process re-arms this process timer', async () => {
  const { stores, done } = await cluster(2);
  const running = new KeyService(stores[0], keyConfig());
  const admin = new KeyService(stores[1], keyConfig());
  try {
    await running.start();
    const v0 = (await running.current()).version;
    // Only `running` has a timer: rotations prove it switched to the per-second schedule.
    await admin.setSchedule('* * * * * *', 'UTC', 'test');
    assert.ok(await waitFor(async () => (await admin.current()).version >= v0 + 2, 4000), 'per-second rotations started');
    await admin.setSchedule('0 0 1 1 *', 'UTC', 'test');
    await sleep(300);
    const settled = (await admin.current()).version;
    await sleep(1300);
    assert.equal((await admin.current()).version, settled, 'back to a yearly schedule: no more rotations');
  } finally {
    await running.stop();
    await done();
  }
});

test('the safety check catches a slot the cron timer never fired for', async () => {
  const { stores, done } = await cluster(1);
  const clock = new TestClock(Date.parse('2026-06-01T02:00:00Z'));
  const keys = new KeyService(stores[0], keyConfig(), undefined, { now: clock.now, safetyIntervalMs: 50 });
  try {
    await keys.start();
    assert.equal((await keys.current()).version, 1);
    clock.advance(DAY); // midnight passed, but node-cron runs on the real clock and did not fire
    assert.ok(await waitFor(async () => (await keys.current()).version === 2, 3000));
    assert.equal((await keys.current()).by, 'schedule');
  } finally {
    await keys.stop();
    await done();
  }
});

test('a failing rotation listener (sync or async) is logged and does not stop the others', async () => {
  const { stores, done } = await cluster(1);
  const log = captureLog();
  const keys = new KeyService(stores[0], keyConfig(), log.logger);
  try {
    await keys.start();
    const seen: number[] = [];
    keys.onRotate(() => {
      throw new Error('sync boom');
    });
    keys.onRotate(async () => {
      throw new Error('async boom');
    });
    keys.onRotate((e) => seen.push(e.version));
    const { version, key } = await keys.rotate('admin');
    assert.ok(await waitFor(() => seen.includes(version), 3000));
    const failures = () => log.entries.filter((e) => e.msg === 'a key event listener failed');
    assert.ok(await waitFor(() => failures().length === 2, 3000), `two listener failures logged; got ${JSON.stringify(failures())}`);
    assert.deepEqual(failures().map((e) => [e.level, e.err]).sort(), [[40, 'async boom'], [40, 'sync boom']], 'as warnings with the error');
    assert.ok(!log.text().includes(key), 'the key itself is never logged');
    await sleep(50); // an unhandled rejection would fail the test run here
  } finally {
    await keys.stop();
    await done();
  }
});
