// A WeChat conversation with a CDial-GPT-layout model (pytorch_model.bin + vocab.txt, the tiny one
// PyTorch wrote for the fixtures): the chatter verifies with the key, writes Chinese, and the reply
// comes from the cdial chat format's prompt — its speaker token types reaching the engine.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BotHarness } from './harness.js';
import { cdialTestModel, type TestModel } from './model-fixture.js';
import { ChatResponder } from '../../model/index.js';

let model: TestModel;
before(async () => {
  model = await cdialTestModel();
});
after(async () => {
  await model.close();
});

// The fixture's vocab.txt: [CLS]=0 你=6 好=7 是=9 谁=10 ？=15 [speaker1]=30 [speaker2]=31.
const CLS = 0;
const SPEAKER1 = 30;
const SPEAKER2 = 31;

/** CDial-GPT's rule, stated on its own: each position takes the speaker token of its segment. */
function speakerTypes(ids: number[]): number[] {
  let current = CLS;
  return ids.map((id) => {
    if (id === SPEAKER1 || id === SPEAKER2) current = id;
    return current;
  });
}

test('a Chinese chat on a CDial-layout model: cdial prompts with token types, replies from the model', async () => {
  assert.equal(model.generator.info().chatFormat, 'cdial');
  // Top-k 0: the fixture's vocabulary (32) is smaller than the bot's default k.
  const h = await BotHarness.start({ ...model, bot: { BOT_MAX_NEW_TOKENS: 12, BOT_TOP_K: 0 }, seed: 99 });
  try {
    const u = h.user('wx-zh');
    assert.equal((await h.say(u, (await h.keys.current()).key)).reply?.kind, 'verified');

    const first = await h.say(u, '你好');
    assert.equal(first.reply?.kind, 'reply');
    const p1 = first.reply!.promptIds!;
    assert.deepEqual(p1.ids, [CLS, SPEAKER1, 6, 7, SPEAKER2]);
    assert.deepEqual(p1.tokenTypes, [CLS, SPEAKER1, SPEAKER1, SPEAKER1, SPEAKER2]);
    assert.equal(p1.replyTokenType, SPEAKER2);

    // The same generation straight from the service, with and without the token types: the
    // fixture's speaker embeddings change its greedy reply, so a chain that lost them would show.
    const options = { ...new ChatResponder(model.generator).sampling({ sampling: h.session.sampling() }), seed: h.session.sampling().seed };
    const typed = await model.generator.generate({ ...options, prompt: p1.ids, tokenTypes: p1.tokenTypes, replyTokenType: p1.replyTokenType });
    const untyped = await model.generator.generate({ ...options, prompt: p1.ids });
    assert.notEqual(typed.text, untyped.text, 'the fixture answers differently without speaker types');
    const answer = first.sent.join('');
    assert.equal(answer, typed.text.replace(/\s+/g, ' ').trim());
    assert.match(answer, /\p{Script=Han}/u, 'a Chinese reply to a Chinese message');
    assert.equal(first.reply?.outcome, 'ok');
    assert.deepEqual(h.saidTo('wx-zh').slice(-1), [answer], 'delivered through the puppet');
    assert.equal(first.reply?.generation?.promptTokens, 5);

    // The second message carries the first exchange: the bot's turn is typed [speaker2].
    const second = await h.say(u, '你是谁？');
    assert.equal(second.reply?.kind, 'reply');
    const p2 = second.reply!.promptIds!;
    const answerIds = p2.ids.slice(5, p2.ids.length - 6);
    assert.deepEqual(p2.ids.slice(0, 5), p1.ids, 'the first exchange opens the prompt');
    assert.deepEqual(p2.ids.slice(-6), [SPEAKER1, 6, 9, 10, 15, SPEAKER2]);
    assert.equal(model.generator.decode(answerIds).replace(/\s+/g, ''), answer.replace(/\s+/g, ''));
    assert.deepEqual(p2.tokenTypes, speakerTypes(p2.ids));
    assert.ok(second.sent.join('').length > 0);

    const totals = await h.usage.userTotals('wx-zh');
    assert.equal(totals?.tokensIn, 5 + p2.ids.length);
  } finally {
    await h.close();
  }
});
