// `npm run data:dialogue`: builds the chat fine-tuning data (JSONL, one conversation per line) from
// the shared dialogue corpora and the npm-installed word lists, with a NOTICE and per-source counts.
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpeTokenizer } from '../../tokenizer/bpe.js';
import { buildDialogueData, DEFAULT_CAPS, statsTable, writeDialogueData } from './build.js';
import { loadCedict } from './cedict.js';
import { CHITCHAT_PERSONAS, type ChitchatPersona } from './microsoft-chitchat.js';
import { defaultReaders } from './sources.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return n;
};
const share = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n < 0.5)) throw new InvalidArgumentError('--valid-share must be a number between 0 and 0.5, e.g. 0.03');
  return n;
};
const cap = (v: string, prev: Record<string, number>) => {
  const m = /^([\w-]+)=(\d+)$/.exec(v);
  if (!m) throw new InvalidArgumentError(`--cap takes SOURCE=N, e.g. tatoeba=3000 (got "${v}")`);
  return { ...prev, [m[1] as string]: Number(m[2]) };
};

interface Options {
  source: string;
  out: string;
  tokenizer: string;
  seed: number;
  validShare: number;
  persona: string;
  personaSystem: boolean;
  maxPairTokens: number;
  maxTokens: number;
  cap: Record<string, number>;
  progress: boolean;
}

const program = new Command()
  .name('npm run data:dialogue --')
  .description('build chat fine-tuning data (train.jsonl, valid.jsonl, NOTICE, stats.json) from the dialogue corpora')
  .option('--source <dir>', 'the shared dialogue corpora ($NEMO_DIALOGUE_DIR, else ../shared/data/dialogue)', process.env.NEMO_DIALOGUE_DIR ?? path.resolve(REPO_ROOT, '../shared/data/dialogue'))
  .option('--out <dir>', 'output folder', 'data/dialogue')
  .option('--tokenizer <dir>', 'tokenizer whose token counts bound the turns', path.join(REPO_ROOT, 'model/shipped'))
  .option('--seed <n>', 'seed of every choice (split, sampling, phrasing, order)', int('--seed'), 1)
  .option('--valid-share <x>', "share of each source's conversations held out", share, 0.03)
  .option('--persona <name>', `chit-chat personality (${CHITCHAT_PERSONAS.join(', ')})`, 'friendly')
  .option('--persona-system', "put Persona-Chat's bot persona as a system line", false)
  .option('--max-pair-tokens <n>', 'a user turn and its reply must fit in this many tokens', int('--max-pair-tokens'), 120)
  .option('--max-tokens <n>', 'a conversation must fit in this many tokens (the model context)', int('--max-tokens'), 128)
  .option('--cap <source=n>', 'at most n conversations from a source (repeatable)', cap, { ...DEFAULT_CAPS })
  .option('--no-progress', 'no progress bar')
  .action(async (o: Options) => {
    if (!(CHITCHAT_PERSONAS as readonly string[]).includes(o.persona)) throw new InvalidArgumentError(`--persona must be one of ${CHITCHAT_PERSONAS.join(', ')}`);
    if (!existsSync(o.source)) throw new Error(`dialogue corpora not found at ${o.source} (give --source DIR)`);
    const tokenizer = await BpeTokenizer.load(o.tokenizer);
    const readers = defaultReaders({ dir: o.source, seed: o.seed, persona: o.persona as ChitchatPersona, personaSystem: o.personaSystem });
    const bar = o.progress && process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'reading {bar} {value}/{total} sources | {name}' }, cliProgress.Presets.shades_classic) : undefined;
    bar?.start(readers.length + 1, 0, { name: readers[0]?.name ?? '' });
    const t0 = performance.now();
    const result = await buildDialogueData({
      readers,
      cedict: () => loadCedict(),
      countTokens: (t) => tokenizer.encode(t).length,
      seed: o.seed,
      validShare: o.validShare,
      caps: o.cap,
      maxPairTokens: o.maxPairTokens,
      maxTokens: o.maxTokens,
      onSource: (name, n) => {
        if (bar) bar.increment(1, { name });
        else console.error(`read ${name}: ${n} conversations`);
      },
    });
    bar?.stop();
    const files = await writeDialogueData(path.resolve(o.out), result);
    console.log(statsTable(result.stats));
    console.log(`\nwrote ${result.train.length} train and ${result.valid.length} valid conversations to ${path.dirname(files.train)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
