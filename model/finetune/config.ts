// The fine-tuning recipe. Defaults are the paper's (section 4.1): lr 6.25e-5, batch 32, 3 epochs,
// linear decay with warm-up over 0.2 % of training, dropout 0.1 on the classifier, λ = 0.5.
import { z } from 'zod';
import { loopFields, parseRecipe, positiveInt } from '../train/config.js';

export const finetuneConfigSchema = z
  .object({
    epochs: positiveInt.default(3),
    lr: z.number().positive().max(1).default(6.25e-5),
    /** Examples per update. */
    batchSize: positiveInt.default(32),
    /** Examples per forward/backward pass (gradients are summed up to batchSize); default: all at once. */
    microBatch: positiveInt.optional(),
    /** Warm-up as a fraction of all updates. */
    warmup: z.number().min(0).max(0.5).default(0.002),
    /** λ: weight of the auxiliary language-model loss (0 turns it off). */
    lmCoef: z.number().min(0).max(100).default(0.5),
    /** Dropout on the classifier's input. */
    clfDropout: z.number().min(0).lt(1).default(0.1),
    /** Decoder dropout (embeddings, attention, residuals); default: the model config's (0.1 for GPT-1). */
    dropout: z.number().min(0).lt(1).optional(),
    weightDecay: loopFields.weightDecay,
    gradClip: loopFields.gradClip,
    /** Seeds the head, the new embedding rows, the data order and dropout. */
    seed: z.number().int().nonnegative().default(42),
    /** Longest sequence (tokens); default and maximum: the model's context. */
    maxLen: z.number().int().min(3).optional(),
    /** Stop after this many updates in total (a fixed budget); default: all epochs. */
    maxSteps: positiveInt.optional(),
    checkpointEvery: loopFields.checkpointEvery,
    logEvery: loopFields.logEvery,
  })
  .strict();

export type FinetuneConfig = z.output<typeof finetuneConfigSchema>;
export type FinetuneConfigInput = z.input<typeof finetuneConfigSchema>;

export class FinetuneConfigError extends Error {
  override name = 'FinetuneConfigError';
}

export function parseFinetuneConfig(raw: unknown, source = 'fine-tuning options'): FinetuneConfig {
  return parseRecipe(finetuneConfigSchema, raw, source, (m) => new FinetuneConfigError(m));
}
