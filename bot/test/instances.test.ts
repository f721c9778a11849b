// Several bot instances on one Redis: each BOT_NAME has its own login state and QR code, the panel
// lists them all, and a second process with the same name is refused (a lease on the name) instead
// of overwriting the first one's state. Real Wechaty bots on the mock puppet, real Redis; each
// "process" has its own Redis connection on the same prefix.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { mock, PuppetMock } from 'wechaty-puppet-mock';
import { coreSchema } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { KeyService } from '../../core/keys/key-service.js';
import { silentLogger } from '../../core/logger.js';
import { Store } from '../../core/redis.js';
import { openTestStore, TEST_REDIS_URL } from '../../core/testing.js';
import { UsageRecorder } from '../../core/usage/usage-recorder.js';
import { TrivialGenerator } from '../bench/trivial-generator.js';
import { defaultBotConfig, loadBotConfig } from '../config.js';
import { BotNameInUseError, InstanceLease } from '../instance-lease.js';
import { createChat, startBots } from '../launch.js';
import { botLeaseKey, getLoginState, listBotInstances, setLoginState } from '../login-state.js';
import { WechatyChatBot } from '../wechaty-bot.js';

const core = parseEnv(coreSchema, {});

/** A bot as one process would run it: its own connection, its own mock WeChat account. */
async function botProcess(prefix: string, name: string, opts: { lease?: InstanceLease } = {}) {
  const store = await new Store({ url: TEST_REDIS_URL, prefix }).open();
  const keys = new KeyService(store, core);
  const config = defaultBotConfig({ BOT_NAME: name });
  const { session } = createChat({
    store, keys, usage: new UsageRecorder(store, core), generator: new TrivialGenerator(), coreConfig: core, botConfig: config, logger: silentLogger,
  });
  const mocker = new mock.Mocker();
  const bot = new WechatyChatBot({ store, session, config, puppet: new PuppetMock({ mocker }), lease: opts.lease?.botName === name ? opts.lease : undefined });
  return {
    store, bot, mocker,
    async login(id: string, nick: string) {
      const loggedIn = new Promise<void>((r) => bot.wechaty.once('login', () => r()));
      mocker.login(mocker.createContact({ id, name: nick }));
      await loggedIn;
      // The state is written right after the login event.
      for (let i = 0; i < 100 && (await getLoginState(store, name)).state !== 'logged-in'; i++) await new Promise((r) => setTimeout(r, 10));
    },
    async close() {
      await bot.stop(0);
      await keys.stop();
      await store.close();
    },
  };
}

test('BOT_NAME: default "main"; only letters, digits, - and _', () => {
  assert.equal(defaultBotConfig().BOT_NAME, 'main');
  assert.equal(loadBotConfig({ BOT_NAME: 'sales-2' }).BOT_NAME, 'sales-2');
  assert.throws(() => loadBotConfig({ BOT_NAME: 'two words' }), /BOT_NAME/);
  assert.throws(() => loadBotConfig({ BOT_NAME: 'x'.repeat(33) }), /BOT_NAME/);
});

test('two bots with different names (two WeChat accounts): separate login states, both listed', async () => {
  const root = await openTestStore('instances');
  const a = await botProcess(root.prefix, 'main');
  const b = await botProcess(root.prefix, 'sales');
  try {
    await a.bot.start();
    await b.bot.start();
    await a.login('wx-main', 'Nemo');
    await b.login('wx-sales', 'Sales desk');
    assert.equal((await getLoginState(root, 'main')).user?.name, 'Nemo');
    assert.equal((await getLoginState(root, 'sales')).user?.name, 'Sales desk');
    const listed = await listBotInstances(root);
    assert.deepEqual(listed.map((i) => [i.name, i.running, i.state, i.user?.name, i.pid]), [
      ['main', true, 'logged-in', 'Nemo', process.pid],
      ['sales', true, 'logged-in', 'Sales desk', process.pid],
    ]);
    await b.bot.stop(0);
    const after = await listBotInstances(root);
    assert.deepEqual(after.map((i) => [i.name, i.running, i.state, i.detail]), [
      ['main', true, 'logged-in', undefined],
      ['sales', false, 'logged-out', 'stopped'],
    ]);
    const ttl = await root.redis.pttl(root.key('bot', 'login', 'sales'));
    assert.ok(ttl > 0, 'a stopped bot\'s state is forgotten after a while');
    // Gone from the index once its record has expired.
    await root.redis.del(root.key('bot', 'login', 'sales'));
    assert.deepEqual((await listBotInstances(root)).map((i) => i.name), ['main']);
  } finally {
    await a.close();
    await b.close();
    await root.cleanup();
  }
});

test('a second process with the same BOT_NAME is refused and leaves the first one\'s state and QR code alone', async () => {
  const root = await openTestStore('same-name');
  const first = await botProcess(root.prefix, 'main');
  const second = await botProcess(root.prefix, 'main');
  try {
    await first.bot.start();
    await first.login('wx-main', 'Nemo');
    const before = await getLoginState(root, 'main');
    await assert.rejects(second.bot.start(), (err: unknown) => {
      assert.ok(err instanceof BotNameInUseError);
      assert.match(err.message, new RegExp(`another WeChat bot named "main" is running \\(pid ${process.pid} on `));
      assert.match(err.message, /BOT_NAME/);
      return true;
    });
    await second.bot.stop(0);
    assert.deepEqual(await getLoginState(root, 'main'), before, 'the refused process wrote nothing');
    assert.equal((await listBotInstances(root))[0].running, true);
    // Once the first one stops, the name is free again.
    await first.bot.stop(0);
    assert.equal(await root.redis.exists(botLeaseKey(root, 'main')), 0, 'released at stop');
    await second.bot.start();
    assert.equal((await getLoginState(root, 'main')).detail, 'starting');
    assert.equal((await listBotInstances(root))[0].running, true);
  } finally {
    await first.close();
    await second.close();
    await root.cleanup();
  }
});

test('a crashed process holds its name only until the lease expires', async () => {
  const root = await openTestStore('crashed');
  const proc = await botProcess(root.prefix, 'main');
  try {
    // What a killed process leaves behind: a lease nobody renews.
    await root.redis.set(botLeaseKey(root, 'main'), JSON.stringify({ token: 'dead', host: 'old-host', pid: 4242, startedAt: new Date().toISOString() }), 'PX', 300);
    await assert.rejects(proc.bot.start(), /pid 4242 on old-host/);
    assert.equal((await listBotInstances(root)).length, 0, 'nothing written by the refused start');
    await new Promise((r) => setTimeout(r, 400));
    await proc.bot.start();
    assert.equal((await listBotInstances(root))[0].pid, process.pid);
  } finally {
    await proc.close();
    await root.cleanup();
  }
});

test('a bot whose name was taken over (Redis away longer than the lease) stops and writes nothing more', async () => {
  const root = await openTestStore('lost');
  const lease = new InstanceLease(root, 'main', { ttlMs: 300, onLost: () => void proc.bot.stop(0) });
  const proc = await botProcess(root.prefix, 'main', { lease });
  try {
    await proc.bot.start();
    await proc.login('wx-main', 'Nemo');
    // Renewal keeps it alive past its TTL.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(lease.held, true);
    assert.ok((await root.redis.pttl(botLeaseKey(root, 'main'))) > 0);
    // Another process took the name meanwhile and wrote its own state.
    await root.redis.set(botLeaseKey(root, 'main'), JSON.stringify({ token: 'other', host: 'h2', pid: 7, startedAt: new Date().toISOString() }), 'PX', 60_000);
    const theirs = await setLoginState(root, { state: 'waiting-for-scan', qrcode: 'https://login.weixin.qq.com/l/theirs' }, 'main');
    for (let i = 0; i < 100 && lease.held; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(lease.held, false, 'the renewal noticed');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await getLoginState(root, 'main'), theirs, 'the stopping bot did not overwrite the new holder\'s state');
    assert.match((await root.redis.get(botLeaseKey(root, 'main'))) ?? '', /"token":"other"/, 'nor release its lease');
  } finally {
    await proc.close();
    await root.cleanup();
  }
});

test('startBots with a name in use: the bot is not started, the error says why, the platform keeps running', async () => {
  const root = await openTestStore('launch-name');
  const holder = new InstanceLease(root, 'main');
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } }));
  const keys = new KeyService(root, core);
  try {
    await holder.acquire();
    const theirs = await setLoginState(root, { state: 'logged-in', user: { id: 'wx-main', name: 'Nemo' } }, 'main');
    const botConfig = defaultBotConfig({ BOT_ENABLED: true, BOT_KEEP_SESSION: false });
    const deps = { store: root, keys, usage: new UsageRecorder(root, core), generator: new TrivialGenerator(), coreConfig: core, botConfig, logger };
    const { session } = createChat(deps);
    const bots = await startBots({ ...deps, session, printQrCode: false, puppet: new PuppetMock({ mocker: new mock.Mocker() }) });
    assert.equal(bots.chatBot, null);
    assert.ok(lines.some((l) => /its name is in use/.test(l) && /another WeChat bot named \\"main\\" is running/.test(l)), lines.join(''));
    assert.deepEqual(await getLoginState(root, 'main'), theirs);
    await bots.stop();
    // The chat itself (web chat) still works.
    assert.equal((await session.handle({ channel: 'web', userId: 'web:x', text: (await keys.current()).key })).kind, 'verified');
  } finally {
    await holder.release();
    await keys.stop();
    await root.cleanup();
  }
});

test('after a crash, a restarted process waits for the dead one\'s lease and takes the bot over within about one lease period', async () => {
  const root = await openTestStore('takeover');
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } }));
  const keys = new KeyService(root, core);
  const leaseMs = 1000;
  let bots: Awaited<ReturnType<typeof startBots>> | null = null;
  try {
    // What a killed process leaves behind: its logged-in state and a lease nobody renews.
    await setLoginState(root, { state: 'logged-in', user: { id: 'wx-main', name: 'Nemo' } }, 'main');
    await root.redis.set(botLeaseKey(root, 'main'), JSON.stringify({ token: 'dead', host: 'old-host', pid: 4242, startedAt: new Date().toISOString() }), 'PX', leaseMs);
    const crashedAt = Date.now();
    const botConfig = defaultBotConfig({ BOT_ENABLED: true, BOT_KEEP_SESSION: false, BOT_LEASE_SECONDS: leaseMs / 1000 });
    const deps = { store: root, keys, usage: new UsageRecorder(root, core), generator: new TrivialGenerator(), coreConfig: core, botConfig, logger };
    const { session } = createChat(deps);
    bots = await startBots({ ...deps, session, printQrCode: false, puppet: new PuppetMock({ mocker: new mock.Mocker() }) });
    assert.equal(bots.chatBot, null, 'not started while the name is held');
    assert.ok(lines.some((l) => /waiting for the name to be released/.test(l) && /"level":40/.test(l)), `a warning, not an error: ${lines.join('')}`);
    const listed = await listBotInstances(root);
    assert.equal(listed[0].waiting?.pid, process.pid, 'the panel and /readyz see the waiting process');
    // Taken over once the dead lease runs out; the bound is generous for a loaded machine.
    for (let i = 0; i < 200 && !bots.chatBot; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(bots.chatBot, 'the bot started');
    const tookMs = Date.now() - crashedAt;
    assert.ok(tookMs >= leaseMs - 50, `not before the lease ran out (${tookMs} ms)`);
    const now = await listBotInstances(root);
    assert.deepEqual(now.map((i) => [i.running, i.pid, i.waiting]), [[true, process.pid, undefined]]);
    assert.ok(lines.some((l) => /the bot name was released: starting the WeChat bot/.test(l)));
  } finally {
    await bots?.stop();
    await keys.stop();
    await root.cleanup();
  }
});

test('a process waiting for a live bot\'s name stops waiting cleanly', async () => {
  const root = await openTestStore('waiting-stop');
  const holder = new InstanceLease(root, 'main', { ttlMs: 600 });
  const keys = new KeyService(root, core);
  try {
    await holder.acquire();
    const botConfig = defaultBotConfig({ BOT_ENABLED: true, BOT_KEEP_SESSION: false, BOT_LEASE_SECONDS: 1 });
    const deps = { store: root, keys, usage: new UsageRecorder(root, core), generator: new TrivialGenerator(), coreConfig: core, botConfig, logger: silentLogger };
    const { session } = createChat(deps);
    const bots = await startBots({ ...deps, session, printQrCode: false, puppet: new PuppetMock({ mocker: new mock.Mocker() }) });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(bots.chatBot, null, 'the live holder keeps its name');
    await bots.stop();
    assert.equal(await root.redis.exists(root.key('bot', 'waiting', 'main')), 0, 'no waiting marker left');
    assert.equal((await listBotInstances(root))[0].pid, process.pid);
  } finally {
    await holder.release();
    await keys.stop();
    await root.cleanup();
  }
});
