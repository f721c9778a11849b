// Graceful shutdown of the real `npm start` process: SIGTERM/SIGINT stop new connections, let an
// in-flight streamed reply finish within SHUTDOWN_GRACE_SECONDS or cancel it with a clear notice,
// close Redis and exit 0.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
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
import { openTestStore, TEST_REDIS_URL } from '../../core/testing.js';
import { Client } from './harness.js';

interface Running {
  child: ChildProcess;
  url: string;
  lines: string[];
  exit: Promise<number | null>;
}

async function startServer(env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: { ...process.env, NODE_ENV: 'test', LOG_FORMAT: 'json', LOG_LEVEL: 'info', PORT: '0', HOST: '127.0.0.1', REDIS_URL: TEST_REDIS_URL, BOT_ENABLED: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start:\n${lines.join('')}`)), 60_000);
    const onData = (d: Buffer) => {
      lines.push(String(d));
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(lines.join(''));
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => lines.push(String(d)));
    void exit.then((code) => reject(new Error(`server exited with ${code}:\n${lines.join('')}`)));
  });
  return { child, url, lines, exit };
}

async function verifiedVisitor(url: string, key: string): Promise<Client> {
  const c = new Client(url);
  c.csrf = ((await c.get('/api/chat/session')).body as { csrfToken: string }).csrfToken;
  const v = await c.post('/api/chat/verify', { key });
  assert.equal(v.status, 200, JSON.stringify(v.body));
  return c;
}

/** Opens a streamed reply and resolves once the first token has arrived. */
async function openStream(c: Client, text: string): Promise<{ rest: Promise<string> }> {
  const res = await fetch(`${c.base}/api/chat/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': c.csrf, Cookie: [...c.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    body: JSON.stringify({ text }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let seen = '';
  while (!seen.includes('event: token')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended early: ${seen}`);
    seen += dec.decode(value);
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return seen;
      seen += dec.decode(value);
    }
  })();
  return { rest };
}

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
    const text = await stream.rest;
    assert.match(text, /event: done/, 'the reply was completed, not cut');
    assert.equal(await s.exit, 0, s.lines.join(''));
    assert.ok(Date.now() - t0 < 60_000);
    assert.doesNotMatch(s.lines.join(''), /cancelled in-flight/);
  });
});
