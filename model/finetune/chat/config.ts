// The chat fine-tuning recipe. Defaults follow TransferTransfo's setup scaled to a small model:
// AdamW with a short warm-up and linear decay to 10 % of the peak, batches of 16 sequences,
// dropout 0.1, the LM loss on the assistant's tokens only, the next-utterance head off.
import { z } from 'zod';
import { loopFields, parseRecipe, positiveInt } from '../../train/config.js';
import { FinetuneConfigError } from '../config.js';

export const chatConfigSchema = z
  .object({
    epochs: positiveInt.default(3),
    lr: z.number().positive().max(1).default(2.5e-4),
    /** Sequences per update. */
    batchSize: positiveInt.default(16),
    /** Sequences per forward/backward pass (gradients summed up to batchSize); default: up to 16. */
    microBatch: positiveInt.optional(),
    /** Warm-up as a fraction of all updates. */
    warmup: z.number().min(0).max(0.5).default(0.02),
    /** Learning rate at the end, as a fraction of the peak (linear decay). */
    minLrRatio: z.number().min(0).max(1).default(0.1),
    /** Decoder dropout; default: the model config's. */
    dropout: z.number().min(0).lt(1).optional(),
    weightDecay: loopFields.weightDecay,
    gradClip: loopFields.gradClip,
    seed: z.number().int().nonnegative().default(42),
    /** Longest sequence (tokens); default and maximum: the model's context. */
    maxLen: z.number().int().min(8).optional(),
    maxSteps: positiveInt.optional(),
    /** 'assistant': replies and their terminators only; 'all': every token of the conversation. */
    lossOn: z.enum(['assistant', 'all']).default('assistant'),
    /** Weight of the next-utterance (multiple-choice) loss; 0 = no head. */
    mcCoef: z.number().min(0).max(100).default(0),
    /** Candidates per next-utterance example (the true reply and numCandidates − 1 from other conversations). */
    numCandidates: z.number().int().min(2).max(16).default(2),
    /** Dropout on the next-utterance head's input. */
    clfDropout: z.number().min(0).lt(1).default(0.1),
    checkpointEvery: loopFields.checkpointEvery,
    /** Updates between validations; default: after every epoch. */
    evalEvery: positiveInt.optional(),
    /** Validation sequences scored each time (evenly spread over the file); default: all. */
    evalSequences: positiveInt.optional(),
    logEvery: loopFields.logEvery,
  })
  .strict();

export type ChatConfig = z.output<typeof chatConfigSchema>;
export type ChatConfigInput = z.input<typeof chatConfigSchema>;

export function parseChatConfig(raw: unknown, source = 'chat fine-tuning options'): ChatConfig {
  return parseRecipe(chatConfigSchema, raw, source, (m) => new FinetuneConfigError(m));
}

/** Settings that a resumed run may change without breaking its exactness. */
export const RESUMABLE_KEYS = ['maxSteps', 'checkpointEvery', 'logEvery', 'evalEvery', 'evalSequences'] as const;
