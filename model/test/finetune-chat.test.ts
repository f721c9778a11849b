// Chat fine-tuning (model/finetune/chat) on tiny real models: the sequences and their loss mask
// at token level against the inference prompt, bad lines, exact resume, the next-utterance head
// (GPT-1's multiple-choice transform and head, reused), and a tuned folder answering through the
// generation service the bot uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../backend.js';
import { exportModel } from '../cli/commands/pretrain.js';
import { buildChatPrompt, CHAT_STOP, cleanReply, type ChatTurn } from '../chat/format.js';
import { epochBatches } from '../finetune/chat/batches.js';
import { buildCandidates } from '../finetune/chat/candidates.js';
import { parseChatConfig, type ChatConfigInput } from '../finetune/chat/config.js';
import { parseConversations, type Conversation } from '../finetune/chat/data.js';
import { encodeConversation, encodeConversations } from '../finetune/chat/sequences.js';
import { trainChat, type ChatTrainEvent } from '../finetune/chat/trainer.js';
import { FinetuneDataError } from '../finetune/data.js';
import { SPECIAL_TOKEN_NAMES } from '../finetune/tasks.js';
import { createGenerator } from '../serving/service.js';
import { createTinyModel } from './tiny-model.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';

await initBackend();
const root = await mkdtemp(path.join(os.tmpdir(), 'nemo-chat-ft-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
const base = path.join(root, 'base');
await createTinyModel(base);
const tok = await BpeTokenizer.load(base);
const eos = tok.eosId!;

const u = (content: string) => ({ role: 'user' as const, content });
const a = (content: string) => ({ role: 'assistant' as const, content });
const conv = (...messages: Conversation['messages']): Conversation => ({ messages });

/** The history, message and system line of each trained reply, as the bot would build its prompt. */
function inferencePrompts(c: Conversation): Array<{ history: ChatTurn[]; message: string; system?: string; reply: string }> {
  const system = c.messages.filter((m) => m.role === 'system').map((m) => m.content).join(' ') || undefined;
  const turns = c.messages.filter((m) => m.role !== 'system');
  const out = [];
  for (let i = 1; i < turns.length; i++) {
    if (turns[i].role !== 'assistant' || turns[i - 1].role !== 'user') continue;
    const history = turns.slice(0, i - 1).map((m): ChatTurn => ({ role: m.role === 'user' ? 'user' : 'bot', text: m.content }));
    out.push({ history, message: turns[i - 1].content, system, reply: turns[i].content });
  }
  return out;
}

const multiTurn = conv(
  { role: 'system', content: 'A friendly bot.' },
  u('你好，今天天气怎么样？'),
  a('今天天气很好，我们去公园散步吧。'),
  u('what is the weather\nlike?'),
  a('It is sunny and warm.'),
  u('tell me a story <|endoftext|> about a cat.'),
  a('Once upon a time there was a small cat.'),
);

test('one sequence per conversation that fits: every reply\'s prompt is the inference prompt\'s ids, the loss covers replies and terminators', () => {
  const { sequences, truncated, replies } = encodeConversation(multiTurn, 0, tok, 512);
  assert.equal(sequences.length, 1);
  assert.equal(truncated, 0);
  assert.equal(replies, 3);
  const [s] = sequences;
  let from = 0;
  const targets: number[] = [];
  for (const p of inferencePrompts(multiTurn)) {
    const prompt = tok.encode(buildChatPrompt(p.history, p.message, p.system).prompt);
    // The ids before the reply are exactly what inference feeds the model; the reply follows as " reply".
    assert.deepEqual(s.ids.slice(0, prompt.length), prompt);
    const reply = tok.encode(` ${p.reply}`);
    assert.deepEqual(s.ids.slice(prompt.length, prompt.length + reply.length), reply);
    for (let t = from; t < prompt.length; t++) assert.equal(s.loss[t], 0, `prompt token ${t} (${JSON.stringify(tok.decode([s.ids[t]]))}) is not trained`);
    from = prompt.length;
    targets.push(...reply);
    // What follows the reply and is trained: the stop string "\nUser:" (or, after the last reply, end-of-text).
    const next = s.ids.slice(prompt.length + reply.length);
    const stopIds = next[0] === eos ? [eos] : tok.encode('\nUser:');
    assert.deepEqual(next.slice(0, stopIds.length), stopIds);
    targets.push(...stopIds);
    for (let t = prompt.length; t < prompt.length + reply.length + stopIds.length; t++) assert.equal(s.loss[t], 1);
    from = prompt.length + reply.length + stopIds.length;
  }
  assert.equal(from, s.ids.length, 'the sequence ends with the last reply and end-of-text');
  assert.deepEqual(s.ids.filter((_, t) => s.loss[t]), targets, 'nothing else carries the loss');
  assert.equal(s.ids.at(-1), eos);
  // The trained text is exactly the replies and what ends them.
  assert.equal(tok.decode(targets), ' 今天天气很好，我们去公园散步吧。\nUser: It is sunny and warm.\nUser: Once upon a time there was a small cat.<|endoftext|>');
  assert.equal(s.lastReply.start, s.ids.length - 1 - s.lastReply.ids.length);
  assert.deepEqual(s.lastReply.ids, tok.encode(' Once upon a time there was a small cat.'));
});

test('a conversation longer than the context: whole oldest turns dropped, each reply trained once, prompts still as inference builds them', () => {
  // Room for the system line and the longest single exchange, not for the whole conversation.
  const single = inferencePrompts(multiTurn).map((p) => tok.encode(buildChatPrompt([], p.message, p.system).prompt).length + tok.encode(` ${p.reply}`).length + 1);
  const maxLen = Math.max(...single) + 4;
  const { sequences, replies, truncated } = encodeConversation(multiTurn, 0, tok, maxLen);
  assert.ok(sequences.length >= 2, `${sequences.length} sequences`);
  assert.equal(truncated, 0);
  assert.equal(replies, 3);
  const prompts = inferencePrompts(multiTurn);
  let trained = 0;
  for (const s of sequences) {
    assert.ok(s.ids.length <= maxLen);
    assert.equal(s.loss[0], 0);
    assert.equal(s.ids.at(-1), eos);
    const text = tok.decode(s.ids);
    const p = prompts.find((q) => text.includes(` ${q.reply}<|endoftext|>`))!;
    // The prompt of the sequence's last reply: some oldest turns dropped, as the bot's token budget does it.
    const budget = s.lastReply.start;
    const built = buildChatPrompt(p.history, p.message, { system: p.system, maxPromptTokens: budget, countTokens: (x) => tok.encode(x).length });
    assert.deepEqual(s.ids.slice(0, s.lastReply.start), tok.encode(built.prompt));
    trained += tok.decode(s.ids.filter((_, t) => s.loss[t])).split(/\nUser:|<\|endoftext\|>/).filter(Boolean).length;
  }
  assert.equal(trained, 3, 'every reply carries the loss in exactly one sequence');
});

test('--loss-on all trains every token; a reply too long for the context keeps the prompt\'s end and the reply\'s start', () => {
  const [s] = encodeConversation(multiTurn, 0, tok, 512, 'all').sequences;
  assert.equal(s.loss[0], 0);
  assert.ok(s.loss.subarray(1).every((x) => x === 1));
  const long = conv(u('hello there, how are you today? '.repeat(6)), a('I am fine, thank you. '.repeat(8)));
  const r = encodeConversation(long, 0, tok, 32);
  assert.equal(r.truncated, 1);
  const [t] = r.sequences;
  assert.equal(t.ids.length, 32);
  const prompt = tok.encode(buildChatPrompt([], long.messages[0].content).prompt);
  assert.deepEqual(t.ids.slice(0, t.lastReply.start), prompt.slice(prompt.length - t.lastReply.start));
  assert.deepEqual(t.ids.slice(t.lastReply.start), tok.encode(` ${long.messages[1].content.trim()}`).slice(0, 32 - t.lastReply.start));
});

test('bad lines stop everything with their line numbers', () => {
  const good = JSON.stringify(multiTurn);
  const text = [
    good,
    'not json',
    JSON.stringify(conv(u('hi'))),
    JSON.stringify({ messages: [{ role: 'robot', content: 'x' }, a('y')] }),
    JSON.stringify(conv(u('hi'), a('  '))),
    '',
    JSON.stringify({ text: 'hello' }),
    JSON.stringify(conv(a('first'), u('then a question'))),
    good,
  ].join('\n');
  assert.throws(() => parseConversations(text, 'chat.jsonl'), (err: FinetuneDataError) => {
    assert.ok(err instanceof FinetuneDataError);
    assert.deepEqual(err.lines, [2, 3, 4, 5, 7, 8]);
    assert.match(err.message, /chat\.jsonl: 6 bad lines/);
    assert.match(err.message, /line 2: not valid JSON/);
    assert.match(err.message, /line 3: "messages" has no assistant turn/);
    assert.match(err.message, /line 4: "messages\.0\.role" is "robot", not one of system, user, assistant/);
    assert.match(err.message, /line 5: "messages\.1\.content" must not be empty/);
    assert.match(err.message, /line 7: "messages" is missing/);
    assert.match(err.message, /line 8: "messages" has no assistant turn after a user turn/);
    return true;
  });
  const ok = parseConversations(`${good}\n\n${good}\n`);
  assert.deepEqual(ok.lines, [1, 3]);
});

test('an epoch\'s batches: every sequence once, similar lengths together, the same for the same seed and epoch', () => {
  const lengths = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 128 + 1);
  const batches = epochBatches(lengths, 16, 3, 0);
  assert.equal(batches.length, Math.ceil(1000 / 16));
  assert.deepEqual(batches.flat().sort((x, y) => x - y), lengths.map((_, i) => i));
  const padding = (bs: number[][]) => bs.reduce((n, b) => n + b.length * Math.max(...b.map((i) => lengths[i])) - b.reduce((k, i) => k + lengths[i], 0), 0);
  const plain = Array.from({ length: batches.length }, (_, k) => lengths.map((_, i) => i).slice(k * 16, k * 16 + 16));
  assert.ok(padding(batches) < padding(plain) / 4, `padding ${padding(batches)} vs ${padding(plain)} unsorted`);
  assert.deepEqual(epochBatches(lengths, 16, 3, 0), batches);
  assert.notDeepEqual(epochBatches(lengths, 16, 3, 1), batches);
});

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'model/cli/cli.ts', ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const QA = [['hello there', 'Hi, how are you?'], ['你好', '你好！'], ['what is the weather like?', 'It is sunny.'], ['tell me a story', 'Once upon a time.'], ['谢谢', '不客气。']];
const corpus = Array.from({ length: 10 }, (_, i) => {
  const [q, r] = QA[i % QA.length];
  const [q2, r2] = QA[(i + 2) % QA.length];
  return i % 2 ? conv(u(q), a(r), u(q2), a(r2)) : conv(u(q), a(r));
});
const corpusFile = path.join(root, 'chat.jsonl');
await writeFile(corpusFile, `${corpus.map((c) => JSON.stringify(c)).join('\n')}\n`);
const loaded = parseConversations(corpus.map((c) => JSON.stringify(c)).join('\n'), corpusFile);

test('the command refuses a file with a bad line, and options of another task, before writing anything', async () => {
  const bad = path.join(root, 'bad.jsonl');
  await writeFile(bad, `${JSON.stringify(multiTurn)}\n{"messages": [{"role": "user", "content": "only a question"}]}\n`);
  const out = path.join(root, 'never');
  const r = cli('finetune', '--task', 'chat', '--model', base, '--train', corpusFile, '--valid', bad, '--out', out);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.jsonl: 1 bad line for task chat/);
  assert.match(r.stderr, /line 2: "messages" has no assistant turn/);
  assert.equal(existsSync(out), false);
  const other = cli('finetune', '--task', 'entailment', '--model', base, '--train', corpusFile, '--valid', corpusFile, '--out', out, '--mc-coef', '1');
  assert.equal(other.code, 1);
  assert.match(other.stderr, /--mc-coef only apply to --task chat/);
  const lm = cli('finetune', '--task', 'chat', '--model', base, '--train', corpusFile, '--valid', corpusFile, '--out', out, '--lm-coef', '1');
  assert.equal(lm.code, 1);
  assert.match(lm.stderr, /--lm-coef does not apply to --task chat/);
  assert.equal(existsSync(out), false);
});

async function run(out: string, over: ChatConfigInput, untilStep?: number, stopAfter?: number) {
  const events: ChatTrainEvent[] = [];
  const stop = new AbortController();
  const res = await trainChat({
    baseDir: base, train: loaded, valid: loaded, outDir: out, untilStep, progress: 'none', signal: stop.signal,
    onEvent: (e) => {
      events.push(e);
      if (e.type === 'step' && e.step === stopAfter) stop.abort();
    },
    config: parseChatConfig({ lr: 0.01, batchSize: 4, epochs: 3, seed: 3, logEvery: 1, ...over }),
  });
  return { res, events };
}

test('training lowers the reply loss, and a paused run resumes bit-identically', async () => {
  const straight = path.join(root, 'straight');
  const { res, events } = await run(straight, {});
  assert.equal(res.finished, true);
  const evals = events.filter((e) => e.type === 'eval');
  assert.equal(evals.length, 3);
  assert.ok(evals[2].valLoss < evals[0].valLoss - 0.3, `validation loss ${evals.map((e) => e.valLoss.toFixed(3)).join(' → ')}`);
  const paused = path.join(root, 'paused');
  const first = await run(paused, {}, 4);
  assert.equal(first.res.finished, false);
  assert.ok(existsSync(path.join(paused, 'checkpoint', 'trainer_state.json')));
  // A checkpoint exports to a model folder that keeps its chat format and the run's loss curve.
  const exported = path.join(root, 'exported');
  await exportModel(path.join(paused, 'checkpoint'), exported);
  assert.equal(JSON.parse(await readFile(path.join(exported, 'chat_format.json'), 'utf8')).format, 'nemo-lines');
  assert.match(await readFile(path.join(exported, 'loss.svg'), 'utf8'), /chat fine-tuning/);
  const second = await run(paused, {});
  assert.equal(second.res.finished, true);
  assert.equal(second.events[0].type === 'start' && second.events[0].step, 4);
  assert.deepEqual(await readFile(path.join(paused, 'model.safetensors')), await readFile(path.join(straight, 'model.safetensors')));
  assert.equal(second.res.valid!.loss, res.valid!.loss);
  assert.equal(existsSync(path.join(paused, 'checkpoint')), false);
  const final = path.join(root, 'exported-final');
  await exportModel(paused, final);
  assert.deepEqual(JSON.parse(await readFile(path.join(final, 'chat_format.json'), 'utf8')), JSON.parse(await readFile(path.join(paused, 'chat_format.json'), 'utf8')));
  assert.ok((await readFile(path.join(final, 'train-log.jsonl'), 'utf8')).includes('"valLoss"'));
  // The finished folder records its format and refuses to be overwritten by accident.
  assert.deepEqual(JSON.parse(await readFile(path.join(straight, 'chat_format.json'), 'utf8')).format, 'nemo-lines');
  await assert.rejects(run(straight, {}), /already holds a finished chat model/);
  // Stopped by the signal (Ctrl-C) mid-epoch: a checkpoint at the step boundary, then the same result.
  const stopped = path.join(root, 'stopped');
  const cut = await run(stopped, {}, undefined, 5);
  assert.equal(cut.res.step, 5);
  assert.deepEqual(cut.events.at(-1), { type: 'stop', step: 5, reason: 'aborted' });
  assert.ok(cut.events.some((e) => e.type === 'checkpoint' && e.step === 5));
  await run(stopped, {});
  assert.deepEqual(await readFile(path.join(stopped, 'model.safetensors')), await readFile(path.join(straight, 'model.safetensors')));
  // The run log: every event of both sessions, the steps with their LM share of the loss.
  const log = (await readFile(path.join(stopped, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as ChatTrainEvent);
  assert.deepEqual(log.filter((e) => e.type === 'start').map((e) => e.step), [0, 5]);
  const steps = log.flatMap((e) => (e.type === 'step' ? [e] : []));
  assert.deepEqual(steps.map((e) => e.step), [...Array(res.step).keys()].map((k) => k + 1));
  for (const e of steps) assert.ok(Math.abs(e.loss - e.lmLoss) < 1e-6 && e.mcLoss === undefined, JSON.stringify(e));
  const other = path.join(root, 'other');
  await run(other, {}, 2);
  await assert.rejects(run(other, { lr: 0.02 }), /different settings/);
});

test('an update\'s LM loss is the mean over all its target tokens, however it is split into micro-batches', async () => {
  const whole = await run(path.join(root, 'whole'), { dropout: 0, maxSteps: 1 });
  const split = await run(path.join(root, 'split'), { dropout: 0, maxSteps: 1, microBatch: 1 });
  const [a, b] = [whole, split].map(({ events }) => events.find((e) => e.type === 'step')!);
  assert.ok(a.type === 'step' && b.type === 'step');
  assert.ok(Math.abs(a.loss - b.loss) < 1e-4, `${a.loss} vs ${b.loss}`);
  assert.ok(Math.abs(a.gradNorm - b.gradNorm) < 1e-3 * a.gradNorm, `${a.gradNorm} vs ${b.gradNorm}`);
});

test('next-utterance head: GPT-1\'s multiple-choice inputs with replies from other conversations, its loss falls', async () => {
  const { sequences } = encodeConversations(loaded.conversations, tok, 64);
  const sp = { start: 9001, delim: 9002, extract: 9003 };
  const { inputs, targets } = buildCandidates(sequences, 3, sp, 64, 5);
  assert.equal(inputs.length, sequences.length);
  const byIds = new Map(sequences.map((s) => [s.lastReply.ids.join(), s.conversation]));
  inputs.forEach((inp, i) => {
    const s = sequences[i];
    assert.equal(inp.sequences.length, 3);
    inp.sequences.forEach((row, k) => {
      assert.equal(row[0], sp.start);
      assert.equal(row.at(-1), sp.extract);
      const d = row.indexOf(sp.delim);
      assert.deepEqual(row.slice(1, d), s.ids.slice(0, s.lastReply.start), 'the context is the reply\'s prompt');
      const reply = row.slice(d + 1, -1);
      if (k === targets[i]) assert.deepEqual(reply, s.lastReply.ids);
      else assert.notEqual(byIds.get(reply.join()), s.conversation, 'a distractor comes from another conversation');
    });
  });
  const out = path.join(root, 'mc');
  const { res, events } = await run(out, { mcCoef: 1, numCandidates: 3, epochs: 8, lr: 0.005 });
  assert.equal(res.finished, true);
  const mc = events.flatMap((e) => (e.type === 'step' ? [e.mcLoss!] : []));
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  assert.ok(mean(mc.slice(-5)) < mean(mc.slice(0, 5)) - 0.1, `next-utterance loss ${mean(mc.slice(0, 5)).toFixed(3)} → ${mean(mc.slice(-5)).toFixed(3)}`);
  assert.ok(res.valid!.mcAccuracy! > 1 / 3, `accuracy ${res.valid!.mcAccuracy}`);
  // The head is saved as the multiple-choice head of a fine-tuned folder, its tokens in the tokenizer.
  const meta = JSON.parse(await readFile(path.join(out, 'finetune.json'), 'utf8')) as { task: string; specialTokens: Record<string, string> };
  assert.equal(meta.task, 'multiple-choice');
  assert.deepEqual(meta.specialTokens, { ...SPECIAL_TOKEN_NAMES });
});

test('a chat-tuned folder answers through the generation service with the reply it learned', async () => {
  const one = conv(u('hello there'), a('Hi, how are you?'));
  const file = path.join(root, 'one.jsonl');
  await writeFile(file, `${JSON.stringify(one)}\n`);
  const out = path.join(root, 'tuned');
  const r = cli('finetune', '--task', 'chat', '--model', base, '--train', file, '--valid', file, '--out', out,
    '--epochs', '60', '--lr', '0.01', '--batch-size', '1', '--dropout', '0', '--warmup', '0', '--json', '--no-progress');
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { finished: boolean }).finished, true);
  const gen = await createGenerator({ modelDir: out, maxBatch: 1 });
  try {
    const { prompt, stop } = buildChatPrompt([], 'hello there');
    const res = await gen.generate({ prompt, stop, temperature: 0, maxNewTokens: 20 });
    assert.equal(res.finishReason, 'stop', JSON.stringify(res));
    assert.equal(cleanReply(res.text), 'Hi, how are you?');
    assert.deepEqual(stop, CHAT_STOP);
  } finally {
    await gen.close();
  }
});
