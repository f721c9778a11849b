// The web chat's per-address limit on key checks counts only well-formed wrong keys: junk from
// one address (an office or campus NAT) costs its other visitors nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TrivialGenerator } from '../../bot/bench/trivial-generator.js';
import { field, startHarness, type Client, type Harness } from './harness.js';

describe('web chat: key checks per address', () => {
  let h: Harness;
  let key: string;
  before(async () => {
    // The key check never reaches the model; any generator turns the web chat on.
    h = await startHarness({ generator: new TrivialGenerator(), bot: { BOT_RATE_LIMIT: 1000 } });
    key = (await h.keys.current()).key;
  });
  after(() => h.close());

  const visitor = async (ip: string): Promise<Client> => {
    const c = h.client({ 'X-Forwarded-For': ip });
    c.csrf = field(await c.get('/api/chat/session'), 'csrfToken');
    return c;
  };
  const wrong = () => (key === '000000' ? '111111' : '000000');

  test('40 junk inputs from one address leave the right key working there', async () => {
    const ip = '203.0.113.77';
    const c = await visitor(ip);
    const junk = ['hello', '', '   ', '12', 'what is the key?', '😀😀😀', '1234567890123'];
    for (let i = 0; i < 40; i++) {
      const r = await c.post('/api/chat/verify', { key: junk[i % junk.length] });
      assert.equal(r.status, 400, `junk ${i}: ${r.text}`);
    }
    const next = await visitor(ip);
    const ok = await next.post('/api/chat/verify', { key });
    assert.equal(ok.status, 200, ok.text);
  });

  test('30 well-formed wrong keys from one address still close it for the next visitor', async () => {
    const ip = '203.0.113.78';
    // Five wrong keys each lock a visitor out; six visitors make thirty.
    for (let v = 0; v < 6; v++) {
      const c = await visitor(ip);
      // The fifth locks the visitor out (423) and counts like the four before it.
      for (let i = 0; i < 5; i++) assert.equal((await c.post('/api/chat/verify', { key: wrong() })).status, i < 4 ? 401 : 423);
    }
    const next = await visitor(ip);
    const blocked = await next.post('/api/chat/verify', { key });
    assert.equal(blocked.status, 429);
    assert.match(field(blocked, 'error'), /Too many wrong keys from your network/);
    // Another address is unaffected.
    assert.equal((await (await visitor('203.0.113.79')).post('/api/chat/verify', { key })).status, 200);
  });
});
