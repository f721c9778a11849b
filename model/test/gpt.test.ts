// The tfjs GPT (gpt.ts) against the float64 reference, through a safetensors round trip.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { configFromHf, configToHf, makeConfig, ModelConfigError } from '../nn/config.js';
import { forward, InvalidTokensError, lastLogits, logits } from '../nn/gpt.js';
import { countParams, initParams, paramsFromNamed, paramSpecs } from '../nn/params.js';
import { loadParamArrays, writeSafetensors } from '../io/safetensors.js';
import { maxAbsDiff, randomArrays, referenceLogits } from './reference.js';

const cfg = makeConfig({ vocabSize: 53, nPositions: 16, nEmbd: 32, nLayer: 2, nHead: 4 });
let dir: string;

before(async () => {
  await initBackend();
  dir = await mkdtemp(path.join(tmpdir(), 'nemo-gpt-'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('config: GPT-1 defaults, HF round trip, clear errors', () => {
  const g = makeConfig();
  assert.equal(g.nInner, 3072);
  assert.equal(countParams(g), 116_534_784); // openai-gpt's published parameter count
  assert.deepEqual(configFromHf(configToHf(cfg)), cfg);
  assert.throws(() => makeConfig({ nEmbd: 30, nHead: 4 }), /divisible/);
  assert.throws(() => configFromHf({ n_layer: -1 }, 'x/config.json'), (e: Error) => e instanceof ModelConfigError && /x\/config.json.*nLayer/.test(e.message));
  assert.throws(() => configFromHf({ afn: 'relu' }), /afn/);
  assert.throws(() => configFromHf([]), /JSON object/);
});

test('logits equal a float64 reference within 1e-4 (safetensors round trip)', async () => {
  const arrays = randomArrays(cfg, 7);
  const file = path.join(dir, 'model.safetensors');
  await writeSafetensors(file, paramSpecs(cfg).map((s) => [`transformer.${s.name}`, { shape: s.shape, data: arrays.get(s.name)! }]));
  const loaded = await loadParamArrays(file, cfg);
  const params = paramsFromNamed(cfg, new Map([...loaded].map(([n, t]) => [n, tf.tensor(t.data, t.shape)])));
  const ids = [[1, 5, 52, 0, 17, 9, 33, 2, 8, 44, 12]];
  const want = referenceLogits(cfg, arrays, ids[0]).flat();
  const got = tf.tidy(() => logits(params, ids)).dataSync();
  assert.ok(maxAbsDiff(got, want) < 1e-4, `max diff ${maxAbsDiff(got, want)}`);
  // The logits are far from trivial (a broken model would fail the comparison, not pass it).
  assert.ok(Math.max(...want.map(Math.abs)) > 1);
  const last = tf.tidy(() => lastLogits(params, ids)).dataSync();
  assert.ok(maxAbsDiff(last, want.slice(-cfg.vocabSize)) < 1e-4);
  // Batch of two different sequences: each row equals its own reference.
  const batch = [[3, 4, 5], [50, 1, 7]];
  const b = tf.tidy(() => logits(params, batch)).dataSync();
  assert.ok(maxAbsDiff(b.slice(3 * cfg.vocabSize), referenceLogits(cfg, arrays, batch[1]).flat()) < 1e-4);
});

test('forward is differentiable and dropout only acts when training', () => {
  const p = initParams(cfg, 3);
  const ids = [[1, 2, 3, 4]];
  // (Gradients of the embedding need a gather gradient that wasm lacks: the trainer handles that.)
  const fcw = tf.variable(p.blocks[0].fcW, true, 'fcw');
  const pv = { ...p, blocks: [{ ...p.blocks[0], fcW: fcw as tf.Variable<tf.Rank.R2> }, p.blocks[1]] };
  const { value, grads } = tf.variableGrads(() => tf.mean(tf.square(forward(pv, ids))) as tf.Scalar, [fcw]);
  assert.ok(Number.isFinite(value.dataSync()[0]));
  assert.ok(tf.abs(grads.fcw).max().dataSync()[0] > 0);
  const a = tf.tidy(() => forward(p, ids)).dataSync();
  const b = tf.tidy(() => forward(p, ids, { training: false })).dataSync();
  const c = tf.tidy(() => forward(p, ids, { training: true, dropout: 0.5, seed: 1 })).dataSync();
  assert.deepEqual(a, b);
  assert.ok(maxAbsDiff(a, c) > 1e-3);
});

test('bad token ids get a clear error', () => {
  const p = initParams(cfg, 1);
  assert.throws(() => forward(p, [[1, 53]]), (e: Error) => e instanceof InvalidTokensError && /outside the vocabulary/.test(e.message));
  assert.throws(() => forward(p, [[]]), /empty/);
  assert.throws(() => forward(p, [new Array(17).fill(1)]), /exceeds the context/);
  assert.throws(() => forward(p, [[1, 2], [1]]), /same length/);
});
