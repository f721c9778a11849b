// The training-only kernels and the loss against straightforward float64 JS references, on the
// backend the trainer uses (wasm here): batched/transposed matmul, its gradient, the segment sum
// behind the embedding gradient, and the cross-entropy value and gradient (plain and weighted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { Rng } from '../rng.js';
import { installTrainingKernels } from '../train/kernels.js';
import { crossEntropy, weightedCrossEntropy } from '../train/loss.js';
import { refMatMul } from './reference.js';

const backend = await initBackend();
installTrainingKernels();

function rand(n: number, seed: number): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(n), 1);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test(`batched and transposed matmuls equal a float64 reference (${backend})`, () => {
  const cases: Array<[number[], number[], boolean, boolean]> = [
    [[3, 5, 7], [3, 7, 4], false, false],
    [[3, 5, 7], [3, 4, 7], false, true],
    [[3, 7, 5], [3, 7, 4], true, false],
    [[3, 7, 5], [3, 4, 7], true, true],
    [[5, 7], [4, 7], false, true],
    [[7, 5], [7, 4], true, false],
    [[2, 5, 7], [7, 4], false, false],
  ];
  cases.forEach(([as, bs, ta, tb], n) => {
    const a = rand(as.reduce((x, y) => x * y, 1), 10 + n);
    const b = rand(bs.reduce((x, y) => x * y, 1), 20 + n);
    const got = tf.tidy(() => tf.matMul(tf.tensor(a, as), tf.tensor(b, bs), ta, tb).dataSync());
    assert.ok(maxDiff(got, refMatMul(a, as, b, bs, ta, tb)) < 1e-4, `case ${n}: ${JSON.stringify([as, bs, ta, tb])}`);
  });
  // 4-D, as attention uses it: [B, H, T, D] x [B, H, T, D]^T
  const q = rand(2 * 3 * 6 * 4, 1);
  const k = rand(2 * 3 * 6 * 4, 2);
  const got = tf.tidy(() => tf.matMul(tf.tensor(q, [2, 3, 6, 4]), tf.tensor(k, [2, 3, 6, 4]), false, true).dataSync());
  assert.ok(maxDiff(got, refMatMul(q, [6, 6, 4], k, [6, 6, 4], false, true)) < 1e-4);
});

test('matmul gradients (explicit transposes) equal the analytic ones', () => {
  const a = rand(3 * 5 * 7, 3);
  const b = rand(3 * 4 * 7, 4);
  const dy = rand(3 * 5 * 4, 5);
  const [ga, gb] = tf.tidy(() => {
    const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, false, true));
    return g([tf.tensor(a, [3, 5, 7]), tf.tensor(b, [3, 4, 7])], tf.tensor(dy, [3, 5, 4])).map((t) => t.dataSync());
  });
  // C = A·Bᵀ: dA = dY·B, dB = dYᵀ·A
  assert.ok(maxDiff(ga, refMatMul(dy, [3, 5, 4], b, [3, 4, 7], false, false)) < 1e-4);
  assert.ok(maxDiff(gb, refMatMul(dy, [3, 5, 4], a, [3, 5, 7], true, false)) < 1e-4);
});

test('the embedding gradient (segment sum) adds rows of repeated ids', () => {
  const table = rand(6 * 3, 7);
  const ids = [1, 4, 1, 0, 1];
  const dy = rand(ids.length * 3, 8);
  const g = tf.tidy(() => {
    const f = tf.grad((t: tf.Tensor) => tf.mul(tf.gather(t, tf.tensor1d(ids, 'int32')), tf.tensor(dy, [ids.length, 3])).sum());
    return f(tf.tensor(table, [6, 3])).dataSync();
  });
  const want = new Float64Array(6 * 3);
  ids.forEach((id, i) => {
    for (let c = 0; c < 3; c++) want[id * 3 + c] += dy[i * 3 + c];
  });
  assert.ok(maxDiff(g, want) < 1e-5);
});

/** Σ w·CE / Σ w over the rows of logits [N, V] and its gradient, in float64. */
function refCrossEntropy(logits: Float32Array, V: number, targets: ArrayLike<number>, weights: Float32Array): { want: number; wantGrad: Float64Array } {
  const N = targets.length;
  const total = weights.reduce((a, b) => a + b, 0);
  let want = 0;
  const wantGrad = new Float64Array(N * V);
  for (let r = 0; r < N; r++) {
    let m = -Infinity;
    for (let c = 0; c < V; c++) m = Math.max(m, logits[r * V + c]);
    let s = 0;
    for (let c = 0; c < V; c++) s += Math.exp(logits[r * V + c] - m);
    want += (weights[r] * (m + Math.log(s) - logits[r * V + targets[r]])) / total;
    for (let c = 0; c < V; c++) wantGrad[r * V + c] = (weights[r] * (Math.exp(logits[r * V + c] - m) / s - (c === targets[r] ? 1 : 0))) / total;
  }
  return { want, wantGrad };
}

test('cross-entropy value and gradient equal a float64 reference', () => {
  const N = 6;
  const V = 11;
  const logits = rand(N * V, 9).map((x) => x * 4);
  const targets = [0, 10, 3, 3, 7, 1];
  const { value, grad } = tf.tidy(() => {
    const t = tf.tensor1d(targets, 'int32');
    const x = tf.tensor2d(logits, [N, V]);
    const { value, grads } = tf.valueAndGrads((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, t))([x]);
    return { value: value.dataSync()[0], grad: grads[0].dataSync() };
  });
  const { want, wantGrad } = refCrossEntropy(logits, V, targets, new Float32Array(N).fill(1));
  assert.ok(want > 0);
  assert.ok(Math.abs(value - want) < 1e-5, `loss ${value} vs ${want}`);
  assert.ok(maxDiff(grad, wantGrad) < 1e-6);
});

test('weighted cross-entropy (Σ w·CE / Σ w): value and gradient equal a float64 reference; weight 0 leaves a row out', () => {
  const N = 6;
  const V = 11;
  const logits = rand(N * V, 19).map((x) => x * 4);
  const targets = Int32Array.from([4, 10, 3, 0, 7, 1]);
  const weights = Float32Array.from([1, 0, 2, 0.5, 0, 1]); // rows 1 and 4: masked out (a prompt's tokens)
  const { value, grad } = tf.tidy(() => {
    const x = tf.tensor2d(logits, [N, V]);
    const { value, grads } = tf.valueAndGrads((l: tf.Tensor) => weightedCrossEntropy(l as tf.Tensor2D, targets, weights))([x]);
    return { value: value.dataSync()[0], grad: grads[0].dataSync() };
  });
  const { want, wantGrad } = refCrossEntropy(logits, V, targets, weights);
  assert.ok(Math.abs(value - want) < 1e-5, `loss ${value} vs ${want}`);
  assert.ok(maxDiff(grad, wantGrad) < 1e-6);
  for (const r of [1, 4]) assert.ok(grad.subarray(r * V, (r + 1) * V).every((g) => g === 0), `masked row ${r} gets no gradient`);
  // Equal weights give the plain mean.
  const plain = tf.tidy(() => crossEntropy(tf.tensor2d(logits, [N, V]), tf.tensor1d(targets, 'int32')).dataSync()[0]);
  const ones = tf.tidy(() => weightedCrossEntropy(tf.tensor2d(logits, [N, V]), targets, new Float32Array(N).fill(3)).dataSync()[0]);
  assert.ok(Math.abs(plain - ones) < 1e-5, `${plain} vs ${ones}`);
  assert.throws(() => weightedCrossEntropy(tf.tensor2d(logits, [N, V]), targets, new Float32Array(N)), /weights sum to 0/);
});
