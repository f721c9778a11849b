// The reply pipeline on real tiny checkpoints whose weights force what they say (forced-model.ts):
// a model that only emits punctuation gets the polite fallback; a model that answers in either
// language is resampled until the language fits; stop ids end a reply; `npm run chat --once`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { BlockedWords } from '../chat/blocked-words.js';
import { ChatResponder, FALLBACK_TEXT } from '../chat/reply.js';
import type { TextGenerator } from '../inference/generator.js';
import { createGenerator } from '../serving/service.js';
import { createForcedModel, singleTokenWord } from './forced-model.js';

const run = promisify(execFile);
let root: string;
let punctuation: TextGenerator;
let bilingual: TextGenerator;
let bilingualDir: string;
let ids: { the: number; cat: number; tian: number };

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'nemo-chat-reply-'));
  await createForcedModel(path.join(root, 'punct'), (t) => new Map(['!', '?', '，'].map((c) => [t.encode(c)[0], 1])));
  bilingualDir = path.join(root, 'bilingual');
  await createForcedModel(bilingualDir, (t) => {
    ids = { the: singleTokenWord(t, ['the']).id, cat: singleTokenWord(t, ['cat']).id, tian: t.encode('天')[0] };
    return new Map([[ids.the, 1], [ids.tian, 1], [ids.cat, 0.97]]);
  });
  [punctuation, bilingual] = await Promise.all([
    createGenerator({ modelDir: path.join(root, 'punct'), maxBatch: 2, backend: 'cpu' }),
    createGenerator({ modelDir: bilingualDir, maxBatch: 2, backend: 'cpu' }),
  ]);
});
after(async () => {
  await Promise.all([punctuation?.close(), bilingual?.close()]);
  await rm(root, { recursive: true, force: true });
});

test('a model that emits only punctuation: every try is rejected, the user gets the fallback in their language', async () => {
  const r = new ChatResponder(punctuation, { maxTries: 3 });
  const direct = await punctuation.generate({ prompt: 'User: hello\nBot:', maxNewTokens: 6, seed: 1 });
  assert.match(direct.text, /^[!?，]+$/, 'the checkpoint really says only punctuation');
  const en = await r.reply({ history: [], message: 'hello, who are you?', seed: 1, sampling: { maxNewTokens: 6 } });
  assert.equal(en.outcome, 'fallback');
  assert.equal(en.text, FALLBACK_TEXT.en);
  assert.equal(en.attempts, 3);
  assert.deepEqual(en.rejected, ['empty', 'empty', 'empty']);
  assert.equal(en.completionTokens, 18, 'three tries of six tokens');
  const zh = await r.reply({ history: [], message: '你好，你是谁？', seed: 1, sampling: { maxNewTokens: 6 } });
  assert.equal(zh.text, FALLBACK_TEXT.zh);
  // Streaming: the punctuation of the rejected tries is voided, the fallback is what remains.
  let streamed = '';
  let retries = 0;
  const s = await r.reply({
    history: [], message: 'hi', seed: 2, sampling: { maxNewTokens: 4 },
    onText: (c) => (streamed += c), onRetry: () => { retries++; streamed = ''; },
  });
  assert.equal(s.outcome, 'fallback');
  assert.equal(retries, 3);
  assert.equal(streamed, FALLBACK_TEXT.en);
});

test('language mismatch: a reply in the other language is resampled with a new seed until it fits', async () => {
  const r = new ChatResponder(bilingual, { maxTries: 4 });
  const outcomes: Record<string, number> = {};
  for (let seed = 0; seed < 12; seed++) {
    for (const message of ['how are you?', '你好吗？']) {
      const res = await r.reply({ history: [], message, seed, sampling: { maxNewTokens: 1, temperature: 1, repetitionPenalty: 1 } });
      outcomes[res.outcome] = (outcomes[res.outcome] ?? 0) + 1;
      if (res.outcome === 'fallback') continue;
      if (message.startsWith('how')) assert.ok(!/天/.test(res.text), `English gets no Chinese reply (seed ${seed}: ${res.text})`);
      else assert.equal(res.text, '天', `Chinese gets Chinese (seed ${seed})`);
      if (res.outcome === 'resampled') assert.ok(res.attempts > 1 && res.rejected.every((x) => x === 'language'));
    }
  }
  assert.ok((outcomes.ok ?? 0) > 0 && (outcomes.resampled ?? 0) > 0, JSON.stringify(outcomes));
  // The same seed gives the same reply: the pipeline is reproducible.
  const a = await r.reply({ history: [], message: 'how are you?', seed: 5, sampling: { maxNewTokens: 3, temperature: 1 } });
  const b = await r.reply({ history: [], message: 'how are you?', seed: 5, sampling: { maxNewTokens: 3, temperature: 1 } });
  assert.deepEqual([a.text, a.outcome, a.attempts], [b.text, b.outcome, b.attempts]);
});

test('a blocked word is resampled away, or replaced; input can be refused without generating', async () => {
  const words = new BlockedWords(['cat']);
  const r = new ChatResponder(bilingual, { blockedWords: words, maxTries: 3, checkInput: true });
  const seen: string[] = [];
  for (let seed = 0; seed < 10; seed++) {
    let streamed = '';
    const res = await r.reply({
      history: [], message: 'tell me about pets', seed, sampling: { maxNewTokens: 12, temperature: 1, topP: 1 },
      onText: (c) => (streamed += c), onRetry: () => (streamed = ''),
    });
    assert.equal(words.find(res.text), null, `never sent (seed ${seed}: ${res.text})`);
    assert.equal(words.find(streamed), null, 'never streamed');
    if (res.rejected.includes('blocked')) seen.push(res.outcome);
  }
  assert.ok(seen.includes('resampled'), `a reply with "cat" was sampled again (${seen.join(', ')})`);
  // "the" and "cat" blocked: every try is blocked or (only 天) the wrong language.
  const strict = new ChatResponder(bilingual, { blockedWords: new BlockedWords(['cat', 'the']), maxTries: 3 });
  let streamed = '';
  const res = await strict.reply({ history: [], message: 'tell me about pets', seed: 3, sampling: { maxNewTokens: 12 }, onText: (c) => (streamed += c), onRetry: () => (streamed = '') });
  assert.equal(res.outcome, 'blocked');
  assert.equal(res.text, FALLBACK_TEXT.en);
  assert.equal(streamed, FALLBACK_TEXT.en);
  const refused = await r.reply({ history: [], message: 'my CAT is ill', seed: 3 });
  assert.equal(refused.outcome, 'blocked');
  assert.equal(refused.attempts, 0);
});

test('stop ids end a reply; minNewTokens keeps them out of the first tokens', async () => {
  // The model prefers "the" and "天" equally over "cat"; with both as stop ids the reply is "cat" + stop.
  const g = await bilingual.generate({ prompt: [ids.cat], maxNewTokens: 10, minNewTokens: 2, stopIds: [ids.the, ids.tian], temperature: 0.3, seed: 1 });
  assert.equal(g.completionTokens, 2);
  assert.equal(g.text, ' cat cat');
  assert.equal(g.finishReason, 'stop');
  await assert.rejects(bilingual.generate({ prompt: [1, 2], stopIds: [1e9] }), /stopIds must be/);
  await assert.rejects(bilingual.generate({ prompt: [1, 2], tokenTypes: [1] }), /tokenTypes must come with an id prompt of the same length/);
});

test('npm run chat --once --json answers one message through the same pipeline and exits', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'model/cli/chat-repl.ts', '--model', path.join(root, 'punct'), '--once', '你好', '--json', '--seed', '4', '--max-tokens', '5', '--backend', 'cpu']);
  const out = JSON.parse(stdout.trim()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(out).sort(), ['fallback', 'finishReason', 'reply', 'tokens']);
  assert.equal(out.reply, FALLBACK_TEXT.zh);
  assert.equal(out.fallback, true);
  assert.equal(out.finishReason, 'length');
  assert.equal(out.tokens, 15);
  const ok = JSON.parse((await run(process.execPath, ['--import', 'tsx', 'model/cli/chat-repl.ts', '--model', bilingualDir, '--once', '你好', '--json', '--seed', '4', '--max-tokens', '2'])).stdout.trim());
  assert.equal(ok.fallback, false);
  assert.match(ok.reply, /天/);
  await assert.rejects(run(process.execPath, ['--import', 'tsx', 'model/cli/chat-repl.ts', '--model', bilingualDir, '--json']), /--json needs --once/);
});
