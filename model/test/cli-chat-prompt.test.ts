// `npm run model -- chat-prompt`: the prompt for the next reply, for a nemo-lines model (the tiny
// BPE one) and a CDial-layout folder (the fixture vocab.txt: ids and speaker token types).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { BpeTokenizer } from '../tokenizer/bpe.js';
import { createTinyModel } from './tiny-model.js';

const run = promisify(execFile);
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'model/cli/cli.ts', 'chat-prompt', ...args], { timeout: 120_000 });
const FIX = fileURLToPath(new URL('./fixtures/torch/', import.meta.url));
let tiny: string;
let cdial: string;

interface PromptJson { format: string; ids: number[]; tokenTypes: number[] | null; replyTokenType: number | null; droppedTurns: number; tokens: string[] }

before(async () => {
  tiny = await mkdtemp(path.join(tmpdir(), 'nemo-chat-prompt-'));
  await createTinyModel(tiny, { seed: 3, nPositions: 128 });
  cdial = await mkdtemp(path.join(tmpdir(), 'nemo-chat-prompt-cdial-'));
  for (const f of ['config.json', 'vocab.txt']) await copyFile(path.join(FIX, f), path.join(cdial, f));
});
after(async () => {
  await rm(tiny, { recursive: true, force: true });
  await rm(cdial, { recursive: true, force: true });
});

test('nemo-lines: the prompt is the conversation in User:/Bot: lines, ending in "Bot:", without types', async () => {
  const p = JSON.parse((await cli('--model', tiny, '--turn', 'hello there', '--turn', 'I am fine', '--turn', 'what is the weather like?', '--json')).stdout) as PromptJson;
  assert.equal(p.format, 'nemo-lines');
  assert.equal((await BpeTokenizer.load(tiny)).decode(p.ids), 'User: hello there\nBot: I am fine\nUser: what is the weather like?\nBot:');
  assert.equal(p.tokenTypes, null);
  assert.equal(p.replyTokenType, null);
  assert.equal(p.droppedTurns, 0);
  assert.equal(p.tokens.length, p.ids.length);
  // A budget the whole conversation does not fit: the oldest turn goes, whole.
  const cut = JSON.parse((await cli('--model', tiny, '--turn', 'hello there', '--turn', 'I am fine', '--turn', 'what is the weather like?', '--max-prompt-tokens', String(p.ids.length - 1), '--json')).stdout) as PromptJson;
  assert.equal(cut.droppedTurns, 1);
  assert.equal((await BpeTokenizer.load(tiny)).decode(cut.ids), 'Bot: I am fine\nUser: what is the weather like?\nBot:');
});

test('cdial: [CLS] [speaker1] … [speaker2] with each position typed by its speaker', async () => {
  // [CLS]=0 你=6 好=7 我=8 是=9 谁=10 呢=13 ？=15 [speaker1]=30 [speaker2]=31
  const p = JSON.parse((await cli('--model', cdial, '--turn', '你好', '--turn', '我是谁', '--turn', '你呢？', '--json')).stdout) as PromptJson;
  assert.equal(p.format, 'cdial');
  assert.deepEqual(p.ids, [0, 30, 6, 7, 31, 8, 9, 10, 30, 6, 13, 15, 31]);
  assert.deepEqual(p.tokenTypes, [0, 30, 30, 30, 31, 31, 31, 31, 30, 30, 30, 30, 31]);
  assert.equal(p.replyTokenType, 31);
  assert.deepEqual(p.tokens.slice(0, 5), ['[CLS]', '[speaker1]', '你', '好', '[speaker2]']);
  const table = (await cli('--model', cdial, '--turn', '你好')).stdout;
  assert.match(table, /format cdial, 5 tokens/);
  assert.match(table, /reply tokens take type 31/);
});

test('an even number of turns (no message to answer) is refused with a clear error', async () => {
  await assert.rejects(cli('--model', cdial, '--turn', '你好', '--turn', '我是谁'), /odd number of turns.*got 2/);
  await assert.rejects(cli('--model', cdial), /got 0/);
  assert.match((await run(process.execPath, ['--import', 'tsx', 'model/cli/cli.ts', 'chat-prompt', '--help'])).stdout, /--turn <text>/);
});
