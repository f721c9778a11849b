// Unsupervised pre-training of the GPT-1 decoder with the standard language-model objective
// (the paper's first stage), on the model definition in ../nn/gpt.ts, as an objective of the
// shared training loop (loop.ts: schedule, clipping, checkpoints, resume, log):
//   Adam(0.9, 0.999, 1e-8) with decoupled weight decay on matrices, linear warm-up then cosine
//   decay, dropout on embeddings/attention/residuals, N(0, 0.02) init, global-norm gradient
//   clipping, gradient accumulation; checkpoints that resume bit-identically; validation loss and
//   perplexity per corpus; a JSONL run log and an SVG loss curve next to the checkpoint.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { makeConfig, type GptConfig } from '../nn/config.js';
import { forward } from '../nn/gpt.js';
import { initParamArrays, namedParams, paramSpecs, toVariables, type GptParams } from '../nn/params.js';
import { paramsFromArrays, readCheckpoint } from '../io/checkpoint.js';
import type { Dataset } from '../data/shards.js';
import { TrainingError } from '../errors.js';
import { AdamW } from './adamw.js';
import { evalWindows, WindowSampler, type Batch } from './batches.js';
import type { TrainConfig } from './config.js';
import { installTrainingKernels } from './kernels.js';
import { lmLoss } from './loss.js';
import { renderLossCurve, smooth } from './loss-curve.js';
import { LOG_FILE, runLoop, type MicroBatch, type Objective } from './loop.js';
import { withRunLock } from './run-folder.js';
import { findCheckpoint, loadTrainingCheckpoint, saveTrainingCheckpoint, TRAINER_STATE_FILE, type TrainerState } from './state.js';

export { TrainingError } from '../errors.js';
export { formatDuration } from './loop.js';

export type TrainEvent =
  | { type: 'start'; step: number; resumedFrom?: string; parameters: number; backend: string; trainTokens: number }
  | { type: 'step'; step: number; loss: number; lr: number; gradNorm: number; tokensPerSec: number; tokensSeen: number; elapsedMs: number }
  | { type: 'eval'; step: number; tokensSeen: number; valLoss: number; valPerplexity: number; perCorpus: Record<string, { loss: number; perplexity: number; tokens: number }> }
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'stop'; step: number; reason: 'done' | 'max-steps' | 'aborted' };

export interface PretrainOptions {
  config: TrainConfig;
  data: Dataset;
  /** Run folder: checkpoint/, log.jsonl, loss.svg, train-config.json. */
  outDir: string;
  /** Stop once this many updates are done in total (default config.steps). */
  untilStep?: number;
  /** Ignore an existing checkpoint in outDir and start from scratch (refused if one exists unless true). */
  restart?: boolean;
  /**
   * A model folder to start from when outDir has no checkpoint (or with `restart`), e.g. the
   * exported `model/shipped` of an earlier session: its weights, and, when its trainer_state.json
   * was made with this config and data, its schedule step, data position, counters and log. The
   * optimizer's moments are not exported, so they start again from zero: close to, but not
   * bit-identical with, an uninterrupted run.
   */
  continueFrom?: string;
  /** 'bar' (TTY), 'lines' (logs), or 'none'. */
  progress?: 'bar' | 'lines' | 'none';
  onEvent?: (e: TrainEvent) => void;
  /** Stops at the next step boundary after saving a checkpoint. */
  signal?: AbortSignal;
  /** Called after every update (benchmarks, tests). */
  afterStep?: (ctx: { step: number; params: GptParams }) => void;
}

export interface PretrainResult {
  step: number;
  tokensSeen: number;
  elapsedMs: number;
  lastLoss: number;
  checkpointDir?: string;
  lastEval?: { valLoss: number; perCorpus: Record<string, number> };
}

const CURVE_FILE = 'loss.svg';

let runCounter = 0;

/** Model config of a run: the recipe's shape with the data set's vocabulary and dropout. */
export function modelConfigFor(config: TrainConfig, vocabSize: number): GptConfig {
  return makeConfig({
    vocabSize,
    nLayer: config.model.nLayer,
    nEmbd: config.model.nEmbd,
    nHead: config.model.nHead,
    nPositions: config.model.nPositions,
    nInner: config.model.nInner,
    residPdrop: config.dropout,
    embdPdrop: config.dropout,
    attnPdrop: config.dropout,
  });
}

/** Mean next-token cross-entropy of a batch (inside a tidy or a gradient function). */
export function batchLoss(params: GptParams, batch: Batch, rows: number, training: boolean, seed?: number): tf.Scalar {
  const T = batch.inputs.length / rows;
  const C = params.config.nEmbd;
  const ids = tf.tensor2d(batch.inputs, [rows, T], 'int32');
  const h = forward(params, ids, { training, seed });
  return lmLoss(params.tokensEmbed, tf.reshape(h, [rows * T, C]) as tf.Tensor2D, { targets: batch.targets });
}

/** Mean loss per corpus over up to `maxWindows` validation windows each (dropout off). */
export function evaluate(
  params: GptParams,
  data: Dataset,
  batchSize: number,
  maxWindows = Infinity,
): Record<string, { loss: number; perplexity: number; tokens: number }> {
  const T = params.config.nPositions;
  const out: Record<string, { loss: number; perplexity: number; tokens: number }> = {};
  for (const [source, tokens] of data.val) {
    const windows = evalWindows(tokens, T, maxWindows);
    if (windows.length === 0) continue;
    let sum = 0;
    for (let i = 0; i < windows.length; i += batchSize) {
      const group = windows.slice(i, i + batchSize);
      const batch: Batch = {
        inputs: Int32Array.from(group.flatMap((w) => Array.from(w.inputs))),
        targets: Int32Array.from(group.flatMap((w) => Array.from(w.targets))),
      };
      const l = tf.tidy(() => batchLoss(params, batch, group.length, false));
      sum += l.dataSync()[0] * group.length;
      l.dispose();
    }
    const loss = sum / windows.length;
    out[source] = { loss, perplexity: Math.exp(loss), tokens: windows.length * T };
  }
  return out;
}

function dropoutSeed(seed: number, step: number, accum: number, micro: number): number {
  // forward() derives per-layer seeds as seed + small offsets: keep steps 1000 apart.
  return ((seed % 100000) * 7919 + (step * accum + micro) * 1000) % 2147483647;
}

async function tokenizerFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => /^(vocab\.json|merges\.txt|tokenizer_config\.json|special_tokens_map\.json|encoder_bpe_40000\.json|vocab_40000\.bpe)$/.test(n))
    .map((n) => path.join(dir, n));
}

/** Rewrites log.jsonl keeping only entries up to `step` (a crash after the checkpoint left later ones). */
async function truncateLog(file: string, step: number): Promise<void> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const kept = text.split('\n').filter((l) => {
    if (!l.trim()) return false;
    try {
      return (JSON.parse(l) as { step?: number }).step! <= step;
    } catch {
      return false;
    }
  });
  await writeFile(file, kept.length ? `${kept.join('\n')}\n` : '');
}

/** Renders `runDir`/log.jsonl as an SVG loss curve into `target` (default `runDir`/loss.svg). */
export async function writeCurve(runDir: string, title: string, target = path.join(runDir, CURVE_FILE), maxStep = Infinity): Promise<void> {
  const text = await readFile(path.join(runDir, LOG_FILE), 'utf8').catch(() => '');
  const steps: Array<{ tokens: number; loss: number }> = [];
  const vals: Array<{ tokens: number; loss: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as TrainEvent;
    if ('step' in e && e.step > maxStep) continue;
    if (e.type === 'step') steps.push({ tokens: e.tokensSeen, loss: e.loss });
    if (e.type === 'eval') vals.push({ tokens: e.tokensSeen, loss: e.valLoss });
  }
  const svg = renderLossCurve(title, [
    { label: 'train loss', color: '#9ecae1', points: steps },
    { label: 'train loss (moving avg)', color: '#08519c', points: smooth(steps) },
    { label: 'validation loss', color: '#d94801', points: vals, dots: true },
  ]);
  await writeFile(target, svg);
}

/** The run log as exported next to a model: only what the loss curve needs (small enough to commit). */
export const EXPORTED_LOG_FILE = 'train-log.jsonl';

export async function compactLog(runDir: string, maxStep: number): Promise<string> {
  const text = await readFile(path.join(runDir, LOG_FILE), 'utf8').catch(() => '');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as TrainEvent;
    if (!('step' in e) || e.step > maxStep) continue;
    if (e.type === 'step') out.push(JSON.stringify({ type: e.type, step: e.step, tokensSeen: e.tokensSeen, loss: +e.loss.toFixed(4) }));
    if (e.type === 'eval') out.push(JSON.stringify({ type: e.type, step: e.step, tokensSeen: e.tokensSeen, valLoss: +e.valLoss.toFixed(4) }));
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** Starting state for `continueFrom` (see PretrainOptions). */
async function continueFromModel(
  dir: string,
  config: TrainConfig,
  modelConfig: GptConfig,
  data: Dataset,
  outDir: string,
): Promise<{ state: TrainerState; host: Map<string, { shape: number[]; data: Float32Array }> }> {
  const ck = await readCheckpoint(dir);
  const shape = (c: GptConfig) => `${c.nLayer} layers, ${c.nEmbd} dims, ${c.nHead} heads, context ${c.nPositions}, vocabulary ${c.vocabSize}`;
  if (shape(ck.config) !== shape(modelConfig)) {
    throw new TrainingError(`--continue-from ${dir}: the model has ${shape(ck.config)}; this config and data set need ${shape(modelConfig)}`);
  }
  // Same ids must mean the same tokens.
  const [a, b] = await Promise.all([dir, data.tokenizerDir].map((d) => readFile(path.join(d, 'vocab.json'), 'utf8').catch(() => undefined)));
  if (a !== b) throw new TrainingError(`--continue-from ${dir}: its vocab.json differs from the data set's tokenizer (${data.tokenizerDir})`);
  const saved = JSON.parse(await readFile(path.join(dir, TRAINER_STATE_FILE), 'utf8').catch(() => 'null')) as TrainerState | null;
  const continues = saved?.version === 1 && Number.isInteger(saved.step) && saved.position && saved.config && saved.data &&
    sameRecipe(saved.config, config) && sameData(saved.data, data);
  const host = ck.arrays;
  if (continues) {
    const exported = await readFile(path.join(dir, EXPORTED_LOG_FILE), 'utf8').catch(() => '');
    await writeFile(path.join(outDir, LOG_FILE), exported);
    await truncateLog(path.join(outDir, LOG_FILE), saved.step);
    // Fresh moments: bias correction restarts with them.
    return { state: { ...saved, config, optimizerStep: 0, savedAt: new Date().toISOString() }, host };
  }
  await writeFile(path.join(outDir, LOG_FILE), '');
  return { state: freshState(config, data), host };
}

/** Same model shape, batch, accumulation and seed: what a resumed schedule and data order depend on. */
function sameRecipe(saved: TrainConfig, config: TrainConfig): boolean {
  return JSON.stringify(saved.model) === JSON.stringify(config.model) && saved.batchSize === config.batchSize &&
    saved.gradAccum === config.gradAccum && saved.seed === config.seed;
}

function sameData(saved: TrainerState['data'], data: Dataset): boolean {
  return saved.trainTokens === data.train.length && saved.vocabSize === data.meta.vocabSize;
}

function freshState(config: TrainConfig, data: Dataset): TrainerState {
  return {
    version: 1,
    step: 0,
    position: { epoch: 0, cursor: 0 },
    tokensSeen: 0,
    elapsedMs: 0,
    config,
    data: { trainTokens: data.train.length, vocabSize: data.meta.vocabSize },
    savedAt: new Date().toISOString(),
  };
}

export function pretrain(opts: PretrainOptions): Promise<PretrainResult> {
  return withRunLock(opts.outDir, () => pretrainLocked(opts));
}

async function pretrainLocked(opts: PretrainOptions): Promise<PretrainResult> {
  const { config, data, outDir } = opts;
  installTrainingKernels();
  const modelConfig = modelConfigFor(config, data.meta.vocabSize);
  const T = modelConfig.nPositions;
  const B = config.batchSize;
  const accum = config.gradAccum;
  const untilStep = Math.min(opts.untilStep ?? config.steps, config.steps);

  // Start fresh or resume.
  const found = await findCheckpoint(outDir);
  let state: TrainerState;
  let host: Map<string, { shape: number[]; data: Float32Array }>;
  let optimizerArrays: Map<string, { shape: number[]; data: Float32Array }> | undefined;
  if (found && !opts.restart) {
    const ck = await loadTrainingCheckpoint(found);
    if (!sameRecipe(ck.state.config, config)) {
      throw new TrainingError(
        `${found} was trained with a different model shape, batch, accumulation or seed than this config; ` +
          `use a new --out folder or --restart to discard it`,
      );
    }
    if (!sameData(ck.state.data, data)) {
      throw new TrainingError(
        `${found} was trained on different data (${ck.state.data.trainTokens} train tokens, vocabulary ${ck.state.data.vocabSize}; ` +
          `now ${data.train.length} and ${data.meta.vocabSize}): an exact resume needs the same data set`,
      );
    }
    state = { ...ck.state, config };
    host = ck.weights;
    optimizerArrays = ck.optimizer;
    await truncateLog(path.join(outDir, LOG_FILE), state.step);
  } else if (opts.continueFrom) {
    ({ state, host } = await continueFromModel(opts.continueFrom, config, modelConfig, data, outDir));
  } else {
    state = freshState(config, data);
    const init = initParamArrays(modelConfig, config.seed);
    host = new Map(paramSpecs(modelConfig).map((s) => [s.name, { shape: s.shape, data: init.get(s.name)! }]));
    await writeFile(path.join(outDir, LOG_FILE), '');
  }
  await writeFile(path.join(outDir, 'train-config.json'), `${JSON.stringify(config, null, 2)}\n`);

  // Before any tensor exists: too little data is an input error, not a leak.
  const sampler = new WindowSampler(data.train, T, config.seed, state.position);
  const initial = paramsFromArrays(modelConfig, host);
  const params = toVariables(initial, `pretrain${++runCounter}/`);
  tf.dispose(namedParams(initial).map(([, t]) => t));
  const vars = namedParams(params) as Array<[string, tf.Variable]>;
  const varList = vars.map(([, v]) => v);
  const optimizer = new AdamW(vars, config);
  try {
    if (optimizerArrays) optimizer.loadState(optimizerArrays, state.optimizerStep ?? state.step, found!);
  } catch (err) {
    optimizer.dispose();
    tf.dispose(varList);
    throw err;
  }
  const tokFiles = await tokenizerFiles(data.tokenizerDir);
  const nParams = paramSpecs(modelConfig).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  const resumedFrom = found && !opts.restart ? found : opts.continueFrom;
  opts.onEvent?.({ type: 'start', step: state.step, resumedFrom, parameters: nParams, backend: tf.getBackend(), trainTokens: data.train.length });

  let lastEval: PretrainResult['lastEval'];
  const objective: Objective = {
    label: 'pretrain',
    variables: vars,
    gradDivisor: accum,
    evaluateAtStart: data.val.size > 0,
    batches: (step) => Array.from({ length: accum }, (_, micro): MicroBatch => {
      const batch = sampler.next(B);
      const seed = dropoutSeed(config.seed, step, accum, micro);
      return { tokens: B * T, loss: () => ({ loss: batchLoss(params, batch, B, config.dropout > 0, seed) }) };
    }),
    afterUpdate: (step) => ({ evaluate: step % config.evalEvery === 0 && data.val.size > 0 }),
    evaluate: async () => {
      const per = evaluate(params, data, B, config.evalWindows);
      const entries = Object.entries(per);
      const tokens = entries.reduce((n, [, v]) => n + v.tokens, 0);
      const valLoss = tokens ? entries.reduce((s, [, v]) => s + v.loss * v.tokens, 0) / tokens : NaN;
      state.lastEval = { step: state.step, valLoss, perCorpus: Object.fromEntries(entries.map(([k, v]) => [k, v.loss])) };
      lastEval = { valLoss, perCorpus: state.lastEval.perCorpus };
      return { fields: { tokensSeen: state.tokensSeen, valLoss, valPerplexity: Math.exp(valLoss), perCorpus: per } };
    },
    finalEvaluationDue: () => data.val.size > 0 && state.lastEval?.step !== state.step,
    save: async () => {
      state.position = { ...sampler.position };
      if (state.optimizerStep !== undefined || optimizer.step !== state.step) state.optimizerStep = optimizer.step;
      state.savedAt = new Date().toISOString();
      const dir = await saveTrainingCheckpoint(outDir, modelConfig, params, await optimizer.stateArrays(), state, tokFiles);
      await writeCurve(outDir, `pre-training: ${modelConfig.nLayer} layers, ${modelConfig.nEmbd} dims, vocab ${modelConfig.vocabSize}`);
      return dir;
    },
  };
  try {
    const res = await runLoop({
      objective, optimizer, state, schedule: config, gradClip: config.gradClip, totalSteps: config.steps, untilStep,
      logEvery: config.logEvery, checkpointEvery: config.checkpointEvery, outDir, lastSavedStep: found && !opts.restart ? state.step : -1,
      progress: opts.progress, signal: opts.signal, onEvent: (e) => opts.onEvent?.(e as TrainEvent),
      afterStep: opts.afterStep ? (step) => opts.afterStep!({ step, params }) : undefined,
    });
    return { step: state.step, tokensSeen: state.tokensSeen, elapsedMs: state.elapsedMs, lastLoss: res.lastLoss, checkpointDir: res.checkpointDir, lastEval };
  } finally {
    optimizer.dispose();
    tf.dispose(varList);
  }
}
