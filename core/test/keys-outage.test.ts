// Redis going away and coming back under a running KeyService (private redis-servers we stop).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { KeyService } from '../keys/key-service.js';
import { RedisUnavailableError, Store } from '../redis.js';
import { silentLogger } from '../logger.js';
import { launchLocalRedis } from '../redis-launcher.js';
import { freePort, TempRedis } from '../testing.js';
import { DAY, keyConfig, TestClock, waitFor } from './keys-helpers.js';

/** A redis-server with append-only persistence that a test can stop and start on one port. */
class PersistentRedis {
  private child: ChildProcess | null = null;
  constructor(readonly dir: string, readonly port: number) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }
  async start(): Promise<void> {
    this.child = await launchLocalRedis(this.dir, silentLogger, this.port);
  }
  async stop(): Promise<void> {
    const c = this.child;
    this.child = null;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill('SIGTERM');
    });
  }
}

test('Redis restarted mid-way: calls reject with RedisUnavailableError, nothing crashes, a slot missed meanwhile is caught up', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nemo-keys-outage-'));
  const server = new PersistentRedis(dir, await freePort());
  await server.start();
  const store = new Store({ url: server.url, prefix: 'outage:', commandTimeoutMs: 1000 });
  const clock = new TestClock(Date.parse('2026-06-01T02:00:00Z'));
  const keys = new KeyService(store, keyConfig(), undefined, { now: clock.now, maxRetryMs: 300 });
  try {
    await store.open();
    await keys.start();
    const before = await keys.current();
    assert.equal((await keys.verify('u1', before.key)).ok, true);

    await server.stop();
    const t0 = Date.now();
    await assert.rejects(keys.verify('u2', before.key), RedisUnavailableError);
    assert.ok(Date.now() - t0 < 3000, 'fails fast instead of hanging the chat');
    await assert.rejects(keys.current(), RedisUnavailableError);
    await assert.rejects(keys.authorisation('u1'), RedisUnavailableError);
    await assert.rejects(keys.rotate('admin'), RedisUnavailableError);
    // Midnight in Shanghai passes while Redis is down; the scheduled run fails and is retried.
    clock.advance(DAY);
    await keys.rotation['tick']();

    await server.start();
    assert.ok(await waitFor(() => store.ready, 8000), 'reconnects by itself');
    assert.ok(
      await waitFor(async () => (await keys.current()).version === 2, 8000),
      'the missed midnight rotation happens once Redis is back',
    );
    const cur = await keys.current();
    assert.equal(cur.by, 'schedule');
    assert.notEqual(cur.key, before.key);
    assert.equal((await keys.authorisation('u1')).needsNewKey, false, 'u1 is still inside the grace window');
    assert.equal((await keys.verify('u2', cur.key)).ok, true, 'verification works again with the new key');
    await keys.rotation['tick']();
    assert.equal((await keys.history(5)).filter((e) => e.by === 'schedule').length, 1, 'caught up exactly once');
  } finally {
    await keys.stop();
    await store.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('losing every key in Redis (a wiped server) makes a fresh key instead of failing', async () => {
  const server = await TempRedis.start();
  const store = new Store({ url: server.url, prefix: 'wiped:', commandTimeoutMs: 1000 });
  const keys = new KeyService(store, keyConfig());
  try {
    await store.open();
    const first = await keys.current();
    assert.equal((await keys.verify('a', first.key)).ok, true);
    await server.stop();
    await server.start();
    assert.ok(await waitFor(() => store.ready, 8000));
    const again = await keys.current();
    assert.equal(again.version, 1);
    assert.equal((await keys.verify('b', again.key)).ok, true, 'stale digest cache is refreshed, not trusted');
  } finally {
    await keys.stop();
    await store.close();
    await server.stop();
  }
});
