// Helpers for tests across the project: a tiny real model (random weights, a small trained
// tokenizer) in the HF layout, created in a few hundred milliseconds. Replies from it are
// gibberish, but they come from a real model through the real generation path.
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { makeConfig, type GptConfig } from '../nn/config.js';
import { saveCheckpoint } from '../io/checkpoint.js';
import { initParamArrays, paramSpecs } from '../nn/params.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';
import { serializeTokenizerConfig } from '../tokenizer/config.js';
import { trainBpe, UnitCounter } from '../tokenizer/train.js';

const SAMPLE_TEXT = [
  'User: hello there, how are you today?\nBot: I am fine, thank you. And you?',
  'User: what is the weather like?\nBot: It is sunny and warm, a good day for a walk.',
  'User: 你好，今天天气怎么样？\nBot: 今天天气很好，我们去公园散步吧。',
  'User: tell me a story about a cat.\nBot: Once upon a time there was a small cat who loved the sea.',
  'The quick brown fox jumps over the lazy dog. 1234567890 !?.,;:',
];

export interface TinyModelOptions {
  seed?: number;
  vocabSize?: number;
  nLayer?: number;
  nEmbd?: number;
  nHead?: number;
  nPositions?: number;
  /** Std of the random weights; larger than GPT's 0.02 so the tiny model's choices are not uniform. */
  initStd?: number;
}

/** Writes a tiny random model with a small nemo-bpe tokenizer into `dir`; returns its config. */
export async function createTinyModel(dir: string, opts: TinyModelOptions = {}): Promise<GptConfig> {
  const counter = new UnitCounter();
  for (let i = 0; i < 4; i++) for (const t of SAMPLE_TEXT) counter.add(t);
  const trained = trainBpe(counter, { vocabSize: opts.vocabSize ?? 360, minCharFrequency: 1 });
  const tokenizer = BpeTokenizer.fromData(trained.encoder, trained.merges, { config: serializeTokenizerConfig(trained.config) as never });
  await tokenizer.save(dir);
  const config = makeConfig({
    vocabSize: tokenizer.vocabSize,
    nPositions: opts.nPositions ?? 64,
    nEmbd: opts.nEmbd ?? 32,
    nLayer: opts.nLayer ?? 2,
    nHead: opts.nHead ?? 4,
  });
  const arrays = initParamArrays({ ...config, initializerRange: opts.initStd ?? 0.2 }, opts.seed ?? 1);
  const shapes = new Map(paramSpecs(config).map((s) => [s.name, s.shape]));
  await saveCheckpoint(dir, config, new Map([...arrays].map(([n, data]) => [n, { shape: shapes.get(n)!, data }])));
  return config;
}

/** The tiny GPT-1 PyTorch wrote for the tests (fixtures/torch/make-fixtures.py): CDial-GPT's layout and special tokens. */
const TORCH_FIXTURE = new URL('./fixtures/torch/', import.meta.url);

/**
 * Writes a CDial-layout model folder into `dir` (created if needed): config.json, vocab.txt with
 * [speaker1]/[speaker2] (32 tokens, 513 positions) and pytorch_model.bin, copied from the fixture.
 */
export async function createTinyCdialModel(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const f of ['config.json', 'vocab.txt']) await copyFile(new URL(f, TORCH_FIXTURE), path.join(dir, f));
  await copyFile(new URL('gpt-f32-legacy.bin', TORCH_FIXTURE), path.join(dir, 'pytorch_model.bin'));
}
