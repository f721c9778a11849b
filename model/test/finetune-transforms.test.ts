// The four input transformations build exactly GPT-1's sequences (checked token by token), cut
// over-long inputs to the context, and fine-tuning JSONL files are validated line by line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BpeTokenizer } from '../tokenizer/bpe.js';
import { FinetuneDataError, labelSpaceOf, labelTargets, parseExamples, readExamples } from '../finetune/data.js';
import { SPECIAL_TOKEN_NAMES, type SpecialIds } from '../finetune/tasks.js';
import {
  classificationInput, encodeInput, entailmentInput, fitPair, multipleChoiceInput, similarityInput, TransformError,
} from '../finetune/transforms.js';

/** A character-level GPT-1-flavour vocabulary (every letter with and without `</w>`), no merges. */
function charTokenizer(): BpeTokenizer {
  const encoder: Record<string, number> = {};
  for (const c of 'abcdefghijklmnopqrstuvwxyz.,_') {
    encoder[c] = Object.keys(encoder).length;
    encoder[`${c}</w>`] = Object.keys(encoder).length;
  }
  encoder['<unk>'] = Object.keys(encoder).length;
  return BpeTokenizer.fromData(encoder, []);
}

function setup(): { tok: BpeTokenizer; sp: SpecialIds; words: (ids: number[]) => string[] } {
  const tok = charTokenizer();
  const before = tok.vocabSize;
  const [start, delim, extract] = tok.addSpecialTokens([SPECIAL_TOKEN_NAMES.start, SPECIAL_TOKEN_NAMES.delim, SPECIAL_TOKEN_NAMES.extract]);
  assert.deepEqual([start, delim, extract], [before, before + 1, before + 2], 'special tokens are appended at the end of the vocabulary');
  return { tok, sp: { start, delim, extract }, words: (ids) => ids.map((id) => tok.idToToken(id)!) };
}

test('classification: [start] text [extract], token by token', () => {
  const { tok, sp, words } = setup();
  const r = encodeInput('classification', { text: 'Cat sat.', label: 'x' }, (s) => tok.encode(s), sp, 64);
  assert.equal(r.sequences.length, 1);
  assert.deepEqual(words(r.sequences[0]), ['_start_', 'c', 'a', 't</w>', 's', 'a', 't</w>', '.</w>', '_classify_']);
  assert.equal(r.truncated, false);
});

test('entailment: [start] premise [delim] hypothesis [extract], token by token', () => {
  const { tok, sp, words } = setup();
  const r = encodeInput('entailment', { premise: 'a cat', hypothesis: 'no', label: 1 }, (s) => tok.encode(s), sp, 64);
  assert.deepEqual(words(r.sequences[0]), ['_start_', 'a</w>', 'c', 'a', 't</w>', '_delimiter_', 'n', 'o</w>', '_classify_']);
  // The ids themselves, not only their names: start/delim/extract are the three appended ids.
  assert.deepEqual(r.sequences[0], [sp.start, tok.tokenToId('a</w>'), tok.tokenToId('c'), tok.tokenToId('a'), tok.tokenToId('t</w>'),
    sp.delim, tok.tokenToId('n'), tok.tokenToId('o</w>'), sp.extract]);
});

test('similarity: both orders, and swapping A and B gives the same two sequences', () => {
  const { tok, sp, words } = setup();
  const enc = (s: string) => tok.encode(s);
  const r = encodeInput('similarity', { a: 'ab', b: 'xyz', label: 0 }, enc, sp, 64);
  assert.deepEqual(r.sequences.map(words), [
    ['_start_', 'a', 'b</w>', '_delimiter_', 'x', 'y', 'z</w>', '_classify_'],
    ['_start_', 'x', 'y', 'z</w>', '_delimiter_', 'a', 'b</w>', '_classify_'],
  ]);
  const swapped = encodeInput('similarity', { a: 'xyz', b: 'ab', label: 0 }, enc, sp, 64);
  assert.deepEqual(swapped.sequences, [r.sequences[1], r.sequences[0]]);
  // Symmetric also when cut: both orders keep the same tokens of each text.
  const long = similarityInput(enc('abcdefghij'), enc('klm'), sp, 10);
  const longSwapped = similarityInput(enc('klm'), enc('abcdefghij'), sp, 10);
  assert.deepEqual(longSwapped.sequences, [long.sequences[1], long.sequences[0]]);
  assert.ok(long.sequences.every((s) => s.length === 10));
});

test('multiple choice: one [start] context [delim] answer [extract] per choice', () => {
  const { tok, sp, words } = setup();
  const r = encodeInput('multiple-choice', { context: 'go', choices: ['up', 'a', 'down'], label: 2 }, (s) => tok.encode(s), sp, 64);
  assert.deepEqual(r.sequences.map(words), [
    ['_start_', 'g', 'o</w>', '_delimiter_', 'u', 'p</w>', '_classify_'],
    ['_start_', 'g', 'o</w>', '_delimiter_', 'a</w>', '_classify_'],
    ['_start_', 'g', 'o</w>', '_delimiter_', 'd', 'o', 'w', 'n</w>', '_classify_'],
  ]);
  assert.throws(() => multipleChoiceInput([1], [[2]], sp, 16), TransformError);
});

test('special-token names typed in text are plain text, never the special ids', () => {
  const { tok, sp } = setup();
  const r = encodeInput('classification', { text: '_classify_', label: 'x' }, (s) => tok.encode(s), sp, 64);
  const inner = r.sequences[0].slice(1, -1);
  assert.ok(inner.length > 1);
  assert.ok(!inner.includes(sp.extract) && !inner.includes(sp.start) && !inner.includes(sp.delim));
});

test('over-long inputs are cut to the context: text keeps its start, a premise its end, a hypothesis its start', () => {
  const { sp } = setup();
  const text = Array.from({ length: 20 }, (_, i) => 100 + i);
  const c = classificationInput(text, sp, 8);
  assert.deepEqual(c.sequences[0], [sp.start, 100, 101, 102, 103, 104, 105, sp.extract]);
  assert.equal(c.truncated, true);
  const premise = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const e = entailmentInput(premise, [20, 21], sp, 9);
  assert.deepEqual(e.sequences[0], [sp.start, 6, 7, 8, 9, sp.delim, 20, 21, sp.extract]);
  assert.equal(e.truncated, true);
  const both = entailmentInput(premise, [20, 21, 22, 23, 24, 25, 26, 27], sp, 9);
  assert.deepEqual(both.sequences[0], [sp.start, 7, 8, 9, sp.delim, 20, 21, 22, sp.extract]);
  const fits = entailmentInput([1, 2], [3], sp, 6);
  assert.equal(fits.truncated, false);
  assert.equal(fits.sequences[0].length, 6);
  assert.throws(() => classificationInput([1], sp, 1), TransformError);
});

test('fitPair: never exceeds the budget, keeps what fits, cuts the longer piece first', () => {
  for (let a = 0; a <= 12; a++) {
    for (let b = 0; b <= 12; b++) {
      for (let budget = 0; budget <= 14; budget++) {
        const [ka, kb] = fitPair(a, b, budget);
        assert.ok(ka >= 0 && kb >= 0 && ka <= a && kb <= b);
        if (a + b <= budget) assert.deepEqual([ka, kb], [a, b]);
        else assert.equal(ka + kb, budget, `fitPair(${a}, ${b}, ${budget})`);
        if (a + b > budget && ka < a && kb < b) assert.ok(Math.abs(ka - kb) <= 1, 'both cut: equal lengths');
      }
    }
  }
});

test('JSONL: every bad line is reported with its line number and nothing is returned', () => {
  const content = [
    '{"text": "fine", "label": "pos"}',
    '{"text": "fine", "label": "neg"}',
    '{"text": "no label"}',
    'not json at all',
    '',
    '{"text": "", "label": "pos"}',
    '[1, 2]',
    '{"text": 5, "label": "pos"}',
    '{"text": "ok", "label": null}',
  ].join('\n');
  let err: FinetuneDataError | undefined;
  try {
    parseExamples('classification', content, 'train.jsonl');
  } catch (e) {
    err = e as FinetuneDataError;
  }
  assert.ok(err instanceof FinetuneDataError, 'a broken file is rejected');
  assert.deepEqual(err.lines, [3, 4, 6, 7, 8, 9]);
  assert.match(err.message, /train\.jsonl: 6 bad lines/);
  assert.match(err.message, /line 3: "label" is missing/);
  assert.match(err.message, /line 4: not valid JSON/);
  assert.match(err.message, /line 6: "text" must not be empty/);
  assert.match(err.message, /line 7: expected a JSON object/);
});

test('JSONL: task shapes, multiple-choice label range, empty files, unreadable files', async () => {
  const mc = (o: unknown) => JSON.stringify(o);
  assert.throws(
    () => parseExamples('multiple-choice', [mc({ context: 'c', choices: ['a', 'b'], label: 2 }), mc({ context: 'c', choices: ['a'], label: 0 }), mc({ context: 'c', choices: ['a', 'b'], label: 0.5 })].join('\n')),
    (e: FinetuneDataError) => e.lines.join() === '1,2,3' && /line 1: "label" must be an index into choices/.test(e.message) && /at least 2 choices/.test(e.message),
  );
  assert.throws(() => parseExamples('entailment', '{"premise": "a", "label": 1}'), /"hypothesis" is missing/);
  assert.throws(() => parseExamples('similarity', '\n\n'), /no examples/);
  const ok = parseExamples('entailment', '\uFEFF{"premise": "a", "hypothesis": "b", "label": 1}\r\n\r\n{"premise": "c", "hypothesis": "d", "label": 0, "extra": true}\n');
  assert.equal(ok.examples.length, 2);
  assert.deepEqual(ok.lines, [1, 3]);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-ft-data-'));
  try {
    await assert.rejects(readExamples('classification', path.join(dir, 'missing.jsonl')), /missing\.jsonl: cannot read \(no such file\)/);
    const huge = path.join(dir, 'huge.jsonl');
    await writeFile(huge, `${JSON.stringify({ text: 'x'.repeat(200_000), label: 'a' })}\n`);
    await assert.rejects(readExamples('classification', huge), /line 1: "text" must be at most/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('labels: classes from the training data, unknown classes rejected by line, scores for real-valued similarity', () => {
  const train = parseExamples('classification', ['{"text":"a","label":"tang"}', '{"text":"b","label":"song"}', '{"text":"c","label":"tang"}'].join('\n'));
  const space = labelSpaceOf('classification', train);
  assert.deepEqual(space, { kind: 'class', names: ['song', 'tang'] });
  assert.deepEqual(labelTargets(space, train), [1, 0, 1]);
  const valid = parseExamples('classification', ['{"text":"a","label":"tang"}', '{"text":"b","label":"yuan"}'].join('\n'), 'valid.jsonl');
  assert.throws(() => labelTargets(space, valid), (e: FinetuneDataError) => e.lines.join() === '2' && /line 2: label "yuan"/.test(e.message));
  const numeric = parseExamples('entailment', ['{"premise":"a","hypothesis":"b","label":10}', '{"premise":"a","hypothesis":"b","label":2}'].join('\n'));
  assert.deepEqual(labelSpaceOf('entailment', numeric), { kind: 'class', names: ['2', '10'] });
  const scores = parseExamples('similarity', ['{"a":"x","b":"y","label":0.5}', '{"a":"x","b":"y","label":4}'].join('\n'));
  assert.deepEqual(labelSpaceOf('similarity', scores), { kind: 'score', min: 0.5, max: 4 });
  const one = parseExamples('classification', '{"text":"a","label":"x"}');
  assert.throws(() => labelSpaceOf('classification', one), /only one label/);
  const mc = parseExamples('multiple-choice', '{"context":"c","choices":["a","b","c"],"label":2}');
  assert.deepEqual(labelTargets(labelSpaceOf('multiple-choice', mc), mc), [2]);
});

test('metrics: accuracy, macro-F1, Pearson, Spearman with ties', async () => {
  const { accuracy, macroF1, pearson, ranks, spearman } = await import('../finetune/metrics.js');
  assert.equal(accuracy([0, 1, 1, 0], [0, 1, 0, 0]), 0.75);
  // class 0: tp 2, fp 0, fn 1 → F1 0.8; class 1: tp 1, fp 1, fn 0 → F1 2/3
  assert.ok(Math.abs(macroF1([0, 1, 1, 0], [0, 1, 0, 0], 2) - (0.8 + 2 / 3) / 2) < 1e-12);
  assert.ok(Math.abs(pearson([1, 2, 3], [2, 4, 6]) - 1) < 1e-12);
  assert.ok(Math.abs(pearson([1, 2, 3], [3, 2, 1]) + 1) < 1e-12);
  assert.deepEqual(ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1]);
  assert.ok(Math.abs(spearman([1, 2, 3, 4], [1, 4, 9, 100]) - 1) < 1e-12);
  assert.ok(Number.isNaN(pearson([1, 1, 1], [1, 2, 3])));
  assert.throws(() => accuracy([], []), RangeError);
});

test('fine-tuning schedule: linear warm-up, then linear decay to zero', async () => {
  const { learningRate } = await import('../train/schedule.js');
  const c = { lr: 1e-3, warmupSteps: 2, steps: 12, minLrRatio: 0, decay: 'linear' as const };
  assert.ok(Math.abs(learningRate(0, c) - 5e-4) < 1e-15);
  assert.ok(Math.abs(learningRate(2, c) - 1e-3) < 1e-15);
  assert.ok(Math.abs(learningRate(7, c) - 5e-4) < 1e-15);
  assert.equal(learningRate(12, c), 0);
  // Without `decay` the pre-training cosine stays the default.
  assert.ok(Math.abs(learningRate(7, { ...c, decay: undefined }) - 5e-4) < 1e-15, 'cosine is also half-way at the midpoint');
  assert.ok(learningRate(4, { ...c, decay: undefined }) > learningRate(4, c));
});
