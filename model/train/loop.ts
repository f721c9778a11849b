// The training loop every objective shares (pre-training, task fine-tuning, chat fine-tuning):
// learning-rate schedule, gradient accumulation over micro-batches, global-norm clipping, AdamW,
// a NaN guard that leaves the last checkpoint intact, periodic checkpoints and validation, Ctrl-C
// (the signal) stopping at a step boundary with a checkpoint, a progress bar or log lines, and the
// run log (log.jsonl). What is trained on, how the loss is computed, what validation measures and
// what a checkpoint holds is the objective's.
//
// An objective (interface Objective below) plugs in through:
//   batches(step)  the update's micro-batches; each MicroBatch.loss() runs the forward pass
//                  inside the loop's gradient function and returns the scalar to differentiate
//                  (plus named parts for the log). A language-model objective builds it with
//                  lmLoss (train/loss.ts), which takes a per-token weight or mask (LmTargets.weights:
//                  e.g. only the assistant's tokens count in chat fine-tuning) — and may add any
//                  extra head's loss to it (a task head, a next-utterance multiple-choice head):
//                    loss: lmLoss(...) · coef + headLoss, parts: { lmLoss, headLoss }
//   afterUpdate()  advance its data position; say whether to validate or log now (epoch end)
//   evaluate()     validation: fields for the `eval` event, and optionally a line for the console
//   save()         write a resumable checkpoint (see run-folder.ts: replaceCheckpoint)
//   complete()     optional: what a finished run leaves instead of a checkpoint (fine-tuned model)
// The loop's own state (step, tokens seen, training time) is part of what save() writes; exact
// resume is the objective restoring its data position and the optimizer's moments with it.
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import * as tf from '@tensorflow/tfjs';
import { TrainingError } from '../errors.js';
import type { AdamW } from './adamw.js';
import { learningRate, type ScheduleConfig } from './schedule.js';

export interface MicroBatch {
  /** Tokens it feeds (throughput and the run's token count). */
  tokens: number;
  /** Forward pass and loss (called inside the gradient function: no tidy needed). */
  loss(): { loss: tf.Scalar; parts?: Record<string, tf.Scalar> };
  /** Factor for the parts' values when they are summed over the update's micro-batches (default 1). */
  partWeight?: number;
}

export interface Objective {
  /** Progress-bar label, e.g. `pretrain`. */
  readonly label: string;
  /** What is trained, by name (the optimizer's order). */
  readonly variables: ReadonlyArray<[string, tf.Variable]>;
  /**
   * The summed gradients (and losses) of an update are divided by this before clipping (default
   * 1): pre-training sums `gradAccum` micro-batch means; fine-tuning weights each micro-batch's
   * loss by its share of the batch instead.
   */
  readonly gradDivisor?: number;
  /** Validate before the first update of a fresh run. */
  readonly evaluateAtStart?: boolean;
  batches(step: number): MicroBatch[];
  /** Called after each applied update. `log` forces a log line (e.g. at the end of an epoch). */
  afterUpdate(step: number): { evaluate: boolean; log?: boolean };
  /** Extra fields of the `step` event from the summed loss parts (e.g. epoch, taskLoss, lmLoss). */
  stepFields?(parts: Record<string, number>): Record<string, unknown>;
  /** Validation: the `eval` event's fields and, optionally, a line shown on the console. */
  evaluate(): Promise<{ fields: Record<string, unknown>; line?: string }>;
  /** Whether to validate once more before the run's last save (or completion). */
  finalEvaluationDue(finished: boolean): boolean;
  /** Writes a resumable checkpoint; returns its folder. */
  save(): Promise<string>;
  /** A finished run's result in place of a last checkpoint (absent: a last checkpoint). */
  complete?(): Promise<void>;
}

export interface LoopState {
  /** Completed updates. */
  step: number;
  tokensSeen: number;
  /** Training wall time over all sessions (ms). */
  elapsedMs: number;
}

export type StopReason = 'done' | 'max-steps' | 'aborted';

export type LoopEvent =
  | ({ type: 'step'; step: number; loss: number; lr: number; gradNorm: number; tokensPerSec: number; tokensSeen: number; elapsedMs: number } & Record<string, unknown>)
  | ({ type: 'eval'; step: number } & Record<string, unknown>)
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'stop'; step: number; reason: StopReason };

export interface LoopOptions {
  objective: Objective;
  optimizer: AdamW;
  /** Mutated as the run goes. */
  state: LoopState;
  schedule: ScheduleConfig;
  /** Global gradient-norm clip (0 = off). */
  gradClip: number;
  /** The run's planned length; reaching it is `done` (else `max-steps`). */
  totalSteps: number;
  untilStep: number;
  logEvery: number;
  checkpointEvery: number;
  /** Checkpoints only while the run is shorter than this (default: always). */
  checkpointBefore?: number;
  /** Run folder: log.jsonl goes here; named in errors. */
  outDir: string;
  /** Step of the checkpoint the run resumed from (-1: none yet). */
  lastSavedStep: number;
  progress?: 'bar' | 'lines' | 'none';
  signal?: AbortSignal;
  onEvent?: (e: LoopEvent) => void;
  /** Called after every update (benchmarks, tests). */
  afterStep?: (step: number) => void;
}

export interface LoopResult {
  reason: StopReason;
  lastLoss: number;
  /** The last checkpoint written by this run, if any. */
  checkpointDir?: string;
}

export const LOG_FILE = 'log.jsonl';

export async function runLoop(o: LoopOptions): Promise<LoopResult> {
  const { objective: obj, optimizer, state, untilStep } = o;
  const vars = obj.variables;
  const varList = vars.map(([, v]) => v);
  const divisor = obj.gradDivisor ?? 1;
  const emit = async (e: LoopEvent) => {
    o.onEvent?.(e);
    await appendFile(path.join(o.outDir, LOG_FILE), `${JSON.stringify({ ...e, time: new Date().toISOString() })}\n`);
  };
  const bar = o.progress === 'bar'
    ? new cliProgress.SingleBar({
      format: `${obj.label} {bar} {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_formatted}`,
      etaBuffer: 50,
      hideCursor: true,
    }, cliProgress.Presets.shades_classic)
    : undefined;

  let lastLoss = NaN;
  let lastSaved = o.lastSavedStep;
  let checkpointDir: string | undefined;
  const save = async () => {
    checkpointDir = await obj.save();
    lastSaved = state.step;
    await emit({ type: 'checkpoint', step: state.step, dir: checkpointDir });
  };
  const evaluate = async () => {
    const { fields, line } = await obj.evaluate();
    await emit({ type: 'eval', step: state.step, ...fields });
    if (line && o.progress !== 'none') {
      bar?.stop();
      process.stderr.write(`${line}\n`);
      bar?.start(untilStep, state.step, { loss: Number.isNaN(lastLoss) ? '-' : lastLoss.toFixed(3), tps: '-' });
    }
  };

  let reason: StopReason = untilStep >= o.totalSteps ? 'done' : 'max-steps';
  bar?.start(untilStep, state.step, { loss: '-', tps: '-' });
  try {
    if (obj.evaluateAtStart && state.step === 0) await evaluate();
    let windowStart = performance.now();
    let windowTokens = 0;
    while (state.step < untilStep) {
      if (o.signal?.aborted) {
        reason = 'aborted';
        break;
      }
      const t0 = performance.now();
      const step = state.step;
      const lr = learningRate(step, o.schedule);
      // Forward/backward over the micro-batches, summing gradients.
      let acc: Map<string, tf.Tensor> | undefined;
      let lossSum = 0;
      let tokens = 0;
      const parts: Record<string, number> = {};
      for (const mb of obj.batches(step)) {
        tokens += mb.tokens;
        const kept: Array<[string, tf.Scalar]> = [];
        const { value, grads } = tf.variableGrads(() => {
          const out = mb.loss();
          for (const [name, t] of Object.entries(out.parts ?? {})) kept.push([name, tf.keep(t)]);
          return out.loss;
        }, varList);
        lossSum += value.dataSync()[0];
        for (const [name, t] of kept) parts[name] = (parts[name] ?? 0) + t.dataSync()[0] * (mb.partWeight ?? 1);
        tf.dispose([value, ...kept.map(([, t]) => t)]);
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
      const loss = lossSum / divisor;
      // Global norm of the mean gradient, clip: one scale factor for every gradient.
      const normT = tf.tidy(() => tf.sqrt(tf.addN([...acc!.values()].map((g) => tf.sum(tf.square(g))))).div(divisor));
      const gradNorm = normT.dataSync()[0];
      normT.dispose();
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        tf.dispose([...acc!.values()]);
        throw new TrainingError(
          `the loss became ${Number.isFinite(loss) ? 'finite but the gradient norm ' + gradNorm : loss} at step ${step + 1}: ` +
            `training stopped without applying it. ` +
            (lastSaved >= 0 ? `The last good checkpoint (step ${lastSaved}) in ${path.join(o.outDir, 'checkpoint')} is intact. ` : '') +
            'Lower the learning rate or check the data.',
        );
      }
      const scale = (o.gradClip > 0 && gradNorm > o.gradClip ? o.gradClip / gradNorm : 1) / divisor;
      if (scale !== 1) {
        for (const [name, g] of acc!) {
          acc!.set(name, tf.mul(g, scale));
          g.dispose();
        }
      }
      optimizer.apply(acc!, lr);
      tf.dispose([...acc!.values()]);

      state.step = step + 1;
      state.tokensSeen += tokens;
      state.elapsedMs += performance.now() - t0;
      windowTokens += tokens;
      lastLoss = loss;
      const next = obj.afterUpdate(state.step);
      o.afterStep?.(state.step);

      if (state.step % o.logEvery === 0 || state.step === untilStep || next.log) {
        const now = performance.now();
        const tps = (windowTokens / Math.max(1e-9, now - windowStart)) * 1000;
        windowStart = now;
        windowTokens = 0;
        const extra = obj.stepFields?.(parts) ?? {};
        await emit({ type: 'step', step: state.step, loss, ...extra, lr, gradNorm, tokensPerSec: tps, tokensSeen: state.tokensSeen, elapsedMs: state.elapsedMs });
        bar?.update(state.step, { loss: loss.toFixed(3), tps: tps.toFixed(0) });
        if (o.progress === 'lines') {
          const eta = ((untilStep - state.step) * (tokens || 1)) / Math.max(tps, 1e-9);
          const shown = Object.entries(extra).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k} ${Number.isInteger(v) ? v : (v as number).toFixed(4)}`);
          process.stderr.write(
            `step ${state.step}/${untilStep} loss ${loss.toFixed(4)}${shown.length ? ` (${shown.join(', ')})` : ''} lr ${lr.toExponential(2)} ` +
              `|g| ${gradNorm.toFixed(2)} ${tps.toFixed(0)} tok/s tokens ${state.tokensSeen} ETA ${formatDuration(eta * 1000)}\n`,
          );
        }
      }
      if (next.evaluate) await evaluate();
      if (state.step % o.checkpointEvery === 0 && state.step < (o.checkpointBefore ?? Infinity)) await save();
    }
    const finished = state.step >= o.totalSteps;
    if (finished && obj.complete) {
      if (obj.finalEvaluationDue(true)) await evaluate();
      await obj.complete();
    } else if (state.step !== lastSaved) {
      if (obj.finalEvaluationDue(finished)) await evaluate();
      await save();
    }
    await emit({ type: 'stop', step: state.step, reason });
  } finally {
    bar?.stop();
  }
  return { reason, lastLoss, checkpointDir };
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}
