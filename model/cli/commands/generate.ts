// `npm run model -- generate`: one completion from a prompt, streamed to stdout (or one JSON
// object with --json). Runs the model in this process (no worker thread needed for one request).
import type { Command } from 'commander';
import { Batcher } from '../../inference/batcher.js';
import { Sequence, type SequenceResult } from '../../inference/sequence.js';
import { loadRuntime } from '../../inference/runtime.js';
import { collect, intArg, numArg, resolveModelDir } from './common.js';

interface GenerateOptions {
  model?: string;
  prompt?: string;
  maxTokens?: number;
  minTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  noRepeatNgram?: number;
  stop?: string[];
  seed?: number;
  json?: boolean;
  backend?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function register(program: Command): void {
  program
    .command('generate')
    .description('generate text from a prompt (streams to stdout)')
    .option('--model <dir>', 'model directory (default: model/shipped)')
    .option('--prompt <text>', 'the prompt (default: read stdin)')
    .option('--max-tokens <n>', 'maximum new tokens', intArg('--max-tokens', 1), 64)
    .option('--min-tokens <n>', 'minimum new tokens', intArg('--min-tokens', 0))
    .option('--temperature <t>', '0 = greedy', numArg('--temperature', 0, 100), 0.8)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off)', intArg('--top-k', 0))
    .option('--top-p <p>', 'nucleus sampling (1 = off)', numArg('--top-p', 0.000001, 1))
    .option('--repetition-penalty <r>', '> 1 discourages repeats', numArg('--repetition-penalty', 0.01, 10))
    .option('--no-repeat-ngram <n>', 'never repeat an n-gram of this size', intArg('--no-repeat-ngram', 0, 32))
    .option('--stop <text>', 'stop before this text (repeatable)', collect)
    .option('--seed <s>', 'random seed (same seed, same text)', intArg('--seed', 0))
    .option('--backend <name>', 'node | wasm | cpu (default: $TFJS_BACKEND or best available)')
    .option('--json', 'print one JSON object instead of streaming text')
    .action(async (o: GenerateOptions) => {
      const dir = resolveModelDir(o.model);
      const prompt = o.prompt ?? (await readStdin());
      const rt = await loadRuntime(dir, { backend: o.backend, warmUp: false });
      const t0 = performance.now();
      const seq = new Sequence(
        rt.tokenizer,
        rt.config,
        prompt,
        {
          maxNewTokens: o.maxTokens,
          minNewTokens: o.minTokens,
          temperature: o.temperature,
          topK: o.topK,
          topP: o.topP,
          repetitionPenalty: o.repetitionPenalty,
          noRepeatNgramSize: o.noRepeatNgram,
          stop: o.stop,
          seed: o.seed,
        },
        o.json ? undefined : (chunk) => process.stdout.write(chunk),
      );
      const batcher = new Batcher(rt.engine, 1);
      const result = await new Promise<SequenceResult>((resolve, reject) => {
        batcher.add({ id: 'cli', seq, onDone: resolve, onError: reject });
      });
      const ms = performance.now() - t0;
      rt.engine.dispose();
      if (o.json) {
        console.log(JSON.stringify({ ...result, seed: seq.settings.seed, latencyMs: Math.round(ms), backend: rt.info.backend }));
      } else {
        process.stdout.write('\n');
        console.error(`[${result.completionTokens} tokens, ${result.finishReason}, ${(ms / 1000).toFixed(2)} s, seed ${seq.settings.seed}, ${rt.info.backend}${result.truncatedTokens ? `, ${result.truncatedTokens} prompt tokens dropped` : ''}]`);
      }
    });
}
