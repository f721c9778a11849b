// Loading a model directory for generation: backend, checkpoint, tokenizer, fast engine (warmed up).
import path from 'node:path';
import { initBackend } from './backend.js';
import { loadCheckpoint } from './checkpoint.js';
import type { GptConfig } from './config.js';
import { Engine } from './engine.js';
import { CheckpointError } from './errors.js';
import type { ModelInfo } from './generator.js';
import { countParams, disposeParams } from './params.js';
import { BpeTokenizer } from './tokenizer/bpe.js';

export interface Runtime {
  config: GptConfig;
  engine: Engine;
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

export async function loadRuntime(modelDir: string, opts: { backend?: string; warmUp?: boolean } = {}): Promise<Runtime> {
  const backend = await initBackend(opts.backend);
  const { config: c, params } = await loadCheckpoint(modelDir);
  let tokenizer: BpeTokenizer;
  try {
    tokenizer = await loadTokenizerFor(modelDir, c);
  } catch (err) {
    disposeParams(params);
    throw err;
  }
  const engine = new Engine(params);
  if (opts.warmUp !== false) engine.warmUp();
  return {
    config: c,
    engine,
    tokenizer,
    info: {
      name: path.basename(path.resolve(modelDir)),
      path: path.resolve(modelDir),
      parameters: countParams(c),
      backend,
      contextLength: c.nPositions,
      vocabSize: c.vocabSize,
      layers: c.nLayer,
      embd: c.nEmbd,
      heads: c.nHead,
    },
  };
}
