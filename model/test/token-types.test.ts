// Token types (CDial-GPT's speaker embeddings: input = tokens_embed(id) + positions_embed(pos) +
// tokens_embed(type)) in the reference model, the engine's prefill / chunked prefill / KV-cache
// decode / batched decode on every kernel path, and the batcher,
// against the logits PyTorch computed for the same checkpoint and the float64 reference.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { Batcher } from '../inference/batcher.js';
import { loadCheckpoint, readCheckpoint } from '../io/checkpoint.js';
import type { GptConfig } from '../nn/config.js';
import { Engine } from '../inference/engine.js';
import { logits } from '../nn/gpt.js';
import { Sequence } from '../inference/sequence.js';
import { nativeOpsActive, withoutNative } from '../native/kernels.js';
import { loadRuntime } from '../inference/runtime.js';
import { loadEngineWeights } from '../inference/weights.js';
import { createTinyModel } from './tiny-model.js';
import { maxAbsDiff, referenceLogits, type Arrays } from './reference.js';

const FIX = fileURLToPath(new URL('./fixtures/torch/', import.meta.url));
interface Reference { ids: number[]; tokenTypes: number[]; variants: Record<string, { plain: number[][]; typed: number[][] }> }
let ref: Reference;
let dir: string;
let modelDir: string;
let config: GptConfig;
let arrays: Arrays;

before(async () => {
  await initBackend();
  dir = await mkdtemp(path.join(tmpdir(), 'nemo-types-'));
  ref = JSON.parse(await readFile(path.join(FIX, 'logits.json'), 'utf8')) as Reference;
  modelDir = path.join(dir, 'cdial-tiny');
  await mkdir(modelDir);
  for (const f of ['config.json', 'vocab.txt']) await copyFile(path.join(FIX, f), path.join(modelDir, f));
  await copyFile(path.join(FIX, 'gpt-f32-zip.bin'), path.join(modelDir, 'pytorch_model.bin'));
  const host = await readCheckpoint(modelDir);
  config = host.config;
  arrays = new Map([...host.arrays].map(([n, t]) => [n, t.data]));
});
after(() => rm(dir, { recursive: true, force: true }));

const last = (rows: number[][]) => rows[rows.length - 1];

test('reference model: token types change the logits exactly as in PyTorch', async () => {
  const { params } = await loadCheckpoint(modelDir);
  const want = ref.variants['f32-zip'].typed.flat();
  const got = tf.tidy(() => logits(params, [ref.ids], { tokenTypes: [ref.tokenTypes] })).dataSync();
  assert.ok(maxAbsDiff(got, want) < 1e-4, `max diff ${maxAbsDiff(got, want)}`);
  assert.ok(maxAbsDiff(ref.variants['f32-zip'].plain.flat(), want) > 0.1); // the types matter
  assert.ok(maxAbsDiff(referenceLogits(config, arrays, ref.ids, ref.tokenTypes).flat(), want) < 1e-4);
  assert.throws(() => logits(params, [ref.ids], { tokenTypes: [[1, 2]] }), /token types/);
});

test('engine: prefill, chunked prefill, KV-cache decode and batched decode with token types', async () => {
  const engine = await (async () => { const { config: c, tensors } = await loadEngineWeights(modelDir); return new Engine(c, tensors); })();
  const run = (label: string) => {
    const ids = ref.ids.slice(0, 6);
    const types = ref.tokenTypes.slice(0, 6);
    const a = engine.prefill(ids, types);
    assert.ok(maxAbsDiff(a.logits, ref.variants['f32-zip'].typed[5]) < 1e-4, `${label}: prefill`);
    // Chunked: 2 tokens, then 4 more.
    const b = engine.prefill(ids.slice(0, 2), types.slice(0, 2));
    const lb = engine.extend(b.cache, ids.slice(2), types.slice(2));
    assert.ok(maxAbsDiff(lb, a.logits) < 1e-4, `${label}: extend`);
    // A plain sequence decodes in the same batch as the typed ones.
    const plain = engine.prefill([0, 6, 7]);
    const reply = 31; // [speaker2]: every generated token of the reply takes it
    const seqA = [...ids];
    const typesA = [...types];
    const seqP = [0, 6, 7];
    for (const [s, tok] of [9, 10, 14, 8].entries()) {
      seqA.push(tok);
      typesA.push(reply);
      seqP.push((tok + s) % 32);
      const [la, lb2, lp] = engine.step([
        { cache: a.cache, token: tok, tokenType: reply },
        { cache: b.cache, token: tok, tokenType: reply },
        { cache: plain.cache, token: seqP[seqP.length - 1] },
      ]);
      const want = last(referenceLogits(config, arrays, seqA, typesA));
      assert.ok(maxAbsDiff(la, want) < 1e-4, `${label}: step ${s}: ${maxAbsDiff(la, want)}`);
      assert.ok(maxAbsDiff(lb2, want) < 1e-4, `${label}: chunked step ${s}`);
      assert.ok(maxAbsDiff(lp, last(referenceLogits(config, arrays, seqP))) < 1e-4, `${label}: plain step ${s}`);
    }
    // Several typed prompts in one prefill call.
    const many = engine.prefillMany([ids, ids.slice(0, 4)], [types, undefined]);
    assert.ok(maxAbsDiff(many[0].logits, ref.variants['f32-zip'].typed[5]) < 1e-4, `${label}: prefillMany typed`);
    assert.ok(maxAbsDiff(many[1].logits, ref.variants['f32-zip'].plain[3]) < 1e-4, `${label}: prefillMany plain`);
    for (const r of [a, b, plain, ...many]) engine.release(r.cache);
  };
  run(nativeOpsActive() ? 'native fused' : 'tfjs');
  withoutNative(() => run('tfjs'));
  assert.throws(() => engine.prefill([1, 2], [1]), /1 token types for 2 tokens/);
  assert.throws(() => engine.prefill([1, 2], [1, 99]), /outside the vocabulary/);
  engine.dispose();
});

test('batcher: a typed prompt decodes greedily with the reply type on every new token', async () => {
  const tiny = path.join(dir, 'tiny');
  const cfg = await createTinyModel(tiny, { seed: 3 });
  const rt = await loadRuntime(tiny);
  const host = await readCheckpoint(tiny);
  const arr: Arrays = new Map([...host.arrays].map(([n, t]) => [n, t.data]));
  const batcher = new Batcher(rt.engine, 4, 3); // 3-token chunks exercise chunked prefill
  try {
    const ids = [5, 9, 14, 20, 7, 3, 11];
    const types = [1, 1, 1, 2, 2, 1, 1];
    const reply = 2;
    const generate = (withTypes: boolean) => {
      const seq = new Sequence(rt.tokenizer, rt.config, withTypes ? { ids, tokenTypes: types, replyTokenType: reply } : { ids }, { maxNewTokens: 6, minNewTokens: 6, temperature: 0, seed: 1 });
      return new Promise<number[]>((resolve, reject) => {
        batcher.add({ id: String(withTypes), seq, onDone: () => resolve([...seq.generated]), onError: reject });
      });
    };
    const [typed, plain] = await Promise.all([generate(true), generate(false)]);
    // Greedy decoding by the float64 reference with the same types.
    const seq = [...ids];
    const ty = [...types];
    const want: number[] = [];
    const eos = rt.tokenizer.eosId;
    for (let i = 0; i < 6; i++) {
      const row = last(referenceLogits(cfg, arr, seq, ty));
      if (eos !== undefined) row[eos] = -Infinity; // minNewTokens bans the end of text
      const next = row.indexOf(Math.max(...row));
      want.push(next);
      seq.push(next);
      ty.push(reply);
    }
    assert.deepEqual(typed, want);
    assert.notDeepEqual(typed, plain); // the types change what the model says
  } finally {
    batcher.close();
    rt.engine.dispose();
  }
});

test('CLI: logits --token-types on a pytorch_model.bin folder prints PyTorch\'s typed logits; tokenize uses vocab.txt', async () => {
  const run = promisify(execFile);
  const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'model/cli/cli.ts', ...args], { timeout: 120_000 });
  const rows = JSON.parse((await cli('logits', '--model', modelDir, '--ids', ref.ids.join(','), '--token-types', ref.tokenTypes.join(','))).stdout) as number[][];
  assert.ok(maxAbsDiff(rows.flat(), ref.variants['f32-zip'].typed.flat()) < 1e-4);
  await assert.rejects(cli('logits', '--model', modelDir, '--ids', '1,2,3', '--token-types', '5,5'), /--token-types has 2 entries, --ids 3/);
  // tokenize uses the folder's vocab.txt.
  const t = JSON.parse((await cli('tokenize', '--model', modelDir, '--text', 'Hellos 你好[speaker2]', '--json')).stdout) as { tokenizer: string; ids: number[]; tokens: string[] };
  assert.deepEqual(t, { tokenizer: 'wordpiece', ids: [19, 20, 22, 6, 7, 31], tokens: ['he', '##llo', '##s', '你', '好', '[speaker2]'] });
});
