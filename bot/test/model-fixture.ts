// The model side of the bot's end-to-end tests: the real generation service (worker thread,
// batching, deadlines) on a tiny random checkpoint the test writes, so every reply the bot sends
// comes from a real model through the real generation path.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createGenerator, type GeneratorOptions, type TextGenerator } from '../../model/index.js';
import { createTinyModel } from '../../model/test/tiny-model.js';
import { replyTokenBudget, type ChatPromptFormat } from '../chat-session.js';
import type { BotConfig } from '../config.js';
import { modelChatFormat } from '../prompt-format.js';

export interface TestModel {
  generator: TextGenerator;
  format: ChatPromptFormat;
  dir: string;
  close(): Promise<void>;
}

/** A tiny checkpoint in a temp dir and a generation service on it. */
export async function testModel(options: Omit<GeneratorOptions, 'modelDir'> & { maxNewTokens?: () => number } = {}): Promise<TestModel> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-bot-model-'));
  await createTinyModel(dir, { nPositions: 128 });
  const { maxNewTokens, ...generatorOptions } = options;
  const generator = await createGenerator({ modelDir: dir, maxBatch: 4, maxQueue: 16, backend: 'cpu', ...generatorOptions });
  // The model's own chat format, with room for a reply of the bot's default length.
  const config = { BOT_MAX_NEW_TOKENS: 64 } as Pick<BotConfig, 'BOT_MAX_NEW_TOKENS'>;
  return {
    generator,
    format: modelChatFormat(generator, { replyTokens: maxNewTokens ?? (() => replyTokenBudget(config, generator)) }),
    dir,
    async close() {
      await generator.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
