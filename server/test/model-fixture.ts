// A tiny real model for the server's tests: random weights and a small tokenizer written by
// model/test/tiny-model.ts, served by the real generation service (worker thread, batching). Replies are
// gibberish but travel the whole real path: prompt, decode, stream, stop strings.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTinyModel } from '../../model/test/tiny-model.js';
import { createGenerator, type TextGenerator } from '../../model/index.js';

export async function tinyGenerator(opts: { maxBatch?: number; maxQueue?: number; nPositions?: number; nLayer?: number; nEmbd?: number } = {}): Promise<{
  generator: TextGenerator;
  dir: string;
  close(): Promise<void>;
}> {
  const dir = await mkdtemp(path.join(tmpdir(), 'nemo-server-model-'));
  await createTinyModel(dir, { seed: 7, nPositions: opts.nPositions ?? 128, nLayer: opts.nLayer, nEmbd: opts.nEmbd });
  const generator = await createGenerator({ modelDir: dir, maxBatch: opts.maxBatch ?? 4, maxQueue: opts.maxQueue ?? 8, backend: process.env.TFJS_BACKEND });
  return {
    generator,
    dir,
    async close() {
      await generator.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The same generator, but each streamed piece reaches the caller at least `gapMs` after the one
 * before, as from a slower model on a busy host. The browser test needs this to watch a reply
 * grow: the tiny model can finish 60 tokens before the first network read, and then every piece
 * arrives in one chunk. Text, counts and finish reason are the model's own.
 */
export function pacedGenerator(inner: TextGenerator, gapMs: number): TextGenerator {
  return {
    info: () => inner.info(),
    countTokens: (text) => inner.countTokens(text),
    decode: (ids) => inner.decode(ids),
    chatFormat: () => inner.chatFormat(),
    stats: () => inner.stats(),
    close: () => inner.close(),
    async generate(request) {
      const onText = request.onText;
      if (!onText) return inner.generate(request);
      let chain = Promise.resolve();
      const result = await inner.generate({
        ...request,
        onText: (chunk) => {
          chain = chain.then(() => new Promise((resolve) => setTimeout(resolve, gapMs))).then(() => onText(chunk));
        },
      });
      await chain;
      return result;
    },
  };
}
