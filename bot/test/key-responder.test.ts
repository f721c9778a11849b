// The official account's key responder, puppet-independent: driven here by the mock puppet.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mock, PuppetMock } from 'wechaty-puppet-mock';
import { coreSchema } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { KeyService } from '../../core/keys/key-service.js';
import { openTestStore } from '../../core/testing.js';
import { defaultBotConfig } from '../config.js';
import { asksForKey, keyAnswer, KeyResponderBot } from '../key-responder.js';
import { createOfficialAccountPuppet, loadPuppetClass, officialAccountConfigured, PuppetNotInstalledError } from '../puppet.js';

test('asksForKey: key / 密钥 in any case, width or punctuation; nothing else', () => {
  for (const t of ['key', 'KEY', ' Key。', 'ｋｅｙ', '密钥', '密钥！', '"key"', '密鑰']) assert.equal(asksForKey(t), true, t);
  for (const t of ['keys', 'the key', 'monkey', '密钥是什么', '', '😀', 'key key']) assert.equal(asksForKey(t), false, t);
});

test('keyAnswer names the key and when it changes, in the schedule time zone', () => {
  const text = keyAnswer({ key: '246810', expiresAt: '2026-01-01T16:10:00.000Z', nextRotationAt: '2026-01-01T16:00:00.000Z' }, 'Asia/Shanghai');
  assert.match(text, /246810/);
  assert.match(text, /2026-01-02 00:00 \(Asia\/Shanghai\)/);
});

test('the responder answers key requests on the account with the current key and ignores everything else', async () => {
  const store = await openTestStore('oa');
  const keys = new KeyService(store, parseEnv(coreSchema, {}));
  const mocker = new mock.Mocker();
  const puppet = new PuppetMock({ mocker });
  const answered: string[] = [];
  const bot = new KeyResponderBot({ keys, puppet, timeZone: 'Asia/Shanghai', onAnswered: (id) => answered.push(id) });
  const outgoing: string[] = [];
  try {
    const loggedIn = new Promise<void>((r) => bot.wechaty.once('login', () => r()));
    await bot.start();
    const account = mocker.createContact({ id: 'oa', name: 'Nemo OA' });
    const fan = mocker.createContact({ id: 'fan', name: 'Fan' });
    mocker.login(account);
    await loggedIn;
    puppet.on('message', ({ messageId }) => {
      const m = mocker.MessageMock.load(messageId);
      if (m.payload.talkerId === 'oa') outgoing.push(m.payload.text ?? '');
    });
    await fan.say('hello').to(account);
    await fan.say('密钥').to(account);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(answered.length, 1);
    assert.equal(outgoing.length, 1, 'only the key request is answered');
    const cur = await keys.current();
    assert.match(outgoing[0], new RegExp(`Current access key: ${cur.key}`));
    await keys.rotate('admin');
    await fan.say('KEY').to(account);
    await new Promise((r) => setTimeout(r, 200));
    assert.match(outgoing[1], new RegExp((await keys.current()).key), 'always the current key');
  } finally {
    await bot.stop();
    await keys.stop();
    await store.cleanup();
  }
});

test('official-account puppet: only when configured, with a clear message when the package is missing', async () => {
  const none = defaultBotConfig();
  assert.equal(officialAccountConfigured(none), false);
  await assert.rejects(createOfficialAccountPuppet(none), /WECHATY_PUPPET_OA_APP_ID/);
  const configured = defaultBotConfig({ WECHATY_PUPPET_OA_APP_ID: 'id', WECHATY_PUPPET_OA_APP_SECRET: 'secret', WECHATY_PUPPET_OA_TOKEN: 'token' });
  assert.equal(officialAccountConfigured(configured), true);
  let installed = true;
  try {
    await import('wechaty-puppet-official-account' as string);
  } catch {
    installed = false;
  }
  if (!installed) {
    await assert.rejects(createOfficialAccountPuppet(configured), (err: Error) => {
      assert.ok(err instanceof PuppetNotInstalledError);
      assert.match(err.message, /npm install wechaty-puppet-official-account/);
      return true;
    });
  }
  await assert.rejects(loadPuppetClass('wechaty-puppet-does-not-exist'), /npm install wechaty-puppet-does-not-exist/);
  assert.equal(typeof (await loadPuppetClass('wechaty-puppet-mock')), 'function');
});
