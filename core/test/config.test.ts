import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCoreConfig } from '../config.js';
import { ConfigError } from '../env.js';

test('defaults are valid and match the documentation', () => {
  const c = loadCoreConfig({});
  assert.equal(c.KEY_LENGTH, 6);
  assert.equal(c.KEY_ALPHABET, '0123456789');
  assert.equal(c.KEY_ROTATE_CRON, '0 0 * * *');
  assert.equal(c.KEY_ROTATE_TZ, 'Asia/Shanghai');
  assert.equal(c.KEY_GRACE_MINUTES, 10);
  assert.equal(c.KEY_MAX_ATTEMPTS, 5);
  assert.equal(c.KEY_LOCKOUT_MINUTES, 15);
  assert.equal(c.USAGE_RETENTION_DAYS, 90);
  assert.equal(c.REDIS_PREFIX, 'nemo:');
});

test('a wrong value names the variable and what is expected in one line', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: 'eighty' }, /^Invalid configuration: PORT: expected an integer.*"eighty"/],
    [{ KEY_ROTATE_CRON: 'every day' }, /KEY_ROTATE_CRON: expected a valid cron expression/],
    [{ KEY_ROTATE_TZ: 'Mars/Olympus' }, /KEY_ROTATE_TZ: expected an IANA time zone/],
    [{ REDIS_URL: 'http://x' }, /REDIS_URL: expected a redis:\/\//],
    [{ KEY_LENGTH: '2' }, /KEY_LENGTH: expected an integer ≥ 4/],
    [{ KEY_ALPHABET: 'aa' }, /KEY_ALPHABET: expected at least 2 distinct/],
  ];
  for (const [env, re] of cases) {
    assert.throws(() => loadCoreConfig(env), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, re);
      assert.ok(!err.message.includes('\n'), 'one line');
      return true;
    });
  }
});

test('empty values fall back to defaults; weekly rotation is one setting', () => {
  const c = loadCoreConfig({ PORT: '', KEY_ROTATE_CRON: '0 0 * * 1' });
  assert.equal(c.PORT, 3000);
  assert.equal(c.KEY_ROTATE_CRON, '0 0 * * 1');
});
