// WordPiece (BERT vocab.txt) tokenization against HF's BertTokenizer: the expected ids come from
// the Python port in fixtures/torch/make-fixtures.py run on CDial-GPT's real vocab.txt
// (../shared/cdial-gpt, skipped when absent), not from this code.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { TokenizerFileError } from '../tokenizer/config.js';
import { WordPieceTokenizer } from '../tokenizer/wordpiece.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CDIAL_DIR = process.env.NEMO_CDIAL_DIR ?? path.resolve(REPO_ROOT, '../shared/cdial-gpt');
const FIX = fileURLToPath(new URL('./fixtures/torch/', import.meta.url));
const haveCdial = existsSync(path.join(CDIAL_DIR, 'vocab.txt'));

interface Case { text: string; tokens: string[]; ids: number[] }

test('CDial-GPT vocab.txt: tokens and ids exactly as BertTokenizer(do_lower_case=True)', { skip: haveCdial ? false : `${CDIAL_DIR}/vocab.txt is absent` }, async () => {
  const tok = await WordPieceTokenizer.load(CDIAL_DIR);
  assert.equal(tok.vocabSize, 13088);
  assert.deepEqual(tok.specialTokens, ['[CLS]', '[SEP]', '[PAD]', '[UNK]', '[speaker1]', '[speaker2]']);
  const { cases } = JSON.parse(readFileSync(path.join(FIX, 'wordpiece-cases.json'), 'utf8')) as { cases: Case[] };
  assert.ok(cases.length >= 10);
  for (const c of cases) {
    assert.deepEqual(tok.tokenize(c.text), c.tokens, JSON.stringify(c.text));
    assert.deepEqual(tok.encode(c.text), c.ids, JSON.stringify(c.text));
  }
  // Emoji are not in the vocabulary: each becomes [UNK].
  assert.deepEqual(tok.tokenize('好😀'), ['好', '[UNK]']);
  // Decoding joins Chinese without spaces.
  assert.equal(tok.decode(tok.encode('你好，世界！我今天去了北京。')), '你好，世界！我今天去了北京。');
  assert.equal(tok.decode(tok.encode('[speaker1]你好'), { skipSpecialTokens: true }), '你好');
});

test('WordPiece: greedy longest match, ## continuations, [UNK], long words, decoding', async () => {
  const tok = await WordPieceTokenizer.load(FIX);
  assert.deepEqual(tok.tokenize('Hello hellos world'), ['he', '##llo', 'he', '##llo', '##s', 'world']);
  assert.deepEqual(tok.tokenize('hex'), ['[UNK]']); // 'he' then no '##x': the whole word is [UNK]
  assert.deepEqual(tok.tokenize('a'.repeat(101)), ['[UNK]']);
  assert.deepEqual(tok.tokenize('[speaker1]你好[speaker2]abc'), ['[speaker1]', '你', '好', '[speaker2]', '[UNK]']);
  assert.equal(tok.decode(tok.encode('hellos world.')), 'hellos world .');
  assert.equal(tok.decode(tok.encode('你好，我是谁？hello')), '你好，我是谁？hello');
  assert.equal(tok.tokenToId('[speaker2]'), 31);
  assert.ok(tok.isSpecialId(30) && !tok.isSpecialId(6));
  assert.throws(() => WordPieceTokenizer.fromText('a\nb\n', 'x/vocab.txt'), (e: Error) => e instanceof TokenizerFileError && /x\/vocab.txt.*\[UNK\]/.test(e.message));
  await assert.rejects(WordPieceTokenizer.load('/nonexistent'), /vocab.txt.*not found/);
});
