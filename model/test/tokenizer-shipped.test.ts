// The vocabulary the platform ships (model/shipped): loads, holds the everyday Chinese
// characters as single tokens, round-trips chat text exactly and compresses English sensibly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpeTokenizer } from '../tokenizer/bpe.js';
import { gb2312Level1 } from '../tokenizer/charsets.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../shipped');

test('shipped vocabulary: 8000 nemo-bpe tokens with an end-of-text token', async () => {
  const tok = await BpeTokenizer.load(DIR);
  assert.equal(tok.vocabSize, 8000);
  assert.equal(tok.config.type, 'nemo-bpe');
  assert.equal(tok.config.byteFallback, true);
  assert.equal(tok.eosId, tok.tokenToId('<|endoftext|>'));
  const report = JSON.parse(readFileSync(path.join(DIR, 'tokenizer-training-report.json'), 'utf8')) as { vocabSize: number };
  assert.equal(report.vocabSize, tok.vocabSize);
});

test('every GB2312 level-1 character is one token', async () => {
  const tok = await BpeTokenizer.load(DIR);
  const missing = gb2312Level1().filter((ch) => tok.encode(ch).length !== 1);
  assert.deepEqual(missing, []);
});

test('chat text round-trips exactly, without <unk>', async () => {
  const tok = await BpeTokenizer.load(DIR);
  const unk = tok.tokenToId('<unk>');
  const samples = [
    '你好，我们今天去哪里吃饭？',
    'Hello there! How are you doing today?',
    '《静夜思》李白\n床前明月光，疑是地上霜。',
    "I'm fine, thanks 😀 你呢？",
    '价格是１２３元，OK吗？',
    '',
  ];
  for (const s of samples) {
    const ids = tok.encode(s);
    assert.ok(!ids.includes(unk as number), s);
    assert.equal(tok.decode(ids), s);
  }
  // Han characters are units of their own; a frequent English word with its space is one token.
  assert.deepEqual(tok.tokenize('我们'), ['我', '们']);
  assert.deepEqual(tok.tokenize(' the'), ['▁the']);
});

test('English compresses to more than 3 characters per token', async () => {
  const tok = await BpeTokenizer.load(DIR);
  const text = 'The jury further said in term-end presentments that the City Executive Committee, which had over-all charge of the election, deserves the praise and thanks of the City of Atlanta for the manner in which the election was conducted.';
  assert.ok(text.length / tok.encode(text).length > 3, `${text.length / tok.encode(text).length}`);
});
