// The WeChat side's hygiene through a real Wechaty bot on the mock puppet: groups and @-mentions,
// rate limit and quota, duplicates (also across two bot instances sharing Redis), stale and
// non-text messages, empty and over-long input, operator commands, login state and logouts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FileBox } from 'file-box';
import { ScanStatus, types } from 'wechaty';
import { getLoginState } from '../login-state.js';
import { BotHarness, type ContactMock } from './harness.js';
import { testModel } from './model-fixture.js';

let model: Awaited<ReturnType<typeof testModel>>;
before(async () => {
  model = await testModel();
});
after(async () => {
  await model.close();
});

async function verified(h: BotHarness, id: string, name = id): Promise<ContactMock> {
  const c = h.user(id, name);
  const r = await h.say(c, (await h.keys.current()).key);
  assert.equal(r.reply?.kind, 'verified');
  return c;
}

test('groups: answers only @-mentions (mention list or U+2005/space text), addressed to the sender', async () => {
  const h = await BotHarness.start({ ...model });
  try {
    const alice = await verified(h, 'alice', 'Alice');
    const bob = h.user('bob', 'Bob');
    const room = h.room('Friends', [alice, bob]);
    const before = h.outgoing.length;

    assert.equal((await h.sayInRoom(alice, room, 'just chatting')).result, 'not-mentioned');
    assert.equal((await h.sayInRoom(alice, room, 'mail me at x@Nemo.com')).result, 'not-mentioned');
    assert.equal(h.outgoing.length, before, 'no reply to messages not for the bot');

    let r = await h.sayInRoom(alice, room, '@Nemo\u2005how are you', [h.botContact]);
    assert.equal(r.reply?.kind, 'reply');
    assert.ok(r.reply?.prompt?.includes('how are you') && !r.reply.prompt.includes('@Nemo'), 'the mention is stripped');
    const inRoom = h.outgoing.filter((o) => o.room === room.id);
    assert.equal(inRoom.length, 1);
    assert.match(inRoom[0].text, /^@Alice /, 'addressed to the sender');

    // Copied as text: no mention list, U+2005 or a plain space after the name.
    r = await h.sayInRoom(alice, room, '@Nemo\u2005copied mention');
    assert.equal(r.reply?.kind, 'reply');
    r = await h.sayInRoom(alice, room, '@Nemo plain space');
    assert.equal(r.reply?.kind, 'reply');

    // Unauthorised sender: told to verify in private; a key posted in the group is not accepted.
    r = await h.sayInRoom(bob, room, '@Nemo\u2005hi', [h.botContact]);
    assert.equal(r.reply?.kind, 'verify-in-private');
    assert.match(r.sent[0], /private chat/);
    r = await h.sayInRoom(bob, room, `@Nemo\u2005${(await h.keys.current()).key}`, [h.botContact]);
    assert.equal(r.reply?.kind, 'verify-in-private');
    assert.match(r.sent[0], /do not post the key/);
    assert.equal((await h.keys.authorisation('bob')).authorised, false);
    assert.match(h.outgoing.at(-1)!.text, /^@Bob /);

    // Stickers and images in groups are ignored.
    assert.equal((await h.deliver({ talkerId: 'alice', roomId: room.id, type: types.Message.Image })).result, 'ignored-type');
    assert.equal((await h.deliver({ talkerId: 'alice', roomId: room.id, type: types.Message.Emoticon })).result, 'ignored-type');
  } finally {
    await h.close();
  }
});

test('groups: only the configured groups are answered', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_GROUPS: ['Allowed'] } });
  try {
    const alice = await verified(h, 'alice', 'Alice');
    const allowed = h.room('Allowed', [alice]);
    const other = h.room('Other', [alice]);
    assert.equal((await h.sayInRoom(alice, other, '@Nemo\u2005hi', [h.botContact])).result, 'group-disabled');
    assert.equal((await h.sayInRoom(alice, allowed, '@Nemo\u2005hi', [h.botContact])).reply?.kind, 'reply');
  } finally {
    await h.close();
  }
});

test('rate limit and daily quota answer with when the user can continue; commands and the key cost no quota', async () => {
  let now = Date.UTC(2026, 5, 1, 4, 0, 0); // 12:00 in Shanghai
  const h = await BotHarness.start({ ...model, bot: { BOT_RATE_LIMIT: 4, BOT_RATE_WINDOW_SECONDS: 60, BOT_DAILY_QUOTA: 2 }, limitsNow: () => now });
  try {
    const u = h.user('u1');
    assert.equal((await h.say(u, 'hello?')).reply?.kind, 'how-to-get-key'); // 1 of 4 in the window
    assert.equal((await h.say(u, (await h.keys.current()).key)).reply?.kind, 'verified', 'the key is not counted');
    assert.equal((await h.say(u, 'one')).reply?.kind, 'reply');
    assert.equal((await h.say(u, 'two')).reply?.kind, 'reply');
    const q = await h.say(u, 'three');
    assert.equal(q.reply?.kind, 'quota');
    assert.match(q.sent[0], /today's 2 messages; the quota resets at 2026-06-02 00:00/);
    // A refused message is not counted in the window: this is the 4th of 4.
    const s = await h.say(u, '#status');
    assert.equal(s.reply?.kind, 'command');
    assert.match(s.sent[0], /0 of 2 messages left today/);
    const r = await h.say(u, '#help');
    assert.equal(r.reply?.kind, 'rate-limited', 'the 5th message in a minute');
    assert.match(r.sent[0], /too fast; continue at 12:01 \(in 1 min\)/);
    now += 61_000;
    assert.equal((await h.say(u, '#help')).reply?.kind, 'command');
    now += 12 * 3_600_000; // past midnight in Shanghai: a fresh quota
    assert.equal((await h.say(u, 'four')).reply?.kind, 'reply');
  } finally {
    await h.close();
  }
});

test('duplicates are answered once, also across two bot instances sharing Redis; stale messages are dropped', async () => {
  const a = await BotHarness.start({ ...model });
  // Another instance (its own BOT_NAME: one process per name) on the same Redis.
  const b = await BotHarness.start({ ...model, store: a.store, bot: { BOT_NAME: 'second' } });
  try {
    await verified(a, 'alice');
    const first = await a.deliver({ id: 'msg-dup-1', talkerId: 'alice', text: 'hello once' });
    assert.equal(first.result, 'answered');
    assert.equal((await a.deliver({ id: 'msg-dup-1', talkerId: 'alice' })).result, 'duplicate', 'redelivered after a reconnect');
    b.user('alice');
    assert.equal((await b.deliver({ id: 'msg-dup-1', talkerId: 'alice', text: 'hello once' })).result, 'duplicate', 'the other instance saw it');
    assert.equal(b.outgoing.length, 0);
    const stale = await a.deliver({ talkerId: 'alice', text: 'from before the restart', timestamp: Date.now() - 10 * 60_000 });
    assert.equal(stale.result, 'stale');
  } finally {
    await b.close();
    await a.close();
  }
});

test('non-text messages get a short polite reply; empty text is ignored; over-long text is cut with a notice', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_MAX_INPUT_CHARS: 20, BOT_RATE_LIMIT: 6 } });
  try {
    const u = await verified(h, 'u');
    const image = await h.say(u, FileBox.fromUrl('https://example.com/cat.jpg'));
    assert.equal(image.result, 'non-text');
    assert.match(image.sent[0], /only read text/);
    const voice = await h.deliver({ talkerId: 'u', type: types.Message.Audio });
    assert.equal(voice.result, 'non-text');
    const sticker = await h.deliver({ talkerId: 'u', type: types.Message.Emoticon });
    assert.equal(sticker.result, 'non-text');
    const file = await h.deliver({ talkerId: 'u', type: types.Message.Attachment });
    assert.equal(file.result, 'non-text');
    // A burst of stickers is not answered sticker by sticker: the rate limit applies silently.
    for (let i = 0; i < 3; i++) await h.deliver({ talkerId: 'u', type: types.Message.Emoticon });
    const quiet = await h.deliver({ talkerId: 'u', type: types.Message.Emoticon });
    assert.equal(quiet.reply?.kind, 'rate-limited');
    assert.deepEqual(quiet.sent, []);
    await h.session.limits.reset('u');
    const before = h.outgoing.length;
    assert.equal((await h.say(u, '   \n\t ')).result, 'empty');
    assert.equal(h.outgoing.length, before, 'nothing said to whitespace');
    const long = await h.say(u, 'abcdefghijklmnopqrstuvwxyz0123456789');
    assert.equal(long.reply?.kind, 'reply');
    assert.match(long.sent[0], /only the first 20 characters/);
    assert.ok(long.reply?.prompt?.includes('abcdefghijklmnopqrst') && !long.reply.prompt.includes('uvwxyz'));
    assert.equal((await h.say(u, '😀😀😀')).reply?.kind, 'reply', 'emoji-only text is fine');
  } finally {
    await h.close();
  }
});

test('operator commands: #rotate and #stats for operators only', async () => {
  const h = await BotHarness.start({ ...model, operators: ['op'] });
  try {
    const op = await verified(h, 'op');
    const user = await verified(h, 'user');
    const v1 = (await h.keys.current()).version;
    const denied = await h.say(user, '#rotate');
    assert.match(denied.sent[0], /operators only/);
    assert.equal((await h.keys.current()).version, v1);
    assert.match((await h.say(user, '#help')).sent[0], /^(?![\s\S]*#rotate)/, 'help shows no operator commands to users');
    assert.match((await h.say(op, '#help')).sent[0], /#rotate/);
    const rotated = await h.say(op, '#rotate');
    assert.match(rotated.sent[0], new RegExp(`version ${v1 + 1}`));
    const cur = await h.keys.current();
    assert.equal(cur.version, v1 + 1);
    assert.ok(!rotated.sent[0].includes(cur.key), 'the new key is not sent over WeChat');
    const stats = await h.say(op, '#stats');
    assert.match(stats.sent[0], /messages \d+, active users \d+/);
    assert.match(stats.sent[0], /failed key attempts/);
  } finally {
    await h.close();
  }
});

test('login state and QR code are kept in Redis; logouts are reported and the bot keeps running', async () => {
  const h = await BotHarness.start({ ...model });
  try {
    let s = await getLoginState(h.store);
    assert.equal(s.state, 'logged-in');
    assert.deepEqual(s.user, { id: 'nemo-bot', name: 'Nemo' });
    await h.bot.wechaty.logout();
    await waitFor(async () => (await getLoginState(h.store)).state === 'logged-out');
    h.mocker.scan('https://login.weixin.qq.com/l/test-code', ScanStatus.Waiting);
    await waitFor(async () => (await getLoginState(h.store)).state === 'waiting-for-scan');
    s = await getLoginState(h.store);
    assert.equal(s.qrcode, 'https://login.weixin.qq.com/l/test-code');
    // A puppet error does not crash anything.
    h.puppet.emit('error', { data: 'simulated puppet failure' });
    h.mocker.login(h.botContact);
    await waitFor(async () => (await getLoginState(h.store)).state === 'logged-in');
    const r = await h.say(h.user('late'), 'anyone home?');
    assert.equal(r.reply?.kind, 'how-to-get-key', 'answers again after the new login');
    await h.bot.stop();
    s = await getLoginState(h.store);
    assert.equal(s.state, 'logged-out');
    assert.equal(s.detail, 'stopped');
  } finally {
    await h.close();
  }
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('friend requests are accepted and the new friend is told how to get the key', async () => {
  const h = await BotHarness.start({ ...model });
  try {
    const newcomer = h.user('newcomer', 'Newcomer');
    const accepted: string[] = [];
    const puppet = h.puppet as unknown as {
      friendshipAccept(id: string): Promise<void>;
      friendshipPayload(id: string, payload: object): Promise<unknown>;
    };
    const original = puppet.friendshipAccept.bind(puppet);
    puppet.friendshipAccept = async (id: string) => {
      accepted.push(id);
      await original(id);
    };
    await puppet.friendshipPayload('fr-1', { id: 'fr-1', contactId: newcomer.id, hello: 'hi', timestamp: Date.now(), type: types.Friendship.Receive });
    h.puppet.emit('friendship', { friendshipId: 'fr-1' });
    const deadline = Date.now() + 5000;
    while (h.saidTo('newcomer').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(accepted, ['fr-1']);
    assert.match(h.saidTo('newcomer')[0], /send the access key/);
  } finally {
    await h.close();
  }
});

test('chatters are known by their remark, which survives re-logins that change contact ids', async () => {
  const h = await BotHarness.start({ ...model });
  try {
    const calls: Array<[string, string | undefined]> = [];
    const puppet = h.puppet as unknown as { contactAlias(id: string, alias?: string): Promise<unknown> };
    const original = puppet.contactAlias.bind(puppet);
    puppet.contactAlias = async (id: string, alias?: string) => {
      if (alias !== undefined) calls.push([id, alias]);
      return original(id, alias);
    };
    const before = h.mocker.createContact({ id: 'wxid-login-1', name: 'Ada', alias: 'nemo-0a1b2c3d4e' });
    const r = await h.say(before, (await h.keys.current()).key);
    assert.equal(r.reply?.kind, 'verified');
    assert.equal(r.userId, 'alias:nemo-0a1b2c3d4e');
    // After a re-login the same person has a new contact id but the same remark.
    const after = h.mocker.createContact({ id: 'wxid-login-2', name: 'Ada', alias: 'nemo-0a1b2c3d4e' });
    assert.equal((await h.say(after, 'remember me?')).reply?.kind, 'reply', 'still authorised');
    assert.deepEqual(calls, [], 'an existing remark is kept');

    // A friend without a remark is given one (this mock cannot store it, so the id is used).
    const plain = h.user('wxid-plain');
    const p = await h.say(plain, 'hi');
    assert.equal(calls.length, 1);
    assert.equal(calls[0][0], 'wxid-plain');
    assert.match(calls[0][1]!, /^nemo-[0-9a-f]{10}$/);
    assert.equal(p.userId, 'wxid-plain');
    await h.say(plain, 'hi again');
    assert.equal(calls.length, 1, 'tried once per process, not per message');
  } finally {
    await h.close();
  }
});
