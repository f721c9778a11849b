// Prediction and evaluation with a fine-tuned model: encode examples with the task's
// transformation, run them in length-sorted batches (less padding), and score them.
import * as tf from '@tensorflow/tfjs';
import type { BpeTokenizer } from '../tokenizer/bpe.js';
import { labelTargets, type LoadedExamples } from './data.js';
import { accuracy, macroF1, pearson, spearman } from './metrics.js';
import { prepareBatch, taskForward, toPredictions, type FinetuneModel, type Prediction, type TaskSpec } from './model.js';
import type { AnyExample, TaskName } from './tasks.js';
import { encodeInput, type EncodedInput } from './transforms.js';

/** Encodes every example; `truncated` counts those cut to fit the model's context. */
export function encodeExamples(spec: TaskSpec, tokenizer: BpeTokenizer, examples: readonly AnyExample[]): { inputs: EncodedInput[]; truncated: number } {
  const encode = (s: string) => tokenizer.encode(s);
  let truncated = 0;
  const inputs = examples.map((e) => {
    const r = encodeInput(spec.task as TaskName, e as never, encode, spec.specialIds, spec.maxLen);
    if (r.truncated) truncated++;
    return r;
  });
  return { inputs, truncated };
}

/** Predictions for encoded inputs, at most `maxRows` sequences per forward pass (dropout off). */
export function predictInputs(model: FinetuneModel, inputs: readonly EncodedInput[], maxRows = 64): Prediction[] {
  const order = inputs.map((_, i) => i).sort((a, b) => longest(inputs[a]) - longest(inputs[b]));
  const out = new Array<Prediction>(inputs.length);
  let i = 0;
  while (i < order.length) {
    const group: number[] = [];
    let rows = 0;
    while (i < order.length && (group.length === 0 || rows + inputs[order[i]].sequences.length <= maxRows)) {
      rows += inputs[order[i]].sequences.length;
      group.push(order[i++]);
    }
    const batchInputs = group.map((g) => inputs[g]);
    const batch = prepareBatch(model.spec.task, batchInputs);
    const t = tf.tidy(() => taskForward(model, batch, { training: false }).outputs);
    const values = t.dataSync() as Float32Array;
    t.dispose();
    const choiceCounts = model.spec.task === 'multiple-choice' ? batchInputs.map((b) => b.sequences.length) : undefined;
    toPredictions(model.spec, values, group.length, choiceCounts).forEach((p, k) => (out[group[k]] = p));
  }
  return out;
}

function longest(e: EncodedInput): number {
  return Math.max(...e.sequences.map((s) => s.length));
}

export interface Metrics {
  examples: number;
  /** Share of exact predictions (score tasks: both sides of the label range's midpoint agree). */
  accuracy: number;
  /** Classes only. */
  macroF1?: number;
  /** Score labels only. */
  pearson?: number;
  spearman?: number;
  mse?: number;
}

export function computeMetrics(spec: TaskSpec, predictions: readonly Prediction[], targets: readonly number[]): Metrics {
  const pred = predictions.map((p) => p.value);
  if (spec.labels.kind === 'score') {
    const mid = (spec.labels.min + spec.labels.max) / 2;
    return {
      examples: pred.length,
      accuracy: accuracy(pred.map((v) => Number(v >= mid)), targets.map((v) => Number(v >= mid))),
      pearson: pearson(pred, targets),
      spearman: spearman(pred, targets),
      mse: pred.reduce((s, v, i) => s + (v - targets[i]) ** 2, 0) / pred.length,
    };
  }
  const m: Metrics = { examples: pred.length, accuracy: accuracy(pred, targets) };
  if (spec.labels.kind === 'class') m.macroF1 = macroF1(pred, targets, spec.labels.names.length);
  return m;
}

/** Encodes, predicts and scores a labelled data file. */
export function evaluateExamples(
  model: FinetuneModel,
  tokenizer: BpeTokenizer,
  data: LoadedExamples<TaskName>,
): { metrics: Metrics; predictions: Prediction[]; truncated: number } {
  const targets = labelTargets(model.spec.labels, data);
  const { inputs, truncated } = encodeExamples(model.spec, tokenizer, data.examples);
  const predictions = predictInputs(model, inputs);
  return { metrics: computeMetrics(model.spec, predictions, targets), predictions, truncated };
}

/** A prediction in words: the class name, the choice index, or the score. */
export function describePrediction(spec: TaskSpec, p: Prediction): string {
  if (spec.labels.kind === 'score') return `score ${p.value.toFixed(4)}`;
  const probs = p.probs!;
  if (spec.labels.kind === 'choice') return `choice ${p.value} (${probs.map((x, i) => `${i}: ${x.toFixed(3)}`).join(', ')})`;
  const names = spec.labels.names;
  return `${names[p.value]} (${probs.map((x, i) => `${names[i]}: ${x.toFixed(3)}`).join(', ')})`;
}
