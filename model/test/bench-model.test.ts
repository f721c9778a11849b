// bench:model on a CDial-layout folder (the tiny PyTorch-written fixture as pytorch_model.bin +
// vocab.txt): the figures come out for a model of another vocabulary than GPT-1's, its streams'
// prompts built by the cdial format with token types. Speed itself is not judged here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { createTinyCdialModel } from './tiny-model.js';

const run = promisify(execFile);
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-bench-model-'));
  await createTinyCdialModel(dir);
});
after(() => rm(dir, { recursive: true, force: true }));

test('bench:model --model on a CDial-layout folder reports its shape, format and weights file', async () => {
  const args = ['--import', 'tsx', 'model/bench/model.ts', '--model', dir, '--streams', '1,2', '--tokens', '3', '--repeat', '1', '--backend', 'cpu', '--json'];
  const r = JSON.parse((await run(process.execPath, args, { timeout: 120_000 })).stdout) as Record<string, unknown>;
  assert.equal(r.chatFormat, 'cdial');
  assert.equal(r.vocabSize, 32);
  assert.equal(r.checkpointBytes, (await stat(path.join(dir, 'pytorch_model.bin'))).size);
  const aggregate = r.aggregate as Record<string, { tokensPerSecond: number }>;
  assert.deepEqual(Object.keys(aggregate).sort(), ['1', '2']);
  for (const a of Object.values(aggregate)) assert.ok(a.tokensPerSecond > 0);
  await assert.rejects(run(process.execPath, ['--import', 'tsx', 'model/bench/model.ts', '--shape', 'nope']), /--shape must be one of gpt1, cdial/);
});
