// Graceful shutdown of the real `npm start` process: SIGTERM/SIGINT stop new connections, let an
// in-flight streamed reply finish within SHUTDOWN_GRACE_SECONDS or cancel it with a clear notice,
// close Redis and exit 0.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTinyModel } from '../../model/test/tiny-model.js';
import { coreSchema } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { KeyService } from '../../core/keys/key-service.js';
import { RuntimeSettings, defaultChatSettings } from '../../core/settings/runtime-settings.js';
import { defaultBotConfig } from '../../bot/config.js';
import { conversationKey } from '../../bot/conversation.js';
import { openTestStore } from '../../core/testing.js';
import { openStream, startServer, verifiedVisitor } from './child-server.js';
import { field } from './harness.js';

describe('graceful shutdown of npm start', () => {
  let modelDir: string;
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let key: string;
  let keys: KeyService;
  before(async () => {
    modelDir = await mkdtemp(path.join(tmpdir(), 'nemo-shutdown-model-'));
    await createTinyModel(modelDir, { seed: 5, nPositions: 512 });
    store = await openTestStore('shutdown');
    keys = new KeyService(store, parseEnv(coreSchema, {}));
    key = (await keys.current()).key;
    // Long replies, so a reply is still streaming when the signal arrives.
    await new RuntimeSettings(store, defaultChatSettings(defaultBotConfig())).update({ maxNewTokens: 480, rateLimit: 1000 }, 'test');
  });
  after(async () => {
    await keys.stop();
    await store.cleanup();
    await rm(modelDir, { recursive: true, force: true });
  });

  test('SIGTERM with no grace: the streaming reply is cancelled with a notice, new connections are refused, exit 0', async () => {
    const s = await startServer({ ADMIN_PASSWORD: 'shutdown-test-password', REDIS_PREFIX: store.prefix, MODEL_DIR: modelDir, SHUTDOWN_GRACE_SECONDS: '0' });
    const c = await verifiedVisitor(s.url, key);
    const userId = ((await c.get('/api/chat/session')).body as { userId: string }).userId;
    const stream = await openStream(c, 'tell me a very long story');
    s.child.kill('SIGTERM');
    const text = await stream.rest;
    assert.match(text, /event: notice/);
    assert.match(text, /"code":"restarting"/);
    assert.match(text, /"kind":"interrupted"/);
    assert.match(text, /"partial":"[^"]/, 'what was generated before the cut is reported with the notice');
    assert.equal(await s.exit, 0, s.lines.join(''));
    // The cut-off reply is not a turn of the conversation.
    assert.equal(await store.redis.exists(conversationKey(store, userId)), 0, 'nothing remembered');
    await assert.rejects(fetch(`${s.url}/healthz`), 'no longer accepting connections');
    const log = s.lines.join('');
    assert.match(log, /"msg":"shutting down"/);
    assert.match(log, /"cancelled":1/);
    assert.match(log, /"msg":"stopped"/);
  });

  test('SIGINT with a grace period: the in-flight reply finishes, then the process exits 0', async () => {
    const s = await startServer({ ADMIN_PASSWORD: 'shutdown-test-password', REDIS_PREFIX: store.prefix, MODEL_DIR: modelDir, SHUTDOWN_GRACE_SECONDS: '60' });
    const c = await verifiedVisitor(s.url, key);
    const stream = await openStream(c, 'and another story');
    const t0 = Date.now();
    s.child.kill('SIGINT');
    // While the reply finishes, the process still answers: /readyz 503 (a load balancer's probe
    // sees "stopping", not a refused connection), new work 503 with a clear message.
    let ready = await fetch(`${s.url}/readyz`);
    for (let i = 0; i < 200 && ready.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 10));
      ready = await fetch(`${s.url}/readyz`);
    }
    assert.equal(ready.status, 503);
    assert.equal(((await ready.json()) as { status: string }).status, 'stopping');
    const late = await c.post('/api/chat/messages', { text: 'one more' });
    assert.equal(late.status, 503);
    assert.equal(field(late, 'code'), 'stopping');
    const text = await stream.rest;
    assert.match(text, /event: done/, 'the reply was completed, not cut');
    assert.equal(await s.exit, 0, s.lines.join(''));
    assert.ok(Date.now() - t0 < 60_000);
    assert.doesNotMatch(s.lines.join(''), /cancelled in-flight/);
  });

  test('npm start as the README says: SIGTERM to the npm process stops the platform (node exits 0, "stopped" logged)', async () => {
    const s = await startServer({ ADMIN_PASSWORD: 'shutdown-test-password', REDIS_PREFIX: store.prefix, MODEL_DIR: modelDir }, { npm: true });
    const nodePid = Number(/"pid":(\d+)/.exec(s.lines.join(''))?.[1]);
    assert.ok(nodePid > 0 && nodePid !== s.child.pid, `node runs as its own process (${nodePid}, npm ${s.child.pid})`);
    s.child.kill('SIGTERM');
    assert.equal(await s.exit, 0, s.lines.join(''));
    assert.match(s.lines.join(''), /"msg":"stopped"/);
    const alive = () => { try { process.kill(nodePid, 0); return true; } catch { return false; } };
    for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(alive(), false, 'the node process is gone');
  });
});
