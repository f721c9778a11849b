// Loading a model directory for generation: backend, checkpoint, tokenizer, fast engine (warmed up).
import path from 'node:path';
import { initBackend } from '../backend.js';
import { nativeStatus } from '../native/index.js';
import type { GptConfig } from '../nn/config.js';
import { Engine, type InferenceEngine } from './engine.js';
import type { ModelInfo } from './generator.js';
import { countParams } from '../nn/params.js';
import { loadTokenizerFor } from '../io/tokenizer.js';
import type { ModelTokenizer } from '../tokenizer/model-tokenizer.js';
import { loadEngineWeights } from './weights.js';

export interface Runtime {
  config: GptConfig;
  engine: InferenceEngine;
  tokenizer: ModelTokenizer;
  info: ModelInfo;
}

export interface RuntimeOptions {
  backend?: string;
  warmUp?: boolean;
}

export async function loadRuntime(modelDir: string, opts: RuntimeOptions = {}): Promise<Runtime> {
  const backend = await initBackend(opts.backend);
  const weights = await loadEngineWeights(modelDir);
  const engine: InferenceEngine = new Engine(weights.config, weights.tensors);
  const c = engine.config;
  let tokenizer: ModelTokenizer;
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
    tokenizer,
    info: {
      name: path.basename(path.resolve(modelDir)),
      path: path.resolve(modelDir),
      parameters: countParams(c),
      backend: describeBackend(backend),
      contextLength: c.nPositions,
      vocabSize: c.vocabSize,
      layers: c.nLayer,
      embd: c.nEmbd,
      heads: c.nHead,
    },
  };
}

/** e.g. `wasm + native matmul (avx512, 2 threads)`: what the panel, /readyz and the logs show. */
function describeBackend(backend: string): string {
  const native = backend === 'wasm' ? nativeStatus() : undefined;
  const kernels = native?.active ? ` + native matmul (${native.isa}, ${native.threads} thread${native.threads === 1 ? '' : 's'})` : '';
  return `${backend}${kernels}`;
}
