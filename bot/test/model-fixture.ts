// The model side of the bot's end-to-end tests: the real generation service (worker thread,
// batching, deadlines) on a tiny random checkpoint the test writes, so every reply the bot sends
// comes from a real model through the real generation path.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TextGenerator } from '../../model/generator.js';
import { createGenerator, type GeneratorOptions } from '../../model/service.js';
import { createTinyModel } from '../../model/testing.js';
import { toChatTurns } from '../chat-session.js';
import type { Turn } from '../conversation.js';

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
