// The web chat on a CDial-GPT-layout model (the tiny PyTorch-written fixture as pytorch_model.bin +
// vocab.txt): the visitor verifies, writes Chinese, and the streamed reply is the model's answer to
// the cdial prompt with its speaker token types.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cdialTestModel, type TestModel } from '../../bot/test/model-fixture.js';
import { field, startHarness, type Harness } from './harness.js';
import { ChatResponder } from '../../model/index.js';

let model: TestModel;
let h: Harness;
before(async () => {
  model = await cdialTestModel();
  // Greedy, so the reply can be compared; top-k 0: the fixture's vocabulary (32) is below the default k.
  h = await startHarness({ generator: model.generator, bot: { BOT_MAX_NEW_TOKENS: 12, BOT_TEMPERATURE: 0, BOT_TOP_K: 0 } });
});
after(async () => {
  await h.close();
  await model.close();
});

test('a Chinese web chat on a CDial-layout model replies from the typed cdial prompt', async () => {
  const c = h.client({ 'X-Forwarded-For': '10.9.0.1' });
  c.csrf = field(await c.get('/api/chat/session'), 'csrfToken');
  assert.equal((await c.post('/api/chat/verify', { key: (await h.keys.current()).key })).status, 200);
  const r = await c.post('/api/chat/messages', { text: '你好' });
  assert.equal(r.status, 200);
  const done = r.text.split('\n\n').filter((b) => b.startsWith('event: done')).map((b) => JSON.parse(b.split('\ndata:')[1]) as { kind: string; text: string })[0];
  assert.equal(done?.kind, 'reply', r.text);

  const format = model.generator.chatFormat();
  assert.equal(format.name, 'cdial');
  const p = format.buildPrompt([], '你好', { maxPromptTokens: 400 });
  const options = new ChatResponder(model.generator).sampling({ sampling: { temperature: 0, maxNewTokens: 12 } });
  const typed = await model.generator.generate({ ...options, prompt: p.ids, tokenTypes: p.tokenTypes, replyTokenType: p.replyTokenType });
  const untyped = await model.generator.generate({ ...options, prompt: p.ids });
  assert.notEqual(typed.text, untyped.text, 'the fixture answers differently without speaker types');
  assert.equal(done.text, format.cleanReply(typed.text));
  assert.match(done.text, /\p{Script=Han}/u);
});
