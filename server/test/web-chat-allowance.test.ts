// Sending the key in the web chat costs nothing of the message allowance (BOT_RATE_LIMIT a
// minute): a visitor who just entered the key can still send that many messages.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TrivialGenerator } from '../../bot/bench/trivial-generator.js';
import { field, startHarness, type Harness } from './harness.js';

let h: Harness;
before(async () => {
  h = await startHarness({ generator: new TrivialGenerator(), bot: { BOT_RATE_LIMIT: 2, BOT_RATE_WINDOW_SECONDS: 60 } });
});
after(() => h.close());

test('web chat: the key check does not use up the message allowance', async () => {
  const c = h.client();
  c.csrf = field(await c.get('/api/chat/session'), 'csrfToken');
  const v = await c.post('/api/chat/verify', { key: (await h.keys.current()).key });
  assert.equal(v.status, 200, v.text);
  for (const text of ['first message', 'second message']) {
    const r = await c.post('/api/chat/messages', { text });
    assert.match(r.text, /event: done/, `${text} is answered: ${r.text}`);
  }
  const third = await c.post('/api/chat/messages', { text: 'third message' });
  assert.match(third.text, /"kind":"rate-limited"/, 'the allowance is 2 a minute');
});
