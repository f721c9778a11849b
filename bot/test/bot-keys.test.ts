// The key flow through a real Wechaty bot on the mock puppet: how to get the key, wrong keys until
// lockout, odd input, and rotation with grace and re-authorisation.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BotHarness } from './harness.js';
import { testModel } from './model-fixture.js';

let model: Awaited<ReturnType<typeof testModel>>;
before(async () => {
  model = await testModel();
});
after(async () => {
  await model.close();
});

const fullWidth = (s: string) => [...s].map((c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)).join('');

test('key flow: help text, wrong key, full-width key → welcome; the key is never revealed', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_KEY_HELP_TEXT: 'Follow NemoOA and send key.' } });
  try {
    const { key } = await h.keys.current();
    const alice = h.user('alice', 'Alice');

    let r = await h.say(alice, 'hello there');
    assert.equal(r.reply?.kind, 'how-to-get-key');
    assert.match(r.sent[0], /NemoOA/);

    r = await h.say(alice, '#help');
    assert.equal(r.reply?.kind, 'how-to-get-key');

    // Not shaped like a key: no try is used up.
    r = await h.say(alice, '12345');
    assert.equal(r.reply?.kind, 'how-to-get-key');

    // Huge input and emoji neither crash nor cost a try.
    r = await h.say(alice, '9'.repeat(10_000));
    assert.equal(r.reply?.kind, 'how-to-get-key');
    r = await h.say(alice, '🔑🔑🔑🔑🔑🔑');
    assert.equal(r.reply?.kind, 'how-to-get-key');
    assert.equal((await h.keys.lockStatus('alice')).failures, 0);

    const wrong = key === '000000' ? '111111' : '000000';
    r = await h.say(alice, wrong);
    assert.equal(r.reply?.kind, 'wrong-key');
    assert.match(r.sent[0], /4 attempts left/);

    r = await h.say(alice, `"${fullWidth(key)}"。`);
    assert.equal(r.reply?.kind, 'verified');
    assert.match(r.sent[0], /welcome/i);
    assert.match(r.sent[0], /#reset/);

    r = await h.say(alice, '#status');
    assert.equal(r.reply?.kind, 'command');
    assert.match(r.sent[0], /100 of 100 messages left today/);

    const said = h.saidTo('alice');
    assert.equal(said.length, 8, 'one reply per message, delivered through the puppet');
    for (const text of said) assert.ok(!text.includes(key), `the bot never says the key: ${text}`);
  } finally {
    await h.close();
  }
});

test('wrong keys until lockout; while locked even the right key is refused and the time is given', async () => {
  const h = await BotHarness.start({ ...model, core: { KEY_MAX_ATTEMPTS: 3, KEY_LOCKOUT_MINUTES: 15 } });
  try {
    const { key } = await h.keys.current();
    const wrong = key === '123456' ? '654321' : '123456';
    const bob = h.user('bob');
    assert.equal((await h.say(bob, wrong)).reply?.kind, 'wrong-key');
    assert.equal((await h.say(bob, wrong)).reply?.kind, 'wrong-key');
    const third = await h.say(bob, wrong);
    assert.equal(third.reply?.kind, 'locked');
    // The unlock time, with its date when it falls on the next local day (locked just before midnight).
    const day = (t: number) => new Intl.DateTimeFormat('en-CA', { timeZone: h.config.BOT_QUOTA_TZ, year: 'numeric', month: '2-digit', day: '2-digit' }).format(t);
    const nextDay = day(Date.now()) !== day(Date.now() + 15 * 60_000);
    assert.match(third.sent[0], nextDay ? /try again after \d{4}-\d\d-\d\d \d\d:\d\d \(in 15 min\)/ : /try again after \d\d:\d\d \(in 15 min\)/);
    const right = await h.say(bob, key);
    assert.equal(right.reply?.kind, 'locked', 'the right key does not help while locked');
    const chat = await h.say(bob, 'let me in please');
    assert.equal(chat.reply?.kind, 'locked');
    assert.equal((await h.keys.authorisation('bob')).authorised, false);
    // Another user is not affected.
    assert.equal((await h.say(h.user('carol'), key)).reply?.kind, 'verified');
  } finally {
    await h.close();
  }
});

test('rotation: old key works during the grace window, then one friendly message asks for the new key', async () => {
  let now = Date.now();
  const h = await BotHarness.start({ ...model, core: { KEY_GRACE_MINUTES: 10, KEY_REAUTH: 0 }, keysNow: () => new Date(now) });
  try {
    const old = await h.keys.current();
    const dan = h.user('dan');
    assert.equal((await h.say(dan, old.key)).reply?.kind, 'verified');
    assert.equal((await h.say(dan, 'hi')).reply?.kind, 'reply');

    const fresh = await h.keys.rotate('admin', 'test');
    now += 5 * 60_000;
    assert.equal((await h.say(dan, 'still there?')).reply?.kind, 'reply', 'authorised during the grace window');
    // A new user may still use the old key during the grace window.
    assert.equal((await h.say(h.user('erin'), old.key)).reply?.kind, 'verified');

    now += 6 * 60_000;
    const notice = await h.say(dan, 'hello again');
    assert.equal(notice.reply?.kind, 'key-changed');
    assert.match(notice.sent[0], /key has changed/);
    // Only once; afterwards the ordinary hint.
    assert.equal((await h.say(dan, 'hello?')).reply?.kind, 'how-to-get-key');
    assert.equal((await h.say(dan, old.key)).reply?.kind, 'wrong-key', 'the old key is over after the grace window');
    assert.equal((await h.say(dan, fresh.key)).reply?.kind, 'verified');
    assert.equal((await h.say(dan, 'back')).reply?.kind, 'reply');
  } finally {
    await h.close();
  }
});

test('many wrong keys from new users trip the global breaker: new users are told checks are paused', async () => {
  const h = await BotHarness.start({ ...model, core: { KEY_GLOBAL_FAIL_LIMIT: 3 } });
  try {
    const { key } = await h.keys.current();
    const wrong = key === '999999' ? '888888' : '999999';
    for (const id of ['s1', 's2', 's3']) assert.equal((await h.say(h.user(id), wrong)).reply?.kind, 'wrong-key');
    const r = await h.say(h.user('newcomer'), key);
    assert.equal(r.reply?.kind, 'locked');
    assert.match(r.sent[0], /Key checks are paused/);
  } finally {
    await h.close();
  }
});
