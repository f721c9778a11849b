// bench:chat: the chat JSONL reader, reply scoring against the plain float64 reference model,
// distinct-n, and the command itself on a tiny model and a 3-conversation file (and on one
// chat-tuned with a next-utterance head, which adds the head's Hits@1).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { parseChatJsonl } from '../bench/chat-data.js';
import { distinctN, replyIds, scoreTargets } from '../bench/chat-scoring.js';
import { chatFormatFor } from '../chat/registry.js';
import { buildCandidates } from '../finetune/chat/candidates.js';
import { encodeConversations } from '../finetune/chat/sequences.js';
import type { SpecialIds } from '../finetune/tasks.js';
import { multipleChoiceInput } from '../finetune/transforms.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';
import { parseChatConfig } from '../finetune/chat/config.js';
import { parseConversations } from '../finetune/chat/data.js';
import { trainChat } from '../finetune/chat/trainer.js';
import { readCheckpoint } from '../io/checkpoint.js';
import { loadRuntime } from '../inference/runtime.js';
import { createTinyModel } from './tiny-model.js';
import { referenceLogits } from './reference.js';

const run = promisify(execFile);
let dir: string;
const data = [
  { messages: [{ role: 'user', content: 'hello there, how are you today?' }, { role: 'assistant', content: 'I am fine, thank you. And you?' }, { role: 'user', content: 'what is the weather like?' }, { role: 'assistant', content: 'It is sunny and warm, a good day for a walk.' }] },
  { messages: [{ role: 'system', content: 'You are Nemo.' }, { role: 'user', content: '你好，今天天气怎么样？' }, { role: 'assistant', content: '今天天气很好，我们去公园散步吧。' }] },
  { messages: [{ role: 'user', content: 'tell me a story about a cat.' }, { role: 'assistant', content: 'Once upon a time there was a small cat.' }, { role: 'user', content: '谢谢' }, { role: 'assistant', content: '不客气！' }] },
];

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-bench-chat-'));
  await createTinyModel(path.join(dir, 'model'), { nPositions: 128 });
  await writeFile(path.join(dir, 'chat.jsonl'), data.map((d) => JSON.stringify({ ...d, source: 'test' })).join('\n') + '\n');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('chat JSONL: every assistant turn with the turns before it; bad lines name their line', () => {
  const ex = parseChatJsonl(data.map((d) => JSON.stringify(d)).join('\n'), 'x.jsonl');
  assert.equal(ex.length, 5);
  assert.deepEqual(ex[1], {
    conversation: 0, system: undefined, message: 'what is the weather like?', reply: 'It is sunny and warm, a good day for a walk.',
    history: [{ role: 'user', text: 'hello there, how are you today?' }, { role: 'bot', text: 'I am fine, thank you. And you?' }],
  });
  assert.equal(ex[2].system, 'You are Nemo.');
  assert.equal(ex[4].conversation, 2);
  assert.throws(() => parseChatJsonl('{"messages":[]}\n', 'x.jsonl'), /x\.jsonl:1: expected/);
  assert.throws(() => parseChatJsonl('\n{"messages":[{"role":"user","content":"hi"}]}', 'x.jsonl'), /x\.jsonl:2: the conversation has no assistant turn/);
  assert.throws(() => parseChatJsonl('{"messages":[{"role":"robot","content":"hi"}]}', 'x.jsonl'), /message 1 has an unknown role "robot"/);
  assert.throws(() => parseChatJsonl('{"messages":[{"role":"user","content":" "}]}', 'x.jsonl'), /message 1 has empty content/);
  assert.throws(() => parseChatJsonl('{nope', 'x.jsonl'), /x\.jsonl:1: not JSON/);
});

test('reply scoring equals the float64 reference model\'s log-likelihood', async () => {
  const modelDir = path.join(dir, 'model');
  const rt = await loadRuntime(modelDir, { backend: 'cpu', warmUp: false });
  try {
    const ck = await readCheckpoint(modelDir);
    const arrays = new Map([...ck.arrays].map(([k, v]) => [k, v.data]));
    const prompt = [5, 17, 42, 9];
    const targets = [[3, 8, 100], [7], [250, 251, 252, 253, 254]];
    const scores = scoreTargets(rt.engine, prompt, targets);
    targets.forEach((t, j) => {
      const rows = referenceLogits(ck.config, arrays, [...prompt, ...t]);
      let want = 0;
      t.forEach((tok, k) => {
        const row = rows[prompt.length - 1 + k];
        const max = Math.max(...row);
        want += row[tok] - max - Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      });
      assert.equal(scores[j].tokens, t.length);
      assert.ok(Math.abs(scores[j].logProb - want) < 1e-3, `candidate ${j}: ${scores[j].logProb} vs ${want}`);
    });
  } finally {
    rt.engine.dispose();
  }
});

test('distinct-n counts Han characters one by one and other words whole', () => {
  assert.equal(distinctN(['a b a b'], 1), 0.5);
  assert.equal(distinctN(['a b a b'], 2), 2 / 3);
  assert.equal(distinctN(['你好你好'], 1), 0.5);
  assert.equal(distinctN(['', '!!'], 1), 0);
});

test('npm run bench:chat --json on a tiny model: values in range, the same seed gives the same figures', async () => {
  const args = ['--import', 'tsx', 'model/bench/chat.ts', '--model', path.join(dir, 'model'), '--data', path.join(dir, 'chat.jsonl'), '--json', '--seed', '3', '--backend', 'cpu'];
  const first = JSON.parse((await run(process.execPath, args)).stdout.trim()) as Record<string, number>;
  assert.deepEqual(Object.keys(first).sort(), ['distinct1', 'distinct2', 'empty', 'hits1', 'languageMatch', 'n', 'ppl']);
  assert.equal(first.n, 5);
  assert.ok(first.ppl > 1 && Number.isFinite(first.ppl), `ppl ${first.ppl}`);
  for (const k of ['hits1', 'distinct1', 'distinct2', 'languageMatch', 'empty']) assert.ok(first[k] >= 0 && first[k] <= 1, `${k} ${first[k]}`);
  assert.equal(first.hits1 * 5, Math.round(first.hits1 * 5), 'a share of five turns');
  const second = JSON.parse((await run(process.execPath, args)).stdout.trim()) as Record<string, number>;
  assert.deepEqual(second, first);
  const limited = JSON.parse((await run(process.execPath, [...args, '--limit', '2'])).stdout.trim()) as Record<string, number>;
  assert.equal(limited.n, 2);
  await assert.rejects(run(process.execPath, ['--import', 'tsx', 'model/bench/chat.ts', '--model', path.join(dir, 'model')]), /required option '--data <file>'/);
});

test('bench:chat on a model with a next-utterance head also ranks by the head: hits1Head in [0,1], the same for the same seed', async () => {
  const tuned = path.join(dir, 'tuned-head');
  const train = parseConversations(data.map((d) => JSON.stringify(d)).join('\n'), path.join(dir, 'chat.jsonl'));
  const res = await trainChat({
    baseDir: path.join(dir, 'model'), train, outDir: tuned, progress: 'none',
    config: parseChatConfig({ mcCoef: 1, numCandidates: 2, maxSteps: 3, batchSize: 3, lr: 0.005, seed: 1 }),
  });
  assert.equal(res.finished, true);
  // The bench reads a reply as the trainer wrote its true candidate: same prompt, same reply ids, same transform.
  const tok = await BpeTokenizer.load(tuned);
  const { format } = await chatFormatFor(tuned, tok);
  const spec = JSON.parse(await readFile(path.join(tuned, 'finetune.json'), 'utf8')) as { specialIds: SpecialIds; maxLen: number };
  const { sequences } = encodeConversations(train.conversations, tok, spec.maxLen);
  const trained = buildCandidates(sequences, 2, spec.specialIds, spec.maxLen, 1);
  const examples = parseChatJsonl(data.map((d) => JSON.stringify(d)).join('\n'), 'x.jsonl');
  sequences.forEach((seq, i) => {
    const e = examples.filter((x) => x.conversation === seq.conversation).at(-1)!;
    const prompt = format.buildPrompt(e.history, e.message, { system: e.system, maxPromptTokens: 64 });
    const reply = replyIds(format, tok, e.reply);
    const bench = multipleChoiceInput(prompt.ids, [reply, reply], spec.specialIds, spec.maxLen).sequences[0];
    assert.deepEqual(bench, trained.inputs[i].sequences[trained.targets[i]], `conversation ${seq.conversation}`);
  });
  const args = ['--import', 'tsx', 'model/bench/chat.ts', '--model', tuned, '--data', path.join(dir, 'chat.jsonl'), '--json', '--seed', '3', '--backend', 'cpu'];
  const first = JSON.parse((await run(process.execPath, args)).stdout.trim()) as Record<string, number>;
  assert.deepEqual(Object.keys(first).sort(), ['distinct1', 'distinct2', 'empty', 'hits1', 'hits1Head', 'languageMatch', 'n', 'ppl']);
  assert.ok(first.hits1Head >= 0 && first.hits1Head <= 1, `hits1Head ${first.hits1Head}`);
  assert.equal(first.hits1Head * 5, Math.round(first.hits1Head * 5), 'a share of five turns');
  const second = JSON.parse((await run(process.execPath, args)).stdout.trim()) as Record<string, number>;
  assert.deepEqual(second, first);
  const text = (await run(process.execPath, args.filter((a) => a !== '--json'))).stdout;
  assert.match(text, /Hits@1 of 10 +[\d.]+ \(chance 0\.1; by likelihood\)/);
  assert.match(text, new RegExp(`Hits@1 of 10 +${first.hits1Head} \\(chance 0\\.1; by next-utterance-head\\)`));
});
