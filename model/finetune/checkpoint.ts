// A fine-tuned model on disk is a normal model folder (config.json, model.safetensors and the
// tokenizer files, so it loads and generates like any other) plus:
//   head.safetensors  the task head (head.weight [C, outputs], head.bias [outputs])
//   finetune.json     the task, its labels, and the added special tokens with their ids
// The tokenizer files record the special tokens too (vocab.json and tokenizer_config.json).
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { paramsFromArrays, readCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import type { GptConfig } from '../nn/config.js';
import { CheckpointError } from '../errors.js';
import { readSafetensors, writeSafetensors, type HostTensor } from '../io/safetensors.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';
import { headSize } from './data.js';
import { HEAD_BIAS, HEAD_WEIGHT, type FinetuneModel, type TaskSpec } from './model.js';
import { TASKS } from './tasks.js';

export const FINETUNE_FILE = 'finetune.json';
export const HEAD_FILE = 'head.safetensors';

const specSchema = z.object({
  format: z.literal('nemo-finetune'),
  version: z.literal(1),
  task: z.enum(TASKS),
  labels: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('class'), names: z.array(z.string()).min(2) }),
    z.object({ kind: z.literal('score'), min: z.number(), max: z.number() }),
    z.object({ kind: z.literal('choice') }),
  ]),
  specialTokens: z.object({ start: z.string(), delim: z.string(), extract: z.string() }),
  specialIds: z.object({ start: z.number().int(), delim: z.number().int(), extract: z.number().int() }),
  maxLen: z.number().int().min(3),
  /** Where the weights came from before fine-tuning ("scratch" for a random start). */
  base: z.string().optional(),
  /** Free-form summary of the run (budget, truncation count, validation metrics). */
  training: z.record(z.string(), z.unknown()).optional(),
});

export type FinetuneFile = z.infer<typeof specSchema>;

export interface HostFinetuned {
  dir: string;
  meta: FinetuneFile;
  spec: TaskSpec;
  config: GptConfig;
  arrays: Map<string, HostTensor>;
  head: Map<string, HostTensor>;
  tokenizer: BpeTokenizer;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

export async function isFinetuned(dir: string): Promise<boolean> {
  return exists(path.join(dir, FINETUNE_FILE));
}

/** Writes the model folder (float32 weights), the tokenizer with its special tokens, head and finetune.json. */
export async function saveFinetuned(
  dir: string,
  model: FinetuneModel,
  tokenizer: BpeTokenizer,
  extra: { base?: string; training?: Record<string, unknown>; metadata?: Record<string, string> } = {},
): Promise<void> {
  await saveCheckpoint(dir, model.params.config, model.params, { dtype: 'F32', metadata: { task: model.spec.task, ...extra.metadata } });
  await tokenizer.save(dir);
  await writeSafetensors(path.join(dir, HEAD_FILE), [
    [HEAD_WEIGHT, { shape: model.head.w.shape, data: (await model.head.w.data()) as Float32Array }],
    [HEAD_BIAS, { shape: model.head.b.shape, data: (await model.head.b.data()) as Float32Array }],
  ], 'F32', { task: model.spec.task });
  const file: FinetuneFile = { format: 'nemo-finetune', version: 1, ...model.spec, base: extra.base, training: extra.training };
  await writeFile(path.join(dir, FINETUNE_FILE), `${JSON.stringify(file, null, 2)}\n`);
}

/** Reads and cross-checks a fine-tuned folder into host memory; every error names the file. */
export async function readFinetuned(dir: string): Promise<HostFinetuned> {
  const metaFile = path.join(dir, FINETUNE_FILE);
  if (!(await exists(metaFile))) {
    throw new CheckpointError(`${dir}: not a fine-tuned model (no ${FINETUNE_FILE}); fine-tune one with \`npm run model -- finetune\``, metaFile);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(metaFile, 'utf8'));
  } catch (err) {
    throw new CheckpointError(`${metaFile}: not valid JSON (${(err as Error).message})`, metaFile);
  }
  const parsed = specSchema.safeParse(raw);
  if (!parsed.success) {
    const iss = parsed.error.issues[0];
    throw new CheckpointError(`${metaFile}: invalid at ${iss.path.join('.') || 'root'}: ${iss.message}`, metaFile);
  }
  const meta = parsed.data;
  const host = await readCheckpoint(dir);
  let tokenizer: BpeTokenizer;
  try {
    tokenizer = await BpeTokenizer.load(dir);
  } catch (err) {
    throw new CheckpointError(`${dir}: tokenizer: ${(err as Error).message}`, dir);
  }
  for (const key of ['start', 'delim', 'extract'] as const) {
    const name = meta.specialTokens[key];
    const id = meta.specialIds[key];
    if (tokenizer.tokenToId(name) !== id || !tokenizer.isSpecialId(id)) {
      throw new CheckpointError(`${dir}: the tokenizer does not hold special token ${name} with id ${id} as ${FINETUNE_FILE} records`, metaFile);
    }
    if (id >= host.config.vocabSize) {
      throw new CheckpointError(`${dir}: special token ${name} (id ${id}) is outside the model's vocabulary of ${host.config.vocabSize}`, metaFile);
    }
  }
  if (meta.maxLen > host.config.nPositions) {
    throw new CheckpointError(`${metaFile}: maxLen ${meta.maxLen} exceeds the model's context ${host.config.nPositions}`, metaFile);
  }
  const headFile = path.join(dir, HEAD_FILE);
  if (!(await exists(headFile))) throw new CheckpointError(`${headFile}: missing (the task head)`, headFile);
  let head: Map<string, HostTensor>;
  try {
    head = await readSafetensors(headFile);
  } catch (err) {
    throw new CheckpointError(`${headFile}: ${(err as Error).message}`, headFile);
  }
  const outputs = headSize(meta.labels);
  const want: Array<[string, number[]]> = [[HEAD_WEIGHT, [host.config.nEmbd, outputs]], [HEAD_BIAS, [outputs]]];
  for (const [name, shape] of want) {
    const t = head.get(name);
    if (!t) throw new CheckpointError(`${headFile}: tensor ${name} missing`, headFile, name);
    if (t.shape.join() !== shape.join()) {
      throw new CheckpointError(`${headFile}: tensor ${name} has shape [${t.shape}], expected [${shape}]`, headFile, name);
    }
  }
  const spec: TaskSpec = { task: meta.task, labels: meta.labels, specialTokens: meta.specialTokens, specialIds: meta.specialIds, maxLen: meta.maxLen };
  return { dir, meta, spec, config: host.config, arrays: host.arrays, head, tokenizer };
}

/** Host arrays → tensors of a FinetuneModel (plain tensors; the caller disposes them). */
export function modelFromHost(spec: TaskSpec, config: GptConfig, arrays: Map<string, HostTensor>, head: Map<string, HostTensor>): FinetuneModel {
  const w = head.get(HEAD_WEIGHT)!;
  const b = head.get(HEAD_BIAS)!;
  return {
    spec,
    params: paramsFromArrays(config, arrays),
    head: { w: tf.tensor2d(w.data, w.shape as [number, number]), b: tf.tensor1d(b.data) },
  };
}

/** Loads a fine-tuned folder onto the current backend. */
export async function loadFinetuned(dir: string): Promise<{ model: FinetuneModel; tokenizer: BpeTokenizer; meta: FinetuneFile }> {
  const host = await readFinetuned(dir);
  return { model: modelFromHost(host.spec, host.config, host.arrays, host.head), tokenizer: host.tokenizer, meta: host.meta };
}
