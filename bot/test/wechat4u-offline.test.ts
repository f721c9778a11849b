// The default puppet (wechat4u) with no route to WeChat: it waits between tries (exponential
// backoff) instead of retrying hundreds of times a second, logs one line per try with when the
// next is, the panel's state keeps "since" at the first failure, and stopping it logs no error.
// WeChat is made unreachable by an HTTPS proxy on a closed port.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { coreSchema } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { KeyService } from '../../core/keys/key-service.js';
import { openTestStore } from '../../core/testing.js';
import { UsageRecorder } from '../../core/usage/usage-recorder.js';
import { defaultBotConfig } from '../config.js';
import { createChat, startBots } from '../launch.js';
import { getLoginState, type LoginState } from '../login-state.js';
import { testModel } from './model-fixture.js';

/** A proxy address nothing listens on: every request fails at once with ECONNREFUSED. */
async function refusingProxy(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return `http://127.0.0.1:${port}`;
}

test('wechat4u offline: backoff between tries, one log line per try, a steady "since", a quiet stop', async () => {
  const proxy = await refusingProxy();
  process.env.HTTPS_PROXY = proxy;
  process.env.HTTP_PROXY = proxy;
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (c, _e, cb) => { lines.push(JSON.parse(String(c)) as Record<string, unknown>); cb(); } }));
  const store = await openTestStore('w4u-offline');
  const model = await testModel();
  const core = parseEnv(coreSchema, {});
  const keys = new KeyService(store, core);
  try {
    const botConfig = defaultBotConfig({ BOT_ENABLED: true, BOT_KEEP_SESSION: false });
    const deps = { store, keys, usage: new UsageRecorder(store, core), generator: model.generator, coreConfig: core, botConfig, logger };
    const chat = createChat(deps);
    const started = Date.now();
    const bots = await startBots({ ...deps, session: chat.session, printQrCode: false, backoff: { baseMs: 300, maxMs: 1200, jitter: 0.2 } });
    const states: LoginState[] = [];
    while (Date.now() - started < 30_000) {
      const s = await getLoginState(store);
      if (s.unreachable && !states.some((x) => x.unreachable?.attempt === s.unreachable?.attempt)) states.push(s);
      if ((s.unreachable?.attempt ?? 0) >= 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const elapsed = Date.now() - started;
    const last = states.at(-1);
    assert.ok(last?.unreachable && last.unreachable.attempt >= 3, `three failed tries are recorded (got ${JSON.stringify(last)})`);
    assert.equal(last.detail, 'cannot reach WeChat');
    assert.ok(states.every((s) => s.since === states[0].since), 'since stays at the first failure');
    assert.ok(Date.parse(last.unreachable.nextTryAt) > Date.parse(last.since), 'the next try is in the future');
    // 2nd and 3rd try wait ≥ 240 ms and ≥ 480 ms: without backoff, hundreds of tries happen meanwhile.
    assert.ok(elapsed >= 700, `the tries waited (${elapsed} ms for 3)`);
    const retries = lines.filter((l) => /^cannot reach WeChat; next try in \d+ s$/.test(String(l.msg)));
    assert.ok(retries.length >= 3 && retries.length <= 4, `one line per try (${retries.length})`);
    assert.match(String(retries[0].err), /ECONNREFUSED/);
    assert.equal(lines.filter((l) => l.msg === 'wechaty puppet error').length, 0, 'no error flood');

    await bots.stop();
    await new Promise((r) => setTimeout(r, 500));
    const errors = lines.filter((l) => Number(l.level) >= 50);
    assert.deepEqual(errors.map((l) => `${String(l.msg)} ${String(l.err)}`), [], 'a clean stop logs no error');
    assert.equal((await getLoginState(store)).detail, 'stopped');
  } finally {
    delete process.env.HTTPS_PROXY;
    delete process.env.HTTP_PROXY;
    await keys.stop();
    await model.close();
    await store.cleanup();
  }
});
