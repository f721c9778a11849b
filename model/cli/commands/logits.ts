// `npm run model -- logits --ids 1,2,3 [--token-types 5,5,6]`: next-token logits at every position, as a JSON array of
// arrays, computed by the reference forward pass (gpt.ts). For checking against other
// implementations (e.g. Hugging Face transformers on the same checkpoint).
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../backend.js';
import { loadCheckpoint } from '../../io/checkpoint.js';
import { logits } from '../../nn/gpt.js';
import { resolveModelDir } from './common.js';

const idList = (flag: string) => (v: string): number[] => {
  const ids = v.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) throw new InvalidArgumentError(`${flag} must be comma-separated token ids, e.g. 1,2,3`);
  return ids;
};

export function register(program: Command): void {
  program
    .command('logits')
    .description('print the logits of every position for the given token ids (JSON)')
    .option('--model <dir>', 'model directory (default: model/shipped)')
    .requiredOption('--ids <list>', 'comma-separated token ids', idList('--ids'))
    .option('--token-types <list>', 'comma-separated token types, one per id (CDial-GPT speaker ids)', idList('--token-types'))
    .option('--backend <name>', 'node | wasm | cpu')
    .action(async (o: { model?: string; ids: number[]; tokenTypes?: number[]; backend?: string }) => {
      if (o.tokenTypes && o.tokenTypes.length !== o.ids.length) {
        throw new InvalidArgumentError(`--token-types has ${o.tokenTypes.length} entries, --ids ${o.ids.length}`);
      }
      await initBackend(o.backend);
      const { params } = await loadCheckpoint(resolveModelDir(o.model));
      const out = tf.tidy(() => logits(params, [o.ids], o.tokenTypes ? { tokenTypes: [o.tokenTypes] } : {}));
      const rows = (await out.array())[0];
      out.dispose();
      console.log(JSON.stringify(rows));
    });
}
