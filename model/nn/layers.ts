// The building blocks of gpt.ts, written with differentiable tf ops so that training can call the
// same code under tf.variableGrads / an optimizer. Training-speed hooks (custom-gradient linears,
// a one-hot embedding for backends without a `gather` gradient) belong here, not in gpt.ts.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../rng.js';

/** x [N, in] @ w [in, out] + b [out]: a plain 2-D matmul (fast on wasm; no transpose flags). */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.add(tf.matMul(x, w), b);
}

/** LayerNorm over the last axis with gain g and bias b. */
export function layerNorm<T extends tf.Tensor>(x: T, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): T {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), g), b) as T;
}

/** sqrt(2/pi) * 2: GELU's tanh form rewritten with sigmoid, since 0.5(1+tanh(z)) = sigmoid(2z). */
const GELU_K = 2 * Math.sqrt(2 / Math.PI);

/**
 * GELU, tanh approximation (GPT-1's): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed as
 * x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)) — the same function; wasm's sigmoid is ~13x faster than tanh.
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  // x·x² instead of pow(x, 3): wasm's Pow kernel (and its gradient) cost ~7 % of a training step.
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), GELU_K);
  return tf.mul(x, tf.sigmoid(inner)) as T;
}

/** Rows of `table` [V, C] for `ids` (int32, any shape) → [...ids.shape, C]. */
export function embed(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  const flat = tf.gather(table, tf.reshape(ids, [-1]));
  return tf.reshape(flat, [...ids.shape, table.shape[1]]);
}

/**
 * Inverted dropout; identity when rate is 0. The keep-mask comes from a seeded mulberry32 stream in
 * JS: tf.dropout draws each number through tfjs's JS Alea generator and then runs three kernels,
 * which cost ~5 % of a training step on wasm.
 */
export function dropout<T extends tf.Tensor>(x: T, rate: number, seed?: number): T {
  if (!(rate > 0)) return x;
  const keep = 1 - rate;
  const scale = 1 / keep;
  const rng = new Rng(seed ?? Math.floor(Math.random() * 2 ** 32));
  const mask = new Float32Array(x.size);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < keep ? scale : 0;
  return tf.mul(x, tf.tensor(mask, x.shape, 'float32')) as T;
}

const causalMasks = new Map<number, Float32Array>();

/**
 * [T, T] lower-triangular 0/1 mask (position i sees 0..i), built in JS and cached per T:
 * tf.linalg.bandPart's range/logicalAnd kernels cost more than the attention itself on wasm.
 */
export function causalMask(T: number): tf.Tensor2D {
  let m = causalMasks.get(T);
  if (!m) {
    m = new Float32Array(T * T);
    for (let i = 0; i < T; i++) m.fill(1, i * T, i * T + i + 1);
    causalMasks.set(T, m);
  }
  return tf.tensor2d(m, [T, T]);
}
