// Messages between the generation service (main thread) and its worker thread.
import type { GenerationResult, ModelInfo, SamplingOptions } from '../inference/generator.js';

export interface WorkerInit {
  modelDir: string;
  maxBatch: number;
  backend?: string;
}

export type ToWorker =
  | { type: 'generate'; id: string; prompt: string | number[]; options: SamplingOptions; deadline?: number; tokenTypes?: number[]; replyTokenType?: number }
  | { type: 'cancel'; id: string; reason: 'aborted' | 'timeout' }
  | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'text'; id: string; chunk: string }
  | { type: 'done'; id: string; result: Omit<GenerationResult, 'latencyMs'> }
  | { type: 'error'; id: string; name: string; message: string }
  | { type: 'fatal'; name: string; message: string }
  | { type: 'closed' };
