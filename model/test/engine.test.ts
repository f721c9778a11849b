// Checkpoint layouts (HF safetensors and the original OpenAI npy release) and the fast engine
// (prefill, KV-cache decode, batched decode) against the float64 reference.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { paramsFromArrays, readCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { makeConfig } from '../nn/config.js';
import { disposeCache, Engine } from '../inference/engine.js';
import { CheckpointError } from '../errors.js';
import { writeNpy } from '../io/npy.js';
import { nativeMatMulActive, nativeOpsActive, withoutNative } from '../native/kernels.js';
import { disposeParams, paramSpecs } from '../nn/params.js';
import { loadEngineWeights } from '../inference/weights.js';
import { writeSafetensors } from '../io/safetensors.js';
import { maxAbsDiff, randomArrays, referenceLogits, type Arrays } from './reference.js';

const cfg = makeConfig({ vocabSize: 61, nPositions: 24, nEmbd: 32, nLayer: 2, nHead: 4 });
let dir: string;
let arrays: Arrays;
let hfDir: string;

before(async () => {
  await initBackend();
  dir = await mkdtemp(path.join(tmpdir(), 'nemo-engine-'));
  arrays = randomArrays(cfg, 11);
  hfDir = path.join(dir, 'hf');
  await saveCheckpoint(hfDir, cfg, new Map([...arrays].map(([n, d]) => [n, { shape: paramSpecs(cfg).find((s) => s.name === n)!.shape, data: d }])));
});
after(() => rm(dir, { recursive: true, force: true }));

const lastRow = (rows: number[][]) => rows[rows.length - 1];

async function engineFrom(d: string): Promise<Engine> {
  const { config, tensors } = await loadEngineWeights(d);
  return new Engine(config, tensors);
}

test('HF checkpoint: prefill logits equal the reference; KV-cache decode equals full recomputation', async () => {
  const engine = await engineFrom(hfDir);
  const ids = [4, 9, 60, 1, 33];
  const { cache, logits } = engine.prefill(ids);
  assert.ok(maxAbsDiff(logits, lastRow(referenceLogits(cfg, arrays, ids))) < 1e-4);
  const more = [7, 0, 59, 12, 12, 30];
  for (const t of more) {
    ids.push(t);
    const [l] = engine.step([{ cache, token: t }]);
    const want = lastRow(referenceLogits(cfg, arrays, ids));
    assert.ok(maxAbsDiff(l, want) < 1e-4, `step at ${ids.length}: ${maxAbsDiff(l, want)}`);
  }
  assert.equal(cache.length, ids.length);
  disposeCache(cache);
  engine.dispose();
});

test('long decodes (KV tails merged into the cache block) still equal the reference', async () => {
  const long = makeConfig({ vocabSize: 61, nPositions: 90, nEmbd: 32, nLayer: 2, nHead: 4 });
  const arr = randomArrays(long, 12);
  const d = path.join(dir, 'long');
  await saveCheckpoint(d, long, new Map([...arr].map(([n, data]) => [n, { shape: paramSpecs(long).find((s) => s.name === n)!.shape, data }])));
  const engine = await engineFrom(d);
  const ids = [5, 6, 7];
  const { cache } = engine.prefill(ids);
  for (let s = 0; s < 80; s++) {
    const t = (s * 17 + 3) % long.vocabSize;
    ids.push(t);
    const [l] = engine.step([{ cache, token: t }]);
    if (s % 13 === 0 || s === 79) assert.ok(maxAbsDiff(l, lastRow(referenceLogits(long, arr, ids))) < 1e-4, `step ${s}`);
  }
  engine.release(cache);
  engine.dispose();
});

test('released caches lend their native KV buffers to later caches, stale rows and all, without changing any logits', async (t) => {
  if (!nativeOpsActive()) {
    t.skip('native fused ops off: caches hold tfjs tensors, nothing is pooled');
    return;
  }
  const wide = makeConfig({ vocabSize: 61, nPositions: 200, nEmbd: 32, nLayer: 2, nHead: 4 });
  const arr = randomArrays(wide, 13);
  const d = path.join(dir, 'pool');
  await saveCheckpoint(d, wide, new Map([...arr].map(([n, data]) => [n, { shape: paramSpecs(wide).find((s) => s.name === n)!.shape, data }])));
  const engine = await engineFrom(d);
  const check = (ids: number[], l: Float32Array, what: string) =>
    assert.ok(maxAbsDiff(l, lastRow(referenceLogits(wide, arr, ids))) < 1e-4, `${what}: ${maxAbsDiff(l, lastRow(referenceLogits(wide, arr, ids)))}`);
  const seq = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (i * seed + 5) % wide.vocabSize);
  // a: 70 rows (capacity 128); b: 5 rows (64), then decoded to 70: its 64-row buffers are outgrown.
  const a = engine.prefill(seq(70, 7)).cache;
  const bIds = seq(5, 11);
  const b = engine.prefill(bIds).cache;
  const b64 = b.nk![0];
  for (let s = 0; s < 65; s++) {
    bIds.push((s * 13 + 1) % wide.vocabSize);
    engine.step([{ cache: b, token: bIds[bIds.length - 1] }]);
  }
  assert.notEqual(b.nk![0], b64, 'b grew');
  const a128 = a.nk![0];
  engine.release(a);
  // c takes b's old 64-row buffers, d a's 128-row ones: both full of other sequences' rows.
  const cIds = seq(10, 17);
  const c = engine.prefill(cIds);
  assert.equal(c.cache.nk![0], b64, 'c reuses the outgrown buffers');
  check(cIds, c.logits, 'c prefill');
  for (let s = 0; s < 6; s++) {
    cIds.push((s * 5 + 2) % wide.vocabSize);
    check(cIds, engine.step([{ cache: c.cache, token: cIds[cIds.length - 1] }])[0], `c step ${s}`);
  }
  const dIds = seq(100, 19);
  const dd = engine.prefill(dIds);
  assert.equal(dd.cache.nk![0], a128, 'd reuses the released buffers');
  check(dIds, dd.logits, 'd prefill');
  dIds.push(3);
  check(dIds, engine.step([{ cache: dd.cache, token: 3 }])[0], 'd step');
  // b is unaffected by all of this.
  bIds.push(9);
  check(bIds, engine.step([{ cache: b, token: 9 }])[0], 'b step');
  for (const x of [b, c.cache, dd.cache]) engine.release(x);
  engine.dispose();
});

test('chunked prefill (extend after cached tokens and a KV tail) equals the reference', async () => {
  const engine = await engineFrom(hfDir);
  const ids = [3, 14, 15];
  const { cache } = engine.prefill(ids);
  for (const t of [9, 26]) {
    ids.push(t);
    engine.step([{ cache, token: t }]);
  }
  const chunk = [5, 35, 8, 9, 7];
  ids.push(...chunk);
  const l = engine.extend(cache, chunk);
  assert.equal(cache.length, ids.length);
  assert.ok(maxAbsDiff(l, lastRow(referenceLogits(cfg, arrays, ids))) < 1e-4);
  ids.push(11);
  const [l2] = engine.step([{ cache, token: 11 }]);
  assert.ok(maxAbsDiff(l2, lastRow(referenceLogits(cfg, arrays, ids))) < 1e-4);
  assert.throws(() => engine.extend(cache, new Array(cfg.nPositions).fill(1)), /exceed the context/);
  engine.release(cache);
  engine.dispose();
});

test('batched decoding of sequences of different lengths equals one-at-a-time decoding', async () => {
  const engine = await engineFrom(hfDir);
  const prompts = [[1, 2, 3], [50], [9, 8, 7, 6, 5, 4, 3]];
  const next = [[10, 11, 12], [20, 21, 22], [30, 31, 32]];
  const single = prompts.map((p, i) => {
    const { cache } = engine.prefill(p);
    const out = next[i].map((t) => Array.from(engine.step([{ cache, token: t }])[0]));
    disposeCache(cache);
    return out;
  });
  const before = tf.memory().numTensors;
  const caches = prompts.map((p) => engine.prefill(p).cache);
  for (let s = 0; s < 3; s++) {
    // sequence 1 leaves after one step: the batch shrinks between steps
    const members = s === 0 ? [0, 1, 2] : [0, 2];
    const out = engine.step(members.map((i) => ({ cache: caches[i], token: next[i][s] })));
    members.forEach((i, j) => assert.ok(maxAbsDiff(out[j], single[i][s]) < 1e-5, `seq ${i} step ${s}`));
  }
  caches.forEach(disposeCache);
  // A step may write into the caller's buffer (the batcher's): the same logits, as views of it;
  // a buffer too small is not used.
  const into = new Float32Array(3 * cfg.vocabSize + 5).fill(NaN);
  const again = prompts.map((p) => engine.prefill(p).cache);
  const viaInto = engine.step(again.map((c, i) => ({ cache: c, token: next[i][0] })), into);
  viaInto.forEach((l, i) => {
    assert.ok(maxAbsDiff(l, single[i][0]) < 1e-5, `into: seq ${i}`);
    if (nativeOpsActive()) assert.equal(l.buffer, into.buffer, 'the logits are views of the given buffer');
  });
  const small = new Float32Array(cfg.vocabSize);
  const viaSmall = engine.step(again.map((c, i) => ({ cache: c, token: next[i][1] })), small);
  viaSmall.forEach((l, i) => {
    assert.notEqual(l.buffer, small.buffer);
    assert.ok(maxAbsDiff(l, single[i][1]) < 1e-5, `too small: seq ${i}`);
  });
  assert.ok(small.every((x) => x === 0), 'a buffer too small is left alone');
  again.forEach(disposeCache);
  assert.equal(tf.memory().numTensors, before, 'prefill and decode steps leak no tensors');
  engine.dispose();
});

test('batched prefill (prefillMany) equals one-at-a-time prefill, then the same decode; native kernels on and off', async () => {
  const engine = await engineFrom(hfDir);
  // lengths 1, 5, 12 and 23 (one position short of the context of 24: one decode step fits)
  const prompts = [[7], [1, 2, 3, 4, 5], Array.from({ length: 12 }, (_, i) => (i * 5) % 61), Array.from({ length: 23 }, (_, i) => (i * 13 + 2) % 61)];
  const run = (label: string) => {
    const before = tf.memory().numTensors;
    const a = prompts.map((p) => engine.prefill(p));
    const b = engine.prefillMany(prompts);
    assert.equal(b.length, prompts.length);
    b.forEach((r, i) => {
      assert.equal(r.cache.length, prompts[i].length);
      assert.ok(maxAbsDiff(r.logits, a[i].logits) < 1e-5, `${label}: prefill logits of prompt ${i}`);
      assert.ok(maxAbsDiff(r.logits, lastRow(referenceLogits(cfg, arrays, prompts[i]))) < 1e-4, `${label}: prompt ${i} vs reference`);
    });
    // One batched decode step for all, then two more for the sequences with room: same logits.
    for (let s = 0; s < 3; s++) {
      const members = s === 0 ? [0, 1, 2, 3] : [0, 1, 2];
      const oa = engine.step(members.map((i) => ({ cache: a[i].cache, token: (i * 11 + s) % 61 })));
      const ob = engine.step(members.map((i) => ({ cache: b[i].cache, token: (i * 11 + s) % 61 })));
      members.forEach((i, j) => assert.ok(maxAbsDiff(oa[j], ob[j]) < 1e-5, `${label}: seq ${i} step ${s}`));
    }
    assert.throws(() => engine.step([{ cache: b[3].cache, token: 1 }]), /full/);
    for (const r of [...a, ...b]) engine.release(r.cache);
    assert.equal(tf.memory().numTensors, before, `${label}: prefill and decode leak no tensors`);
  };
  run(nativeMatMulActive() ? (nativeOpsActive() ? 'native fused' : 'native matmul') : 'wasm');
  withoutNative(() => run('wasm'));
  // A single prompt and an invalid one.
  const [one] = engine.prefillMany([[3, 4]]);
  assert.ok(maxAbsDiff(one.logits, lastRow(referenceLogits(cfg, arrays, [3, 4]))) < 1e-4);
  engine.release(one.cache);
  assert.deepEqual(engine.prefillMany([]), []);
  assert.throws(() => engine.prefillMany([[1, 2], Array.from({ length: 25 }, () => 1)]), /exceeds? the context/);
  engine.dispose();
});

test('original OpenAI layout (params_shapes.json + params_N.npy) loads and matches', async () => {
  const d = path.join(dir, 'openai');
  await mkdir(d);
  const specs = paramSpecs(cfg);
  // The release's shapes: conv weights carry a leading 1.
  const shapes = specs.map((s) => (s.name.endsWith('.weight') && s.shape.length === 2 && s.name.startsWith('h.') ? [1, ...s.shape] : s.shape));
  await writeFile(path.join(d, 'params_shapes.json'), JSON.stringify(shapes));
  const flat = Float32Array.from(specs.flatMap((s) => Array.from(arrays.get(s.name)!)));
  const cut = [0, 1000, 5000, flat.length];
  for (let i = 0; i < 3; i++) await writeNpy(path.join(d, `params_${i}.npy`), { shape: [cut[i + 1] - cut[i]], data: flat.slice(cut[i], cut[i + 1]) });
  await writeFile(path.join(d, 'config.json'), JSON.stringify({ n_head: 4 }));
  const host = await readCheckpoint(d);
  assert.equal(host.format, 'openai');
  assert.deepEqual(host.config, cfg);
  const params = paramsFromArrays(host.config, host.arrays);
  const engine = Engine.fromParams(params);
  disposeParams(params);
  const ids = [3, 1, 4, 1, 5, 9, 2, 6];
  const { cache, logits } = engine.prefill(ids);
  assert.ok(maxAbsDiff(logits, lastRow(referenceLogits(cfg, arrays, ids))) < 1e-4);
  disposeCache(cache);
  engine.dispose();
  // A missing piece of the stream is named.
  await unlink(path.join(d, 'params_2.npy'));
  await assert.rejects(readCheckpoint(d), (e: Error) => e instanceof CheckpointError && /params_shapes.json needs/.test(e.message));
  await writeFile(path.join(d, 'params_2.npy'), 'garbage');
  await assert.rejects(readCheckpoint(d), /params_2\.npy: not a \.npy file/);
});

test('bad checkpoints give errors naming the file and the tensor', async () => {
  const copy = async (name: string) => {
    const d = path.join(dir, name);
    await mkdir(d, { recursive: true });
    for (const f of ['config.json', 'model.safetensors']) await writeFile(path.join(d, f), await readFile(path.join(hfDir, f)));
    return d;
  };
  await assert.rejects(readCheckpoint(path.join(dir, 'nope')), /does not exist/);
  await mkdir(path.join(dir, 'empty'));
  await assert.rejects(readCheckpoint(path.join(dir, 'empty')), /no checkpoint found/);

  const truncated = await copy('truncated');
  const size = (await readFile(path.join(truncated, 'model.safetensors'))).length;
  await truncate(path.join(truncated, 'model.safetensors'), size - 100);
  await assert.rejects(readCheckpoint(truncated), (e: Error) =>
    e instanceof CheckpointError && /model\.safetensors: tensor .*truncated/.test(e.message));

  const noConfig = await copy('noconfig');
  await unlink(path.join(noConfig, 'config.json'));
  await assert.rejects(readCheckpoint(noConfig), /config\.json: missing/);

  const wrongShape = await copy('wrongshape');
  await writeFile(path.join(wrongShape, 'config.json'), JSON.stringify({ vocab_size: 61, n_positions: 24, n_embd: 32, n_layer: 2, n_head: 4, n_inner: 64 }));
  await assert.rejects(readCheckpoint(wrongShape), /tensor h\.0\.mlp\.c_fc\.weight has shape \[32,128\], config\.json expects \[32,64\]/);

  const missing = await copy('missing');
  const specs = paramSpecs(cfg).filter((s) => s.name !== 'h.1.ln_2.bias');
  await writeSafetensors(path.join(missing, 'model.safetensors'), specs.map((s) => [s.name, { shape: s.shape, data: arrays.get(s.name)! }]));
  await assert.rejects(readCheckpoint(missing), (e: Error) => e instanceof CheckpointError && e.tensor === 'h.1.ln_2.bias' && /missing tensor h\.1\.ln_2\.bias/.test(e.message));

  const f16 = await copy('f16');
  await writeSafetensors(path.join(f16, 'model.safetensors'), paramSpecs(cfg).map((s) => [s.name, { shape: s.shape, data: arrays.get(s.name)! }]), 'F16');
  const half = await readCheckpoint(f16);
  assert.ok(maxAbsDiff(half.arrays.get('h.0.attn.c_attn.weight')!.data, arrays.get('h.0.attn.c_attn.weight')!) < 2e-3);

  const garbage = await copy('garbage');
  await writeFile(path.join(garbage, 'model.safetensors'), Buffer.from('this is not a checkpoint at all'));
  await assert.rejects(readCheckpoint(garbage), /model\.safetensors: not a safetensors file/);
  await writeFile(path.join(garbage, 'config.json'), '{"n_embd": ');
  await assert.rejects(readCheckpoint(garbage), /config\.json: not valid JSON/);
});
