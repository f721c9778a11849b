import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../core/env.js';
import { loadBotConfig } from '../config.js';

test('bot settings: defaults, lists, and one clear error naming each bad variable', () => {
  const c = loadBotConfig({});
  assert.equal(c.BOT_ENABLED, true);
  assert.equal(c.BOT_RATE_LIMIT, 6);
  assert.equal(c.BOT_DAILY_QUOTA, 100);
  assert.equal(c.WECHATY_PUPPET, 'wechaty-puppet-wechat4u');
  assert.deepEqual(loadBotConfig({ BOT_GROUPS: 'Family, 工作群 ,' }).BOT_GROUPS, ['Family', '工作群']);
  assert.throws(() => loadBotConfig({ BOT_RATE_LIMIT: 'six', BOT_QUOTA_TZ: 'Mars/Olympus' }), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /BOT_RATE_LIMIT: expected an integer/);
    assert.match(err.message, /BOT_QUOTA_TZ: expected an IANA time zone/);
    return true;
  });
  assert.throws(() => loadBotConfig({ BOT_ENABLED: 'maybe' }), /BOT_ENABLED: expected true or false/);
});
