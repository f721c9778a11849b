// npm start's bot wiring: a puppet that is missing or fails does not take the platform down; the
// panel sees why the bot is logged out.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { coreSchema } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { KeyService } from '../../core/keys/key-service.js';
import { silentLogger } from '../../core/logger.js';
import { openTestStore } from '../../core/testing.js';
import { UsageRecorder } from '../../core/usage/usage-recorder.js';
import { defaultBotConfig } from '../config.js';
import { mock, PuppetMock } from 'wechaty-puppet-mock';
import { createChat, privateSessionFile, startBots } from '../launch.js';
import { WechatyChatBot } from '../wechaty-bot.js';
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

test('the WeChat session file lives in a private DATA_DIR/wechaty directory', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'nemo-data-'));
  const store = await openTestStore('session');
  const model = await testModel();
  const core = parseEnv(coreSchema, {});
  const keys = new KeyService(store, core);
  try {
    const file = await privateSessionFile(dataDir, 'chat-bot');
    assert.equal(file, path.join(dataDir, 'wechaty', 'chat-bot'));
    assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);
    const botConfig = defaultBotConfig();
    const { session } = createChat({ store, keys, usage: new UsageRecorder(store, core), generator: model.generator, coreConfig: core, botConfig, logger: silentLogger });
    const mocker = new mock.Mocker();
    const bot = new WechatyChatBot({ store, session, config: botConfig, puppet: new PuppetMock({ mocker }), sessionFile: file });
    const loggedIn = new Promise<void>((r) => bot.wechaty.once('login', () => r()));
    await bot.start();
    mocker.login(mocker.createContact({ id: 'bot', name: 'Nemo' }));
    await loggedIn;
    // What a real puppet does at login (the mock saves nothing itself): store session data.
    const memory = (bot.wechaty as unknown as { memory: { set(k: string, v: unknown): Promise<void>; save(): Promise<void> } }).memory;
    await memory.set('probe', { saved: true });
    await memory.save();
    await bot.stop();
    assert.deepEqual(await readdir(path.dirname(file)), ['chat-bot.memory-card.json'], 'Wechaty keeps its session there');
  } finally {
    await keys.stop();
    await model.close();
    await store.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('startBots does not hold up start-up for a puppet that takes long to start', async () => {
  const store = await openTestStore('slow-puppet');
  const model = await testModel();
  const core = parseEnv(coreSchema, {});
  const keys = new KeyService(store, core);
  // The puppet finishes starting only when the test says so: no deadline to guess.
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let puppetStarted = false;
  class SlowPuppet extends PuppetMock {
    override async onStart(): Promise<void> {
      await released;
      await super.onStart();
      puppetStarted = true;
    }
  }
  // Only so that a startBots() wrongly waiting for the puppet returns (and fails below).
  const safety = setTimeout(release, 10_000);
  let bots: Awaited<ReturnType<typeof startBots>> | undefined;
  try {
    const botConfig = defaultBotConfig({ BOT_ENABLED: true, BOT_KEEP_SESSION: false });
    const deps = { store, keys, usage: new UsageRecorder(store, core), generator: model.generator, coreConfig: core, botConfig, logger: silentLogger };
    const { session } = createChat(deps);
    bots = await startBots({ ...deps, session, printQrCode: false, startTimeoutMs: 200, puppet: new SlowPuppet({ mocker: new mock.Mocker() }) });
    assert.equal(puppetStarted, false, 'returned before the puppet finished starting');
    assert.ok(bots.chatBot);
    release();
    while (!puppetStarted) await new Promise((r) => setTimeout(r, 20));
  } finally {
    clearTimeout(safety);
    await bots?.stop();
    await keys.stop();
    await model.close();
    await store.cleanup();
  }
});
