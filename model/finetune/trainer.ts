// Supervised fine-tuning (the paper's second stage): the pre-trained decoder plus a linear head,
// trained on L2 + λ·L1 with the pre-training code's AdamW (decoupled weight decay), a linear-decay
// schedule with warm-up, global-norm gradient clipping and the wasm training kernels.
// Checkpoints (weights, head, tokenizer, optimizer moments, data position) resume exactly; a run
// that finishes leaves the fine-tuned model in `outDir` itself and removes its checkpoint.
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import * as tf from '@tensorflow/tfjs';
import { readCheckpoint } from '../io/checkpoint.js';
import { initParamArrays, namedParams, paramSpecs, toVariables } from '../nn/params.js';
import { Rng } from '../rng.js';
import { readSafetensors, writeSafetensors, type HostTensor } from '../io/safetensors.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';
import { AdamW } from '../train/adamw.js';
import { installTrainingKernels } from '../train/kernels.js';
import { learningRate } from '../train/schedule.js';
import { paramsFromArrays } from '../io/checkpoint.js';
import { FINETUNE_FILE, readFinetuned, saveFinetuned } from './checkpoint.js';
import type { FinetuneConfig } from './config.js';
import { headSize, labelSpaceOf, labelTargets, type LabelSpace, type LoadedExamples } from './data.js';
import { computeMetrics, encodeExamples, predictInputs, type Metrics } from './evaluate.js';
import { growVocabulary, HEAD_BIAS, HEAD_WEIGHT, initHeadArrays, prepareBatch, taskForward, type FinetuneModel, type TaskSpec } from './model.js';
import { SPECIAL_TOKEN_NAMES, type TaskName } from './tasks.js';
import type { EncodedInput } from './transforms.js';

export class FinetuneError extends Error {
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

export interface FinetuneOptions {
  task: TaskName;
  /** Model folder to start from (weights + tokenizer). With `scratch`, only its config and tokenizer are used. */
  baseDir: string;
  /** Same architecture and tokenizer, random weights (the "no pre-training" baseline). */
  scratch?: boolean;
  train: LoadedExamples<TaskName>;
  valid?: LoadedExamples<TaskName>;
  outDir: string;
  config: FinetuneConfig;
  /** Stop (with a checkpoint) once this many updates are done; the run can be resumed later. */
  untilStep?: number;
  /** Discard an existing checkpoint or finished model in outDir. */
  restart?: boolean;
  progress?: 'bar' | 'lines' | 'none';
  onEvent?: (e: FinetuneEvent) => void;
  signal?: AbortSignal;
}

export interface FinetuneResult {
  outDir: string;
  step: number;
  totalSteps: number;
  finished: boolean;
  tokensSeen: number;
  elapsedMs: number;
  lastLoss: number;
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
const LOG_FILE = 'log.jsonl';
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
  const known = new Set([SPECIAL_TOKEN_NAMES.start, SPECIAL_TOKEN_NAMES.delim, SPECIAL_TOKEN_NAMES.extract].filter((t) => tokenizer.tokenToId(t) !== undefined));
  const [start, delim, extract] = tokenizer.addSpecialTokens([SPECIAL_TOKEN_NAMES.start, SPECIAL_TOKEN_NAMES.delim, SPECIAL_TOKEN_NAMES.extract]);
  const vocabSize = Math.max(host.config.vocabSize, tokenizer.vocabSize);
  let config = host.config;
  let arrays = host.arrays;
  if (opts.scratch) {
    config = { ...host.config, vocabSize };
    const init = initParamArrays(config, fc.seed);
    arrays = new Map(paramSpecs(config).map((s) => [s.name, { shape: s.shape, data: init.get(s.name)! }]));
  } else {
    ({ config, arrays } = growVocabulary(host.config, host.arrays, vocabSize, fc.seed, host.config.initializerRange));
    // Added ids that fell inside an existing (unused) embedding row get a fresh row too.
    const emb = arrays.get('tokens_embed.weight')!;
    const rng = new Rng(fc.seed ^ 0x51);
    for (const [name, id] of [[SPECIAL_TOKEN_NAMES.start, start], [SPECIAL_TOKEN_NAMES.delim, delim], [SPECIAL_TOKEN_NAMES.extract, extract]] as const) {
      if (!known.has(name) && id < host.config.vocabSize) rng.fillNormal(emb.data.subarray(id * config.nEmbd, (id + 1) * config.nEmbd), config.initializerRange);
    }
  }
  const labels = labelSpaceOf(task, opts.train);
  const maxLen = Math.min(fc.maxLen ?? config.nPositions, config.nPositions);
  const spec: TaskSpec = { task, labels, specialTokens: { ...SPECIAL_TOKEN_NAMES }, specialIds: { start, delim, extract }, maxLen };
  return { spec, tokenizer, config, arrays, head: initHeadArrays(config.nEmbd, headSize(labels), fc.seed) };
}

async function saveState(
  outDir: string, model: FinetuneModel, tokenizer: BpeTokenizer, optimizer: AdamW, state: FinetuneState,
): Promise<string> {
  const final = path.join(outDir, 'checkpoint');
  const tmp = path.join(outDir, 'checkpoint.tmp');
  const prev = path.join(outDir, 'checkpoint.prev');
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await saveFinetuned(tmp, model, tokenizer, { base: state.base, metadata: { step: String(state.step) } });
  await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), await optimizer.stateArrays(), 'F32', { step: String(state.step) });
  await writeFile(path.join(tmp, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`); // last: marks it complete
  await rm(prev, { recursive: true, force: true });
  if (await exists(final)) await rename(final, prev);
  await rename(tmp, final);
  await rm(prev, { recursive: true, force: true });
  return final;
}

async function findState(outDir: string): Promise<string | undefined> {
  for (const name of ['checkpoint', 'checkpoint.prev']) {
    const dir = path.join(outDir, name);
    if (await exists(path.join(dir, STATE_FILE))) return dir;
  }
  return undefined;
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
  const { outDir, config: fc } = opts;
  if (path.resolve(outDir) === path.resolve(opts.baseDir)) throw new FinetuneError('--out must differ from the base model folder');
  installTrainingKernels();
  await mkdir(outDir, { recursive: true });
  const found = opts.restart ? undefined : await findState(outDir);
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
  const emit = async (e: FinetuneEvent) => {
    opts.onEvent?.(e);
    await appendFile(path.join(outDir, LOG_FILE), `${JSON.stringify({ ...e, time: new Date().toISOString() })}\n`);
  };
  if (!found) await writeFile(path.join(outDir, LOG_FILE), '');

  const prefix = `finetune${++runCounter}/`;
  const initial = paramsFromArrays(start.config, start.arrays);
  const params = toVariables(initial, prefix);
  tf.dispose(namedParams(initial).map(([, t]) => t));
  const hw = start.head.get(HEAD_WEIGHT)!;
  const hb = start.head.get(HEAD_BIAS)!;
  const head = {
    w: tf.variable(tf.tensor2d(hw.data, hw.shape as [number, number]), true, `${prefix}${HEAD_WEIGHT}`) as tf.Variable<tf.Rank.R2>,
    b: tf.variable(tf.tensor1d(hb.data), true, `${prefix}${HEAD_BIAS}`) as tf.Variable<tf.Rank.R1>,
  };
  const model: FinetuneModel = { spec, params, head };
  const vars = [...namedParams(params), [HEAD_WEIGHT, head.w], [HEAD_BIAS, head.b]] as Array<[string, tf.Variable]>;
  const varList = vars.map(([, v]) => v);
  const optimizer = new AdamW(vars, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: fc.weightDecay });
  const bar = opts.progress === 'bar'
    ? new cliProgress.SingleBar({ format: `finetune ${opts.task} {bar} {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_formatted}`, etaBuffer: 30, hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  let lastLoss = NaN;
  let reason: 'done' | 'max-steps' | 'aborted' = untilStep >= totalSteps ? 'done' : 'max-steps';
  let lastSaved = found ? state.step : -1;
  try {
    if (start.optimizer) optimizer.loadState(start.optimizer, state.step, found!);
    const nParams = vars.reduce((n, [, v]) => n + v.size, 0);
    await emit({
      type: 'start', task: opts.task, step: state.step, totalSteps, epochs: fc.epochs, trainExamples: N, validExamples: valid?.inputs.length ?? 0,
      truncatedTrain: train.truncated, truncatedValid: valid?.truncated ?? 0, maxLen: spec.maxLen, labels: spec.labels, base: state.base,
      scratch: state.scratch, resumedFrom: start.resumedFrom, parameters: nParams, backend: tf.getBackend(),
    });
    const save = async () => {
      state.savedAt = new Date().toISOString();
      const dir = await saveState(outDir, model, tokenizer, optimizer, state);
      lastSaved = state.step;
      await emit({ type: 'checkpoint', step: state.step, dir });
    };
    const runValid = async () => {
      if (!valid || !validTargets) return;
      const metrics = computeMetrics(spec, predictInputs(model, valid.inputs), validTargets);
      state.lastValid = metrics;
      await emit({ type: 'eval', step: state.step, epoch: state.position.epoch, metrics });
      if (opts.progress === 'lines' || opts.progress === 'bar') {
        bar?.stop();
        process.stderr.write(`validation after step ${state.step}: ${formatMetrics(metrics)}\n`);
        bar?.start(untilStep, state.step, { loss: lastLoss.toFixed(3), tps: '-' });
      }
    };
    bar?.start(untilStep, state.step, { loss: '-', tps: '-' });
    let perm = permutation(N, fc.seed, state.position.epoch);
    let windowStart = performance.now();
    let windowTokens = 0;
    while (state.step < untilStep) {
      if (opts.signal?.aborted) {
        reason = 'aborted';
        break;
      }
      const t0 = performance.now();
      if (state.position.cursor >= N) {
        state.position = { epoch: state.position.epoch + 1, cursor: 0 };
        perm = permutation(N, fc.seed, state.position.epoch);
      }
      const idx = Array.from(perm.subarray(state.position.cursor, Math.min(N, state.position.cursor + B)));
      const lr = learningRate(state.step, schedule);
      const micro = fc.microBatch ?? idx.length;
      let acc: Map<string, tf.Tensor> | undefined;
      let lossSum = 0;
      let taskSum = 0;
      let lmSum = 0;
      let tokens = 0;
      for (let m = 0; m < idx.length; m += micro) {
        const chunk = idx.slice(m, m + micro);
        const inputs: EncodedInput[] = chunk.map((i) => train.inputs[i]);
        tokens += inputs.reduce((n, e) => n + e.sequences.reduce((k, s) => k + s.length, 0), 0);
        const batch = prepareBatch(spec.task, inputs, chunk.map((i) => trainTargets[i]));
        const weight = chunk.length / idx.length;
        const seed = ((fc.seed % 100000) * 7919 + state.step * 1000 + m) % 2147483647;
        const kept: tf.Tensor[] = [];
        const { value, grads } = tf.variableGrads(() => {
          const out = taskForward(model, batch, { training: true, lmCoef: fc.lmCoef, clfDropout: fc.clfDropout, dropout: fc.dropout, seed });
          kept.push(tf.keep(out.taskLoss!), ...(out.lmLoss ? [tf.keep(out.lmLoss)] : []));
          return tf.mul(out.loss!, weight) as tf.Scalar;
        }, varList);
        lossSum += value.dataSync()[0];
        taskSum += kept[0].dataSync()[0] * weight;
        if (kept[1]) lmSum += kept[1].dataSync()[0] * weight;
        tf.dispose([value, ...kept]);
        if (!acc) {
          acc = new Map(vars.map(([name, v]) => [name, grads[v.name]]));
        } else {
          for (const [name, v] of vars) {
            const sum = tf.add(acc.get(name)!, grads[v.name]);
            tf.dispose([acc.get(name)!, grads[v.name]]);
            acc.set(name, sum);
          }
        }
      }
      const normT = tf.tidy(() => tf.sqrt(tf.addN([...acc!.values()].map((g) => tf.sum(tf.square(g))))));
      const gradNorm = normT.dataSync()[0];
      normT.dispose();
      if (!Number.isFinite(lossSum) || !Number.isFinite(gradNorm)) {
        tf.dispose([...acc!.values()]);
        throw new FinetuneError(
          `the loss became ${lossSum} (gradient norm ${gradNorm}) at step ${state.step + 1}; the update was not applied` +
            (lastSaved >= 0 ? `; the checkpoint of step ${lastSaved} in ${path.join(outDir, 'checkpoint')} is intact` : '') +
            '. Try a lower --lr.',
        );
      }
      const clip = fc.gradClip > 0 && gradNorm > fc.gradClip ? fc.gradClip / gradNorm : 1;
      if (clip !== 1) {
        for (const [name, g] of acc!) {
          acc!.set(name, tf.mul(g, clip));
          g.dispose();
        }
      }
      optimizer.apply(acc!, lr);
      tf.dispose([...acc!.values()]);

      state.step++;
      state.position = { epoch: state.position.epoch, cursor: state.position.cursor + idx.length };
      state.tokensSeen += tokens;
      state.elapsedMs += performance.now() - t0;
      windowTokens += tokens;
      lastLoss = lossSum;
      const epochDone = state.position.cursor >= N;
      if (state.step % fc.logEvery === 0 || state.step === untilStep || epochDone) {
        const now = performance.now();
        const tps = (windowTokens / Math.max(1e-9, now - windowStart)) * 1000;
        windowStart = now;
        windowTokens = 0;
        await emit({
          type: 'step', step: state.step, epoch: state.position.epoch, loss: lossSum, taskLoss: taskSum, lmLoss: fc.lmCoef > 0 ? lmSum : undefined,
          lr, gradNorm, tokensPerSec: tps, tokensSeen: state.tokensSeen, elapsedMs: state.elapsedMs,
        });
        bar?.update(state.step, { loss: lossSum.toFixed(3), tps: tps.toFixed(0) });
        if (opts.progress === 'lines') {
          process.stderr.write(`step ${state.step}/${totalSteps} epoch ${state.position.epoch + 1} loss ${lossSum.toFixed(4)} (task ${taskSum.toFixed(4)}` +
            `${fc.lmCoef > 0 ? `, lm ${lmSum.toFixed(3)}` : ''}) lr ${lr.toExponential(2)} ${tps.toFixed(0)} tok/s\n`);
        }
      }
      if (epochDone) await runValid();
      if (state.step % fc.checkpointEvery === 0 && state.step < totalSteps) await save();
    }
    if (state.step >= totalSteps) {
      if (state.lastValid === undefined || state.position.cursor < N) await runValid();
      await saveFinetuned(outDir, model, tokenizer, {
        base: state.base,
        training: {
          steps: state.step, epochs: fc.epochs, examples: N, tokensSeen: state.tokensSeen, elapsedMs: Math.round(state.elapsedMs),
          truncatedTrain: train.truncated, config: fc, valid: state.lastValid, finishedAt: new Date().toISOString(),
        },
      });
      await emit({ type: 'stop', step: state.step, reason });
      await rm(path.join(outDir, 'checkpoint'), { recursive: true, force: true });
    } else {
      if (state.step !== lastSaved) await save();
      await emit({ type: 'stop', step: state.step, reason });
    }
  } finally {
    bar?.stop();
    optimizer.dispose();
    tf.dispose(varList);
  }
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
