// The language-model objective: mean cross-entropy of next-token logits against the targets,
// with a hand-written gradient (softmax − one-hot) / N. Autograd through logSoftmax + gather would
// build several [N, V] intermediates; here the forward pass reads the target logits with one
// gather and the backward pass is one softmax, one scale and a scatter of N entries.
import * as tf from '@tensorflow/tfjs';

/** Row-major positions of the target logits in [N, V], and the same as (row, column) pairs. */
function targetPositions(targets: Int32Array, v: number): { flat: Int32Array; pairs: Int32Array } {
  const n = targets.length;
  const flat = new Int32Array(n);
  const pairs = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    flat[i] = i * v + targets[i];
    pairs[2 * i] = i;
    pairs[2 * i + 1] = targets[i];
  }
  return { flat, pairs };
}

/**
 * Mean over rows of −log softmax(logits)[target]. `logits` [N, V] float32, `targets` [N] int32.
 * Differentiable with respect to `logits` only.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const [n, v] = logits.shape;
  const { flat, pairs } = targetPositions(targets.dataSync() as Int32Array, v);

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

/**
 * Σ wᵢ·CEᵢ / Σ wᵢ over rows: the cross-entropy with a weight per row (0 leaves a row out, e.g. a
 * prompt token in chat fine-tuning). Same hand-written gradient as crossEntropy, each row's scaled
 * by its weight. Throws when the weights sum to 0 (nothing to learn from).
 */
export function weightedCrossEntropy(logits: tf.Tensor2D, targets: Int32Array, weights: Float32Array): tf.Scalar {
  const [n, v] = logits.shape;
  if (targets.length !== n || weights.length !== n) throw new Error(`weightedCrossEntropy: ${n} rows but ${targets.length} targets and ${weights.length} weights`);
  let total = 0;
  for (const w of weights) total += w;
  if (!(total > 0)) throw new Error('weightedCrossEntropy: the weights sum to 0 (no token is scored)');
  const share = Float32Array.from(weights, (w) => w / total);
  const { flat, pairs } = targetPositions(targets, v);
  const fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const lg = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    const flatIdx = tf.tensor1d(flat, 'int32');
    const w = tf.tensor1d(share);
    const picked = tf.gather(tf.reshape(lg, [-1]), flatIdx);
    const value = tf.sum(tf.mul(tf.sub(tf.logSumExp(lg, 1), picked), w)) as tf.Scalar;
    save([lg, flatIdx, w]);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const ws = tf.mul(saved[2], dy as tf.Tensor); // [N]: each row's share of the loss
        const g = tf.mul(tf.softmax(saved[0], -1), tf.reshape(ws, [n, 1]));
        const at = tf.sub(tf.gather(tf.reshape(g, [-1]), saved[1]), ws);
        return [tf.tensorScatterUpdate(g, tf.tensor2d(pairs, [n, 2], 'int32'), at)];
      },
    };
  });
  return fn(logits) as tf.Scalar;
}

/** Which next tokens the LM loss scores (see lmLoss). */
export interface LmTargets {
  /** Flat positions (row·T + t) of the hidden states that predict a token; omitted: every position. */
  positions?: Int32Array;
  /** The token each scored position predicts. */
  targets: Int32Array;
  /**
   * Per scored position, its weight: chat fine-tuning gives 1 to the reply tokens and their
   * terminator and 0 to the prompt. Omitted: all 1 (the plain mean).
   */
  weights?: Float32Array;
}

/**
 * The language-model loss on a decoder's final hidden states [rows·T, C] with the tied LM head.
 * Call inside tf.tidy or a gradient function.
 */
export function lmLoss(tokensEmbed: tf.Tensor2D, hidden: tf.Tensor2D, t: LmTargets): tf.Scalar {
  const h = t.positions ? (tf.gather(hidden, tf.tensor1d(t.positions, 'int32')) as tf.Tensor2D) : hidden;
  // Explicit transpose + plain matmul for the tied LM head: the transposed-matmul form is slow on wasm.
  const logits = tf.matMul(h, tf.transpose(tokensEmbed) as tf.Tensor2D) as tf.Tensor2D;
  return t.weights ? weightedCrossEntropy(logits, t.targets, t.weights) : crossEntropy(logits, tf.tensor1d(t.targets, 'int32'));
}
