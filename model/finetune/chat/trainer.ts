// Chat fine-tuning: the pre-trained decoder trained on conversations with the LM loss on the
// assistant's replies (./objective.ts), optionally plus the next-utterance head (./candidates.ts,
// GPT-1's multiple-choice transform and head from ../model.ts), as an objective of the shared
// training loop (../../train/loop.ts: schedule, accumulation, clipping, NaN guard, checkpoints,
// Ctrl-C, progress, log.jsonl). Checkpoints resume exactly; a finished run leaves a model folder
// in `outDir` that loads like model/shipped and records its chat format.
import { createHash } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { GptConfig } from '../../nn/config.js';
import { paramsFromArrays, readCheckpoint, saveCheckpoint } from '../../io/checkpoint.js';
import { namedParams, toVariables, type GptParams } from '../../nn/params.js';
import { readSafetensors, writeSafetensors, type HostTensor } from '../../io/safetensors.js';
import { TrainingError } from '../../errors.js';
import { BpeTokenizer } from '../../tokenizer/bpe.js';
import { AdamW } from '../../train/adamw.js';
import { installTrainingKernels } from '../../train/kernels.js';
import { LOG_FILE, type LoopEvent, type MicroBatch, type Objective } from '../../train/loop.js';
import { findCheckpoint, replaceCheckpoint, withRunLock } from '../../train/run-folder.js';
import { readFinetuned, saveFinetuned } from '../checkpoint.js';
import { addTaskTokens, HEAD_BIAS, HEAD_WEIGHT, initHeadArrays, prepareBatch, taskForward, type FinetuneModel, type TaskSpec } from '../model.js';
import { headVariables, runFinetuneLoop, type RunControls, type RunSummary } from '../run.js';
import { SPECIAL_TOKEN_NAMES } from '../tasks.js';
import { epochBatches } from './batches.js';
import { buildCandidates, type CandidateSet } from './candidates.js';
import { RESUMABLE_KEYS, type ChatConfig } from './config.js';
import type { LoadedConversations } from './data.js';
import { declaredFormat, NEMO_LINES, writeChatFormat } from './format-file.js';
import { chatBatch, chatLoss } from './objective.js';
import { encodeConversations } from './sequences.js';
import { formatValidation, validate, type ChatValidation } from './validation.js';

export { formatValidation, type ChatValidation } from './validation.js';

export class ChatTrainingError extends TrainingError {
  override name = 'ChatTrainingError';
}

export type ChatTrainEvent =
  | {
    type: 'start'; step: number; totalSteps: number; epochs: number; trainConversations: number; trainSequences: number; trainReplies: number;
    trainTargetTokens: number; validSequences: number; truncatedTrain: number; truncatedValid: number; maxLen: number; lossOn: string; mcCoef: number;
    base: string; resumedFrom?: string; parameters: number; backend: string;
  }
  | (Extract<LoopEvent, { type: 'step' }> & { epoch: number; lmLoss: number; mcLoss?: number })
  | { type: 'eval'; step: number; epoch: number; tokensSeen: number; valLoss: number; valPerplexity: number; sequences: number; tokens: number; mcAccuracy?: number }
  | Extract<LoopEvent, { type: 'checkpoint' | 'stop' }>;

export interface ChatTrainOptions extends RunControls<ChatTrainEvent> {
  baseDir: string;
  train: LoadedConversations;
  valid?: LoadedConversations;
  config: ChatConfig;
}

export interface ChatTrainResult extends RunSummary {
  valid?: ChatValidation;
}

interface ChatState {
  kind: 'nemo-chat-finetune';
  version: 1;
  step: number;
  /** Epoch and the next batch's index in it (./batches.ts). */
  position: { epoch: number; batch: number };
  tokensSeen: number;
  elapsedMs: number;
  config: ChatConfig;
  base: string;
  data: { trainConversations: number; trainHash: string; trainFile: string; validFile?: string };
  lastValid?: ChatValidation;
  savedAt: string;
}

/** Written last into a checkpoint (marks it complete); the finished model keeps it as its trainer state. */
export const CHAT_STATE_FILE = 'trainer_state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';
/** Sequences per forward pass unless told: 64 context-long sequences in one pass exhaust the wasm heap. */
const DEFAULT_MICRO_BATCH = 16;
const exists = (p: string) => stat(p).then(() => true, () => false);
let runCounter = 0;

const hashOf = (data: LoadedConversations) => createHash('sha256').update(JSON.stringify(data.conversations)).digest('hex').slice(0, 16);

/** Model, tokenizer and (with the next-utterance head) its spec and weights, fresh or from a checkpoint. */
interface Start {
  tokenizer: BpeTokenizer;
  config: GptConfig;
  arrays: Map<string, HostTensor>;
  mc?: { spec: TaskSpec; head: Map<string, HostTensor> };
  state?: ChatState;
  optimizer?: Map<string, HostTensor>;
  resumedFrom?: string;
}

async function loadTokenizer(dir: string): Promise<BpeTokenizer> {
  try {
    return await BpeTokenizer.load(dir);
  } catch (err) {
    throw new ChatTrainingError(`${dir}: tokenizer: ${(err as Error).message}`);
  }
}

async function freshStart(opts: ChatTrainOptions): Promise<Start> {
  const fc = opts.config;
  const host = await readCheckpoint(opts.baseDir);
  const tokenizer = await loadTokenizer(opts.baseDir);
  const format = await declaredFormat(opts.baseDir, tokenizer);
  if (format !== NEMO_LINES) {
    throw new ChatTrainingError(`${opts.baseDir} uses the ${format} chat format; chat fine-tuning writes ${NEMO_LINES} sequences (a model with the project's own tokenizer)`);
  }
  if (tokenizer.eosId === undefined) throw new ChatTrainingError(`${opts.baseDir}: the tokenizer has no end-of-text token to end a reply with`);
  if (tokenizer.vocabSize > host.config.vocabSize) {
    throw new ChatTrainingError(`${opts.baseDir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${host.config.vocabSize}`);
  }
  if (fc.mcCoef === 0) return { tokenizer, config: host.config, arrays: host.arrays };
  // The next-utterance head reads GPT-1's transform, which needs its three special tokens.
  const { config, arrays, specialIds } = addTaskTokens(host.config, host.arrays, tokenizer, fc.seed);
  const maxLen = Math.min(fc.maxLen ?? config.nPositions, config.nPositions);
  const spec: TaskSpec = { task: 'multiple-choice', labels: { kind: 'choice' }, specialTokens: { ...SPECIAL_TOKEN_NAMES }, specialIds, maxLen };
  return { tokenizer, config, arrays, mc: { spec, head: initHeadArrays(config.nEmbd, 1, fc.seed) } };
}

function comparable(c: ChatConfig): Partial<ChatConfig> {
  const out: Partial<ChatConfig> = { ...c };
  for (const k of RESUMABLE_KEYS) delete out[k];
  return out;
}

async function resumeStart(dir: string, opts: ChatTrainOptions): Promise<Start> {
  let state: ChatState;
  try {
    state = JSON.parse(await readFile(path.join(dir, CHAT_STATE_FILE), 'utf8')) as ChatState;
  } catch (err) {
    throw new ChatTrainingError(`${path.join(dir, CHAT_STATE_FILE)}: cannot read (${(err as Error).message})`);
  }
  if (state.kind !== 'nemo-chat-finetune' || state.version !== 1 || JSON.stringify(comparable(opts.config)) !== JSON.stringify(comparable(state.config))) {
    throw new ChatTrainingError(`${dir} holds a run with different settings; use another --out or --restart to discard it`);
  }
  if (state.data.trainConversations !== opts.train.conversations.length || state.data.trainHash !== hashOf(opts.train)) {
    throw new ChatTrainingError(`${dir} was trained on different data; an exact resume needs the same file (or use --restart)`);
  }
  const optimizer = await readSafetensors(path.join(dir, OPTIMIZER_FILE));
  const resumed = { state: { ...state, config: opts.config }, optimizer, resumedFrom: dir };
  if (opts.config.mcCoef > 0) {
    const host = await readFinetuned(dir);
    return { tokenizer: host.tokenizer, config: host.config, arrays: host.arrays, mc: { spec: host.spec, head: host.head }, ...resumed };
  }
  const host = await readCheckpoint(dir);
  return { tokenizer: await loadTokenizer(dir), config: host.config, arrays: host.arrays, ...resumed };
}

/** A loadable model folder: weights, tokenizer, chat_format.json (+ head and finetune.json with the head). */
async function saveModel(dir: string, params: GptParams, tokenizer: BpeTokenizer, mc: FinetuneModel | undefined, base: string, step: number): Promise<void> {
  if (mc) {
    await saveFinetuned(dir, mc, tokenizer, { base, metadata: { step: String(step), objective: 'chat' } });
  } else {
    await saveCheckpoint(dir, params.config, params, { dtype: 'F32', metadata: { step: String(step), objective: 'chat' } });
    await tokenizer.save(dir);
  }
  await writeChatFormat(dir);
}

/** Evenly spread subset of `n` items (all of them when n ≥ length). */
function spread<T>(items: readonly T[], n: number | undefined): T[] {
  if (n === undefined || n >= items.length) return [...items];
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]);
}

export async function trainChat(opts: ChatTrainOptions): Promise<ChatTrainResult> {
  if (path.resolve(opts.outDir) === path.resolve(opts.baseDir)) throw new ChatTrainingError('--out must differ from the base model folder');
  return withRunLock(opts.outDir, () => trainChatLocked(opts));
}

async function trainChatLocked(opts: ChatTrainOptions): Promise<ChatTrainResult> {
  const { outDir, config: fc } = opts;
  installTrainingKernels();
  const found = opts.restart ? undefined : await findCheckpoint(outDir, CHAT_STATE_FILE);
  if (!found && !opts.restart && (await exists(path.join(outDir, CHAT_STATE_FILE)))) {
    throw new ChatTrainingError(`${outDir} already holds a finished chat model; use --restart to train it again or another --out`);
  }
  if (!found && !(await exists(path.join(outDir, CHAT_STATE_FILE))) && (await exists(path.join(outDir, 'config.json')))) {
    throw new ChatTrainingError(`${outDir} holds another model; choose an empty --out folder`);
  }
  if (opts.restart) await rm(path.join(outDir, 'checkpoint'), { recursive: true, force: true });
  const start = found ? await resumeStart(found, opts) : await freshStart(opts);
  const { tokenizer } = start;
  const maxLen = Math.min(fc.maxLen ?? start.config.nPositions, start.config.nPositions);

  const train = encodeConversations(opts.train.conversations, tokenizer, maxLen, fc.lossOn);
  const valid = opts.valid ? encodeConversations(opts.valid.conversations, tokenizer, maxLen, fc.lossOn) : undefined;
  const validSeqs = valid ? spread(valid.sequences, fc.evalSequences) : [];
  let trainCands: CandidateSet | undefined;
  let validCands: CandidateSet | undefined;
  if (start.mc) {
    try {
      trainCands = buildCandidates(train.sequences, fc.numCandidates, start.mc.spec.specialIds, maxLen, fc.seed);
      if (validSeqs.length) validCands = buildCandidates(validSeqs, fc.numCandidates, start.mc.spec.specialIds, maxLen, fc.seed + 1);
    } catch (err) {
      throw new ChatTrainingError(`next-utterance candidates: ${(err as Error).message}`);
    }
  }
  const N = train.sequences.length;
  const B = Math.min(fc.batchSize, N);
  const micro = fc.microBatch ?? Math.min(B, DEFAULT_MICRO_BATCH);
  const stepsPerEpoch = Math.ceil(N / B);
  const totalSteps = Math.min(fc.epochs * stepsPerEpoch, fc.maxSteps ?? Infinity);
  const untilStep = Math.min(opts.untilStep ?? totalSteps, totalSteps);
  const schedule = { lr: fc.lr, warmupSteps: Math.round(fc.warmup * totalSteps), steps: totalSteps, minLrRatio: fc.minLrRatio, decay: 'linear' as const };
  const state: ChatState = start.state ?? {
    kind: 'nemo-chat-finetune', version: 1, step: 0, position: { epoch: 0, batch: 0 }, tokensSeen: 0, elapsedMs: 0, config: fc, base: path.resolve(opts.baseDir),
    data: { trainConversations: opts.train.conversations.length, trainHash: hashOf(opts.train), trainFile: path.resolve(opts.train.file), validFile: opts.valid && path.resolve(opts.valid.file) },
    savedAt: '',
  };
  if (!found) await writeFile(path.join(outDir, LOG_FILE), '');

  const prefix = `chat${++runCounter}/`;
  const initial = paramsFromArrays(start.config, start.arrays);
  const params = toVariables(initial, prefix);
  tf.dispose(namedParams(initial).map(([, t]) => t));
  const vars = namedParams(params) as Array<[string, tf.Variable]>;
  let mcModel: FinetuneModel | undefined;
  if (start.mc) {
    mcModel = { spec: start.mc.spec, params, head: headVariables(start.mc.head, prefix) };
    vars.push([HEAD_WEIGHT, mcModel.head.w as tf.Variable], [HEAD_BIAS, mcModel.head.b as tf.Variable]);
  }
  const optimizer = new AdamW(vars, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: fc.weightDecay });

  const lengths = train.sequences.map((s) => s.ids.length);
  let batches = epochBatches(lengths, B, fc.seed, state.position.epoch);
  const evaluatedAt = (step: number) => (fc.evalEvery ? step % fc.evalEvery === 0 : state.position.batch >= stepsPerEpoch);
  const objective: Objective = {
    label: 'finetune chat',
    variables: vars,
    batches: (step) => {
      if (state.position.batch >= stepsPerEpoch) {
        state.position = { epoch: state.position.epoch + 1, batch: 0 };
        batches = epochBatches(lengths, B, fc.seed, state.position.epoch);
      }
      const idx = batches[state.position.batch];
      const chunks = Array.from({ length: Math.ceil(idx.length / micro) }, (_, k) => idx.slice(k * micro, (k + 1) * micro));
      const lmBatches = chunks.map((chunk) => chatBatch(chunk.map((i) => train.sequences[i])));
      // The LM loss is a mean over the update's weighted target tokens, the head's over its sequences.
      const lmTotal = lmBatches.reduce((n, b) => n + b.lmWeight, 0);
      return chunks.map((chunk, k): MicroBatch => {
        const batch = lmBatches[k];
        const lmShare = batch.lmWeight / lmTotal;
        const mcShare = chunk.length / idx.length;
        const seed = ((fc.seed % 100000) * 7919 + step * 1000 + k * micro) % 2147483647;
        return {
          tokens: batch.tokens,
          loss: (): ReturnType<MicroBatch['loss']> => {
            const lm = tf.mul(chatLoss(params, batch, { training: true, dropout: fc.dropout, seed }), lmShare) as tf.Scalar;
            if (!mcModel || !trainCands) return { loss: lm, parts: { lmLoss: lm } };
            const mcBatch = prepareBatch('multiple-choice', chunk.map((i) => trainCands!.inputs[i]), chunk.map((i) => trainCands!.targets[i]));
            const out = taskForward(mcModel, mcBatch, { training: true, lmCoef: 0, clfDropout: fc.clfDropout, dropout: fc.dropout, seed: seed + 500 });
            const mc = tf.mul(out.taskLoss!, mcShare) as tf.Scalar;
            return { loss: tf.add(lm, tf.mul(mc, fc.mcCoef)) as tf.Scalar, parts: { lmLoss: lm, mcLoss: mc } };
          },
        };
      });
    },
    afterUpdate: (step) => {
      state.position = { epoch: state.position.epoch, batch: state.position.batch + 1 };
      return { evaluate: validSeqs.length > 0 && evaluatedAt(step), log: state.position.batch >= stepsPerEpoch };
    },
    stepFields: (parts) => ({ epoch: state.position.epoch, lmLoss: parts.lmLoss, mcLoss: mcModel ? parts.mcLoss : undefined }),
    evaluate: async () => {
      const v = validate(params, validSeqs, mcModel, validCands, micro);
      state.lastValid = v;
      return {
        fields: { epoch: state.position.epoch, tokensSeen: state.tokensSeen, valLoss: v.loss, valPerplexity: v.perplexity, sequences: v.sequences, tokens: v.tokens, mcAccuracy: v.mcAccuracy },
        line: `validation after step ${state.step}: ${formatValidation(v)}`,
      };
    },
    finalEvaluationDue: (finished) => finished && validSeqs.length > 0 && (state.lastValid === undefined || !evaluatedAt(state.step)),
    save: async () => {
      state.savedAt = new Date().toISOString();
      const optimizerArrays = await optimizer.stateArrays();
      return replaceCheckpoint(outDir, async (dir) => {
        await saveModel(dir, params, tokenizer, mcModel, state.base, state.step);
        await writeSafetensors(path.join(dir, OPTIMIZER_FILE), optimizerArrays, 'F32', { step: String(state.step) });
        await writeFile(path.join(dir, CHAT_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`); // last: marks it complete
      });
    },
    complete: async () => {
      state.savedAt = new Date().toISOString();
      await saveModel(outDir, params, tokenizer, mcModel, state.base, state.step);
      await writeFile(path.join(outDir, CHAT_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
      await rm(path.join(outDir, 'checkpoint'), { recursive: true, force: true });
    },
  };

  const { lastLoss } = await runFinetuneLoop<ChatTrainEvent>({
    startEvent: {
      type: 'start', step: state.step, totalSteps, epochs: fc.epochs, trainConversations: opts.train.conversations.length, trainSequences: N,
      trainReplies: train.replies, trainTargetTokens: train.sequences.reduce((n, s) => n + s.loss.reduce((a, b) => a + b, 0), 0),
      validSequences: validSeqs.length, truncatedTrain: train.truncated, truncatedValid: valid?.truncated ?? 0, maxLen, lossOn: fc.lossOn, mcCoef: fc.mcCoef,
      base: state.base, resumedFrom: start.resumedFrom, parameters: vars.reduce((n, [, v]) => n + v.size, 0), backend: tf.getBackend(),
    },
    resume: start.optimizer && { optimizer: start.optimizer, from: found! },
    objective, optimizer, state, schedule, gradClip: fc.gradClip, totalSteps, untilStep, logEvery: fc.logEvery,
    checkpointEvery: fc.checkpointEvery, checkpointBefore: totalSteps, outDir, lastSavedStep: found ? state.step : -1,
    progress: opts.progress, signal: opts.signal, onEvent: opts.onEvent,
  });
  return {
    outDir, step: state.step, totalSteps, finished: state.step >= totalSteps, tokensSeen: state.tokensSeen, elapsedMs: state.elapsedMs, lastLoss, valid: state.lastValid,
  };
}
