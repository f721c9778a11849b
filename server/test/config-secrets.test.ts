import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadBotConfig } from '../../bot/config.js';
import { loadCoreConfig } from '../../core/config.js';
import { ConfigError } from '../../core/env.js';
import { loadServerConfig } from '../config.js';

// Every secret-bearing variable with a value its schema rejects: the error names the variable and
// the rule, and never contains the value (nor, for a URL, its password).
const cases: { env: Record<string, string>; load: (env: NodeJS.ProcessEnv) => unknown; secret: string; names: RegExp }[] = [
  { env: { ADMIN_PASSWORD: 'adminpass' }, load: loadServerConfig, secret: 'adminpass', names: /ADMIN_PASSWORD: expected at least 10 characters \(got a hidden value of 9 characters\)/ },
  { env: { ADMIN_PASSWORD_HASH: 'hunter2-is-my-password' }, load: loadServerConfig, secret: 'hunter2-is-my-password', names: /ADMIN_PASSWORD_HASH: expected the output/ },
  { env: { METRICS_TOKEN: 'tok-s3cret' }, load: loadServerConfig, secret: 'tok-s3cret', names: /METRICS_TOKEN: expected at least 16 characters/ },
  { env: { REDIS_URL: 'http://nemo:pw-s3cret@db:6379' }, load: loadCoreConfig, secret: 'pw-s3cret', names: /REDIS_URL: expected a redis:\/\/.*\[redacted\]@db/ },
  { env: { WECHATY_PUPPET_OA_WEBHOOK_PROXY_URL: 'https://nemo:pw-s3cret@bad host' }, load: loadBotConfig, secret: 'pw-s3cret', names: /WECHATY_PUPPET_OA_WEBHOOK_PROXY_URL/ },
];

for (const { env, load, secret, names } of cases) {
  test(`a rejected ${Object.keys(env)[0]} is named but its value is not shown`, () => {
    assert.throws(() => load(env), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, names);
      assert.ok(!err.message.includes(secret), `the secret is not in: ${err.message}`);
      return true;
    });
  });
}

test('a rejected ordinary value is still shown, so the operator sees the typo', () => {
  assert.throws(() => loadCoreConfig({ PORT: 'eighty' }), /PORT: expected an integer.*"eighty"/);
});
