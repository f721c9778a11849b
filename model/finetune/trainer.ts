// Supervised fine-tuning (the paper's second stage): the pre-trained decoder plus a linear head,
// trained on L2 + λ·L1 as an objective of the shared training loop (../train/loop.ts: AdamW with
// decoupled weight decay, a linear-decay schedule with warm-up, global-norm gradient clipping).
// Checkpoints (weights, head, tokenizer, optimizer moments, data position) resume exactly; a run
// that finishes leaves the fine-tuned model in `outDir` itself and removes its checkpoint.
import { createHash } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readCheckpoint } from '../io/checkpoint.js';
import { initParamArrays, namedParams, paramSpecs, toVariables } from '../nn/params.js';
import { Rng } from '../rng.js';
import { readSafetensors, writeSafetensors, type HostTensor } from '../io/safetensors.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';
import { AdamW } from '../train/adamw.js';
import { installTrainingKernels } from '../train/kernels.js';
import { LOG_FILE, type MicroBatch, type Objective } from '../train/loop.js';
import { findCheckpoint, replaceCheckpoint, withRunLock } from '../train/run-folder.js';
import { paramsFromArrays } from '../io/checkpoint.js';
import { TrainingError } from '../errors.js';
import { FINETUNE_FILE, readFinetuned, saveFinetuned } from './checkpoint.js';
import type { FinetuneConfig } from './config.js';
import { headSize, labelSpaceOf, labelTargets, type LabelSpace, type LoadedExamples } from './data.js';
import { computeMetrics, encodeExamples, predictInputs, type Metrics } from './evaluate.js';
import { addTaskTokens, HEAD_BIAS, HEAD_WEIGHT, initHeadArrays, prepareBatch, taskForward, type FinetuneModel, type TaskSpec } from './model.js';
import { headVariables, runFinetuneLoop, type RunControls, type RunSummary } from './run.js';
import { SPECIAL_TOKEN_NAMES, type TaskName } from './tasks.js';
import type { EncodedInput } from './transforms.js';

export class FinetuneError extends TrainingError {
  override name = 'FinetuneError';
}

export type FinetuneEvent =
  | {
    type: 'start'; task: TaskName; step: number; totalSteps: number; epochs: number; trainExamples: number; validExamples: number;
    truncatedTrain: number; truncatedValid: number; maxLen: number; labels: LabelSpace; base: string; scratch: boolean;
    resumedFrom?: string; parameters: number; backend: string;
  }
  | { type: 'step'; step: number; epoch: number; loss: number; taskLoss: number; lmLoss?: number; lr: number; gradNorm: number; tokensPerSec: number; tokensSeen: number; elapsedMs: number }
  | { type: 'eval'; step: number; epoch: number; metrics: Metrics }
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'stop'; step: number; reason: 'done' | 'max-steps' | 'aborted' };

export interface FinetuneOptions extends RunControls<FinetuneEvent> {
  task: TaskName;
  /** Model folder to start from (weights + tokenizer). With `scratch`, only its config and tokenizer are used. */
  baseDir: string;
  /** Same architecture and tokenizer, random weights (the "no pre-training" baseline). */
  scratch?: boolean;
  train: LoadedExamples<TaskName>;
  valid?: LoadedExamples<TaskName>;
  config: FinetuneConfig;
}

export interface FinetuneResult extends RunSummary {
  truncated: { train: number; valid: number };
  valid?: Metrics;
}

interface FinetuneState {
  version: 1;
  step: number;
  position: { epoch: number; cursor: number };
  tokensSeen: number;
  elapsedMs: number;
  config: FinetuneConfig;
  task: TaskName;
  base: string;
  scratch: boolean;
  data: { trainExamples: number; trainHash: string };
  lastValid?: Metrics;
  savedAt: string;
}

const STATE_FILE = 'finetune_state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const exists = (p: string) => stat(p).then(() => true, () => false);
let runCounter = 0;

function hashExamples(data: LoadedExamples<TaskName>): string {
  return createHash('sha256').update(JSON.stringify(data.examples)).digest('hex').slice(0, 16);
}

function permutation(n: number, seed: number, epoch: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const rng = new Rng((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Everything needed to start: the model (host arrays), its tokenizer and spec. */
interface Start {
  spec: TaskSpec;
  tokenizer: BpeTokenizer;
  config: import('../nn/config.js').GptConfig;
  arrays: Map<string, HostTensor>;
  head: Map<string, HostTensor>;
  state?: FinetuneState;
  optimizer?: Map<string, HostTensor>;
  resumedFrom?: string;
}

async function freshStart(opts: FinetuneOptions): Promise<Start> {
  const { config: fc, task } = opts;
  const host = await readCheckpoint(opts.baseDir);
  let tokenizer: BpeTokenizer;
  try {
    tokenizer = await BpeTokenizer.load(opts.baseDir);
  } catch (err) {
    throw new FinetuneError(`${opts.baseDir}: tokenizer: ${(err as Error).message}`);
  }
  if (tokenizer.vocabSize > host.config.vocabSize) {
    throw new FinetuneError(`${opts.baseDir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${host.config.vocabSize}`);
  }
  const grown = addTaskTokens(host.config, host.arrays, tokenizer, fc.seed);
  const { config, specialIds } = grown;
  let arrays = grown.arrays;
  if (opts.scratch) {
    const init = initParamArrays(config, fc.seed);
    arrays = new Map(paramSpecs(config).map((s) => [s.name, { shape: s.shape, data: init.get(s.name)! }]));
  }
  const labels = labelSpaceOf(task, opts.train);
  const maxLen = Math.min(fc.maxLen ?? config.nPositions, config.nPositions);
  const spec: TaskSpec = { task, labels, specialTokens: { ...SPECIAL_TOKEN_NAMES }, specialIds, maxLen };
  return { spec, tokenizer, config, arrays, head: initHeadArrays(config.nEmbd, headSize(labels), fc.seed) };
}

async function saveState(
  outDir: string, model: FinetuneModel, tokenizer: BpeTokenizer, optimizer: AdamW, state: FinetuneState,
): Promise<string> {
  const optimizerArrays = await optimizer.stateArrays();
  return replaceCheckpoint(outDir, async (dir) => {
    await saveFinetuned(dir, model, tokenizer, { base: state.base, metadata: { step: String(state.step) } });
    await writeSafetensors(path.join(dir, OPTIMIZER_FILE), optimizerArrays, 'F32', { step: String(state.step) });
    await writeFile(path.join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`); // last: marks it complete
  });
}

async function resumeStart(dir: string, opts: FinetuneOptions): Promise<Start> {
  let state: FinetuneState;
  try {
    state = JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8')) as FinetuneState;
  } catch (err) {
    throw new FinetuneError(`${path.join(dir, STATE_FILE)}: cannot read (${(err as Error).message})`);
  }
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const { maxSteps: _a, checkpointEvery: _b, logEvery: _c, ...want } = opts.config;
  const { maxSteps: _d, checkpointEvery: _e, logEvery: _f, ...had } = state.config;
  if (state.version !== 1 || state.task !== opts.task || !same(want, had) || state.scratch !== Boolean(opts.scratch)) {
    throw new FinetuneError(`${dir} holds a run with a different task or settings; use another --out or --restart to discard it`);
  }
  if (state.data.trainExamples !== opts.train.examples.length || state.data.trainHash !== hashExamples(opts.train)) {
    throw new FinetuneError(`${dir} was trained on different training data; an exact resume needs the same file (or use --restart)`);
  }
  const host = await readFinetuned(dir);
  return {
    spec: host.spec, tokenizer: host.tokenizer, config: host.config, arrays: host.arrays, head: host.head,
    state: { ...state, config: opts.config }, optimizer: await readSafetensors(path.join(dir, OPTIMIZER_FILE)), resumedFrom: dir,
  };
}

export async function finetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  if (path.resolve(opts.outDir) === path.resolve(opts.baseDir)) throw new FinetuneError('--out must differ from the base model folder');
  return withRunLock(opts.outDir, () => finetuneLocked(opts));
}

async function finetuneLocked(opts: FinetuneOptions): Promise<FinetuneResult> {
  const { outDir, config: fc } = opts;
  installTrainingKernels();
  const found = opts.restart ? undefined : await findCheckpoint(outDir, STATE_FILE);
  if (!found && !opts.restart && (await exists(path.join(outDir, FINETUNE_FILE)))) {
    throw new FinetuneError(`${outDir} already holds a finished fine-tuned model; use --restart to train it again or another --out`);
  }
  if (!found && (await exists(path.join(outDir, 'config.json'))) && !(await exists(path.join(outDir, FINETUNE_FILE)))) {
    throw new FinetuneError(`${outDir} holds another model; choose an empty --out folder`);
  }
  if (opts.restart) await rm(path.join(outDir, 'checkpoint'), { recursive: true, force: true });
  const start = found ? await resumeStart(found, opts) : await freshStart(opts);
  const { spec, tokenizer } = start;

  // Labels and encodings first: bad data stops the run before any tensor exists.
  const trainTargets = labelTargets(spec.labels, opts.train);
  const validTargets = opts.valid ? labelTargets(spec.labels, opts.valid) : undefined;
  const train = encodeExamples(spec, tokenizer, opts.train.examples);
  const valid = opts.valid ? encodeExamples(spec, tokenizer, opts.valid.examples) : undefined;
  const N = train.inputs.length;
  const B = Math.min(fc.batchSize, N);
  const stepsPerEpoch = Math.ceil(N / B);
  const totalSteps = Math.min(fc.epochs * stepsPerEpoch, fc.maxSteps ?? Infinity);
  const untilStep = Math.min(opts.untilStep ?? totalSteps, totalSteps);
  const schedule = { lr: fc.lr, warmupSteps: Math.round(fc.warmup * totalSteps), steps: totalSteps, minLrRatio: 0, decay: 'linear' as const };

  const state: FinetuneState = start.state ?? {
    version: 1, step: 0, position: { epoch: 0, cursor: 0 }, tokensSeen: 0, elapsedMs: 0, config: fc, task: opts.task,
    base: opts.scratch ? `scratch (architecture and tokenizer of ${opts.baseDir})` : path.resolve(opts.baseDir),
    scratch: Boolean(opts.scratch), data: { trainExamples: N, trainHash: hashExamples(opts.train) }, savedAt: '',
  };
  if (!found) await writeFile(path.join(outDir, LOG_FILE), '');

  const prefix = `finetune${++runCounter}/`;
  const initial = paramsFromArrays(start.config, start.arrays);
  const params = toVariables(initial, prefix);
  tf.dispose(namedParams(initial).map(([, t]) => t));
  const head = headVariables(start.head, prefix);
  const model: FinetuneModel = { spec, params, head };
  const vars = [...namedParams(params), [HEAD_WEIGHT, head.w], [HEAD_BIAS, head.b]] as Array<[string, tf.Variable]>;
  const optimizer = new AdamW(vars, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: fc.weightDecay });
  let perm = permutation(N, fc.seed, state.position.epoch);
  let batchSize = 0;
  const objective: Objective = {
    label: `finetune ${opts.task}`,
    variables: vars,
    batches: (step) => {
      if (state.position.cursor >= N) {
        state.position = { epoch: state.position.epoch + 1, cursor: 0 };
        perm = permutation(N, fc.seed, state.position.epoch);
      }
      const idx = Array.from(perm.subarray(state.position.cursor, Math.min(N, state.position.cursor + B)));
      batchSize = idx.length;
      const micro = fc.microBatch ?? idx.length;
      const out: MicroBatch[] = [];
      for (let m = 0; m < idx.length; m += micro) {
        const chunk = idx.slice(m, m + micro);
        const inputs: EncodedInput[] = chunk.map((i) => train.inputs[i]);
        const batch = prepareBatch(spec.task, inputs, chunk.map((i) => trainTargets[i]));
        const weight = chunk.length / idx.length;
        const seed = ((fc.seed % 100000) * 7919 + step * 1000 + m) % 2147483647;
        out.push({
          tokens: inputs.reduce((n, e) => n + e.sequences.reduce((k, s) => k + s.length, 0), 0),
          partWeight: weight,
          loss: () => {
            const r = taskForward(model, batch, { training: true, lmCoef: fc.lmCoef, clfDropout: fc.clfDropout, dropout: fc.dropout, seed });
            return { loss: tf.mul(r.loss!, weight) as tf.Scalar, parts: { taskLoss: r.taskLoss!, ...(r.lmLoss ? { lmLoss: r.lmLoss } : {}) } };
          },
        });
      }
      return out;
    },
    afterUpdate: () => {
      state.position = { epoch: state.position.epoch, cursor: state.position.cursor + batchSize };
      const epochDone = state.position.cursor >= N;
      return { evaluate: epochDone && !!valid, log: epochDone };
    },
    stepFields: (parts) => ({ epoch: state.position.epoch, taskLoss: parts.taskLoss, lmLoss: fc.lmCoef > 0 ? parts.lmLoss ?? 0 : undefined }),
    evaluate: async () => {
      const metrics = computeMetrics(spec, predictInputs(model, valid!.inputs), validTargets!);
      state.lastValid = metrics;
      return { fields: { epoch: state.position.epoch, metrics }, line: `validation after step ${state.step}: ${formatMetrics(metrics)}` };
    },
    finalEvaluationDue: (finished) => finished && !!valid && (state.lastValid === undefined || state.position.cursor < N),
    save: async () => {
      state.savedAt = new Date().toISOString();
      return saveState(outDir, model, tokenizer, optimizer, state);
    },
    complete: async () => {
      await saveFinetuned(outDir, model, tokenizer, {
        base: state.base,
        training: {
          steps: state.step, epochs: fc.epochs, examples: N, tokensSeen: state.tokensSeen, elapsedMs: Math.round(state.elapsedMs),
          truncatedTrain: train.truncated, config: fc, valid: state.lastValid, finishedAt: new Date().toISOString(),
        },
      });
      await rm(path.join(outDir, 'checkpoint'), { recursive: true, force: true });
    },
  };
  const { lastLoss } = await runFinetuneLoop<FinetuneEvent>({
    startEvent: {
      type: 'start', task: opts.task, step: state.step, totalSteps, epochs: fc.epochs, trainExamples: N, validExamples: valid?.inputs.length ?? 0,
      truncatedTrain: train.truncated, truncatedValid: valid?.truncated ?? 0, maxLen: spec.maxLen, labels: spec.labels, base: state.base,
      scratch: state.scratch, resumedFrom: start.resumedFrom, parameters: vars.reduce((n, [, v]) => n + v.size, 0), backend: tf.getBackend(),
    },
    resume: start.optimizer && { optimizer: start.optimizer, from: found! },
    objective, optimizer, state, schedule, gradClip: fc.gradClip, totalSteps, untilStep, logEvery: fc.logEvery,
    checkpointEvery: fc.checkpointEvery, checkpointBefore: totalSteps, outDir, lastSavedStep: found ? state.step : -1,
    progress: opts.progress, signal: opts.signal, onEvent: opts.onEvent,
  });
  return {
    outDir, step: state.step, totalSteps, finished: state.step >= totalSteps, tokensSeen: state.tokensSeen, elapsedMs: state.elapsedMs,
    lastLoss, truncated: { train: train.truncated, valid: valid?.truncated ?? 0 }, valid: state.lastValid,
  };
}

export function formatMetrics(m: Metrics): string {
  const parts = [`accuracy ${(100 * m.accuracy).toFixed(1)} %`];
  if (m.macroF1 !== undefined) parts.push(`macro-F1 ${(100 * m.macroF1).toFixed(1)}`);
  if (m.pearson !== undefined) parts.push(`Pearson ${m.pearson.toFixed(3)}`, `Spearman ${m.spearman!.toFixed(3)}`, `MSE ${m.mse!.toFixed(4)}`);
  return `${parts.join(', ')} (${m.examples} examples)`;
}
