// The fine-tuning model on a tiny real model: the classifier learns a separable task in a few
// steps, similarity is symmetric, multiple choice is a softmax across choices, λ weighs the LM
// loss, saving and loading reproduces predictions, a fine-tuned folder still generates, and a
// paused run resumes to exactly the weights of an uninterrupted one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { readCheckpoint } from '../io/checkpoint.js';
import { CheckpointError } from '../errors.js';
import { loadRuntime } from '../inference/runtime.js';
import { createTinyModel } from './tiny-model.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';
import { loadFinetuned, modelFromHost, readFinetuned, saveFinetuned } from '../finetune/checkpoint.js';
import { parseFinetuneConfig, type FinetuneConfigInput } from '../finetune/config.js';
import { parseExamples } from '../finetune/data.js';
import { encodeExamples, evaluateExamples, predictInputs } from '../finetune/evaluate.js';
import { initHeadArrays, prepareBatch, taskForward, type TaskSpec } from '../finetune/model.js';
import { SPECIAL_TOKEN_NAMES, type TaskName } from '../finetune/tasks.js';
import { finetune, FinetuneError, type FinetuneEvent } from '../finetune/trainer.js';

await initBackend();
const root = await mkdtemp(path.join(os.tmpdir(), 'nemo-ft-model-'));
const base = path.join(root, 'base');
await createTinyModel(base, { initStd: 0.02 });
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

const EN = ['hello there', 'how are you', 'good day', 'the cat', 'a story', 'the sea', 'you are fine', 'a walk'];
const ZH = ['你好', '今天天气', '公园散步', '很好', '我们去', '天气很好', '今天', '散步吧'];
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n');
const separable = parseExamples('classification', jsonl(EN.flatMap((e, i) => [{ text: e, label: 'en' }, { text: ZH[i], label: 'zh' }])), 'separable');

const quick: FinetuneConfigInput = { lr: 1e-2, batchSize: 8, epochs: 4, logEvery: 1, lmCoef: 0, clfDropout: 0, dropout: 0 };

/** A model with the base weights plus the three special tokens and a random head, in memory. */
async function memoryModel(task: TaskName, labels: TaskSpec['labels'], seed = 3) {
  const host = await readCheckpoint(base);
  const tokenizer = await BpeTokenizer.load(base);
  const [start, delim, extract] = tokenizer.addSpecialTokens([SPECIAL_TOKEN_NAMES.start, SPECIAL_TOKEN_NAMES.delim, SPECIAL_TOKEN_NAMES.extract]);
  const { growVocabulary } = await import('../finetune/model.js');
  const grown = growVocabulary(host.config, host.arrays, tokenizer.vocabSize, seed);
  const spec: TaskSpec = { task, labels, specialTokens: { ...SPECIAL_TOKEN_NAMES }, specialIds: { start, delim, extract }, maxLen: grown.config.nPositions };
  const outputs = labels.kind === 'class' ? labels.names.length : 1;
  return { model: modelFromHost(spec, grown.config, grown.arrays, initHeadArrays(grown.config.nEmbd, outputs, seed, 0.5)), tokenizer, spec };
}

test('the classifier\'s loss falls on a tiny separable data set within a few steps', async () => {
  const events: FinetuneEvent[] = [];
  const res = await finetune({
    task: 'classification', baseDir: base, train: separable, valid: separable, outDir: path.join(root, 'sep'),
    config: parseFinetuneConfig({ ...quick, epochs: 8 }), onEvent: (e) => events.push(e),
  });
  const losses = events.filter((e): e is Extract<FinetuneEvent, { type: 'step' }> => e.type === 'step').map((e) => e.taskLoss);
  assert.equal(losses.length, 16);
  assert.ok(losses[0] > 0.6, `starts near ln 2 (${losses[0]})`);
  const last = (losses.at(-1)! + losses.at(-2)!) / 2;
  assert.ok(last < 0.5 * losses[0], `loss fell from ${losses[0].toFixed(3)} to ${last.toFixed(3)}`);
  assert.ok(res.finished && res.valid!.accuracy >= 0.9, `learnt the task (${res.valid!.accuracy})`);
});

test('loss = task loss + λ·LM loss; λ = 0 computes no LM loss', async () => {
  const { model, tokenizer, spec } = await memoryModel('classification', { kind: 'class', names: ['en', 'zh'] });
  const { inputs } = encodeExamples(spec, tokenizer, separable.examples.slice(0, 4));
  const batch = prepareBatch('classification', inputs, [0, 1, 0, 1]);
  const [task, lm, total, noLm] = tf.tidy(() => {
    const a = taskForward(model, batch, { training: false, lmCoef: 0.5 });
    const b = taskForward(model, batch, { training: false, lmCoef: 0 });
    assert.equal(b.lmLoss, undefined);
    return [a.taskLoss!, a.lmLoss!, a.loss!, b.loss!].map((t) => t.dataSync()[0]);
  });
  assert.ok(lm > 1, 'an LM loss was computed');
  assert.ok(Math.abs(total - (task + 0.5 * lm)) < 1e-4);
  assert.ok(Math.abs(noLm - task) < 1e-6);
  // The LM targets are exactly the next tokens of each sequence, never the padding.
  const seqTokens = inputs.reduce((n, i) => n + i.sequences[0].length - 1, 0);
  assert.equal(batch.lmTargets.length, seqTokens);
});

test('similarity: (a, b) and (b, a) give the same prediction', async () => {
  const { model, tokenizer, spec } = await memoryModel('similarity', { kind: 'class', names: ['0', '1'] });
  const pairs = [{ a: 'hello there', b: '今天天气很好' }, { a: 'the cat', b: 'a walk by the sea, how are you' }];
  const fwd = encodeExamples(spec, tokenizer, pairs.map((p) => ({ ...p, label: 0 }))).inputs;
  const rev = encodeExamples(spec, tokenizer, pairs.map((p) => ({ a: p.b, b: p.a, label: 0 }))).inputs;
  const pf = predictInputs(model, fwd);
  const pr = predictInputs(model, rev);
  for (let i = 0; i < pairs.length; i++) {
    pf[i].probs!.forEach((p, k) => assert.ok(Math.abs(p - pr[i].probs![k]) < 1e-5, `pair ${i}: ${pf[i].probs} vs ${pr[i].probs}`));
  }
  // ...while a single order would not be symmetric (the two sequences differ).
  assert.notDeepEqual(fwd[0].sequences[0], fwd[0].sequences[1]);
});

test('multiple choice: a softmax across each example\'s choices (2 and 3 choices in one batch)', async () => {
  const { model, tokenizer, spec } = await memoryModel('multiple-choice', { kind: 'choice' });
  const examples = [
    { context: 'hello there', choices: ['how are you', '你好', 'the sea'], label: 0 },
    { context: '今天天气', choices: ['很好', 'a story'], label: 0 },
  ];
  const { inputs } = encodeExamples(spec, tokenizer, examples);
  const preds = predictInputs(model, inputs);
  assert.equal(preds[0].probs!.length, 3);
  assert.equal(preds[1].probs!.length, 2);
  for (const p of preds) assert.ok(Math.abs(p.probs!.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  // Scores belong to the choices: reversing the choices reverses the probabilities.
  const reversed = encodeExamples(spec, tokenizer, examples.map((e) => ({ ...e, choices: [...e.choices].reverse() }))).inputs;
  const rp = predictInputs(model, reversed);
  rp.forEach((p, i) => p.probs!.forEach((x, k) => assert.ok(Math.abs(x - preds[i].probs![preds[i].probs!.length - 1 - k]) < 1e-5)));
  // The loss is the cross-entropy of that softmax at the right choice.
  const batch = prepareBatch('multiple-choice', inputs, [0, 1]);
  const loss = tf.tidy(() => taskForward(model, batch, { training: false }).taskLoss!.dataSync()[0]);
  const expected = -(Math.log(preds[0].probs![0]) + Math.log(preds[1].probs![1])) / 2;
  assert.ok(Math.abs(loss - expected) < 1e-4, `${loss} vs ${expected}`);
});

test('saving and loading reproduces predictions; the special tokens are recorded; the folder still generates', async () => {
  const { model, tokenizer, spec } = await memoryModel('entailment', { kind: 'class', names: ['no', 'yes'] });
  const data = parseExamples('entailment', jsonl([
    { premise: 'hello there', hypothesis: 'how are you', label: 'yes' },
    { premise: '你好', hypothesis: 'the sea', label: 'no' },
    { premise: 'a story about a cat', hypothesis: '今天天气很好', label: 'no' },
  ]));
  const before = evaluateExamples(model, tokenizer, data).predictions;
  const dir = path.join(root, 'saved');
  await saveFinetuned(dir, model, tokenizer, { base });
  const loaded = await loadFinetuned(dir);
  const after = evaluateExamples(loaded.model, loaded.tokenizer, data).predictions;
  assert.deepEqual(after, before);
  assert.deepEqual(loaded.model.spec, spec);
  // Recorded in finetune.json and in the tokenizer files.
  const meta = JSON.parse(await readFile(path.join(dir, 'finetune.json'), 'utf8')) as { specialIds: Record<string, number> };
  assert.deepEqual(meta.specialIds, spec.specialIds);
  const tokConfig = JSON.parse(await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8')) as { special_tokens: string[] };
  for (const t of Object.values(SPECIAL_TOKEN_NAMES)) assert.ok(tokConfig.special_tokens.includes(t), t);
  const baseVocab = (await readCheckpoint(base)).config.vocabSize;
  const rt = await loadRuntime(dir, { warmUp: false });
  try {
    assert.equal(rt.config.vocabSize, baseVocab + 3, 'the embedding grew by the three special tokens');
    const ids = rt.tokenizer.encode('hello there');
    const { cache, logits } = rt.engine.prefill(ids);
    assert.equal(logits.length, baseVocab + 3);
    let token = logits.indexOf(Math.max(...logits));
    const out = [token];
    for (let i = 0; i < 5; i++) {
      const [l] = rt.engine.step([{ cache, token }]);
      token = l.indexOf(Math.max(...l));
      out.push(token);
    }
    assert.equal(typeof rt.tokenizer.decode(out), 'string');
    rt.engine.release(cache);
  } finally {
    rt.engine.dispose();
  }
});

test('corrupt fine-tuned folders are refused naming the file', async () => {
  const { model, tokenizer } = await memoryModel('classification', { kind: 'class', names: ['en', 'zh'] });
  const dir = path.join(root, 'corrupt');
  await saveFinetuned(dir, model, tokenizer);
  const metaFile = path.join(dir, 'finetune.json');
  const meta = JSON.parse(await readFile(metaFile, 'utf8')) as Record<string, unknown>;
  await writeFile(metaFile, JSON.stringify({ ...meta, specialIds: { start: 1, delim: 2, extract: 3 } }));
  await assert.rejects(readFinetuned(dir), (e: CheckpointError) => e instanceof CheckpointError && /does not hold special token _start_ with id 1/.test(e.message));
  await writeFile(metaFile, JSON.stringify({ ...meta, labels: { kind: 'class', names: ['a', 'b', 'c'] } }));
  await assert.rejects(readFinetuned(dir), /head\.weight has shape \[32,2\], expected \[32,3\]/);
  await writeFile(metaFile, '{not json');
  await assert.rejects(readFinetuned(dir), /finetune\.json: not valid JSON/);
  await writeFile(metaFile, JSON.stringify(meta));
  await unlink(path.join(dir, 'head.safetensors'));
  await assert.rejects(readFinetuned(dir), /head\.safetensors: missing/);
  await assert.rejects(readFinetuned(base), /not a fine-tuned model/);
});

test('a paused run resumes to exactly the weights of an uninterrupted one; finished runs are not overwritten', async () => {
  const cfg = parseFinetuneConfig({ lr: 5e-3, batchSize: 4, epochs: 2, lmCoef: 0.5, checkpointEvery: 100 });
  const common = { task: 'classification' as const, baseDir: base, train: separable, valid: separable, config: cfg };
  const whole = path.join(root, 'whole');
  const paused = path.join(root, 'paused');
  await finetune({ ...common, outDir: whole });
  const first = await finetune({ ...common, outDir: paused, untilStep: 3 });
  assert.equal(first.finished, false);
  assert.equal(first.step, 3);
  const events: FinetuneEvent[] = [];
  const second = await finetune({ ...common, outDir: paused, onEvent: (e) => events.push(e) });
  assert.ok(second.finished);
  const start = events.find((e) => e.type === 'start') as Extract<FinetuneEvent, { type: 'start' }>;
  assert.equal(start.step, 3);
  assert.ok(start.resumedFrom?.endsWith('checkpoint'));
  assert.deepEqual(await readFile(path.join(paused, 'model.safetensors')), await readFile(path.join(whole, 'model.safetensors')));
  assert.deepEqual(await readFile(path.join(paused, 'head.safetensors')), await readFile(path.join(whole, 'head.safetensors')));
  await assert.rejects(finetune({ ...common, outDir: paused }), (e: FinetuneError) => e instanceof FinetuneError && /already holds a finished/.test(e.message));
  // Resuming on other data is refused rather than silently mixing two runs.
  await finetune({ ...common, outDir: path.join(root, 'other'), untilStep: 1 });
  const otherData = parseExamples('classification', jsonl([{ text: 'x', label: 'en' }, { text: 'y', label: 'zh' }]));
  await assert.rejects(finetune({ ...common, train: otherData, outDir: path.join(root, 'other') }), /different training data/);
});

test('scratch keeps the architecture and tokenizer but not the weights; a pre-trained start keeps every base row', async () => {
  const baseHost = await readCheckpoint(base);
  const cfg = parseFinetuneConfig({ ...quick, epochs: 1, lr: 1e-9, maxSteps: 1 });
  await finetune({ task: 'classification', baseDir: base, train: separable, outDir: path.join(root, 'pre'), config: cfg });
  await finetune({ task: 'classification', baseDir: base, scratch: true, train: separable, outDir: path.join(root, 'scr'), config: cfg });
  const pre = await readCheckpoint(path.join(root, 'pre'));
  const scr = await readCheckpoint(path.join(root, 'scr'));
  const V = baseHost.config.vocabSize;
  const C = baseHost.config.nEmbd;
  for (const h of [pre, scr]) assert.deepEqual({ ...h.config, vocabSize: V }, baseHost.config);
  const emb = (h: typeof pre) => h.arrays.get('tokens_embed.weight')!.data;
  // lr 1e-9: one update moves nothing measurably, so the pre-trained rows are the base's.
  const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
  assert.ok(maxDiff(emb(pre).subarray(0, V * C), emb(baseHost)) < 1e-6);
  assert.ok(maxDiff(emb(scr).subarray(0, V * C), emb(baseHost)) > 0.01);
  const added = emb(pre).subarray(V * C);
  assert.equal(added.length, 3 * C);
  const std = Math.sqrt(added.reduce((s, x) => s + x * x, 0) / added.length);
  assert.ok(std > 0.01 && std < 0.03, `new rows ~ N(0, 0.02) (std ${std})`);
});

test('similarity with real-valued labels trains a score head and reports Pearson/Spearman', async () => {
  const rows = EN.flatMap((e, i) => [{ a: e, b: EN[(i + 1) % EN.length], label: 0.9 }, { a: e, b: ZH[i], label: 0.1 }, { a: ZH[i], b: ZH[(i + 1) % ZH.length], label: 0.8 }]);
  const data = parseExamples('similarity', jsonl(rows));
  const res = await finetune({ task: 'similarity', baseDir: base, train: data, valid: data, outDir: path.join(root, 'score'), config: parseFinetuneConfig({ ...quick, epochs: 15 }) });
  const { model, tokenizer } = await loadFinetuned(path.join(root, 'score'));
  assert.deepEqual(model.spec.labels, { kind: 'score', min: 0.1, max: 0.9 });
  assert.deepEqual(model.head.w.shape, [32, 1]);
  const { metrics, predictions } = evaluateExamples(model, tokenizer, data);
  assert.ok(metrics.pearson! > 0.5 && metrics.spearman! > 0.5, `learnt the scores: ${JSON.stringify(metrics)}`);
  assert.equal(predictions[0].probs, undefined);
  assert.deepEqual(metrics, res.valid);
});

test('micro-batches sum to the same update as the whole batch', async () => {
  const cfg = { ...quick, epochs: 1, batchSize: 8, maxSteps: 1 };
  await finetune({ task: 'classification', baseDir: base, train: separable, outDir: path.join(root, 'mb-whole'), config: parseFinetuneConfig(cfg) });
  await finetune({ task: 'classification', baseDir: base, train: separable, outDir: path.join(root, 'mb-split'), config: parseFinetuneConfig({ ...cfg, microBatch: 3 }) });
  const a = await readFinetuned(path.join(root, 'mb-whole'));
  const b = await readFinetuned(path.join(root, 'mb-split'));
  let maxDiff = 0;
  for (const [name, t] of a.arrays) t.data.forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - b.arrays.get(name)!.data[i]))));
  assert.ok(maxDiff < 1e-5, `weights differ by ${maxDiff}`);
});
