// Sampling and the per-request generation logic, run through the real batcher and a tiny real
// model (in-process: the worker-thread service has its own test).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Batcher } from '../inference/batcher.js';
import type { InferenceEngine } from '../inference/engine.js';
import { Sequence, type SequenceResult } from '../inference/sequence.js';
import { GenerationRequestError, type SamplingOptions } from '../inference/generator.js';
import { loadRuntime, type Runtime } from '../inference/runtime.js';
import { argmax, bannedByNgram, Sampler, topIndices } from '../inference/sampling.js';
import { createTinyModel } from './tiny-model.js';

let dir: string;
let rt: Runtime;
let batcher: Batcher;
const PROMPT = 'User: hello there, how are you?\nBot:';

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nemo-gen-'));
  await createTinyModel(dir, { seed: 5 });
  rt = await loadRuntime(dir);
  batcher = new Batcher(rt.engine, 4);
});
after(async () => {
  batcher.close();
  rt.engine.dispose();
  await rm(dir, { recursive: true, force: true });
});

interface Run extends SequenceResult {
  chunks: string[];
  ids: number[];
}

function run(opts: SamplingOptions, prompt: string | number[] = PROMPT): Promise<Run> {
  const chunks: string[] = [];
  const seq = new Sequence(rt.tokenizer, rt.config, prompt, opts, (c) => chunks.push(c));
  return new Promise((resolve, reject) => {
    batcher.add({ id: Math.random().toString(36), seq, onDone: (r) => resolve({ ...r, chunks, ids: seq.generated }), onError: reject });
  });
}

test('sampling primitives', () => {
  const v = Float32Array.from([0.1, 5, -2, 3, 5, 4]);
  assert.deepEqual([...topIndices(v, 3)], [1, 4, 5]);
  assert.equal(argmax(v), 1);
  assert.deepEqual([...bannedByNgram([1, 2, 3, 1, 2], 3)], [3]);
  assert.deepEqual([...bannedByNgram([1, 2, 3, 1, 2], 0)], []);
  // Temperature: a low temperature concentrates the samples on the top token.
  const counts = (t: number) => {
    const s = new Sampler({ temperature: t, seed: 3 });
    let top = 0;
    for (let i = 0; i < 400; i++) if (s.pick(Float32Array.from([1, 2, 0.5, 1.5]), []) === 1) top++;
    return top;
  };
  assert.ok(counts(0.1) > 390);
  assert.ok(counts(1) < 300 && counts(1) > 80);
  // Top-k 2 never picks outside the two best; top-p keeps the smallest set reaching p.
  const s = new Sampler({ temperature: 1, topK: 2, seed: 1 });
  for (let i = 0; i < 200; i++) assert.ok([1, 3].includes(s.pick(Float32Array.from([1, 2, 0.5, 1.5]), [])));
  const p = new Sampler({ temperature: 1, topP: 0.5, seed: 1 });
  for (let i = 0; i < 200; i++) assert.equal(p.pick(Float32Array.from([0, 3, 0, 0]), []), 1);
  // Repetition penalty divides positive and multiplies negative logits of seen tokens.
  const l = Float32Array.from([2, 1.9, -1]);
  assert.equal(new Sampler({ temperature: 0, repetitionPenalty: 2 }).pick(l, [0]), 1);
  assert.deepEqual([...l], [1, Math.fround(1.9), -1]);
});

test('same seed gives the same text; another seed gives another', async () => {
  const a = await run({ seed: 42, maxNewTokens: 24, temperature: 1 });
  const b = await run({ seed: 42, maxNewTokens: 24, temperature: 1 });
  const c = await run({ seed: 43, maxNewTokens: 24, temperature: 1 });
  assert.deepEqual(a.ids, b.ids);
  assert.equal(a.text, b.text);
  assert.notDeepEqual(a.ids, c.ids);
});

test('each sampling option observably changes the output', async () => {
  const n = 30;
  const greedy = await run({ temperature: 0, maxNewTokens: n });
  assert.equal(greedy.completionTokens + (greedy.finishReason === 'stop' ? 0 : 0), greedy.ids.length);
  assert.deepEqual((await run({ temperature: 0, maxNewTokens: n, seed: 9 })).ids, greedy.ids, 'greedy ignores the seed');
  assert.deepEqual((await run({ temperature: 1, topK: 1, maxNewTokens: n, seed: 9 })).ids, greedy.ids, 'top-k 1 is greedy');
  const hot = await run({ temperature: 1.5, maxNewTokens: n, seed: 9 });
  assert.notDeepEqual(hot.ids, greedy.ids, 'temperature');
  const wide = await run({ temperature: 1.5, topK: rt.config.vocabSize + 1000, maxNewTokens: n, seed: 9 });
  assert.deepEqual(wide.ids, hot.ids, 'a top-k wider than the vocabulary keeps every token');
  const k5 = await run({ temperature: 1.5, topK: 5, maxNewTokens: n, seed: 9 });
  assert.notDeepEqual(k5.ids, hot.ids, 'top-k');
  const p = await run({ temperature: 1.5, topP: 0.3, maxNewTokens: n, seed: 9 });
  assert.notDeepEqual(p.ids, hot.ids, 'top-p');
  // The random tiny model repeats itself under greedy decoding: the anti-repetition options act.
  const ctx = (r: Run) => [...rt.tokenizer.encode(PROMPT), ...r.ids];
  const hasRepeatedBigram = (ids: number[]) => new Set(ids.slice(1).map((t, i) => `${ids[i]},${t}`)).size < ids.length - 1;
  assert.ok(hasRepeatedBigram(ctx(greedy)), 'premise: greedy repeats a bigram');
  const nr = await run({ temperature: 0, maxNewTokens: n, noRepeatNgramSize: 2 });
  assert.ok(!hasRepeatedBigram(ctx(nr)), 'no-repeat 2-gram');
  const rp = await run({ temperature: 0, maxNewTokens: n, repetitionPenalty: 3 });
  assert.notDeepEqual(rp.ids, greedy.ids, 'repetition penalty');
  assert.ok(new Set(rp.ids).size > new Set(greedy.ids).size, 'repetition penalty gives more distinct tokens');
  // Limits.
  const five = await run({ temperature: 0, maxNewTokens: 5 });
  assert.equal(five.finishReason, 'length');
  assert.equal(five.completionTokens, 5);
});

test('stop strings end the text before them; min tokens delays them; streaming equals the result', async () => {
  const base = await run({ temperature: 0, maxNewTokens: 30 });
  assert.equal(base.chunks.join(''), base.text);
  // Pick a stop string from the middle of the greedy text.
  const mid = Math.floor(base.text.length / 2);
  const stop = base.text.slice(mid, mid + 2);
  assert.ok(stop.length === 2);
  const first = base.text.indexOf(stop);
  const r = await run({ temperature: 0, maxNewTokens: 30, stop: [stop, 'never-appears'] });
  assert.equal(r.finishReason, 'stop');
  assert.equal(r.text, base.text.slice(0, first));
  assert.equal(r.chunks.join(''), r.text, 'no part of the stop string was streamed');
  const withMin = await run({ temperature: 0, maxNewTokens: 30, minNewTokens: 30, stop: [stop] });
  assert.equal(withMin.finishReason, 'length');
  assert.equal(withMin.completionTokens, 30);
});

test('streamed chunks never split a multi-byte character and add up to the text', async () => {
  for (const seed of [1, 2, 3, 4]) {
    const r = await run({ temperature: 1.2, maxNewTokens: 40, seed }, '你好，今天天气怎么样？ 🙂\nBot:');
    assert.equal(r.chunks.join(''), r.text);
    for (const c of r.chunks) assert.ok(!/[\uD800-\uDBFF]$/.test(c) && !/^[\uDC00-\uDFFF]/.test(c), 'no lone surrogate at a chunk edge');
  }
});

test('over-long prompts keep the newest tokens and report what was dropped', async () => {
  const ids = Array.from({ length: 100 }, (_, i) => 10 + (i % 50));
  const r = await run({ temperature: 0, maxNewTokens: 10 }, ids);
  assert.equal(r.promptTokens, rt.config.nPositions - 10);
  assert.equal(r.truncatedTokens, 100 - (rt.config.nPositions - 10));
  const text = await run({ temperature: 0, maxNewTokens: 10 }, 'hello there '.repeat(5000) + 'the end');
  assert.ok(text.truncatedTokens > 0);
  assert.equal(text.promptTokens, rt.config.nPositions - 10);
});

test('bad options and empty prompts are clear request errors', () => {
  const mk = (o: SamplingOptions, prompt = PROMPT) => () => new Sequence(rt.tokenizer, rt.config, prompt, o);
  assert.throws(mk({ temperature: -1 }), (e: Error) => e instanceof GenerationRequestError && /temperature/.test(e.message));
  assert.throws(mk({ topP: 0 }), /topP/);
  assert.throws(mk({ topK: 1.5 }), /topK/);
  assert.throws(mk({ maxNewTokens: 0 }), /maxNewTokens/);
  assert.throws(mk({ maxNewTokens: 10_000 }), /maxNewTokens/);
  assert.throws(mk({ maxNewTokens: 5, minNewTokens: 6 }), /minNewTokens/);
  assert.throws(mk({ stop: [''] }), /stop/);
  assert.throws(mk({ seed: 1.5 }), /seed/);
  assert.throws(mk({}, ''), /empty/);
});

test('requests decoded together give the same text as one at a time', async () => {
  const opts = [{ seed: 1 }, { seed: 2, topK: 10 }, { seed: 3, topP: 0.9 }, { seed: 4 }].map((o) => ({ ...o, temperature: 1, maxNewTokens: 20 }));
  const prompts = ['User: hi\nBot:', PROMPT, '今天天气很好', 'a'];
  const alone: Run[] = [];
  for (let i = 0; i < 4; i++) alone.push(await run(opts[i], prompts[i]));
  const together = await Promise.all(opts.map((o, i) => run(o, prompts[i])));
  together.forEach((r, i) => assert.deepEqual(r.ids, alone[i].ids, `request ${i}`));
});

test('waiting prompts are prefilled together in one engine call and give the same text', async () => {
  const engine = rt.engine;
  const batches: number[] = [];
  // The real engine, with its batched prefill calls recorded.
  const recorded: InferenceEngine = {
    config: engine.config,
    prefill: (ids) => engine.prefill(ids),
    prefillMany: (prompts) => {
      batches.push(prompts.length);
      return engine.prefillMany(prompts);
    },
    extend: (cache, ids) => engine.extend(cache, ids),
    step: (items) => engine.step(items),
    release: (cache) => engine.release(cache),
    warmUp: () => engine.warmUp(),
    dispose: () => {},
  };
  const b = new Batcher(recorded, 4);
  try {
    const opts = [5, 6, 7, 8].map((seed) => ({ seed, temperature: 1, maxNewTokens: 12, minNewTokens: 12 }));
    const prompts = ['a', PROMPT, 'User: tell me a story about a cat.\nBot:', '今天天气很好'];
    const alone: Run[] = [];
    for (let i = 0; i < 4; i++) alone.push(await run(opts[i], prompts[i]));
    const together = await Promise.all(opts.map((o, i) => new Promise<Run>((resolve, reject) => {
      const seq = new Sequence(rt.tokenizer, rt.config, prompts[i], o);
      b.add({ id: String(i), seq, onDone: (r) => resolve({ ...r, chunks: [], ids: seq.generated }), onError: reject });
    })));
    together.forEach((r, i) => assert.deepEqual(r.ids, alone[i].ids, `request ${i}`));
    assert.deepEqual(batches, [4], 'the four waiting prompts were prefilled in one call');
  } finally {
    b.close();
  }
});

test('prompts fed in chunks between decode steps give the same text', async () => {
  const chunked = new Batcher(rt.engine, 4, 3); // 3-token chunks whenever another request is decoding
  try {
    const opts = [1, 2, 3].map((seed) => ({ seed, temperature: 1, maxNewTokens: 15, minNewTokens: 15 }));
    const prompts = [PROMPT, 'User: tell me a story about a cat.\nBot:', '今天天气很好，我们去公园散步吧。'];
    const alone: Run[] = [];
    for (let i = 0; i < 3; i++) alone.push(await run(opts[i], prompts[i]));
    const together = await Promise.all(opts.map((o, i) => new Promise<Run>((resolve, reject) => {
      const chunks: string[] = [];
      const seq = new Sequence(rt.tokenizer, rt.config, prompts[i], o, (c) => chunks.push(c));
      chunked.add({ id: String(i), seq, onDone: (r) => resolve({ ...r, chunks, ids: seq.generated }), onError: reject });
    })));
    together.forEach((r, i) => assert.deepEqual(r.ids, alone[i].ids, `request ${i}`));
    assert.ok(chunked.stats().steps > 0);
  } finally {
    chunked.close();
  }
});
