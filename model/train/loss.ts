// The language-model objective: mean cross-entropy of next-token logits against the targets,
// with a hand-written gradient (softmax − one-hot) / N. Autograd through logSoftmax + gather would
// build several [N, V] intermediates and need `gather`'s gradient; this needs one softmax.
import * as tf from '@tensorflow/tfjs';

/**
 * Mean over rows of −log softmax(logits)[target]. `logits` [N, V] float32, `targets` [N] int32.
 * Differentiable with respect to `logits` only.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const [n, v] = logits.shape;
  const fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const lg = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    // int32 one-hot, then cast: wasm's OneHot kernel ignores the dtype argument and writes int32
    // bits into a float32 tensor (every "1" reads as 1.4e-45), which made the loss go negative.
    const oneHot = tf.cast(tf.oneHot(targets, v), 'float32');
    const lse = tf.logSumExp(lg, 1); // [N]
    const picked = tf.sum(tf.mul(lg, oneHot), 1); // [N]
    const value = tf.mean(tf.sub(lse, picked)) as tf.Scalar;
    save([lg, oneHot]);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [l, oh] = saved;
        return [tf.mul(tf.sub(tf.softmax(l, -1), oh), tf.div(dy as tf.Tensor, n))];
      },
    };
  });
  return fn(logits) as tf.Scalar;
}
