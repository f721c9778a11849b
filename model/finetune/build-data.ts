// `npm run data:finetune`: writes the fine-tuning benchmark's four tasks as JSONL
// (<out>/<task>/{train,valid,test}.jsonl), deterministically from the installed corpora.
import { Command, InvalidArgumentError } from 'commander';
import path from 'node:path';
import { buildBenchData, DEFAULT_BENCH_DATA, writeBenchData } from './bench-data.js';

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};

const program = new Command()
  .name('npm run data:finetune --')
  .description('build the fine-tuning benchmark tasks (poem dynasty, Brown genre, next sentence, same poem, next couplet) as JSONL')
  .option('--out <dir>', 'output folder', 'data/finetune')
  .option('--train <n>', 'training examples per task', int('--train'), DEFAULT_BENCH_DATA.train)
  .option('--valid <n>', 'validation examples per task', int('--valid'), DEFAULT_BENCH_DATA.valid)
  .option('--test <n>', 'test examples per task', int('--test'), DEFAULT_BENCH_DATA.test)
  .option('--seed <n>', 'seed of every choice made', int('--seed'), DEFAULT_BENCH_DATA.seed)
  .action(async (o: { out: string; train: number; valid: number; test: number; seed: number }) => {
    const data = await buildBenchData({ train: o.train, valid: o.valid, test: o.test, seed: o.seed });
    const files = await writeBenchData(path.resolve(o.out), data);
    for (const [task, splits] of Object.entries(files)) {
      console.log(`${task.padEnd(16)} ${path.dirname(splits.train)}  train ${o.train}, valid ${o.valid}, test ${o.test}`);
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
