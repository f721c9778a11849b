// tfjs's "install our node backend" banner is not printed by a process that uses the model code
// (the backend choice is deliberate: model/backend.ts).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

test('the cpu backend\'s "install the node backend" banner stays quiet', async () => {
  // A fresh process without the test runner's preload: only what model/backend.ts imports.
  const script = "const tf = await import('@tensorflow/tfjs'); await import('./model/backend.ts'); await tf.setBackend('cpu'); tf.tensor([1, 2]).dataSync(); console.log('ran');";
  const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
  assert.equal(stdout.trim(), 'ran');
  assert.doesNotMatch(stderr, /node backend/);
});
