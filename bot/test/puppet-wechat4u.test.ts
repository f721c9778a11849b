// The default puppet's library (wechat4u) installs a process-wide uncaughtException handler that
// only console.logs. createChatPuppet swaps it for one that logs through pino. (Own file: the
// handler then stays installed in this test process.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { defaultBotConfig } from '../config.js';
import { createChatPuppet } from '../puppet.js';

test('wechat4u: its console.log crash handler is replaced by a logged one', async () => {
  const lines: string[] = [];
  const logger = pino({ level: 'error' }, new Writable({ write: (c, _e, cb) => { lines.push(String(c)); cb(); } }));
  const before = process.listeners('uncaughtException').length;
  const puppet = await createChatPuppet(defaultBotConfig(), logger);
  assert.equal((puppet as { constructor: { name: string } }).constructor.name, 'PuppetWechat4u');
  const added = process.listeners('uncaughtException').slice(before);
  assert.equal(added.length, 1, 'exactly one handler: ours');
  assert.ok(!/console\.log/.test(String(added[0])), 'not wechat4u\'s console.log handler');
  (added[0] as (err: Error) => void)(new Error('puppet blew up'));
  assert.match(lines.join(''), /puppet blew up/);
  assert.match(lines.join(''), /kept running/);
});
