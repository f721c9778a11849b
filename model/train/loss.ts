// The language-model objective: mean cross-entropy of next-token logits against the targets,
// with a hand-written gradient (softmax − one-hot) / N. Autograd through logSoftmax + gather would
// build several [N, V] intermediates; here the forward pass reads the target logits with one
// gather and the backward pass is one softmax, one scale and a scatter of N entries.
import * as tf from '@tensorflow/tfjs';

/**
 * Mean over rows of −log softmax(logits)[target]. `logits` [N, V] float32, `targets` [N] int32.
 * Differentiable with respect to `logits` only.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const [n, v] = logits.shape;
  // Row-major positions of the target logits, and the same as (row, column) pairs.
  const t = targets.dataSync();
  const flat = new Int32Array(n);
  const pairs = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    flat[i] = i * v + t[i];
    pairs[2 * i] = i;
    pairs[2 * i + 1] = t[i];
  }

  const fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const lg = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    const flatIdx = tf.tensor1d(flat, 'int32');
    const picked = tf.gather(tf.reshape(lg, [-1]), flatIdx); // [N]
    const value = tf.mean(tf.sub(tf.logSumExp(lg, 1), picked)) as tf.Scalar;
    save([lg, flatIdx]); // saved tensors outlive the forward pass's scope
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const scale = tf.div(dy as tf.Tensor, n); // scalar
        const g = tf.mul(tf.softmax(saved[0], -1), scale); // softmax / N
        // − 1/N at each row's target: one scatter of N values instead of an [N, V] one-hot.
        const at = tf.sub(tf.gather(tf.reshape(g, [-1]), saved[1]), scale);
        return [tf.tensorScatterUpdate(g, tf.tensor2d(pairs, [n, 2], 'int32'), at)];
      },
    };
  });
  return fn(logits) as tf.Scalar;
}
