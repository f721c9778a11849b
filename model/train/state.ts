// Pre-training checkpoints that resume EXACTLY: the weights (HF layout, float32, so the folder is
// also a normal model checkpoint), the optimizer's moments, the data position and the counters.
// Swapped in whole (run-folder.ts): `checkpoint/` is always the last complete one.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import type { GptConfig } from '../nn/config.js';
import type { GptParams } from '../nn/params.js';
import { readSafetensors, writeSafetensors, type HostTensor } from '../io/safetensors.js';
import type { DataPosition } from './batches.js';
import type { TrainConfig } from './config.js';
import { findCheckpoint as findRunCheckpoint, replaceCheckpoint } from './run-folder.js';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';

export interface TrainerState {
  version: 1;
  /** Completed optimizer updates. */
  step: number;
  /**
   * Updates the optimizer's moments have seen (Adam's bias correction), when not `step`: a run
   * continued from an exported model starts its moments afresh.
   */
  optimizerStep?: number;
  position: DataPosition;
  tokensSeen: number;
  /** Training wall time over all sessions (ms). */
  elapsedMs: number;
  config: TrainConfig;
  /** What the run was trained on, to refuse resuming on different data. */
  data: { trainTokens: number; vocabSize: number };
  lastEval?: { step: number; valLoss: number; perCorpus: Record<string, number> };
  savedAt: string;
}

export class CheckpointStateError extends Error {
  override name = 'CheckpointStateError';
}

/** The folder to resume a pre-training run from, if any. */
export function findCheckpoint(outDir: string): Promise<string | undefined> {
  return findRunCheckpoint(outDir, TRAINER_STATE_FILE);
}

export async function saveTrainingCheckpoint(
  outDir: string,
  modelConfig: GptConfig,
  params: GptParams,
  optimizerArrays: Array<[string, HostTensor]>,
  state: TrainerState,
  tokenizerFiles: string[],
): Promise<string> {
  return replaceCheckpoint(outDir, async (dir) => {
    await saveCheckpoint(dir, modelConfig, params, { tokenizerFiles, dtype: 'F32', metadata: { step: String(state.step) } });
    await writeSafetensors(path.join(dir, OPTIMIZER_FILE), optimizerArrays, 'F32', { step: String(state.step) });
    // The state file last: its presence marks the folder complete.
    await writeFile(path.join(dir, TRAINER_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
  });
}

export interface LoadedTrainingCheckpoint {
  dir: string;
  state: TrainerState;
  modelConfig: GptConfig;
  weights: Map<string, HostTensor>;
  optimizer: Map<string, HostTensor>;
}

export async function loadTrainingCheckpoint(dir: string): Promise<LoadedTrainingCheckpoint> {
  const stateFile = path.join(dir, TRAINER_STATE_FILE);
  let state: TrainerState;
  try {
    state = JSON.parse(await readFile(stateFile, 'utf8')) as TrainerState;
  } catch (err) {
    throw new CheckpointStateError(`${stateFile}: cannot read the trainer state (${(err as Error).message})`);
  }
  if (state.version !== 1 || !Number.isInteger(state.step) || !state.position || !state.config) {
    throw new CheckpointStateError(`${stateFile}: not a trainer state of version 1`);
  }
  const host = await readCheckpoint(dir);
  const optimizer = await readSafetensors(path.join(dir, OPTIMIZER_FILE));
  return { dir, state, modelConfig: host.config, weights: host.arrays, optimizer };
}
