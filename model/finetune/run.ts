// What the task and chat fine-tuning trainers share around the training loop (../train/loop.ts):
// the caller's controls of a run, its summary, the head's variables, and the run itself — start
// event to the caller and the run log, optimizer moments restored before and every variable freed after.
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../io/safetensors.js';
import { LOG_FILE, runLoop, type LoopEvent, type LoopOptions, type LoopResult } from '../train/loop.js';
import { HEAD_BIAS, HEAD_WEIGHT, type FinetuneModel } from './model.js';

/** How a caller steers a fine-tuning run (besides its data and recipe). */
export interface RunControls<E> {
  outDir: string;
  /** Pause (with a checkpoint) after this many updates; the same command resumes. */
  untilStep?: number;
  /** Discard a checkpoint or finished model in outDir. */
  restart?: boolean;
  progress?: 'bar' | 'lines' | 'none';
  onEvent?: (e: E) => void;
  signal?: AbortSignal;
}

export interface RunSummary {
  outDir: string;
  step: number;
  totalSteps: number;
  finished: boolean;
  tokensSeen: number;
  elapsedMs: number;
  lastLoss: number;
}

/** The head's host arrays as trainable variables, named under `prefix`. */
export function headVariables(head: Map<string, HostTensor>, prefix: string): FinetuneModel['head'] {
  const w = head.get(HEAD_WEIGHT)!;
  const b = head.get(HEAD_BIAS)!;
  return {
    w: tf.variable(tf.tensor2d(w.data, w.shape as [number, number]), true, `${prefix}${HEAD_WEIGHT}`),
    b: tf.variable(tf.tensor1d(b.data), true, `${prefix}${HEAD_BIAS}`),
  };
}

export interface FinetuneLoop<E> extends Omit<LoopOptions, 'onEvent'> {
  /** The run's first event (its `start`), given to onEvent and appended to the log before the first update. */
  startEvent: E;
  /** A resumed run's optimizer moments and the checkpoint they come from. */
  resume?: { optimizer: Map<string, HostTensor>; from: string };
  onEvent?: (e: E) => void;
}

/** Runs the loop; the optimizer and the objective's variables are disposed however it ends. */
export async function runFinetuneLoop<E>(o: FinetuneLoop<E>): Promise<LoopResult> {
  const { startEvent, resume, onEvent, ...loop } = o;
  try {
    if (resume) o.optimizer.loadState(resume.optimizer, o.state.step, resume.from);
    onEvent?.(startEvent);
    await appendFile(path.join(o.outDir, LOG_FILE), `${JSON.stringify({ ...startEvent, time: new Date().toISOString() })}\n`);
    return await runLoop({ ...loop, onEvent: (e: LoopEvent) => onEvent?.(e as E) });
  } finally {
    o.optimizer.dispose();
    tf.dispose(o.objective.variables.map(([, v]) => v));
  }
}
