// Loading a model directory for generation: backend, checkpoint, tokenizer, fast engine (warmed up).
import path from 'node:path';
import { initBackend } from '../backend.js';
import { nativeStatus } from '../native/index.js';
import type { GptConfig } from '../nn/config.js';
import { Engine, type InferenceEngine } from './engine.js';
import { ParallelEngine } from '../parallel.js';
import { CheckpointError } from '../errors.js';
import type { ModelInfo } from './generator.js';
import { countParams } from '../nn/params.js';
import { loadShard, SINGLE } from '../shard.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';

export interface Runtime {
  config: GptConfig;
  engine: InferenceEngine;
  threads: number;
  tokenizer: BpeTokenizer;
  info: ModelInfo;
}

export async function loadTokenizerFor(dir: string, config?: GptConfig): Promise<BpeTokenizer> {
  let tok: BpeTokenizer;
  try {
    tok = await BpeTokenizer.load(dir);
  } catch (err) {
    throw new CheckpointError(`${dir}: tokenizer: ${(err as Error).message}`, dir);
  }
  if (config && tok.vocabSize > config.vocabSize) {
    throw new CheckpointError(`${dir}: the tokenizer has ${tok.vocabSize} tokens but the model only ${config.vocabSize}`, dir);
  }
  return tok;
}

export interface RuntimeOptions {
  backend?: string;
  warmUp?: boolean;
  /** Threads for the model (tensor parallel; default 1). */
  threads?: number;
}

export async function loadRuntime(modelDir: string, opts: RuntimeOptions = {}): Promise<Runtime> {
  const backend = await initBackend(opts.backend);
  const threads = opts.threads ?? 1;
  let engine: InferenceEngine;
  if (threads > 1) {
    engine = await ParallelEngine.create(modelDir, threads, opts.backend);
  } else {
    const { config, tensors } = await loadShard(modelDir, SINGLE);
    engine = new Engine(config, tensors);
  }
  const c = engine.config;
  let tokenizer: BpeTokenizer;
  try {
    tokenizer = await loadTokenizerFor(modelDir, c);
  } catch (err) {
    engine.dispose();
    throw err;
  }
  if (opts.warmUp !== false) engine.warmUp();
  return {
    config: c,
    engine,
    threads,
    tokenizer,
    info: {
      name: path.basename(path.resolve(modelDir)),
      path: path.resolve(modelDir),
      parameters: countParams(c),
      backend: describeBackend(backend, threads),
      contextLength: c.nPositions,
      vocabSize: c.vocabSize,
      layers: c.nLayer,
      embd: c.nEmbd,
      heads: c.nHead,
    },
  };
}

/** e.g. `wasm + native matmul (avx512, 2 threads)`: what the panel, /readyz and the logs show. */
function describeBackend(backend: string, shards: number): string {
  const native = backend === 'wasm' ? nativeStatus() : undefined;
  const kernels = native?.active ? ` + native matmul (${native.isa}, ${native.threads} thread${native.threads === 1 ? '' : 's'})` : '';
  return `${backend}${kernels}${shards > 1 ? ` x${shards} model threads` : ''}`;
}
