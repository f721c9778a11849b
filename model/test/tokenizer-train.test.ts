// The nemo-bpe trainer: agrees with a naive recount-everything BPE trainer, is deterministic, its
// vocabularies load and round-trip any text exactly (byte fallback, never <unk>), and the
// train-tokenizer command handles files, JSONL and bad input with clear errors.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpeTokenizer, parseByteToken } from '../tokenizer/bpe.js';
import { gb2312Level1, resolveCharsets } from '../tokenizer/charsets.js';
import { trainBpe, UnitCounter } from '../tokenizer/train.js';
import { trainTokenizer, type TrainTokenizerOptions } from '../cli/commands/train-tokenizer.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const ENGLISH = [
  'The cat sat on the mat. The cat is fat, and the mat is flat.',
  "It's a sunny day; we're going to the park, aren't we? Yes, we are!",
  'Tokenizers turn text into tokens, and tokens back into text.',
  'Numbers like 12345 and 2024 appear too, as do e-mail addresses: someone@example.com',
];
const CHINESE = [
  '床前明月光，疑是地上霜。举头望明月，低头思故乡。',
  '你好，我们今天去哪里吃饭？我想吃面条。',
  '春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。',
  '今天天气很好，我们去公园散步吧。公园里有很多花。',
];
const CORPUS = [...ENGLISH, ...CHINESE].flatMap((t, i) => [t, t.toUpperCase(), `${t}\n${ENGLISH[i % ENGLISH.length]}`]);

function counterOf(texts: string[], cjk: 'char' | 'run' = 'char'): UnitCounter {
  const c = new UnitCounter(cjk);
  for (const t of texts) c.add(t);
  return c;
}

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'nemo-toktrain-'));
}

/**
 * Naive reference trainer: recount every pair of every word after each merge, take the most
 * frequent (ties: smallest left symbol id, then right), symbols numbered alphabet first, then
 * merges in order — the order the real trainer documents.
 */
function referenceMerges(counter: UnitCounter, alphabet: string[], wanted: number): string[] {
  const symbolId = new Map(alphabet.map((c, i) => [c, i]));
  const symbols = [...alphabet];
  let words = [...counter.counts.entries()].map(([w, c]) => ({ syms: Array.from(w, (ch) => symbolId.get(ch) ?? -1), c }));
  const merges: string[] = [];
  while (merges.length < wanted) {
    const counts = new Map<string, number>();
    for (const { syms, c } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        if ((syms[i] as number) < 0 || (syms[i + 1] as number) < 0) continue;
        const k = `${syms[i]},${syms[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + c);
      }
    }
    let best: [number, number] | null = null;
    let bestCount = 1; // the trainer stops below 2
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number) as [number, number];
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best) break;
    const [a, b] = best;
    const merged = (symbols[a] as string) + (symbols[b] as string);
    let z = symbols.indexOf(merged);
    if (z < 0) {
      z = symbols.length;
      symbols.push(merged);
    }
    merges.push(`${symbols[a]} ${symbols[b]}`);
    words = words.map(({ syms, c }) => {
      const out: number[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          out.push(z);
          i++;
        } else out.push(syms[i] as number);
      }
      return { syms: out, c };
    });
  }
  return merges;
}

describe('trainBpe', () => {
  test('matches the naive reference trainer merge for merge', () => {
    for (const cjk of ['char', 'run'] as const) {
      const counter = counterOf(CORPUS, cjk);
      const result = trainBpe(counter, { vocabSize: 700, minCharFrequency: 1, maxAlphabet: 200 });
      const tokens = Object.entries(result.encoder).sort((x, y) => x[1] - y[1]).map(([t]) => t);
      const alphabet = tokens.slice(2 + 256, 2 + 256 + result.stats.alphabet);
      assert.ok(result.merges.length > 100, `${cjk}: only ${result.merges.length} merges`);
      assert.deepEqual(result.merges, referenceMerges(counter, alphabet, result.merges.length), cjk);
    }
  });

  test('vocabulary layout: specials, 256 bytes, alphabet, merges; ids contiguous', () => {
    const r = trainBpe(counterOf(CORPUS), { vocabSize: 500, minCharFrequency: 1 });
    const byId = Object.entries(r.encoder).sort((x, y) => x[1] - y[1]).map(([t]) => t);
    assert.deepEqual(byId.slice(0, 2), ['<unk>', '<|endoftext|>']);
    for (let b = 0; b < 256; b++) assert.equal(parseByteToken(byId[2 + b] as string), b);
    assert.equal(byId.length, 500);
    assert.ok(byId.includes('▁the'), 'a frequent word with its space became one token');
    assert.equal(r.config.type, 'nemo-bpe');
  });

  test('deterministic: same corpus in any order gives identical files', async () => {
    const a = trainBpe(counterOf(CORPUS), { vocabSize: 600, minCharFrequency: 1 });
    const b = trainBpe(counterOf([...CORPUS].reverse()), { vocabSize: 600, minCharFrequency: 1 });
    const fa = BpeTokenizer.fromTokenizerData(a).toFiles();
    const fb = BpeTokenizer.fromTokenizerData(b).toFiles();
    assert.deepEqual(fa, fb);
    assert.match(fa['tokenizer_config.json'] as string, /"type": "nemo-bpe"/);
  });

  test('required chars are base symbols even when the corpus lacks them', () => {
    const required = resolveCharsets(['zh-punct', 'ascii']);
    const r = trainBpe(counterOf(ENGLISH), { vocabSize: 900, minCharFrequency: 1, requiredChars: required });
    for (const ch of ['？', '！', '《', '~', '|']) assert.ok(ch in r.encoder, ch);
    assert.equal(gb2312Level1().length, 3755);
    assert.ok(gb2312Level1().includes('们'));
  });

  test('bad options are clear errors', () => {
    assert.throws(() => trainBpe(counterOf(CORPUS), { vocabSize: 100 }), /above 258/);
    assert.throws(() => trainBpe(counterOf(CORPUS), { vocabSize: 300, requiredChars: gb2312Level1() }), /alphabet alone has/);
  });
});

describe('trained vocabularies', () => {
  test('load with BpeTokenizer.load and round-trip any text exactly, without <unk>', async () => {
    const dir = await tempDir();
    try {
      const report = await trainTokenizer(options({ corpus: [await writeCorpus(dir, 'corpus.txt', CORPUS.join('\n\n'))], out: path.join(dir, 'vocab'), vocabSize: 600 }));
      const tok = await BpeTokenizer.load(path.join(dir, 'vocab'));
      assert.equal(tok.vocabSize, report.vocabSize);
      const unk = tok.tokenToId('<unk>');
      const samples = [
        ...ENGLISH,
        ...CHINESE,
        'Mixed 中文 and English, with emoji 😀👍🏽 and ❤️!',
        '从未见过的字：龘靐齉爩 and unseen letters: ßøåñ ΩΨ Ж',
        '  spaces,\ttabs\nand\r\nnewlines  ',
        'ｆｕｌｌ－ｗｉｄｔｈ１２３',
      ];
      for (const s of samples) {
        const ids = tok.encode(s);
        assert.ok(!ids.includes(unk as number), `<unk> in ${JSON.stringify(s)}`);
        assert.equal(tok.decode(ids), s);
      }
      // An unseen character is spelt with its UTF-8 bytes.
      assert.deepEqual(tok.tokenize('龘'), ['<0xE9>', '<0xBE>', '<0x98>']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('two runs of the command write identical files', async () => {
    const dir = await tempDir();
    try {
      const file = await writeCorpus(dir, 'c.txt', CORPUS.join('\n\n'));
      await trainTokenizer(options({ corpus: [file], out: path.join(dir, 'a') }));
      await trainTokenizer(options({ corpus: [file], out: path.join(dir, 'b') }));
      for (const name of ['vocab.json', 'merges.txt', 'tokenizer_config.json']) {
        assert.equal(await readFile(path.join(dir, 'a', name), 'utf8'), await readFile(path.join(dir, 'b', name), 'utf8'), name);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('JSONL corpus, held-out compression report per source', async () => {
    const dir = await tempDir();
    try {
      const jsonl = await writeCorpus(dir, 'c.jsonl', CORPUS.map((text) => JSON.stringify({ text, id: 1 })).join('\n'));
      const plain = await writeCorpus(dir, 'p.txt', ENGLISH.join('\n\n'));
      const report = await trainTokenizer(options({ corpus: [jsonl, plain], out: path.join(dir, 'v'), holdoutEvery: 3 }));
      assert.deepEqual(report.compression.map((r) => r.source), [jsonl, plain]);
      for (const row of report.compression) {
        assert.ok(row.charsPerToken > 1, `${row.source}: ${row.charsPerToken}`);
        assert.equal(row.exactRoundTrip, true);
      }
      assert.equal(report.trainDocuments, CORPUS.length - Math.floor(CORPUS.length / 3) + ENGLISH.length - 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('bad input: empty corpus, broken JSONL line, missing file', async () => {
    const dir = await tempDir();
    try {
      const empty = await writeCorpus(dir, 'empty.txt', '\n\n');
      await assert.rejects(trainTokenizer(options({ corpus: [empty], out: path.join(dir, 'v') })), /corpus is empty/);
      const broken = await writeCorpus(dir, 'b.jsonl', '{"text": "ok"}\n{"text": oops}\n');
      await assert.rejects(trainTokenizer(options({ corpus: [broken], out: path.join(dir, 'v') })), new RegExp(`${path.basename(broken)}:2: not valid JSON`));
      const noText = await writeCorpus(dir, 'n.jsonl', '{"body": "x"}\n');
      await assert.rejects(trainTokenizer(options({ corpus: [noText], out: path.join(dir, 'v') })), /n\.jsonl:1: expected an object with a string "text" field/);
      await assert.rejects(trainTokenizer(options({ corpus: [path.join(dir, 'missing.txt')], out: path.join(dir, 'v') })), /missing\.txt: cannot read \(ENOENT\)/);
      await assert.rejects(trainTokenizer(options({ builtin: ['klingon'], out: path.join(dir, 'v') })), /unknown built-in corpus "klingon"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the command line has --help', () => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'model/cli/cli.ts'), 'train-tokenizer', '--help'], { encoding: 'utf8', cwd: REPO_ROOT });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /--vocab-size/);
    assert.match(res.stdout, /--corpus/);
  });
});

function options(o: Partial<TrainTokenizerOptions> & { out: string }): TrainTokenizerOptions {
  return {
    corpus: [],
    builtin: [],
    vocabSize: 500,
    cjk: 'char',
    requireCharset: [],
    minCharFrequency: 1,
    characterCoverage: 1,
    specialTokens: ['<unk>', '<|endoftext|>'],
    holdoutEvery: 0,
    maxCharsPerSource: 0,
    progress: false,
    ...o,
  };
}

async function writeCorpus(dir: string, name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}
