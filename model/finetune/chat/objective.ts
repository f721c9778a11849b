// The chat LM loss on a batch of sequences: next-token cross-entropy weighted by the sequences'
// per-token loss mask (../sequences.ts), through the pre-trained decoder and its tied LM head
// (train/loss.ts lmLoss). Only positions with a non-zero weight reach the LM head: the prompt's
// logits would be multiplied by 0.
import * as tf from '@tensorflow/tfjs';
import { forward } from '../../nn/gpt.js';
import type { GptParams } from '../../nn/params.js';
import { lmLoss } from '../../train/loss.js';
import type { ChatSequence } from './sequences.js';

export interface ChatBatch {
  /** [rows, T] ids, right-padded (causal attention never lets a real position see the padding). */
  ids: Int32Array;
  rows: number;
  T: number;
  /** Flat [rows*T] positions whose next token is scored, those tokens, and their weights. */
  lmIdx: Int32Array;
  lmTargets: Int32Array;
  lmWeights: Float32Array;
  /** Σ lmWeights: the batch's share of an update's LM loss. */
  lmWeight: number;
  /** Ids read (padding excluded). */
  tokens: number;
}

export function chatBatch(sequences: readonly ChatSequence[]): ChatBatch {
  const rows = sequences.length;
  const T = Math.max(...sequences.map((s) => s.ids.length));
  const ids = new Int32Array(rows * T);
  const lmIdx: number[] = [];
  const lmTargets: number[] = [];
  const lmWeights: number[] = [];
  let tokens = 0;
  sequences.forEach((s, r) => {
    ids.set(s.ids, r * T);
    ids.fill(s.ids[s.ids.length - 1], r * T + s.ids.length, (r + 1) * T);
    tokens += s.ids.length;
    for (let t = 1; t < s.ids.length; t++) {
      if (s.loss[t] > 0) {
        lmIdx.push(r * T + t - 1);
        lmTargets.push(s.ids[t]);
        lmWeights.push(s.loss[t]);
      }
    }
  });
  return {
    ids, rows, T, lmIdx: Int32Array.from(lmIdx), lmTargets: Int32Array.from(lmTargets), lmWeights: Float32Array.from(lmWeights),
    lmWeight: lmWeights.reduce((a, b) => a + b, 0), tokens,
  };
}

/**
 * Weighted mean cross-entropy over the batch's targets (inside a tidy or a gradient function).
 * `dropout`/`seed` as in gpt.ts `forward`.
 */
export function chatLoss(params: GptParams, batch: ChatBatch, opts: { training: boolean; dropout?: number; seed?: number }): tf.Scalar {
  if (batch.lmIdx.length === 0) throw new Error('a chat batch without any target token');
  const hidden = forward(params, tf.tensor2d(batch.ids, [batch.rows, batch.T], 'int32'), opts);
  const flat = tf.reshape(hidden, [batch.rows * batch.T, params.config.nEmbd]) as tf.Tensor2D;
  return lmLoss(params.tokensEmbed, flat, { positions: batch.lmIdx, targets: batch.lmTargets, weights: batch.lmWeights });
}
