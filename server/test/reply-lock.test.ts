// A crash in the middle of a streamed reply leaves no lasting lock and costs no quota: the real
// `npm start` is killed with SIGKILL mid-stream, a restarted one serves the same visitor at once.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { defaultBotConfig } from '../../bot/config.js';
import { coreSchema } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { KeyService } from '../../core/keys/key-service.js';
import { RuntimeSettings, defaultChatSettings } from '../../core/settings/runtime-settings.js';
import { openTestStore } from '../../core/testing.js';
import { createTinyModel } from '../../model/test/tiny-model.js';
import { ReplyLocks, STALE_MS } from '../reply-lock.js';
import { Client } from './harness.js';
import { openStream, startServer, verifiedVisitor } from './child-server.js';

describe('web-chat reply locks', () => {
  let modelDir: string;
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let keys: KeyService;
  let settings: RuntimeSettings;
  before(async () => {
    modelDir = await mkdtemp(path.join(tmpdir(), 'nemo-crash-model-'));
    await createTinyModel(modelDir, { seed: 5, nPositions: 512 });
    store = await openTestStore('crash');
    keys = new KeyService(store, parseEnv(coreSchema, {}));
    settings = new RuntimeSettings(store, defaultChatSettings(defaultBotConfig()));
  });
  after(async () => {
    await keys.stop();
    await store.cleanup();
    await rm(modelDir, { recursive: true, force: true });
  });

  const quotaUsed = async (userId: string): Promise<number> => {
    const found = await store.redis.keys(`${store.prefix}bot:quota:*:${userId}`);
    const values = found.length ? await store.redis.mget(...found) : [];
    return values.reduce((sum, v) => sum + Number(v ?? 0), 0);
  };

  test('kill -9 mid-stream: the restarted process answers the visitor at once and the lost reply costs no quota', async () => {
    // Long replies, so the first is still streaming when the process dies.
    await settings.update({ maxNewTokens: 480, rateLimit: 1000, dailyQuota: 5 }, 'test');
    const env = { ADMIN_PASSWORD: 'crash-test-password', REDIS_PREFIX: store.prefix, MODEL_DIR: modelDir };
    const first = await startServer(env);
    const c = await verifiedVisitor(first.url, (await keys.current()).key);
    const userId = ((await c.get('/api/chat/session')).body as { userId: string }).userId;
    const stream = await openStream(c, 'tell me a very long story');
    const cut = stream.rest.then(() => 'ended', () => 'cut');
    first.child.kill('SIGKILL');
    await first.exit;
    assert.equal(await cut, 'cut');
    assert.equal(await store.redis.exists(store.key('webchat', 'busy', userId)), 1, 'the crash left the lock behind');
    assert.equal(await quotaUsed(userId), 1, 'the lost reply took its quota');

    await settings.update({ maxNewTokens: 8 }, 'test');
    const second = await startServer(env);
    try {
      const again = new Client(second.url);
      again.cookies = c.cookies;
      again.csrf = c.csrf;
      const r = await again.post('/api/chat/messages', { text: 'hello again' });
      assert.equal(r.status, 200, r.text);
      assert.match(r.text, /event: done/);
      assert.equal(await quotaUsed(userId), 1, 'the lost reply was given back; only the answered one counts');
      assert.equal(await store.redis.exists(store.key('webchat', 'busy', userId)), 0, 'released after the reply');
    } finally {
      second.child.kill('SIGTERM');
      await second.exit;
    }
  });

  test('a lock on another host is taken over only once its owner stopped renewing it', async () => {
    const refunds: number[] = [];
    const locks = new ReplyLocks(store, async (_user, at) => void refunds.push(at));
    const key = store.key('webchat', 'busy', 'web:other-host');
    const chargedAt = Date.now() - 1000;
    const elsewhere = { host: `not-${hostname()}`, pid: 1, boot: 'b', chargedAt };
    await store.redis.set(key, JSON.stringify({ ...elsewhere, renewedAt: Date.now() }));
    assert.equal(await locks.acquire('web:other-host'), null, 'a live owner elsewhere keeps it');
    await store.redis.set(key, JSON.stringify({ ...elsewhere, renewedAt: Date.now() - STALE_MS - 1000 }));
    const lock = await locks.acquire('web:other-host');
    assert.ok(lock, 'taken over');
    assert.deepEqual(refunds, [chargedAt], 'and its quota given back once');
    assert.equal(await locks.acquire('web:other-host'), null, 'now held by this process');
    await lock.release();
    assert.equal(await store.redis.exists(key), 0);
  });
});
