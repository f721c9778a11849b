// The tokenizer of a model directory, checked against the model: a tokenizer with more tokens than
// the model's embedding would produce ids the model cannot look up.
import { CheckpointError } from '../errors.js';
import type { GptConfig } from '../nn/config.js';
import { loadModelTokenizer, type ModelTokenizer } from '../tokenizer/model-tokenizer.js';

export async function loadTokenizerFor(dir: string, config?: GptConfig): Promise<ModelTokenizer> {
  let tok: ModelTokenizer;
  try {
    tok = await loadModelTokenizer(dir);
  } catch (err) {
    throw new CheckpointError(`${dir}: tokenizer: ${(err as Error).message}`, dir);
  }
  if (config && tok.vocabSize > config.vocabSize) {
    throw new CheckpointError(`${dir}: the tokenizer has ${tok.vocabSize} tokens but the model only ${config.vocabSize}`, dir);
  }
  return tok;
}
