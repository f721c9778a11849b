// Chat formats (nemo-lines, openai-gpt), the chat_format.json declaration and the format a folder
// gets without one, the blocked-words filter and its stream guard, and the language checks.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BlockedStreamGuard, BlockedWords, parseBlockedWords } from '../chat/blocked-words.js';
import { cutAtFirstStop } from '../chat/chat-format.js';
import { ChatFormatError, parseChatFormatDeclaration } from '../chat/declaration.js';
import { hasContent, messageLanguage, replyMatchesLanguage } from '../chat/language.js';
import { chatFormatFor, impliedFormat } from '../chat/registry.js';
import { OpenAiGptFormat } from '../chat/openai-gpt.js';
import { createTinyModel } from './tiny-model.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';

let dir: string;
let tok: BpeTokenizer;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-chat-format-'));
  await createTinyModel(dir);
  tok = await BpeTokenizer.load(dir);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const history = [
  { role: 'user' as const, text: 'hello there' },
  { role: 'bot' as const, text: 'I am fine,\nthank you' },
  { role: 'user' as const, text: '你好' },
  { role: 'bot' as const, text: '今天天气很好' },
];

test('nemo-lines: the prompt text up to "Bot:" tokenized on its own; stops, eos and defaults', async () => {
  const { format, source } = await chatFormatFor(dir, tok);
  assert.equal(format.name, 'nemo-lines');
  assert.equal(source, 'tokenizer');
  const p = format.buildPrompt(history, 'what is the weather like?', { maxPromptTokens: 1000 });
  const text = 'User: hello there\nBot: I am fine, thank you\nUser: 你好\nBot: 今天天气很好\nUser: what is the weather like?\nBot:';
  assert.deepEqual(p.ids, tok.encode(text));
  assert.equal(p.droppedTurns, 0);
  assert.equal(p.tokenTypes, undefined);
  assert.deepEqual(format.stopStrings.slice(0, 4), ['\nUser:', '\nBot:', '\n\n', '<|endoftext|>']);
  assert.deepEqual(format.stopIds, [tok.eosId]);
  assert.equal(format.defaults.minNewTokens, 1);
  assert.equal(format.cleanReply(' Bot: fine\nUser: more'), 'fine');
  // Whole oldest turns go first; the new message stays.
  const full = p.ids.length;
  const cut = format.buildPrompt(history, 'what is the weather like?', { maxPromptTokens: full - 1 });
  assert.ok(cut.droppedTurns >= 1 && cut.ids.length <= full - 1);
  assert.ok(tok.decode(cut.ids).endsWith('User: what is the weather like?\nBot:'));
  assert.ok(!tok.decode(cut.ids).includes('hello there'));
  const system = format.buildPrompt([], 'hi', { system: 'You are Nemo.', maxPromptTokens: 1000 });
  assert.equal(tok.decode(system.ids), 'You are Nemo.\nUser: hi\nBot:');
});

test('chat_format.json chooses the format, its stop tokens and default sampling; bad ones are refused by name', async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'nemo-chat-decl-'));
  try {
    await createTinyModel(d);
    const t = await BpeTokenizer.load(d);
    await writeFile(path.join(d, 'chat_format.json'), JSON.stringify({
      format: 'openai-gpt', version: 1, preamble: 'a chat.', temperature: 0.5, top_p: 0.8, max_new_tokens: 20, stop_tokens: ['<unk>'], stop_strings: ['###'],
    }));
    const { format, source } = await chatFormatFor(d, t);
    assert.equal(source, 'chat_format.json');
    assert.equal(format.name, 'openai-gpt');
    assert.deepEqual({ ...format.defaults }, { temperature: 0.5, topP: 0.8, topK: 40, maxNewTokens: 20, minNewTokens: 1 });
    assert.ok(format.stopIds.includes(t.tokenToId('<unk>')!) && format.stopIds.includes(t.eosId!));
    assert.ok(format.stopStrings.includes('###'));
    assert.equal(t.decode(format.buildPrompt([], 'hi', { maxPromptTokens: 100 }).ids), 'a chat.\nuser: hi\nbot:');

    await writeFile(path.join(d, 'chat_format.json'), JSON.stringify({ format: 'nemo-lines', stop_tokens: ['<nope>'] }));
    await assert.rejects(chatFormatFor(d, t), /stop token "<nope>" is not in the vocabulary/);
    await writeFile(path.join(d, 'chat_format.json'), JSON.stringify({ format: 'klingon' }));
    await assert.rejects(chatFormatFor(d, t), /unknown chat format "klingon" \(known: .*nemo-lines/);
    await writeFile(path.join(d, 'chat_format.json'), '{"format": ');
    await assert.rejects(chatFormatFor(d, t), (e: Error) => e instanceof ChatFormatError && /chat_format\.json: not valid JSON/.test(e.message));
    assert.throws(() => parseChatFormatDeclaration({ format: 'nemo-lines', top_p: 2 }), /at top_p/);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test('without chat_format.json the tokenizer implies the format', async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'nemo-chat-implied-'));
  try {
    assert.equal(impliedFormat(d), 'openai-gpt', 'no tokenizer_config.json: GPT-1 BPE');
    await writeFile(path.join(d, 'tokenizer_config.json'), JSON.stringify({ type: 'nemo-bpe' }));
    assert.equal(impliedFormat(d), 'nemo-lines');
    await writeFile(path.join(d, 'tokenizer_config.json'), JSON.stringify({ type: 'openai-gpt' }));
    assert.equal(impliedFormat(d), 'openai-gpt');
    await writeFile(path.join(d, 'vocab.txt'), '[PAD]\n[CLS]\n[SEP]\n[speaker1]\n[speaker2]\n你\n');
    assert.equal(impliedFormat(d), 'cdial');
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test('openai-gpt: preamble, one labelled line per turn, stops at the next label as GPT-1 decodes it', () => {
  const f = new OpenAiGptFormat(tok, { preamble: 'two friends talk.' });
  const p = f.buildPrompt(history.slice(0, 2), 'how are you?', { maxPromptTokens: 1000 });
  assert.equal(tok.decode(p.ids), 'two friends talk.\nuser: hello there\nbot: I am fine, thank you\nuser: how are you?\nbot:');
  assert.equal(f.cleanReply(' i am good . user : and you ?'), 'i am good .');
  assert.equal(f.cleanReply(' fine\nmore'), 'fine');
});

test('blocked words: whole Latin words in any case, Chinese phrases anywhere, comments skipped', () => {
  assert.deepEqual(parseBlockedWords('# list\nfoo bar  # phrase\n\n  baz\n'), ['foo bar', 'baz']);
  const w = new BlockedWords(['cat', 'foo bar', '傻逼']);
  assert.equal(w.find('the CAT sat'), 'cat');
  assert.equal(w.find('concatenate category'), null, 'inside a word is not the word');
  assert.equal(w.find('foo   bar!'), 'foo   bar', 'any spacing inside a phrase');
  assert.equal(w.find('你是傻逼吗'), '傻逼');
  assert.equal(w.find('ＣＡＴ'), 'cat', 'full-width letters are the same word');
  const builtIn = BlockedWords.load();
  assert.ok(builtIn.size >= 10);
  assert.ok(builtIn.find('what the fuck') && builtIn.find('他妈的') && !builtIn.find('a classic assessment'));
  assert.throws(() => BlockedWords.load({ file: path.join(dir, 'missing.txt') }), /blocked words file .*missing\.txt: cannot read \(ENOENT\)/);
});

test('the stream guard never lets a blocked word out, even split across pieces, and flushes clean text', () => {
  const w = new BlockedWords(['cat', 'motherfucker']);
  for (const pieces of [['the c', 'at sat'], [...'a fine cat'], ['ca', 't'], ['the mother', 'f', 'ucker!']]) {
    let out = '';
    const g = new BlockedStreamGuard(w, (c) => (out += c));
    for (const p of pieces) g.push(p);
    g.end();
    assert.equal(g.blocked, true);
    assert.equal(w.find(out), null, `${JSON.stringify(pieces)} → ${JSON.stringify(out)}`);
  }
  let out = '';
  const g = new BlockedStreamGuard(w, (c) => (out += c));
  for (const c of 'a concatenated 你好 😀 mother') g.push(c);
  assert.ok(out.length < 'a concatenated 你好 😀 mother'.length, 'the tail is held back');
  g.end();
  assert.equal(out, 'a concatenated 你好 😀 mother');
});

test('language: Chinese messages need Chinese, English ones no mostly-Han reply; empty means no letter or digit', () => {
  assert.equal(messageLanguage('你好'), 'zh');
  assert.equal(messageLanguage('hello 你好'), 'zh');
  assert.equal(messageLanguage('what is 2+2'), 'en');
  assert.equal(messageLanguage('😀 123'), 'any');
  // A translation request is answered in the other language: either language suits it.
  assert.equal(messageLanguage('“我爱你”用英语怎么说？'), 'any');
  assert.equal(messageLanguage('How do you say "cat" in Chinese?'), 'any');
  assert.equal(messageLanguage('translate: good morning'), 'any');
  assert.equal(messageLanguage('I speak english'), 'any');
  assert.equal(messageLanguage('Englishman'), 'en');
  assert.equal(replyMatchesLanguage('zh', 'hello'), false);
  assert.equal(replyMatchesLanguage('zh', '你好 friend'), true);
  assert.equal(replyMatchesLanguage('en', '天天天 ok'), false);
  assert.equal(replyMatchesLanguage('en', 'Beijing is 北京'), true);
  assert.equal(replyMatchesLanguage('any', '天'), true);
  for (const e of ['', '…', '?!', '🤔 …', ' ) ']) assert.equal(hasContent(e), false, e);
  for (const ok of ['4', 'ok', '好']) assert.equal(hasContent(ok), true, ok);
});

test('cutAtFirstStop ends the turn at the earliest stop string', () => {
  assert.equal(cutAtFirstStop('fine thanks\nUser: and you', ['\nUser:']), 'fine thanks');
  assert.equal(cutAtFirstStop('a<b>c', ['c', '<b>']), 'a');
  assert.equal(cutAtFirstStop('no stop', ['\nUser:', '']), 'no stop');
});
