// The next-utterance objective (TransferTransfo's "next-sentence prediction"): for a sequence's
// last trained reply, the true reply and replies drawn from other conversations become one
// multiple-choice example in GPT-1's input transformation
//   [start] prompt [delim] candidate_k [extract]   for every k
// (../transforms.ts `multipleChoiceInput`), scored by the fine-tuning model's head (../model.ts).
// Candidates are drawn once, from a seed, so a resumed run sees the same ones.
import { Rng } from '../../rng.js';
import type { SpecialIds } from '../tasks.js';
import { multipleChoiceInput, type EncodedInput } from '../transforms.js';
import type { ChatSequence } from './sequences.js';

export interface CandidateSet {
  inputs: EncodedInput[];
  /** Index of the true reply among each example's candidates. */
  targets: number[];
}

/**
 * One multiple-choice example per sequence: `numCandidates` replies, the true one at a random
 * position, the others the last replies of sequences from other conversations.
 */
export function buildCandidates(sequences: readonly ChatSequence[], numCandidates: number, sp: SpecialIds, maxLen: number, seed: number): CandidateSet {
  if (numCandidates < 2) throw new Error('the next-utterance objective needs at least 2 candidates');
  const conversations = new Set(sequences.map((s) => s.conversation));
  if (conversations.size < numCandidates) {
    throw new Error(`${numCandidates} candidates need replies from at least ${numCandidates} conversations; the data has ${conversations.size}`);
  }
  const rng = new Rng((seed ^ 0xc4a7) >>> 0);
  const inputs: EncodedInput[] = [];
  const targets: number[] = [];
  for (const s of sequences) {
    const others: number[][] = [];
    const key = s.lastReply.ids.join();
    for (let tries = 0; others.length < numCandidates - 1; tries++) {
      const o = sequences[Math.floor(rng.next() * sequences.length)];
      // A distractor with the true reply's very text would be a right answer marked wrong.
      if (o.conversation !== s.conversation && (tries > 100 || o.lastReply.ids.join() !== key)) others.push(o.lastReply.ids);
    }
    const target = Math.floor(rng.next() * numCandidates);
    others.splice(target, 0, s.lastReply.ids);
    inputs.push(multipleChoiceInput(s.ids.slice(0, s.lastReply.start), others, sp, maxLen));
    targets.push(target);
  }
  return { inputs, targets };
}
