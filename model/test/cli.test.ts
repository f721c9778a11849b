// The model command line on a tiny real model: generate (--json), logits, info, --help.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { createTinyModel } from './tiny-model.js';

const run = promisify(execFile);
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'model/cli/cli.ts', ...args], { timeout: 120_000 });
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nemo-cli-'));
  await createTinyModel(dir, { seed: 2 });
});
after(() => rm(dir, { recursive: true, force: true }));

test('generate --json is reproducible with a seed and honours --max-tokens', async () => {
  const args = ['generate', '--model', dir, '--prompt', 'User: hello\nBot:', '--max-tokens', '7', '--min-tokens', '7', '--seed', '5', '--json'];
  const a = JSON.parse((await cli(...args)).stdout);
  const b = JSON.parse((await cli(...args)).stdout);
  assert.equal(a.completionTokens, 7);
  assert.equal(a.finishReason, 'length');
  assert.equal(a.text, b.text);
  assert.equal(a.seed, 5);
});

test('logits prints one row per position; info describes the model; bad input is refused', async () => {
  const rows = JSON.parse((await cli('logits', '--model', dir, '--ids', '1,2,3')).stdout) as number[][];
  assert.equal(rows.length, 3);
  assert.equal(rows[0].length, 360);
  const info = JSON.parse((await cli('info', '--model', dir, '--json')).stdout);
  assert.equal(info.config.nLayer, 2);
  assert.equal(info.format, 'hf');
  assert.ok(info.parameters > 0);
  await assert.rejects(cli('logits', '--model', dir, '--ids', '1,x'), /--ids must be comma-separated/);
  await assert.rejects(cli('generate', '--model', path.join(dir, 'nope'), '--prompt', 'x'), /does not exist/);
  const help = (await cli('generate', '--help')).stdout;
  assert.match(help, /--top-p/);
});

test('the chat REPL answers every line, piped input included, and keeps going after /reset', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', 'model/cli/chat-repl.ts', '--model', dir, '--max-tokens', '5', '--seed', '1'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stdin.end('hello\n/reset\nhow are you?\n');
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0);
  assert.equal(out.match(/bot> /g)?.length, 2, out);
  assert.match(out, /\(history cleared\)/);
});
