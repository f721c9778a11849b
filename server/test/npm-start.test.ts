// `npm start` end to end: startNemo() (all that server/main.ts runs) with the model it loads by
// default (model/shipped), the WeChat bot on wechaty-puppet-mock and the real Redis. A chatter
// sends the access key the admin panel shows, then a message; the model's reply arrives through
// the puppet, and the signed-in admin sees the messages in /api/admin/usage.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { mock, PuppetMock } from 'wechaty-puppet-mock';
import { Store } from '../../core/redis.js';
import { deleteByPrefix, testPrefix, TEST_REDIS_URL } from '../../core/testing.js';
import { startNemo } from '../main.js';
import { Client, field, TEST_PASSWORD } from './harness.js';

/** Resolves with the next text the bot sends to `contactId`. */
function nextReplyTo(puppet: PuppetMock, mocker: mock.Mocker, botId: string, contactId: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      puppet.off('message', onMessage);
      reject(new Error(`no reply to ${contactId} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = ({ messageId }: { messageId: string }) => {
      const m = mocker.MessageMock.load(messageId).payload;
      if (m.talkerId !== botId || !('listenerId' in m) || m.listenerId !== contactId) return;
      clearTimeout(timer);
      puppet.off('message', onMessage);
      resolve(m.text ?? '');
    };
    puppet.on('message', onMessage);
  });
}

test('npm start: the bot on the mock puppet verifies a chatter\'s key, replies with the shipped model, and usage shows it', async () => {
  const prefix = testPrefix('npm-start');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nemo-npm-start-'));
  const logLines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => { logLines.push(String(c)); cb(); } }));
  const mocker = new mock.Mocker();
  const puppet = new PuppetMock({ mocker });
  const nemo = await startNemo({
    env: {
      REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: prefix, HOST: '127.0.0.1', PORT: '0', DATA_DIR: dataDir,
      ADMIN_PASSWORD: TEST_PASSWORD, BOT_ENABLED: 'true', BOT_KEEP_SESSION: 'false', WECHATY_PUPPET: 'wechaty-puppet-mock',
    },
    logger,
    puppet,
  });
  try {
    assert.ok(logLines.some((l) => /"msg":"model loaded"/.test(l) && /"model":"shipped"/.test(l)), 'the shipped model is loaded by default');
    const bot = mocker.createContact({ id: 'nemo-bot', name: 'Nemo' });
    mocker.login(bot);
    const admin = new Client(nemo.url);
    const login = await admin.post('/api/admin/login', { password: TEST_PASSWORD });
    assert.equal(login.status, 200);
    admin.csrf = field<string>(login, 'csrfToken');
    const current = await admin.get('/api/admin/keys/current');
    assert.equal(current.status, 200);
    const key = field<string>(current, 'key');

    const alice = mocker.createContact({ id: 'wxid_alice', name: 'Alice' });
    // The login reaches the bot asynchronously: the first message may need a retry.
    let verified = '';
    for (let i = 0; i < 50 && !verified; i++) {
      const reply = nextReplyTo(puppet, mocker, bot.id, alice.id, 2000).catch(() => '');
      await alice.say(key).to(bot);
      verified = await reply;
    }
    assert.match(verified, /Verified/, 'the bot accepted the key');
    const answer = nextReplyTo(puppet, mocker, bot.id, alice.id);
    await alice.say('hello, who are you?').to(bot);
    const text = await answer;
    assert.ok(text.trim().length > 0, 'a non-empty reply from the model');
    assert.notEqual(text, verified);

    const usage = await admin.get('/api/admin/usage?range=24h');
    assert.equal(usage.status, 200);
    const totals = field<{ messages: number; activeUsers: number; tokensOut: number }>(usage, 'totals');
    assert.equal(totals.messages, 2, 'the key and the message');
    assert.equal(totals.activeUsers, 1);
    assert.ok(totals.tokensOut > 0, 'the reply was generated');
    assert.ok(!logLines.some((l) => l.includes(key)), 'the key is never logged');
  } finally {
    await nemo.stop('test');
    const store = await new Store({ url: TEST_REDIS_URL, prefix }).open();
    await deleteByPrefix(store);
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});
