// The reply checks on WeChat, through a real Wechaty bot on the mock puppet and real checkpoints
// whose weights force what they say: punctuation-only replies are never sent (the chatter gets the
// polite fallback, usage counts the outcome), and a blocked word never reaches the puppet.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createForcedModel, singleTokenWord } from '../../model/test/forced-model.js';
import { BotHarness, type ContactMock } from './harness.js';
import { BlockedWords, createGenerator, FALLBACK_TEXT, type TextGenerator } from '../../model/index.js';

let root: string;
let punctuation: TextGenerator;
let catty: TextGenerator;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'nemo-bot-checks-'));
  await createForcedModel(path.join(root, 'punct'), (t) => new Map(['!', '?', '，'].map((c) => [t.encode(c)[0], 1])));
  // Says "the" and "cat" in about equal measure.
  await createForcedModel(path.join(root, 'cat'), (t) => new Map([[singleTokenWord(t, ['the']).id, 1], [singleTokenWord(t, ['cat']).id, 1]]));
  [punctuation, catty] = await Promise.all([
    createGenerator({ modelDir: path.join(root, 'punct'), maxBatch: 2, backend: 'cpu' }),
    createGenerator({ modelDir: path.join(root, 'cat'), maxBatch: 2, backend: 'cpu' }),
  ]);
});
after(async () => {
  await Promise.all([punctuation?.close(), catty?.close()]);
  await rm(root, { recursive: true, force: true });
});

async function verified(h: BotHarness, id: string): Promise<ContactMock> {
  const c = h.user(id);
  assert.equal((await h.say(c, (await h.keys.current()).key)).reply?.kind, 'verified');
  return c;
}

test('a model that emits only punctuation: the chatter gets the fallback in their language, counted as "fallback"', async () => {
  const h = await BotHarness.start({ generator: punctuation, bot: { BOT_MAX_NEW_TOKENS: 6, BOT_TEMPERATURE: 1 } });
  try {
    const u = await verified(h, 'u');
    const en = await h.say(u, 'hello, who are you?');
    assert.equal(en.reply?.kind, 'reply');
    assert.equal(en.reply?.outcome, 'fallback');
    assert.equal(en.reply?.attempts, 3);
    assert.deepEqual(en.sent, [FALLBACK_TEXT.en]);
    const zh = await h.say(u, '你是谁？');
    assert.deepEqual(zh.sent, [FALLBACK_TEXT.zh]);
    assert.deepEqual(h.saidTo('u').slice(-2), [FALLBACK_TEXT.en, FALLBACK_TEXT.zh], 'what the puppet delivered');
    assert.equal((await h.session.memory.history('u')).length, 0, 'a fallback line is not remembered as the model\'s turn');
    const usage = await h.usage.series('24h');
    assert.equal(usage.totals.outcomes.fallback, 2);
    assert.equal((await h.usage.userTotals('u'))?.tokensOut, 36, 'every try counts: 2 replies × 3 tries × 6 tokens');
  } finally {
    await h.close();
  }
});

test('a blocked word from BOT_BLOCKED_WORDS_FILE is never sent; a blocked message is refused when BOT_BLOCK_INPUT is on', async () => {
  const file = path.join(root, 'blocked.txt');
  await writeFile(file, '# pets are off topic here\ncat\n');
  const h = await BotHarness.start({
    generator: catty, blockedWords: BlockedWords.load({ file }), bot: { BOT_MAX_NEW_TOKENS: 8, BOT_TEMPERATURE: 1, BOT_BLOCK_INPUT: true },
  });
  try {
    const u = await verified(h, 'u');
    const r = await h.say(u, 'say something');
    assert.equal(r.reply?.outcome, 'blocked');
    assert.deepEqual(r.sent, [FALLBACK_TEXT.en]);
    assert.ok(h.outgoing.every((o) => !/\bcat\b/i.test(o.text)), 'nothing with the word reached the puppet');
    const refused = await h.say(u, 'my cat is ill');
    assert.equal(refused.reply?.outcome, 'blocked');
    assert.equal(refused.reply?.attempts, 0);
    assert.match(refused.sent[0], /can't answer that/);
    assert.equal((await h.usage.series('24h')).totals.outcomes.blocked, 2);
  } finally {
    await h.close();
  }
});
