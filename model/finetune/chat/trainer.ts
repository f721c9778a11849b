// Chat fine-tuning: the pre-trained decoder trained on conversations with the LM loss on the
// assistant's replies (./objective.ts), optionally plus the next-utterance head (./candidates.ts,
// GPT-1's multiple-choice transform and head from ../model.ts). Same machinery as the task
// fine-tuning (../trainer.ts): AdamW, warm-up then linear decay, global-norm clipping, the wasm
// training kernels, checkpoints that resume exactly, Ctrl-C saves, log.jsonl. A finished run
// leaves a model folder in `outDir` that loads like model/shipped and records its chat format.
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import * as tf from '@tensorflow/tfjs';
import type { GptConfig } from '../../nn/config.js';
import { paramsFromArrays, readCheckpoint, saveCheckpoint } from '../../io/checkpoint.js';
import { namedParams, toVariables, type GptParams } from '../../nn/params.js';
import { Rng } from '../../rng.js';
import { readSafetensors, writeSafetensors, type HostTensor } from '../../io/safetensors.js';
import { BpeTokenizer } from '../../tokenizer/bpe.js';
import { AdamW } from '../../train/adamw.js';
import { installTrainingKernels } from '../../train/kernels.js';
import { learningRate } from '../../train/schedule.js';
import { readFinetuned, saveFinetuned } from '../checkpoint.js';
import { growVocabulary, HEAD_BIAS, HEAD_WEIGHT, initHeadArrays, prepareBatch, taskForward, type FinetuneModel, type TaskSpec } from '../model.js';
import { SPECIAL_TOKEN_NAMES } from '../tasks.js';
import { epochBatches } from './batches.js';
import { buildCandidates, type CandidateSet } from './candidates.js';
import { RESUMABLE_KEYS, type ChatConfig } from './config.js';
import type { LoadedConversations } from './data.js';
import { declaredFormat, NEMO_LINES, writeChatFormat } from './format-file.js';
import { chatBatch, chatLoss } from './objective.js';
import { encodeConversations, type ChatSequence } from './sequences.js';

export class ChatTrainingError extends Error {
  override name = 'ChatTrainingError';
}

export interface ChatValidation {
  /** Mean cross-entropy per trained token, and its exponential. */
  loss: number;
  perplexity: number;
  sequences: number;
  tokens: number;
  /** Next-utterance accuracy (the true reply ranked first), when the head is trained. */
  mcAccuracy?: number;
}

export type ChatTrainEvent =
  | {
    type: 'start'; step: number; totalSteps: number; epochs: number; trainConversations: number; trainSequences: number; trainReplies: number;
    trainTargetTokens: number; validSequences: number; truncatedTrain: number; truncatedValid: number; maxLen: number; lossOn: string; mcCoef: number;
    base: string; resumedFrom?: string; parameters: number; backend: string;
  }
  | { type: 'step'; step: number; epoch: number; loss: number; lmLoss: number; mcLoss?: number; lr: number; gradNorm: number; tokensPerSec: number; tokensSeen: number; elapsedMs: number }
  | { type: 'eval'; step: number; epoch: number; tokensSeen: number; valLoss: number; valPerplexity: number; sequences: number; tokens: number; mcAccuracy?: number }
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'stop'; step: number; reason: 'done' | 'max-steps' | 'aborted' };

export interface ChatTrainOptions {
  baseDir: string;
  train: LoadedConversations;
  valid?: LoadedConversations;
  outDir: string;
  config: ChatConfig;
  /** Pause (with a checkpoint) after this many updates; the same command resumes. */
  untilStep?: number;
  /** Discard a checkpoint or finished model in outDir. */
  restart?: boolean;
  progress?: 'bar' | 'lines' | 'none';
  onEvent?: (e: ChatTrainEvent) => void;
  signal?: AbortSignal;
}

export interface ChatTrainResult {
  outDir: string;
  step: number;
  totalSteps: number;
  finished: boolean;
  tokensSeen: number;
  elapsedMs: number;
  lastLoss: number;
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
const LOG_FILE = 'log.jsonl';
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
  const names = [SPECIAL_TOKEN_NAMES.start, SPECIAL_TOKEN_NAMES.delim, SPECIAL_TOKEN_NAMES.extract];
  const known = new Set(names.filter((t) => tokenizer.tokenToId(t) !== undefined));
  const [start, delim, extract] = tokenizer.addSpecialTokens(names);
  const { config, arrays } = growVocabulary(host.config, host.arrays, Math.max(host.config.vocabSize, tokenizer.vocabSize), fc.seed, host.config.initializerRange);
  const emb = arrays.get('tokens_embed.weight')!;
  const rng = new Rng(fc.seed ^ 0x51);
  for (const [name, id] of [[names[0], start], [names[1], delim], [names[2], extract]] as const) {
    if (!known.has(name) && id < host.config.vocabSize) rng.fillNormal(emb.data.subarray(id * config.nEmbd, (id + 1) * config.nEmbd), config.initializerRange);
  }
  const maxLen = Math.min(fc.maxLen ?? config.nPositions, config.nPositions);
  const spec: TaskSpec = { task: 'multiple-choice', labels: { kind: 'choice' }, specialTokens: { ...SPECIAL_TOKEN_NAMES }, specialIds: { start, delim, extract }, maxLen };
  return { tokenizer, config, arrays, mc: { spec, head: initHeadArrays(config.nEmbd, 1, fc.seed) } };
}

async function findCheckpoint(outDir: string): Promise<string | undefined> {
  for (const name of ['checkpoint', 'checkpoint.prev']) {
    const dir = path.join(outDir, name);
    if (await exists(path.join(dir, CHAT_STATE_FILE))) return dir;
  }
  return undefined;
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
  const { outDir, config: fc } = opts;
  if (path.resolve(outDir) === path.resolve(opts.baseDir)) throw new ChatTrainingError('--out must differ from the base model folder');
  installTrainingKernels();
  await mkdir(outDir, { recursive: true });
  const found = opts.restart ? undefined : await findCheckpoint(outDir);
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
  const base = path.resolve(opts.baseDir);
  const state: ChatState = start.state ?? {
    kind: 'nemo-chat-finetune', version: 1, step: 0, position: { epoch: 0, batch: 0 }, tokensSeen: 0, elapsedMs: 0, config: fc, base,
    data: { trainConversations: opts.train.conversations.length, trainHash: hashOf(opts.train), trainFile: path.resolve(opts.train.file), validFile: opts.valid && path.resolve(opts.valid.file) },
    savedAt: '',
  };
  const emit = async (e: ChatTrainEvent) => {
    opts.onEvent?.(e);
    await appendFile(path.join(outDir, LOG_FILE), `${JSON.stringify({ ...e, time: new Date().toISOString() })}\n`);
  };
  if (!found) await writeFile(path.join(outDir, LOG_FILE), '');

  const prefix = `chat${++runCounter}/`;
  const initial = paramsFromArrays(start.config, start.arrays);
  const params = toVariables(initial, prefix);
  tf.dispose(namedParams(initial).map(([, t]) => t));
  const vars = namedParams(params) as Array<[string, tf.Variable]>;
  let mcModel: FinetuneModel | undefined;
  if (start.mc) {
    const hw = start.mc.head.get(HEAD_WEIGHT)!;
    const hb = start.mc.head.get(HEAD_BIAS)!;
    const head = {
      w: tf.variable(tf.tensor2d(hw.data, hw.shape as [number, number]), true, `${prefix}${HEAD_WEIGHT}`) as tf.Variable<tf.Rank.R2>,
      b: tf.variable(tf.tensor1d(hb.data), true, `${prefix}${HEAD_BIAS}`) as tf.Variable<tf.Rank.R1>,
    };
    mcModel = { spec: start.mc.spec, params, head };
    vars.push([HEAD_WEIGHT, head.w], [HEAD_BIAS, head.b]);
  }
  const varList = vars.map(([, v]) => v);
  const optimizer = new AdamW(vars, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: fc.weightDecay });
  const bar = opts.progress === 'bar'
    ? new cliProgress.SingleBar({ format: 'finetune chat {bar} {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_formatted}', etaBuffer: 30, hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  const say = (line: string) => {
    if (opts.progress === 'none') return;
    bar?.stop();
    process.stderr.write(`${line}\n`);
    bar?.start(untilStep, state.step, { loss: Number.isFinite(lastLoss) ? lastLoss.toFixed(3) : '-', tps: '-' });
  };
  let lastLoss = NaN;
  let reason: 'done' | 'max-steps' | 'aborted' = untilStep >= totalSteps ? 'done' : 'max-steps';
  let lastSaved = found ? state.step : -1;
  try {
    if (start.optimizer) optimizer.loadState(start.optimizer, state.step, found!);
    await emit({
      type: 'start', step: state.step, totalSteps, epochs: fc.epochs, trainConversations: opts.train.conversations.length, trainSequences: N,
      trainReplies: train.replies, trainTargetTokens: train.sequences.reduce((n, s) => n + s.loss.reduce((a, b) => a + b, 0), 0),
      validSequences: validSeqs.length, truncatedTrain: train.truncated, truncatedValid: valid?.truncated ?? 0, maxLen, lossOn: fc.lossOn, mcCoef: fc.mcCoef,
      base: state.base, resumedFrom: start.resumedFrom, parameters: vars.reduce((n, [, v]) => n + v.size, 0), backend: tf.getBackend(),
    });
    const save = async () => {
      state.savedAt = new Date().toISOString();
      const dir = await saveCheckpointDir(outDir, state, async (tmp) => {
        await saveModel(tmp, params, tokenizer, mcModel, state.base, state.step);
        await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), await optimizer.stateArrays(), 'F32', { step: String(state.step) });
      });
      lastSaved = state.step;
      await emit({ type: 'checkpoint', step: state.step, dir });
    };
    const runValid = async () => {
      if (!validSeqs.length) return;
      const v = validate(params, validSeqs, mcModel, validCands, micro);
      state.lastValid = v;
      await emit({ type: 'eval', step: state.step, epoch: state.position.epoch, tokensSeen: state.tokensSeen, valLoss: v.loss, valPerplexity: v.perplexity, sequences: v.sequences, tokens: v.tokens, mcAccuracy: v.mcAccuracy });
      say(`validation after step ${state.step}: ${formatValidation(v)}`);
    };
    bar?.start(untilStep, state.step, { loss: '-', tps: '-' });
    const lengths = train.sequences.map((s) => s.ids.length);
    let batches = epochBatches(lengths, B, fc.seed, state.position.epoch);
    let windowStart = performance.now();
    let windowTokens = 0;
    while (state.step < untilStep) {
      if (opts.signal?.aborted) {
        reason = 'aborted';
        break;
      }
      const t0 = performance.now();
      if (state.position.batch >= stepsPerEpoch) {
        state.position = { epoch: state.position.epoch + 1, batch: 0 };
        batches = epochBatches(lengths, B, fc.seed, state.position.epoch);
      }
      const idx = batches[state.position.batch];
      const lr = learningRate(state.step, schedule);
      const targetsOf = (s: ChatSequence) => s.loss.reduce((a, b) => a + b, 0);
      const allTargets = idx.reduce((n, i) => n + targetsOf(train.sequences[i]), 0);
      let acc: Map<string, tf.Tensor> | undefined;
      let lossSum = 0;
      let lmSum = 0;
      let mcSum = 0;
      let tokens = 0;
      for (let m = 0; m < idx.length; m += micro) {
        const chunk = idx.slice(m, m + micro);
        const seqs = chunk.map((i) => train.sequences[i]);
        const batch = chatBatch(seqs);
        tokens += batch.tokens;
        // The LM loss is a mean over target tokens of the whole update, the head's over its sequences.
        const lmWeight = batch.lmIdx.length / allTargets;
        const mcWeight = chunk.length / idx.length;
        const seed = ((fc.seed % 100000) * 7919 + state.step * 1000 + m) % 2147483647;
        const kept: tf.Tensor[] = [];
        const { value, grads } = tf.variableGrads(() => {
          const lm = chatLoss(params, batch, { training: true, dropout: fc.dropout, seed });
          kept.push(tf.keep(lm));
          let total = tf.mul(lm, lmWeight) as tf.Scalar;
          if (mcModel && trainCands) {
            const mcBatch = prepareBatch('multiple-choice', chunk.map((i) => trainCands!.inputs[i]), chunk.map((i) => trainCands!.targets[i]));
            const out = taskForward(mcModel, mcBatch, { training: true, lmCoef: 0, clfDropout: fc.clfDropout, dropout: fc.dropout, seed: seed + 500 });
            kept.push(tf.keep(out.taskLoss!));
            total = tf.add(total, tf.mul(out.taskLoss!, fc.mcCoef * mcWeight)) as tf.Scalar;
          }
          return total;
        }, varList);
        lossSum += value.dataSync()[0];
        lmSum += kept[0].dataSync()[0] * lmWeight;
        if (kept[1]) mcSum += kept[1].dataSync()[0] * mcWeight;
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
        throw new ChatTrainingError(
          `the loss became ${lossSum} (gradient norm ${gradNorm}) at step ${state.step + 1}; the update was not applied` +
            (lastSaved >= 0 ? `; the checkpoint of step ${lastSaved} in ${path.join(outDir, 'checkpoint')} is intact` : '') + '. Try a lower --lr.',
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
      state.position = { epoch: state.position.epoch, batch: state.position.batch + 1 };
      state.tokensSeen += tokens;
      state.elapsedMs += performance.now() - t0;
      windowTokens += tokens;
      lastLoss = lossSum;
      const epochDone = state.position.batch >= stepsPerEpoch;
      if (state.step % fc.logEvery === 0 || state.step === untilStep || epochDone) {
        const now = performance.now();
        const tps = (windowTokens / Math.max(1e-9, now - windowStart)) * 1000;
        windowStart = now;
        windowTokens = 0;
        await emit({
          type: 'step', step: state.step, epoch: state.position.epoch, loss: lossSum, lmLoss: lmSum, mcLoss: mcModel ? mcSum : undefined,
          lr, gradNorm, tokensPerSec: tps, tokensSeen: state.tokensSeen, elapsedMs: state.elapsedMs,
        });
        bar?.update(state.step, { loss: lossSum.toFixed(3), tps: tps.toFixed(0) });
        if (opts.progress === 'lines') {
          process.stderr.write(`step ${state.step}/${totalSteps} epoch ${state.position.epoch + 1} loss ${lossSum.toFixed(4)} (lm ${lmSum.toFixed(4)}` +
            `${mcModel ? `, next-utterance ${mcSum.toFixed(4)}` : ''}) lr ${lr.toExponential(2)} ${tps.toFixed(0)} tok/s\n`);
        }
      }
      if (fc.evalEvery ? state.step % fc.evalEvery === 0 : epochDone) await runValid();
      if (state.step % fc.checkpointEvery === 0 && state.step < totalSteps) await save();
    }
    if (state.step >= totalSteps) {
      if (state.lastValid === undefined || !(fc.evalEvery ? state.step % fc.evalEvery === 0 : state.position.batch >= stepsPerEpoch)) await runValid();
      state.savedAt = new Date().toISOString();
      await saveModel(outDir, params, tokenizer, mcModel, state.base, state.step);
      await writeFile(path.join(outDir, CHAT_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
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
    outDir, step: state.step, totalSteps, finished: state.step >= totalSteps, tokensSeen: state.tokensSeen, elapsedMs: state.elapsedMs, lastLoss, valid: state.lastValid,
  };
}

/** Writes a checkpoint next to the previous one and swaps it in, so a crash leaves one intact. */
async function saveCheckpointDir(outDir: string, state: ChatState, write: (dir: string) => Promise<void>): Promise<string> {
  const final = path.join(outDir, 'checkpoint');
  const tmp = path.join(outDir, 'checkpoint.tmp');
  const prev = path.join(outDir, 'checkpoint.prev');
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await write(tmp);
  await writeFile(path.join(tmp, CHAT_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`); // last: marks it complete
  await rm(prev, { recursive: true, force: true });
  if (await exists(final)) await rename(final, prev);
  await rename(tmp, final);
  await rm(prev, { recursive: true, force: true });
  return final;
}

/** Loss per trained token over `sequences` (dropout off), and the head's accuracy on their candidates. */
export function validate(params: GptParams, sequences: readonly ChatSequence[], mc?: FinetuneModel, cands?: CandidateSet, batchSize = 16): ChatValidation {
  let sum = 0;
  let count = 0;
  let right = 0;
  for (let i = 0; i < sequences.length; i += batchSize) {
    const batch = chatBatch(sequences.slice(i, i + batchSize));
    const l = tf.tidy(() => chatLoss(params, batch, { training: false }));
    sum += l.dataSync()[0] * batch.lmIdx.length;
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
  const loss = sum / count;
  return { loss, perplexity: Math.exp(loss), sequences: sequences.length, tokens: count, mcAccuracy: mc && cands ? right / sequences.length : undefined };
}

export function formatValidation(v: ChatValidation): string {
  return `loss ${v.loss.toFixed(4)} (perplexity ${v.perplexity.toFixed(2)}) on ${v.tokens.toLocaleString('en')} reply tokens of ${v.sequences} sequences` +
    (v.mcAccuracy !== undefined ? `, next-utterance accuracy ${(100 * v.mcAccuracy).toFixed(1)} %` : '');
}
