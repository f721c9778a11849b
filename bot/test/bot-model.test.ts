// Replies come from the model: the real generation service on a tiny checkpoint made here. Each
// reply the bot sends is compared with the service's own output for the same prompt and seed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { toChatTurns } from '../chat-session.js';
import type { Turn } from '../conversation.js';
import { BotHarness, type ContactMock } from './harness.js';
import { replyTime, testModel, type TestModel } from './model-fixture.js';
import { ChatResponder } from '../../model/index.js';

let model: TestModel;
before(async () => {
  model = await testModel();
});
after(async () => {
  await model.close();
});

async function verified(h: BotHarness, id: string): Promise<ContactMock> {
  const c = h.user(id);
  assert.equal((await h.say(c, (await h.keys.current()).key)).reply?.kind, 'verified');
  return c;
}

/**
 * What the reply pipeline answers on its own (no bot around it) for the conversation the bot's
 * prompt shows, with the bot's sampling and seed.
 */
async function direct(h: BotHarness, prompt: string, history: Turn[], message: string): Promise<string> {
  assert.equal(prompt, model.promptText(history, message, h.config.BOT_MAX_NEW_TOKENS));
  const sampling = h.session.sampling();
  const r = await new ChatResponder(model.generator).reply({ history: toChatTurns(history), message, sampling, seed: sampling.seed });
  return r.text;
}

test('the reply is the model\'s text for the chat prompt (same prompt and seed → same text)', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_TEMPERATURE: 0.9, BOT_MAX_NEW_TOKENS: 12 }, seed: 1234 });
  try {
    const u = await verified(h, 'u');
    const r = await h.say(u, 'hello, how are you today?');
    assert.equal(r.reply?.kind, 'reply');
    assert.equal(r.reply?.prompt, model.promptText([], 'hello, how are you today?'));
    const expected = await direct(h, r.reply!.prompt!, [], 'hello, how are you today?');
    assert.ok(expected.length > 0, 'the tiny model says something');
    assert.equal(r.sent.join(''), expected);
    assert.deepEqual(h.saidTo('u').slice(-1), [expected], 'delivered through the puppet');
    assert.equal(r.reply?.generation?.completionTokens, 12);
    // Recorded in usage with tokens and the wechat channel.
    const totals = await h.usage.userTotals('u');
    assert.ok(totals && totals.tokensOut >= 12 && totals.tokensIn > 0);
    assert.equal((await h.usage.series('24h')).totals.channels.wechat, 2);
  } finally {
    await h.close();
  }
});

test('memory: recent turns go into the prompt; #reset forgets them', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_MAX_NEW_TOKENS: 8, BOT_MEMORY_TURNS: 2 } });
  try {
    const u = await verified(h, 'u');
    const first = await h.say(u, 'my name is Ada');
    const answer1 = first.sent.join('');
    const second = await h.say(u, 'what is my name?');
    assert.equal(second.reply?.prompt, model.promptText([{ user: 'my name is Ada', bot: answer1 }], 'what is my name?'));
    assert.equal(second.sent.join(''), await direct(h, second.reply!.prompt!, [{ user: 'my name is Ada', bot: answer1 }], 'what is my name?'));
    const answer2 = second.sent.join('');
    const third = await h.say(u, 'third');
    const fourth = await h.say(u, 'fourth');
    // Bounded to two turns: the first exchange has gone.
    assert.equal(fourth.reply?.prompt, model.promptText(
      [{ user: 'what is my name?', bot: answer2 }, { user: 'third', bot: third.sent.join('') }], 'fourth'));
    const reset = await h.say(u, '#reset');
    assert.match(reset.sent[0], /forgotten our conversation/);
    const fresh = await h.say(u, 'do you remember me?');
    assert.equal(fresh.reply?.prompt, model.promptText([], 'do you remember me?'));
    // Memory is per user.
    const other = await verified(h, 'other');
    assert.equal((await h.say(other, 'hi')).reply?.prompt, model.promptText([], 'hi'));
  } finally {
    await h.close();
  }
});

test('a long reply is split into ordered parts within the length limit', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_MAX_NEW_TOKENS: 48, BOT_REPLY_PART_CHARS: 20, BOT_TEMPERATURE: 1 }, seed: 99 });
  try {
    const u = await verified(h, 'u');
    const r = await h.say(u, 'tell me a long story about a cat');
    const expected = await direct(h, r.reply!.prompt!, [], 'tell me a long story about a cat');
    assert.ok([...expected].length > 20, `the model wrote more than one part (${[...expected].length} chars)`);
    assert.ok(r.sent.length >= 2);
    for (const p of r.sent) assert.ok([...p].length <= 20);
    assert.equal(r.sent.join('').replace(/\s+/g, ''), expected.replace(/\s+/g, ''), 'all parts, in order');
    assert.deepEqual(h.saidTo('u').slice(-r.sent.length), r.sent);
  } finally {
    await h.close();
  }
});

test('generator timing out or busy: "try again shortly", no quota used, the bot keeps working', async () => {
  const slow = await testModel({ maxBatch: 1, maxQueue: 1 });
  const h = await BotHarness.start({ generator: slow.generator, bot: { BOT_MAX_NEW_TOKENS: 60, BOT_DAILY_QUOTA: 10 } });
  try {
    const u = await verified(h, 'u');
    // The deadline is calibrated to this machine: the same reply (same prompt and seed) is timed
    // first, and the deadline set well inside it.
    const question = 'a question that takes a while';
    const full = await replyTime(slow, question, h.session.sampling());
    h.config.BOT_GENERATION_TIMEOUT_MS = Math.max(1, Math.round(full.ms / 5));
    assert.ok(full.tokens >= 20, `the reply is long enough to be cut off (${full.tokens} tokens)`);
    // Running past the deadline.
    const running = await h.say(u, question);
    assert.equal(running.reply?.kind, 'timeout');
    assert.match(running.sent[0], /try again shortly/);
    // Queued past the deadline behind a long request.
    const blocker = slow.generator.generate({ prompt: 'User: block\nBot:', maxNewTokens: 60, minNewTokens: 60, temperature: 0 });
    const queued = await h.say(u, 'and another');
    assert.equal(queued.reply?.kind, 'timeout');
    // Queue full: busy. Two more long requests fill the one slot and the one queue place whether or
    // not the first blocker has finished by now (on a loaded machine it may have); the second of
    // them is itself refused as busy when the first blocker still runs.
    const blocker2 = slow.generator.generate({ prompt: 'User: wait\nBot:', maxNewTokens: 60, minNewTokens: 60, temperature: 0 });
    const blocker3 = slow.generator.generate({ prompt: 'User: hold\nBot:', maxNewTokens: 60, minNewTokens: 60, temperature: 0 }).catch(() => undefined);
    const busy = await h.say(u, 'one more');
    assert.equal(busy.reply?.kind, 'busy');
    assert.match(busy.sent[0], /try again shortly/);
    await Promise.allSettled([blocker, blocker2, blocker3]);
    assert.equal((await h.session.limits.status('u')).usedToday, 0, 'failed replies are not charged');
    const usage = await h.usage.series('24h');
    assert.equal(usage.totals.outcomes.timeout, 2);
    assert.equal(usage.totals.outcomes.busy, 1);
    h.config.BOT_MAX_NEW_TOKENS = 2;
    h.config.BOT_GENERATION_TIMEOUT_MS = 10_000;
    assert.equal((await h.say(u, 'short one')).reply?.kind, 'reply', 'works again');
  } finally {
    await h.close();
    await slow.close();
  }
});

test('quick successive messages are answered in order, each seeing the turns before it', async () => {
  const h = await BotHarness.start({ ...model, bot: { BOT_MAX_NEW_TOKENS: 6 } });
  try {
    const u = await verified(h, 'u');
    const texts = ['first quick one', 'second quick one', 'third quick one'];
    const handled = texts.map(() => h.nextHandled());
    // Sent back to back: Wechaty runs the handlers concurrently; the bot must serialise the chat.
    for (const t of texts) await u.say(t).to(h.botContact);
    const results = await Promise.all(handled);
    const prompts = results.map((r) => r.reply!.prompt!);
    for (let i = 0; i < texts.length; i++) {
      assert.ok(prompts[i].endsWith(`User: ${texts[i]}\nBot:`), `message ${i + 1} answered in its turn`);
      // (Older turns may be dropped to fit the tiny model's context; the previous one fits.)
      if (i > 0) assert.ok(prompts[i].includes(`User: ${texts[i - 1]}`), `message ${i + 1} sees the turn before it`);
    }
    assert.deepEqual(h.saidTo('u').slice(-3), results.map((r) => r.sent.join('')));
    assert.deepEqual(await h.session.memory.history('u'), texts.map((t, i) => ({ user: t, bot: results[i].sent.join('') })));
  } finally {
    await h.close();
  }
});
