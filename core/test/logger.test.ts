import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { partLogger } from '../logger.js';
import { duplicateKeys } from './json-keys.js';

function capture() {
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, new Writable({ write: (c, _e, cb) => { lines.push(String(c).trim()); cb(); } }));
  return { log, lines };
}

test('the duplicate-key finder sees a repeated key and nothing else', () => {
  assert.deepEqual(duplicateKeys('{"part":"http","msg":"x","part":"admin"}'), ['part']);
  assert.deepEqual(duplicateKeys('{"a":{"part":1},"part":"x:\\"part\\":","b":[{"a":1},{"a":2}]}'), []);
});

test('nested part loggers write one "part" key with the joined name', () => {
  const { log, lines } = capture();
  const http = partLogger(log, 'http');
  const admin = partLogger(http, 'admin');
  partLogger(admin, 'login').info('deep');
  admin.info({ detail: 1 }, 'nested');
  http.info('top');
  partLogger(log.child({ bot: 'main' }), 'chat').warn('with other bindings');
  for (const line of lines) assert.deepEqual(duplicateKeys(line), [], line);
  assert.deepEqual(lines.map((l) => (JSON.parse(l) as { part: string }).part), ['http/admin/login', 'http/admin', 'http', 'chat']);
  assert.equal((JSON.parse(lines[3]) as { bot: string }).bot, 'main', 'bindings of the parent stay');
});

test('under a part bound without partLogger, the sub-part goes under its own key rather than repeating "part"', () => {
  const { log, lines } = capture();
  partLogger(log.child({ part: 'legacy' }), 'inner').info('x');
  assert.deepEqual(duplicateKeys(lines[0]), []);
  assert.deepEqual([JSON.parse(lines[0]).part, JSON.parse(lines[0]).subpart], ['legacy', 'inner']);
});
