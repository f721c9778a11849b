// The finetune / evaluate / predict commands end to end on a tiny real model: a broken data file
// stops the run before anything is written, and a fine-tuned folder is evaluated and queried.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../backend.js';
import { createTinyModel } from './tiny-model.js';

await initBackend();
const root = await mkdtemp(path.join(os.tmpdir(), 'nemo-ft-cli-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
const base = path.join(root, 'base');
await createTinyModel(base);

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'model/cli/cli.ts', ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const rows = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify(i % 2 ? { premise: '你好', hypothesis: '今天天气很好', label: 'yes' } : { premise: 'hello there', hypothesis: 'the cat', label: 'no' }));

test('a data file with bad lines is rejected with their line numbers and nothing is written', async () => {
  const bad = path.join(root, 'bad.jsonl');
  await writeFile(bad, [...rows(2), '{"premise": "a", "label": "no"}', 'oops', ...rows(2)].join('\n'));
  const out = path.join(root, 'never');
  const r = cli('finetune', '--task', 'entailment', '--model', base, '--train', bad, '--valid', bad, '--out', out);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.jsonl: 2 bad lines for task entailment/);
  assert.match(r.stderr, /line 3: "hypothesis" is missing/);
  assert.match(r.stderr, /line 4: not valid JSON/);
  assert.equal(existsSync(out), false);
});

test('finetune → evaluate → predict', async () => {
  const data = path.join(root, 'ent.jsonl');
  await writeFile(data, rows(8).join('\n'));
  const out = path.join(root, 'ft');
  const f = cli('finetune', '--task', 'entailment', '--model', base, '--train', data, '--valid', data, '--out', out,
    '--epochs', '2', '--lr', '0.01', '--batch-size', '4', '--json', '--no-progress');
  assert.equal(f.code, 0, f.stderr);
  const res = JSON.parse(f.stdout) as { finished: boolean; step: number; valid: { accuracy: number } };
  assert.equal(res.finished, true);
  assert.equal(res.step, 4);
  assert.match(f.stderr, /classes no, yes; 8 training \/ 8 validation examples, 4 updates/);
  const e = cli('evaluate', '--model', out, '--data', data, '--json');
  assert.equal(e.code, 0, e.stderr);
  const m = JSON.parse(e.stdout) as { accuracy: number; macroF1: number; examples: number };
  assert.equal(m.examples, 8);
  assert.equal(m.accuracy, res.valid.accuracy, 'the saved model scores as it did at the end of training');
  const p = cli('predict', '--model', out, '--premise', 'hello there', '--hypothesis', 'the cat', '--json');
  assert.equal(p.code, 0, p.stderr);
  const pred = JSON.parse(p.stdout) as { label: string; probs: number[] };
  assert.ok(['no', 'yes'].includes(pred.label));
  assert.ok(Math.abs(pred.probs[0] + pred.probs[1] - 1) < 1e-5);
  const wrong = cli('evaluate', '--model', out, '--data', data, '--task', 'similarity');
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /fine-tuned for entailment, not similarity/);
  const missing = cli('predict', '--model', out, '--premise', 'only one side');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /"hypothesis" is missing/);
});
