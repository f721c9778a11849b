// bench:chat on a CDial-layout model (the tiny PyTorch-written fixture): replies are scored after
// the typed cdial prompt — prompt positions with their speaker types, reply tokens as [speaker2]
// ending in [SEP] — equal to the float64 reference, and the command runs on such a folder.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { replyTargetIds, scoreTargets } from '../bench/chat-scoring.js';
import { CdialFormat } from '../chat/cdial-format.js';
import { readCheckpoint } from '../io/checkpoint.js';
import { loadRuntime } from '../inference/runtime.js';
import { WordPieceTokenizer } from '../tokenizer/wordpiece.js';
import { referenceLogits } from './reference.js';
import { createTinyCdialModel } from './tiny-model.js';

const run = promisify(execFile);
const FIX = fileURLToPath(new URL('./fixtures/torch/', import.meta.url));
let dir: string;

// The fixture vocabulary has only these characters: 你好我是谁的吗呢 ，。！？
const data = [
  { messages: [{ role: 'user', content: '你好' }, { role: 'assistant', content: '你好！' }, { role: 'user', content: '你是谁？' }, { role: 'assistant', content: '我是我。' }] },
  { messages: [{ role: 'user', content: '是你吗？' }, { role: 'assistant', content: '是我的。' }] },
  { messages: [{ role: 'user', content: '谁的？' }, { role: 'assistant', content: '你的呢，我的！' }] },
];

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-bench-cdial-'));
  await createTinyCdialModel(path.join(dir, 'model'));
  await writeFile(path.join(dir, 'chat.jsonl'), data.map((d) => JSON.stringify(d)).join('\n') + '\n');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('cdial reply targets are the reply\'s characters then [SEP]', async () => {
  const tok = await WordPieceTokenizer.load(FIX);
  // 你=6 好=7 ！=14 [SEP]=2
  assert.deepEqual(replyTargetIds(new CdialFormat(tok), tok, '你 好\n！'), [6, 7, 14, 2]);
});

test('scores after a typed prompt equal the float64 reference with the same token types', async () => {
  const modelDir = path.join(dir, 'model');
  const rt = await loadRuntime(modelDir, { backend: 'cpu', warmUp: false });
  try {
    const ck = await readCheckpoint(modelDir);
    const arrays = new Map([...ck.arrays].map(([k, v]) => [k, v.data]));
    const format = new CdialFormat(rt.tokenizer as WordPieceTokenizer);
    const prompt = format.buildPrompt([{ role: 'user', text: '你好' }, { role: 'bot', text: '你好！' }], '你是谁？', { maxPromptTokens: 400 });
    const targets = ['我是我。', '是我的。', '你'].map((r) => replyTargetIds(format, rt.tokenizer, r));
    const typed = scoreTargets(rt.engine, prompt, targets);
    const untyped = scoreTargets(rt.engine, prompt.ids, targets);
    targets.forEach((t, j) => {
      const types = [...prompt.tokenTypes!, ...t.map(() => prompt.replyTokenType!)];
      const rows = referenceLogits(ck.config, arrays, [...prompt.ids, ...t], types);
      let want = 0;
      t.forEach((tok, k) => {
        const row = rows[prompt.ids.length - 1 + k];
        const max = Math.max(...row);
        want += row[tok] - max - Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      });
      assert.equal(typed[j].tokens, t.length);
      assert.ok(Math.abs(typed[j].logProb - want) < 1e-3, `candidate ${j}: ${typed[j].logProb} vs ${want}`);
      assert.ok(Math.abs(untyped[j].logProb - want) > 1e-2, `candidate ${j}: the types change the score`);
    });
    assert.throws(() => scoreTargets(rt.engine, { ids: prompt.ids, tokenTypes: [0] }, targets), /1 token types for a prompt of/);
  } finally {
    rt.engine.dispose();
  }
});

test('npm run bench:chat on a CDial-layout folder scores and samples through the cdial format', async () => {
  const args = ['--import', 'tsx', 'model/bench/chat.ts', '--model', path.join(dir, 'model'), '--data', path.join(dir, 'chat.jsonl'), '--json', '--seed', '5', '--backend', 'cpu'];
  const r = JSON.parse((await run(process.execPath, args, { timeout: 120_000 })).stdout.trim()) as Record<string, number>;
  assert.equal(r.n, 4);
  assert.ok(r.ppl > 1 && Number.isFinite(r.ppl), `ppl ${r.ppl}`);
  for (const k of ['hits1', 'distinct1', 'distinct2', 'languageMatch', 'empty']) assert.ok(r[k] >= 0 && r[k] <= 1, `${k} ${r[k]}`);
  const table = (await run(process.execPath, args.filter((a) => a !== '--json'), { timeout: 120_000 })).stdout;
  assert.match(table, /\(cdial\)/);
});
