// The worker-thread generation service (createGenerator) with a tiny real model: queueing,
// busy rejection, cancellation, timeouts, concurrent decoding, bad model directories.
import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  GenerationRequestError,
  GeneratorBusyError,
  GeneratorTimeoutError,
  GeneratorUnavailableError,
  type TextGenerator,
} from '../inference/generator.js';
import { createGenerator } from '../serving/service.js';
import { createTinyModel } from './tiny-model.js';

let dir: string;
let modelDir: string;
const PROMPT = 'User: hello there\nBot:';

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nemo-svc-'));
  modelDir = path.join(dir, 'm');
  // A long context so a request can run long enough to be cancelled mid-way.
  await createTinyModel(modelDir, { seed: 3, nPositions: 512, nEmbd: 64, nLayer: 2 });
});
after(() => rm(dir, { recursive: true, force: true }));

/** Resolves at the first streamed chunk of the request: proof that it is being generated. */
function firstChunk(): { onText: (c: string) => void; started: Promise<void> } {
  let resolve!: () => void;
  const started = new Promise<void>((r) => (resolve = r));
  return { onText: () => resolve(), started };
}

test('generates in a worker thread; info, countTokens and concurrent requests', async () => {
  const gen = await createGenerator({ modelDir, maxBatch: 4, maxQueue: 8 });
  try {
    const info = gen.info();
    assert.equal(info.layers, 2);
    assert.equal(info.contextLength, 512);
    assert.ok(info.parameters > 0 && /wasm|cpu|tensorflow/.test(info.backend));
    assert.ok(gen.countTokens('hello there') > 0);
    const chunks: string[] = [];
    const r = await gen.generate({ prompt: PROMPT, maxNewTokens: 12, temperature: 0, onText: (c) => chunks.push(c) });
    assert.equal(r.completionTokens, 12);
    assert.equal(r.finishReason, 'length');
    assert.equal(chunks.join(''), r.text);
    assert.ok(r.latencyMs >= 0 && r.promptTokens > 0);
    assert.ok((gen.info().tokensPerSecond ?? 0) > 0, 'measured speed is reported');
    // Same seed → same text, also when several requests share the batch.
    const many = await Promise.all([1, 2, 3, 1, 2, 3].map((seed) => gen.generate({ prompt: PROMPT, maxNewTokens: 10, seed })));
    assert.equal(many[0].text, many[3].text);
    assert.equal(many[1].text, many[4].text);
    assert.notEqual(many[0].text, many[1].text);
    await assert.rejects(gen.generate({ prompt: PROMPT, temperature: -2 }), GenerationRequestError);
    assert.deepEqual(gen.stats(), { active: 0, queued: 0, maxQueue: 8 });
  } finally {
    await gen.close();
  }
  await assert.rejects(gen.generate({ prompt: PROMPT }), GeneratorUnavailableError);
});

test('a full queue rejects at once; cancelling frees the slot for the next request', async () => {
  const gen = await createGenerator({ modelDir, maxBatch: 1, maxQueue: 1 });
  try {
    const ac = new AbortController();
    const a = firstChunk();
    const long = gen.generate({ prompt: PROMPT, maxNewTokens: 500, minNewTokens: 500, signal: ac.signal, onText: a.onText });
    const queued = gen.generate({ prompt: PROMPT, maxNewTokens: 5, temperature: 0 });
    assert.deepEqual(gen.stats(), { active: 1, queued: 1, maxQueue: 1 });
    await assert.rejects(gen.generate({ prompt: PROMPT, maxNewTokens: 5 }), GeneratorBusyError);
    await a.started;
    ac.abort();
    const aborted = await long;
    assert.equal(aborted.finishReason, 'aborted');
    assert.ok(aborted.completionTokens < 500);
    const next = await queued;
    assert.equal(next.finishReason, 'length');
    assert.equal(next.completionTokens, 5);
    // An already-aborted signal never reaches the model.
    const pre = new AbortController();
    pre.abort();
    assert.equal((await gen.generate({ prompt: PROMPT, signal: pre.signal })).finishReason, 'aborted');
  } finally {
    await gen.close();
  }
});

test('timeouts: a running request ends with finishReason timeout, a queued one rejects', async () => {
  const gen = await createGenerator({ modelDir, maxBatch: 1, maxQueue: 4 });
  try {
    const a = firstChunk();
    // The tiny model's speed depends on the machine (500 tokens took 80-400 ms): time it, then
    // set timeouts well inside that span, so the first request is still running when its
    // timeout comes and the second one is still queued behind it.
    const t0 = performance.now();
    await gen.generate({ prompt: PROMPT, maxNewTokens: 500, minNewTokens: 500 });
    const full = performance.now() - t0;
    const running = gen.generate({ prompt: PROMPT, maxNewTokens: 500, minNewTokens: 500, timeoutMs: Math.max(1, Math.round(full / 5)), onText: a.onText });
    const waiting = gen.generate({ prompt: PROMPT, maxNewTokens: 5, timeoutMs: Math.max(1, Math.round(full / 10)) });
    await assert.rejects(waiting, GeneratorTimeoutError);
    const r = await running;
    assert.equal(r.finishReason, 'timeout');
    assert.ok(r.completionTokens < 500);
    // The slot is free again.
    assert.equal((await gen.generate({ prompt: PROMPT, maxNewTokens: 3 })).completionTokens, 3);
  } finally {
    await gen.close();
  }
});

test('a crashed model worker fails its requests, restarts, and serves the queue', async () => {
  const gen = await createGenerator({ modelDir, maxBatch: 1, maxQueue: 4 });
  try {
    const a = firstChunk();
    const running = gen.generate({ prompt: PROMPT, maxNewTokens: 500, minNewTokens: 500, onText: a.onText });
    const queued = gen.generate({ prompt: PROMPT, maxNewTokens: 4, minNewTokens: 4 });
    await a.started;
    // Simulate a crash (e.g. out of memory) of the worker thread.
    await (gen as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await assert.rejects(running, (e: Error) => e instanceof GeneratorUnavailableError && /restarting/.test(e.message));
    const r = await queued;
    assert.equal(r.completionTokens, 4);
    assert.equal((await gen.generate({ prompt: PROMPT, maxNewTokens: 2, minNewTokens: 2 })).completionTokens, 2);
  } finally {
    await gen.close();
  }
});

test('a missing or corrupt model gives GeneratorUnavailableError naming the file', async () => {
  await assert.rejects(createGenerator({ modelDir: path.join(dir, 'absent') }), (e: Error) => e instanceof GeneratorUnavailableError && /does not exist/.test(e.message));
  const bad = path.join(dir, 'bad');
  await createTinyModel(bad, { seed: 1 });
  await truncate(path.join(bad, 'model.safetensors'), 5000);
  await assert.rejects(createGenerator({ modelDir: bad }), (e: Error) => e instanceof GeneratorUnavailableError && /model\.safetensors.*truncated/.test(e.message));
  await writeFile(path.join(bad, 'vocab.json'), '{not json');
  await assert.rejects(createGenerator({ modelDir: bad }), (e: Error) => e instanceof GeneratorUnavailableError && /vocab\.json/.test(e.message));
});

export type { TextGenerator };
