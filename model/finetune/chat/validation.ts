// Validation of a chat fine-tuning run: the LM loss per trained token on the valid file's
// sequences (dropout off) and, with the next-utterance head, how often it ranks the true reply first.
import * as tf from '@tensorflow/tfjs';
import type { GptParams } from '../../nn/params.js';
import { prepareBatch, taskForward, type FinetuneModel } from '../model.js';
import type { CandidateSet } from './candidates.js';
import { chatBatch, chatLoss } from './objective.js';
import type { ChatSequence } from './sequences.js';

export interface ChatValidation {
  /** Mean cross-entropy per trained token, and its exponential. */
  loss: number;
  perplexity: number;
  sequences: number;
  tokens: number;
  /** Next-utterance accuracy (the true reply ranked first), when the head is trained. */
  mcAccuracy?: number;
}

/** Loss per trained token over `sequences`, and the head's accuracy on their candidates. */
export function validate(params: GptParams, sequences: readonly ChatSequence[], mc?: FinetuneModel, cands?: CandidateSet, batchSize = 16): ChatValidation {
  let sum = 0;
  let weight = 0;
  let count = 0;
  let right = 0;
  for (let i = 0; i < sequences.length; i += batchSize) {
    const batch = chatBatch(sequences.slice(i, i + batchSize));
    const l = tf.tidy(() => chatLoss(params, batch, { training: false }));
    sum += l.dataSync()[0] * batch.lmWeight;
    weight += batch.lmWeight;
    count += batch.lmIdx.length;
    l.dispose();
    if (mc && cands) {
      const inputs = cands.inputs.slice(i, i + batchSize);
      const out = tf.tidy(() => taskForward(mc, prepareBatch('multiple-choice', inputs), { training: false }).outputs);
      const scores = out.arraySync();
      out.dispose();
      scores.forEach((row, k) => {
        if (row.indexOf(Math.max(...row)) === cands.targets[i + k]) right++;
      });
    }
  }
  const loss = sum / weight;
  return { loss, perplexity: Math.exp(loss), sequences: sequences.length, tokens: count, mcAccuracy: mc && cands ? right / sequences.length : undefined };
}

export function formatValidation(v: ChatValidation): string {
  return `loss ${v.loss.toFixed(4)} (perplexity ${v.perplexity.toFixed(2)}) on ${v.tokens.toLocaleString('en')} reply tokens of ${v.sequences} sequences` +
    (v.mcAccuracy !== undefined ? `, next-utterance accuracy ${(100 * v.mcAccuracy).toFixed(1)} %` : '');
}
