// The chat LM objective on a batch of sequences: mean next-token cross-entropy over the positions
// the loss mask selects (../sequences.ts), through the pre-trained decoder and its tied LM head.
import * as tf from '@tensorflow/tfjs';
import { forward } from '../../nn/gpt.js';
import type { GptParams } from '../../nn/params.js';
import { crossEntropy } from '../../train/loss.js';
import type { ChatSequence } from './sequences.js';

export interface ChatBatch {
  /** [rows, T] ids, right-padded (causal attention never lets a real position see the padding). */
  ids: Int32Array;
  rows: number;
  T: number;
  /** Flat [rows*T] positions whose next token is a target, and those tokens. */
  lmIdx: Int32Array;
  lmTargets: Int32Array;
  /** Ids read (padding excluded). */
  tokens: number;
}

export function chatBatch(sequences: readonly ChatSequence[]): ChatBatch {
  const rows = sequences.length;
  const T = Math.max(...sequences.map((s) => s.ids.length));
  const ids = new Int32Array(rows * T);
  const lmIdx: number[] = [];
  const lmTargets: number[] = [];
  let tokens = 0;
  sequences.forEach((s, r) => {
    ids.set(s.ids, r * T);
    ids.fill(s.ids[s.ids.length - 1], r * T + s.ids.length, (r + 1) * T);
    tokens += s.ids.length;
    for (let t = 1; t < s.ids.length; t++) {
      if (s.loss[t]) {
        lmIdx.push(r * T + t - 1);
        lmTargets.push(s.ids[t]);
      }
    }
  });
  return { ids, rows, T, lmIdx: Int32Array.from(lmIdx), lmTargets: Int32Array.from(lmTargets), tokens };
}

/**
 * Mean cross-entropy over the batch's targets (inside a tidy or a gradient function).
 * `dropout`/`seed` as in gpt.ts `forward`.
 */
export function chatLoss(params: GptParams, batch: ChatBatch, opts: { training: boolean; dropout?: number; seed?: number }): tf.Scalar {
  if (batch.lmIdx.length === 0) throw new Error('a chat batch without any target token');
  const C = params.config.nEmbd;
  const hidden = forward(params, tf.tensor2d(batch.ids, [batch.rows, batch.T], 'int32'), opts);
  const h = tf.gather(tf.reshape(hidden, [batch.rows * batch.T, C]), tf.tensor1d(batch.lmIdx, 'int32')) as tf.Tensor2D;
  // Explicit transpose + plain matmul for the tied LM head (the transposed form is slow on wasm).
  const logits = tf.matMul(h, tf.transpose(params.tokensEmbed) as tf.Tensor2D) as tf.Tensor2D;
  return crossEntropy(logits, tf.tensor1d(batch.lmTargets, 'int32'));
}
