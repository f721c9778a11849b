// The model side of the bot's end-to-end tests: the real generation service (worker thread,
// batching, deadlines) on a tiny random checkpoint the test writes, so every reply the bot sends
// comes from a real model through the real generation path.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTinyCdialModel, createTinyModel } from '../../model/test/tiny-model.js';
import { toChatTurns } from '../chat-session.js';
import type { Turn } from '../conversation.js';
import { createGenerator, type GeneratorOptions, type SamplingOptions, type TextGenerator } from '../../model/index.js';

export interface TestModel {
  generator: TextGenerator;
  /** The prompt text the model's own chat format builds (what ChatReply.prompt holds). */
  promptText(history: Turn[], message: string, maxNewTokens?: number): string;
  dir: string;
  close(): Promise<void>;
}

/** A tiny checkpoint in a temp dir and a generation service on it. */
export async function testModel(options: Omit<GeneratorOptions, 'modelDir'> = {}): Promise<TestModel> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-bot-model-'));
  await createTinyModel(dir, { nPositions: 128 });
  return serve(dir, options);
}

/** A generation service on the model in `dir` (removed on close). */
async function serve(dir: string, options: Omit<GeneratorOptions, 'modelDir'>): Promise<TestModel> {
  const generator = await createGenerator({ modelDir: dir, maxBatch: 4, maxQueue: 16, backend: 'cpu', ...options });
  return {
    generator,
    promptText(history, message, maxNewTokens = 64) {
      const budget = generator.info().contextLength - Math.min(maxNewTokens, generator.info().contextLength / 2);
      return generator.decode(generator.chatFormat().buildPrompt(toChatTurns(history), message, { maxPromptTokens: budget }).ids);
    },
    dir,
    async close() {
      await generator.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A CDial-layout folder (pytorch_model.bin + vocab.txt with [speaker1]/[speaker2] + config.json)
 * in a temp dir and a generation service on it: its chat format is cdial, with token types.
 */
export async function cdialTestModel(options: Omit<GeneratorOptions, 'modelDir'> = {}): Promise<TestModel> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-bot-cdial-'));
  await createTinyCdialModel(dir);
  return serve(dir, options);
}

/**
 * How long the bot's reply to `text` takes on this machine when nothing else runs, for deadlines
 * calibrated to it: the faster of two runs of the generation the bot makes with `sampling`
 * (BotHarness's `session.sampling()`, whose fixed seed makes both runs the bot's exact reply).
 */
export async function replyTime(m: TestModel, text: string, sampling: SamplingOptions): Promise<{ ms: number; tokens: number }> {
  const context = m.generator.info().contextLength;
  const p = m.generator.chatFormat().buildPrompt([], text, { maxPromptTokens: Math.max(1, context - (sampling.maxNewTokens ?? 1)) });
  const prompt = { prompt: p.ids, tokenTypes: p.tokenTypes, replyTokenType: p.replyTokenType };
  let ms = Infinity;
  let tokens = 0;
  for (let i = 0; i < 2; i++) {
    const t0 = performance.now();
    tokens = (await m.generator.generate({ ...prompt, ...sampling })).completionTokens;
    ms = Math.min(ms, performance.now() - t0);
  }
  return { ms, tokens };
}
