// npm start's bot wiring: a puppet that is missing or fails does not take the platform down; the
// panel sees why the bot is logged out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coreSchema } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { KeyService } from '../../core/keys/key-service.js';
import { silentLogger } from '../../core/logger.js';
import { openTestStore } from '../../core/testing.js';
import { UsageRecorder } from '../../core/usage/usage-recorder.js';
import { defaultBotConfig } from '../config.js';
import { createChat, startBots } from '../launch.js';
import { getLoginState } from '../login-state.js';
import { testModel } from './model-fixture.js';

test('startBots: a missing puppet or official-account package is reported, the rest keeps running', async () => {
  const store = await openTestStore('launch');
  const model = await testModel();
  const core = parseEnv(coreSchema, {});
  const keys = new KeyService(store, core);
  try {
    const botConfig = defaultBotConfig({
      BOT_ENABLED: true, WECHATY_PUPPET: 'wechaty-puppet-not-installed-anywhere',
      WECHATY_PUPPET_OA_APP_ID: 'id', WECHATY_PUPPET_OA_APP_SECRET: 'secret', WECHATY_PUPPET_OA_TOKEN: 'token',
    });
    const deps = { store, keys, usage: new UsageRecorder(store, core), generator: model.generator, coreConfig: core, botConfig, logger: silentLogger };
    const chat = createChat(deps);
    const bots = await startBots({ ...deps, session: chat.session, printQrCode: false });
    assert.equal(bots.chatBot, null);
    const oaInstalled = await import('wechaty-puppet-official-account' as string).then(() => true, () => false);
    if (!oaInstalled) assert.equal(bots.keyResponder, null, 'wechaty-puppet-official-account is not installed here');
    const state = await getLoginState(store);
    assert.equal(state.state, 'logged-out');
    assert.match(state.detail ?? '', /npm install wechaty-puppet-not-installed-anywhere/);
    await bots.stop();
    // The shared chat still works (as the web chat uses it).
    const reply = await chat.session.handle({ channel: 'web', userId: 'web:abc', text: (await keys.current()).key });
    assert.equal(reply.kind, 'verified');
  } finally {
    await keys.stop();
    await model.close();
    await store.cleanup();
  }
});
