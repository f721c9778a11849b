// Smoke test of the model `npm start` serves by default: loadModel() (what startNemo() calls) with
// no MODEL_DIR loads model/shipped, and the chat built on it as `npm start` builds it (model chat
// format, the bot's default sampling) writes a non-empty reply.
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { createChat } from '../../bot/launch.js';
import { defaultBotConfig } from '../../bot/config.js';
import { coreSchema } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { KeyService } from '../../core/keys/key-service.js';
import { silentLogger } from '../../core/logger.js';
import { openTestStore } from '../../core/testing.js';
import { UsageRecorder } from '../../core/usage/usage-recorder.js';
import { loadServerConfig } from '../config.js';
import { loadModel } from '../main.js';
import { createMetrics } from '../metrics.js';

const SHIPPED = fileURLToPath(new URL('../../model/shipped/', import.meta.url));

test('the shipped model loads as npm start loads it and replies to a chatter', async () => {
  const loaded = await loadModel(loadServerConfig({}), createMetrics({ defaultMetrics: false }), silentLogger);
  assert.ok(loaded, 'model/shipped loads');
  assert.equal(loaded.name, 'shipped');
  const { generator } = loaded;
  const store = await openTestStore('shipped');
  const core = parseEnv(coreSchema, {});
  const keys = new KeyService(store, core);
  try {
    assert.equal(path.resolve(generator.info().path), path.resolve(SHIPPED));
    const { session } = createChat({ store, keys, usage: new UsageRecorder(store, core), generator, coreConfig: core, botConfig: defaultBotConfig(), logger: silentLogger });
    const chat = (text: string) => session.handle({ channel: 'wechat', userId: 'smoke', text });
    assert.equal((await chat((await keys.current()).key)).kind, 'verified');
    const reply = await chat('hello, how are you?');
    assert.equal(reply.kind, 'reply');
    assert.ok((reply.generation?.completionTokens ?? 0) > 0);
    assert.ok(reply.parts.join('').trim().length > 0, `a non-empty reply (got ${JSON.stringify(reply.parts)})`);
  } finally {
    await keys.stop();
    await generator.close();
    await store.cleanup();
  }
});
