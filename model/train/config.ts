// Training recipes. The pre-training one is read from the JSON file given to `pretrain --config`:
// every field has GPT-1's value (scaled down where the paper's would not fit this machine) as its
// default. Every objective's recipe shares the loop's fields and the parsing here; a wrong value is
// rejected with the field's name.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';

export const positiveInt = z.number().int().positive();

/** The training loop's settings (loop.ts), the same in every objective's recipe. */
export const loopFields = {
  /** Decoupled weight decay on matrices. */
  weightDecay: z.number().min(0).default(0.01),
  /** Global gradient-norm clip (0 disables). */
  gradClip: z.number().min(0).default(1),
  checkpointEvery: positiveInt.default(100),
  logEvery: positiveInt.default(10),
};

/** Parses a recipe; every problem is named by its field, all in one error made by `fail`. */
export function parseRecipe<S extends z.ZodType>(schema: S, raw: unknown, source: string, fail: (message: string) => Error): z.output<S> {
  const r = schema.safeParse(raw ?? {});
  if (!r.success) throw fail(`${source}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

export const trainConfigSchema = z
  .object({
    /** Model shape; vocabSize comes from the data set's tokenizer. */
    model: z
      .object({
        nLayer: positiveInt.default(4),
        nEmbd: positiveInt.default(256),
        nHead: positiveInt.default(4),
        nPositions: positiveInt.default(128),
        nInner: positiveInt.optional(),
      })
      .strict()
      .default({ nLayer: 4, nEmbd: 256, nHead: 4, nPositions: 128 }),
    /** Sequences per micro-batch (each nPositions tokens). */
    batchSize: positiveInt.default(8),
    /** Micro-batches whose gradients are summed before one update. */
    gradAccum: positiveInt.default(1),
    /** Planned optimizer updates: where the cosine decay ends. */
    steps: positiveInt.default(20000),
    /** Peak learning rate (the paper: 2.5e-4 for 117 M parameters; small models take more). */
    lr: z.number().positive().max(1).default(6e-4),
    warmupSteps: z.number().int().nonnegative().default(200),
    minLrRatio: z.number().min(0).max(1).default(0.1),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    eps: z.number().positive().default(1e-8),
    weightDecay: loopFields.weightDecay,
    gradClip: loopFields.gradClip,
    /** Residual, embedding and attention dropout. */
    dropout: z.number().min(0).lt(1).default(0.1),
    /** Seeds initialisation, data order and dropout. */
    seed: z.number().int().nonnegative().default(1234),
    checkpointEvery: loopFields.checkpointEvery,
    evalEvery: positiveInt.default(200),
    /** Validation windows per corpus at each evaluation. */
    evalWindows: positiveInt.default(16),
    logEvery: loopFields.logEvery,
  })
  .strict();

export type TrainConfig = z.output<typeof trainConfigSchema>;
export type TrainConfigInput = z.input<typeof trainConfigSchema>;

export class TrainConfigError extends Error {
  override name = 'TrainConfigError';
}

export function parseTrainConfig(raw: unknown, source = 'training config'): TrainConfig {
  const c = parseRecipe(trainConfigSchema, raw, source, (m) => new TrainConfigError(m));
  if (c.model.nEmbd % c.model.nHead !== 0) {
    throw new TrainConfigError(`${source}: model.nEmbd (${c.model.nEmbd}) must be divisible by model.nHead (${c.model.nHead})`);
  }
  if (c.warmupSteps >= c.steps) throw new TrainConfigError(`${source}: warmupSteps (${c.warmupSteps}) must be less than steps (${c.steps})`);
  return c;
}

export async function readTrainConfig(file: string): Promise<TrainConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new TrainConfigError(`cannot read training config ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TrainConfigError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseTrainConfig(json, file);
}
