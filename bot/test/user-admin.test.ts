// The admin panel's user actions act on the very keys the bot uses: a banned user is refused by
// the bot, unbanned they chat again; a quota reset and clearing memory take effect at once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { UserAdmin } from '../user-admin.js';
import { BotHarness } from './harness.js';
import { testModel, type TestModel } from './model-fixture.js';

let model: TestModel;
before(async () => {
  model = await testModel();
});
after(async () => {
  await model.close();
});

test('ban/unban, reset quota and clear memory through UserAdmin change what the bot does', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_DAILY_QUOTA: 2, BOT_MAX_NEW_TOKENS: 4 } });
  const admin = new UserAdmin(h.store, h.config);
  try {
    const u = h.user('u', 'U');
    assert.equal((await h.say(u, (await h.keys.current()).key)).reply?.kind, 'verified');
    assert.equal((await h.say(u, 'one')).reply?.kind, 'reply');
    assert.equal((await h.say(u, 'two')).reply?.kind, 'reply');
    assert.equal((await h.say(u, 'three')).reply?.kind, 'quota');

    let state = await admin.state('u');
    assert.equal(state.quota.usedToday, 2);
    assert.equal(state.quota.remainingToday, 0);
    assert.equal(state.memoryTurns, 2);
    assert.equal(state.banned, null);

    await admin.resetQuota('u');
    assert.equal((await h.say(u, 'four')).reply?.kind, 'reply');

    assert.equal(await admin.clearMemory('u'), true);
    const fresh = await h.say(u, '#status');
    assert.match(fresh.sent[0], /0 turns remembered/);

    const entry = await admin.ban('u', 'admin:alice', 'spam');
    assert.equal(entry.reason, 'spam');
    const banned = await h.say(u, 'hello?');
    assert.equal(banned.reply?.kind, 'banned');
    assert.match(banned.sent[0], /suspended/);
    assert.deepEqual((await admin.listBanned()).map((b) => [b.userId, b.by]), [['u', 'admin:alice']]);
    assert.equal(await admin.unban('u'), true);
    assert.equal(await admin.unban('u'), false);
    assert.equal((await h.say(u, 'back again')).reply?.kind, 'reply');
    state = await admin.state('u');
    assert.equal(state.banned, null);
  } finally {
    await h.close();
  }
});
