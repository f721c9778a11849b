// Redis stopped and restarted in the middle of a conversation: the chatter gets "try again
// shortly", nothing crashes, and the bot resumes once Redis is back.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Store } from '../../core/redis.js';
import { TempRedis } from '../../core/testing.js';
import { BotHarness } from './harness.js';
import { testModel } from './model-fixture.js';

let model: Awaited<ReturnType<typeof testModel>>;
before(async () => {
  model = await testModel();
});
after(async () => {
  await model.close();
});

test('Redis stopped and restarted mid-conversation: polite replies meanwhile, then the bot resumes', async () => {
  const server = await TempRedis.start();
  const store = new Store({ url: server.url, prefix: 'bot-outage:', commandTimeoutMs: 1000 });
  await store.open();
  const h = await BotHarness.start({ ...model, store });
  try {
    const u = h.user('u', 'U');
    assert.equal((await h.say(u, (await h.keys.current()).key)).reply?.kind, 'verified');
    assert.equal((await h.say(u, 'first message')).reply?.kind, 'reply');

    await server.stop();
    const down = await h.say(u, 'are you there?');
    assert.equal(down.reply?.kind, 'unavailable');
    assert.match(down.sent[0], /try again shortly/);
    const downAgain = await h.say(u, '#status');
    assert.equal(downAgain.reply?.kind, 'unavailable');
    // Non-text messages and groups during the outage do not crash either.
    const room = h.room('G', [u]);
    assert.equal((await h.sayInRoom(u, room, '@Nemo\u2005hello', [h.botContact])).reply?.kind, 'unavailable');

    await server.start();
    const deadline = Date.now() + 10_000;
    while (!store.ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(store.ready, 'reconnected');
    // This Redis kept nothing (no persistence): the bot asks for the key again, then chats.
    const back = await h.say(u, 'hello again');
    assert.equal(back.reply?.kind, 'how-to-get-key');
    assert.equal((await h.say(u, (await h.keys.current()).key)).reply?.kind, 'verified');
    assert.equal((await h.say(u, 'and on we go')).reply?.kind, 'reply');
  } finally {
    await h.close();
    await store.close();
    await server.stop();
  }
});
