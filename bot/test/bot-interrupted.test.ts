// A reply that did not finish is not a turn of the conversation: when a generation is cut off
// (deadline, shutdown) or the memory is cleared while it runs (#reset, the panel's "clear
// memory", the web chat's Reset), the bot's partial text and the message that asked for it are
// not remembered, and the quota comes back. Real bot, real generation service, real Redis.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { UserAdmin } from '../user-admin.js';
import { BotHarness, type ContactMock } from './harness.js';
import { replyTime, testModel, type TestModel } from './model-fixture.js';

let model: TestModel;
before(async () => {
  // One sequence at a time, so a long reply keeps the model busy for a while.
  model = await testModel({ maxBatch: 1 });
});
after(async () => {
  await model.close();
});

async function verified(h: BotHarness, id: string): Promise<ContactMock> {
  const c = h.user(id);
  assert.equal((await h.say(c, (await h.keys.current()).key)).reply?.kind, 'verified');
  return c;
}

/** Resolves once the model has produced some text for the next reply (it is mid-generation). */
function generating(h: BotHarness): Promise<void> {
  void h;
  const gen = model.generator;
  const original = gen.generate.bind(gen);
  return new Promise((resolve) => {
    gen.generate = (req) => {
      gen.generate = original;
      return original({ ...req, onText: (t) => { req.onText?.(t); resolve(); } });
    };
  });
}

test('a generation cut off by its deadline is not remembered; the next prompt does not contain it', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_MAX_NEW_TOKENS: 100, BOT_DAILY_QUOTA: 10 } });
  try {
    const u = await verified(h, 'u');
    // A deadline calibrated to this machine: well inside the time this very reply takes.
    const question = 'a question that takes a while';
    const full = await replyTime(model, question, h.session.sampling());
    assert.ok(full.tokens >= 20, `the reply is long enough to be cut off (${full.tokens} tokens)`);
    h.config.BOT_GENERATION_TIMEOUT_MS = Math.max(1, Math.round(full.ms / 5));
    const cut = await h.say(u, question);
    assert.equal(cut.reply?.kind, 'timeout');
    assert.match(cut.sent[0], /try again shortly/);
    assert.equal(await h.session.memory.size('u'), 0, 'nothing remembered');
    assert.equal((await h.session.limits.status('u')).usedToday, 0, 'no quota used');
    h.config.BOT_MAX_NEW_TOKENS = 3;
    h.config.BOT_GENERATION_TIMEOUT_MS = 10_000;
    const next = await h.say(u, 'short one');
    assert.equal(next.reply?.kind, 'reply');
    assert.equal(next.reply?.prompt, model.promptText([], 'short one'), 'the cut-off exchange is not in the prompt');
    assert.equal(await h.session.memory.size('u'), 1, 'complete replies are remembered');
  } finally {
    await h.close();
  }
});

test('shutdown during a generation: the chatter is asked to send again; the partial reply is not remembered', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_MAX_NEW_TOKENS: 120, BOT_DAILY_QUOTA: 10 } });
  let stopped = false;
  try {
    const u = await verified(h, 'u');
    assert.equal((await h.say(u, '#help')).reply?.kind, 'command');
    const mid = generating(h);
    const next = h.nextHandled();
    await u.say('tell me a very long story').to(h.botContact);
    await mid;
    // The process is stopping and the reply outlasts the bot's wait: it is cancelled.
    await h.bot.stop(20);
    stopped = true;
    const r = await next;
    assert.equal(r.reply?.kind, 'interrupted');
    assert.equal(r.result, 'failed');
    assert.ok((r.reply?.partial ?? '').length > 0, 'some text had been generated');
    assert.match(h.saidTo('u').at(-1) ?? '', /try again shortly/, 'told before the bot went offline');
    assert.ok(!h.saidTo('u').some((t) => t.includes(r.reply!.partial!)), 'the cut-off text was not sent');
    assert.equal(await h.session.memory.size('u'), 0, 'nothing remembered');
    assert.equal((await h.session.limits.status('u')).usedToday, 0, 'no quota used');
    assert.equal((await h.usage.series('24h')).totals.outcomes.error, 1);
  } finally {
    if (!stopped) await h.bot.stop(0);
    await h.close();
  }
});

test('memory cleared while a reply is generated (panel "clear memory"): the reply is sent but not remembered', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_MAX_NEW_TOKENS: 60, BOT_MEMORY_TURNS: 4 } });
  try {
    const u = await verified(h, 'u');
    const first = await h.say(u, 'my name is Ada');
    assert.equal(first.reply?.kind, 'reply');
    assert.equal(await h.session.memory.size('u'), 1);
    const mid = generating(h);
    const next = h.nextHandled();
    await u.say('what is my name?').to(h.botContact);
    await mid;
    assert.equal(await new UserAdmin(h.store, h.config).clearMemory('u'), true);
    const r = await next;
    assert.equal(r.reply?.kind, 'reply');
    assert.ok(r.sent.length > 0, 'the chatter still gets the answer');
    assert.equal(await h.session.memory.size('u'), 0, 'a forgotten conversation stays forgotten');
    h.config.BOT_MAX_NEW_TOKENS = 3;
    assert.equal((await h.say(u, 'hello again')).reply?.prompt, model.promptText([], 'hello again'));
  } finally {
    await h.close();
  }
});

test('#reset sent while the previous reply is generated: answered in order, and the conversation ends up empty', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_MAX_NEW_TOKENS: 60, BOT_MEMORY_TURNS: 4 } });
  try {
    const u = await verified(h, 'u');
    const mid = generating(h);
    const replies = [h.nextHandled(), h.nextHandled()];
    await u.say('a long question').to(h.botContact);
    await mid;
    await u.say('#reset').to(h.botContact);
    const [answer, reset] = await Promise.all(replies);
    assert.equal(answer.reply?.kind, 'reply');
    assert.equal(reset.reply?.kind, 'command');
    assert.match(reset.sent[0], /forgotten our conversation/);
    assert.equal(await h.session.memory.size('u'), 0);
    h.config.BOT_MAX_NEW_TOKENS = 3;
    assert.equal((await h.say(u, 'fresh start')).reply?.prompt, model.promptText([], 'fresh start'));
  } finally {
    await h.close();
  }
});
