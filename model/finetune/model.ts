// The fine-tuning model: the pre-trained decoder (gpt.ts `forward`, unchanged) plus one linear
// head W_y on the final hidden state at each sequence's `extract` token, and the auxiliary
// language-model loss on the same sequences (paper, eq. 5: L3 = L2 + λ·L1).
//
//   classification/entailment: logits = dropout(h_extract) W + b          → softmax over classes
//   similarity:                logits = dropout(h_AB + h_BA) W + b          (states summed)
//   multiple choice:           score_k = dropout(h_k) w + b, softmax over k (one output per choice)
//   similarity with scores:    ŷ = dropout(h_AB + h_BA) w + b, squared error on the label scaled to [0, 1]
import * as tf from '@tensorflow/tfjs';
import type { GptConfig } from '../nn/config.js';
import { forward } from '../nn/gpt.js';
import { dropout } from '../nn/layers.js';
import type { GptParams } from '../nn/params.js';
import { Rng } from '../rng.js';
import type { HostTensor } from '../io/safetensors.js';
import { crossEntropy, lmLoss } from '../train/loss.js';
import { headSize, type LabelSpace } from './data.js';
import { SPECIAL_TOKEN_NAMES, type SpecialIds, type TaskName } from './tasks.js';
import type { EncodedInput } from './transforms.js';

export interface HeadParams {
  /** [C, outputs] */
  w: tf.Tensor2D;
  /** [outputs] */
  b: tf.Tensor1D;
}

export const HEAD_WEIGHT = 'head.weight';
export const HEAD_BIAS = 'head.bias';

/** What a fine-tuned model is, besides its weights (stored as finetune.json). */
export interface TaskSpec {
  task: TaskName;
  labels: LabelSpace;
  specialTokens: { start: string; delim: string; extract: string };
  specialIds: SpecialIds;
  /** Longest sequence fed to the model (≤ the context). */
  maxLen: number;
}

export interface FinetuneModel {
  spec: TaskSpec;
  params: GptParams;
  head: HeadParams;
}

/** A head's initial values: N(0, std) weights (GPT-1 used 0.02), zero bias. */
export function initHeadArrays(nEmbd: number, outputs: number, seed: number, std = 0.02): Map<string, HostTensor> {
  const w = new Float32Array(nEmbd * outputs);
  new Rng(seed ^ 0x5eed).fillNormal(w, std);
  return new Map([
    [HEAD_WEIGHT, { shape: [nEmbd, outputs], data: w }],
    [HEAD_BIAS, { shape: [outputs], data: new Float32Array(outputs) }],
  ]);
}

/**
 * Grows the token embedding to `vocabSize` rows; the new rows (the added special tokens) are
 * N(0, std) as the paper initialises every embedding. Returns the new config and arrays.
 */
export function growVocabulary(
  config: GptConfig,
  arrays: Map<string, HostTensor>,
  vocabSize: number,
  seed: number,
  std = 0.02,
): { config: GptConfig; arrays: Map<string, HostTensor> } {
  if (vocabSize <= config.vocabSize) return { config, arrays };
  const old = arrays.get('tokens_embed.weight');
  if (!old) throw new Error('tokens_embed.weight missing');
  const C = config.nEmbd;
  const data = new Float32Array(vocabSize * C);
  data.set(old.data.subarray(0, config.vocabSize * C));
  new Rng(seed ^ 0xe3b).fillNormal(data.subarray(config.vocabSize * C), std);
  const out = new Map(arrays);
  out.set('tokens_embed.weight', { shape: [vocabSize, C], data });
  return { config: { ...config, vocabSize }, arrays: out };
}

/** What addTaskTokens needs of a tokenizer. */
interface TaskTokenizer {
  readonly vocabSize: number;
  tokenToId(token: string): number | undefined;
  addSpecialTokens(tokens: string[]): number[];
}

/**
 * Adds GPT-1's task tokens (start, delim, extract) to the tokenizer and gives the model a row for
 * each: the embedding grows to the tokenizer's size, and an added token whose id falls inside the
 * existing vocabulary (a row no token used) gets a fresh N(0, initializerRange) row too.
 */
export function addTaskTokens(
  config: GptConfig,
  arrays: Map<string, HostTensor>,
  tokenizer: TaskTokenizer,
  seed: number,
): { config: GptConfig; arrays: Map<string, HostTensor>; specialIds: SpecialIds } {
  const names = [SPECIAL_TOKEN_NAMES.start, SPECIAL_TOKEN_NAMES.delim, SPECIAL_TOKEN_NAMES.extract];
  const known = new Set(names.filter((t) => tokenizer.tokenToId(t) !== undefined));
  const ids = tokenizer.addSpecialTokens(names);
  const grown = growVocabulary(config, arrays, Math.max(config.vocabSize, tokenizer.vocabSize), seed, config.initializerRange);
  const emb = grown.arrays.get('tokens_embed.weight')!;
  const rng = new Rng(seed ^ 0x51);
  names.forEach((name, k) => {
    const id = ids[k];
    if (!known.has(name) && id < config.vocabSize) rng.fillNormal(emb.data.subarray(id * config.nEmbd, (id + 1) * config.nEmbd), config.initializerRange);
  });
  return { ...grown, specialIds: { start: ids[0], delim: ids[1], extract: ids[2] } };
}

/** Token ids of one batch, padded on the right, and where to read the extract states and LM targets. */
export interface PreparedBatch {
  /** [rows, T] token ids (right-padded: causal attention never sees the padding from real positions). */
  ids: Int32Array;
  rows: number;
  T: number;
  examples: number;
  /** Flat [rows*T] index of each row's extract token. */
  extractIdx: Int32Array;
  /** Flat indices of positions that predict a next token of the same sequence, and those tokens. */
  lmIdx: Int32Array;
  lmTargets: Int32Array;
  /** Multiple choice: [examples * maxChoices] row of each choice, `rows` where an example has fewer. */
  choiceIdx?: Int32Array;
  maxChoices?: number;
  /** Per example: class/choice index or score. */
  targets?: number[];
}

/** Rows per example that the head combines (similarity: the two orders). */
const pairedRows = (task: TaskName) => (task === 'similarity' ? 2 : 1);

export function prepareBatch(task: TaskName, inputs: EncodedInput[], targets?: number[]): PreparedBatch {
  const seqs = inputs.flatMap((i) => i.sequences);
  const rows = seqs.length;
  const T = Math.max(...seqs.map((s) => s.length));
  const ids = new Int32Array(rows * T);
  const extractIdx = new Int32Array(rows);
  const lmIdx: number[] = [];
  const lmTargets: number[] = [];
  seqs.forEach((s, r) => {
    ids.set(s, r * T);
    // Padding repeats the row's last (extract) token: any id would do, it is never attended to.
    ids.fill(s[s.length - 1], r * T + s.length, (r + 1) * T);
    extractIdx[r] = r * T + s.length - 1;
    for (let t = 0; t + 1 < s.length; t++) {
      lmIdx.push(r * T + t);
      lmTargets.push(s[t + 1]);
    }
  });
  const batch: PreparedBatch = {
    ids, rows, T, examples: inputs.length, extractIdx, lmIdx: Int32Array.from(lmIdx), lmTargets: Int32Array.from(lmTargets), targets,
  };
  if (task === 'multiple-choice') {
    const K = Math.max(...inputs.map((i) => i.sequences.length));
    const choiceIdx = new Int32Array(inputs.length * K).fill(rows);
    let r = 0;
    inputs.forEach((inp, e) => {
      for (let k = 0; k < inp.sequences.length; k++) choiceIdx[e * K + k] = r++;
    });
    batch.choiceIdx = choiceIdx;
    batch.maxChoices = K;
  } else if (rows !== inputs.length * pairedRows(task)) {
    throw new Error(`${task}: expected ${pairedRows(task)} sequence(s) per example`);
  }
  return batch;
}

export interface ForwardOpts {
  training: boolean;
  /** Weight λ of the auxiliary LM loss (0 skips computing it). */
  lmCoef?: number;
  /** Dropout on the head's input (the paper: 0.1). */
  clfDropout?: number;
  /** Overrides the decoder's dropout rates while training. */
  dropout?: number;
  seed?: number;
}

export interface ForwardOut {
  /** class logits [B, K]; choice logits [B, maxChoices] (padding −1e9); scores [B, 1] in [0, 1] units */
  outputs: tf.Tensor2D;
  taskLoss?: tf.Scalar;
  lmLoss?: tf.Scalar;
  loss?: tf.Scalar;
}

/** Scales a score label to the head's [0, 1] target. */
export function scoreToUnit(space: Extract<LabelSpace, { kind: 'score' }>, y: number): number {
  return space.max > space.min ? (y - space.min) / (space.max - space.min) : 0;
}
export function unitToScore(space: Extract<LabelSpace, { kind: 'score' }>, u: number): number {
  return space.min + u * (space.max - space.min);
}

/**
 * Head outputs and (when the batch has targets) the losses. Call inside tf.tidy or a gradient
 * function: intermediates are not disposed here.
 */
export function taskForward(model: FinetuneModel, batch: PreparedBatch, opts: ForwardOpts): ForwardOut {
  const { params, head, spec } = model;
  const C = params.config.nEmbd;
  const idt = tf.tensor2d(batch.ids, [batch.rows, batch.T], 'int32');
  const hidden = forward(params, idt, { training: opts.training, dropout: opts.dropout, seed: opts.seed });
  const flat = tf.reshape(hidden, [batch.rows * batch.T, C]) as tf.Tensor2D;
  let h = tf.gather(flat, tf.tensor1d(batch.extractIdx, 'int32')) as tf.Tensor2D; // [rows, C]
  if (spec.task === 'similarity') h = tf.sum(tf.reshape(h, [batch.examples, 2, C]), 1) as tf.Tensor2D;
  if (opts.training && (opts.clfDropout ?? 0) > 0) {
    h = dropout(h, opts.clfDropout!, opts.seed === undefined ? undefined : opts.seed + 7);
  }
  let outputs = tf.add(tf.matMul(h, head.w), head.b) as tf.Tensor2D;
  if (spec.task === 'multiple-choice') {
    // One score per row; gather them into [examples, maxChoices], missing choices at −1e9.
    const scores = tf.concat([tf.reshape(outputs, [batch.rows]), tf.tensor1d([-1e9])]);
    outputs = tf.reshape(tf.gather(scores, tf.tensor1d(batch.choiceIdx!, 'int32')), [batch.examples, batch.maxChoices!]) as tf.Tensor2D;
  }
  const out: ForwardOut = { outputs };
  if (!batch.targets) return out;
  if (spec.labels.kind === 'score') {
    const space = spec.labels;
    const y = tf.tensor1d(batch.targets.map((t) => scoreToUnit(space, t)));
    out.taskLoss = tf.mean(tf.square(tf.sub(tf.reshape(outputs, [batch.examples]), y))) as tf.Scalar;
  } else {
    out.taskLoss = crossEntropy(outputs, tf.tensor1d(batch.targets, 'int32'));
  }
  const lambda = opts.lmCoef ?? 0;
  if (lambda > 0 && batch.lmIdx.length > 0) {
    out.lmLoss = lmLoss(params.tokensEmbed, flat, { positions: batch.lmIdx, targets: batch.lmTargets });
    out.loss = tf.add(out.taskLoss, tf.mul(out.lmLoss, lambda)) as tf.Scalar;
  } else {
    out.loss = out.taskLoss;
  }
  return out;
}

export interface Prediction {
  /** Class index, choice index, or (score tasks) the predicted score. */
  value: number;
  /** Class or choice probabilities (softmax); absent for scores. */
  probs?: number[];
}

/** Turns head outputs [B, K] (host values) into predictions. */
export function toPredictions(spec: TaskSpec, outputs: Float32Array, examples: number, choiceCounts?: number[]): Prediction[] {
  const K = outputs.length / examples;
  const out: Prediction[] = [];
  for (let e = 0; e < examples; e++) {
    const row = Array.from(outputs.subarray(e * K, (e + 1) * K));
    if (spec.labels.kind === 'score') {
      out.push({ value: unitToScore(spec.labels, row[0]) });
      continue;
    }
    const n = choiceCounts ? choiceCounts[e] : K;
    const logits = row.slice(0, n);
    const max = Math.max(...logits);
    const exps = logits.map((l) => Math.exp(l - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    const probs = exps.map((x) => x / sum);
    out.push({ value: probs.indexOf(Math.max(...probs)), probs });
  }
  return out;
}

/** Head size the spec needs. */
export const outputsOf = (spec: Pick<TaskSpec, 'labels'>): number => headSize(spec.labels);
