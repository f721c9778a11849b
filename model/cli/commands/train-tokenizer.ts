// `npm run model -- train-tokenizer`: learn a nemo-bpe vocabulary from corpus files and/or the
// built-in corpora, write vocab.json + merges.txt + tokenizer_config.json, and report compression
// (characters per token) per source on held-out documents.
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BpeTokenizer } from '../../tokenizer/bpe.js';
import { resolveCharsets, CHARSETS } from '../../tokenizer/charsets.js';
import { builtinDocuments, fileDocuments, type TextDocument } from '../../tokenizer/corpus-files.js';
import { writeTokenizerFiles } from '../../tokenizer/files.js';
import { formatCompressionTable, measureCompression, type CompressionRow } from '../../tokenizer/measure.js';
import { DEFAULT_SPECIAL_TOKENS, trainBpe, UnitCounter, type TrainStats } from '../../tokenizer/train.js';
import type { CjkMode } from '../../tokenizer/pretokenize.js';

export interface TrainTokenizerOptions {
  corpus: string[];
  builtin: string[];
  vocabSize: number;
  out: string;
  cjk: CjkMode;
  requireCharset: string[];
  maxAlphabet?: number;
  minCharFrequency: number;
  characterCoverage: number;
  specialTokens: string[];
  /** Every Nth document is held out of training and used for the compression report (0 = none). */
  holdoutEvery: number;
  /** Stop reading a source after this many characters (0 = no limit). */
  maxCharsPerSource: number;
  progress: boolean;
}

export interface TrainTokenizerReport {
  out: string;
  vocabSize: number;
  stats: TrainStats;
  trainCharacters: number;
  trainDocuments: number;
  seconds: { count: number; merge: number };
  compression: CompressionRow[];
}

async function* allDocuments(o: TrainTokenizerOptions): AsyncGenerator<TextDocument> {
  for (const name of o.builtin) yield* builtinDocuments(name);
  for (const file of o.corpus) yield* fileDocuments(file);
}

/** The whole job, callable from tests and scripts as well as the CLI. */
export async function trainTokenizer(o: TrainTokenizerOptions, log: (line: string) => void = () => {}): Promise<TrainTokenizerReport> {
  if (o.corpus.length === 0 && o.builtin.length === 0) throw new Error('no corpus: give --corpus FILE... and/or --builtin NAME...');
  const requiredChars = resolveCharsets(o.requireCharset);
  const counter = new UnitCounter(o.cjk);
  const heldOut: TextDocument[] = [];
  const perSource = new Map<string, { seen: number; chars: number }>();
  const t0 = performance.now();
  const reading = o.progress ? new cliProgress.SingleBar({ format: 'reading  {source} | {docs} documents | {chars} M chars', hideCursor: true }, cliProgress.Presets.shades_classic) : null;
  reading?.start(1, 0, { source: '', docs: 0, chars: '0.0' });
  let docs = 0;
  for await (const doc of allDocuments(o)) {
    const s = perSource.get(doc.source) ?? { seen: 0, chars: 0 };
    perSource.set(doc.source, s);
    s.seen++;
    if (o.holdoutEvery > 0 && s.seen % o.holdoutEvery === 0) {
      heldOut.push(doc);
      continue;
    }
    if (o.maxCharsPerSource > 0 && s.chars >= o.maxCharsPerSource) continue;
    s.chars += doc.text.length;
    counter.add(doc.text);
    if (++docs % 2000 === 0) reading?.update(0, { source: doc.source, docs, chars: (counter.characters / 1e6).toFixed(1) });
  }
  reading?.update(1, { source: 'done', docs, chars: (counter.characters / 1e6).toFixed(1) });
  reading?.stop();
  if (counter.characters === 0) throw new Error('the corpus is empty: no training text was read');
  const t1 = performance.now();
  log(`read ${counter.documents} documents, ${counter.characters} characters, ${counter.counts.size} distinct units in ${((t1 - t0) / 1000).toFixed(1)} s`);

  const merging = o.progress ? new cliProgress.SingleBar({ format: 'merging  [{bar}] {value}/{total} merges | ETA {eta_formatted}', hideCursor: true }, cliProgress.Presets.shades_classic) : null;
  let started = false;
  const result = trainBpe(counter, {
    vocabSize: o.vocabSize,
    specialTokens: o.specialTokens,
    minCharFrequency: o.minCharFrequency,
    characterCoverage: o.characterCoverage,
    requiredChars,
    ...(o.maxAlphabet !== undefined ? { maxAlphabet: o.maxAlphabet } : {}),
    onProgress: (done, total) => {
      if (!merging) return;
      if (!started) {
        merging.start(total, 0);
        started = true;
      }
      if (done % 50 === 0 || done === total) merging.update(done);
    },
  });
  merging?.stop();
  const t2 = performance.now();
  await mkdir(o.out, { recursive: true });
  await writeTokenizerFiles(o.out, result);
  const tokenizer = await BpeTokenizer.load(o.out);
  const compression = measureCompression(tokenizer, heldOut);
  const report: TrainTokenizerReport = {
    out: path.relative(process.cwd(), o.out) || '.',
    vocabSize: tokenizer.vocabSize,
    stats: result.stats,
    trainCharacters: counter.characters,
    trainDocuments: counter.documents,
    seconds: { count: Number(((t1 - t0) / 1000).toFixed(1)), merge: Number(((t2 - t1) / 1000).toFixed(1)) },
    compression,
  };
  log(`vocabulary ${tokenizer.vocabSize}: ${result.stats.alphabet} base chars (${result.stats.hanInAlphabet} Han), ${result.stats.merges} merges, char coverage ${(result.stats.coverage * 100).toFixed(3)} %, merged in ${report.seconds.merge} s`);
  if (compression.length) log(`held-out compression (every ${o.holdoutEvery}th document):\n${formatCompressionTable(compression)}`);
  return report;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function fraction(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError('expected a number in (0, 1]');
  return n;
}

function list(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];
}

export function register(program: Command): void {
  program
    .command('train-tokenizer')
    .description('learn a nemo-bpe vocabulary (vocab.json, merges.txt, tokenizer_config.json) from corpora')
    .option('--corpus <files...>', 'corpus files: plain text (one document per paragraph) or JSONL with a "text" field', [])
    .option('--builtin <names>', 'built-in corpora, comma-separated: brown, nlp-corpus, poetry', list, [])
    .requiredOption('--out <dir>', 'output folder')
    .option('--vocab-size <n>', 'vocabulary size (special + 256 byte tokens + base chars + merges)', positiveInt, 8000)
    .addOption(new Option('--cjk <mode>', 'Han characters: each its own unit, or runs merged by BPE').choices(['char', 'run']).default('char'))
    .option('--require-charset <names>', `charsets always in the alphabet, comma-separated (${Object.keys(CHARSETS).join(', ')})`, list, [])
    .option('--max-alphabet <n>', 'most base characters (default: half the vocabulary after specials and bytes)', positiveInt)
    .option('--min-char-frequency <n>', 'rarer characters are left to byte fallback', positiveInt, 2)
    .option('--character-coverage <f>', 'stop adding base characters once they cover this fraction of the text', fraction, 0.9999)
    .option('--special-tokens <tokens>', 'special tokens, comma-separated', list)
    .option('--holdout-every <n>', 'hold out every Nth document per source for the compression report (0 = none)', nonNegativeInt, 20)
    .option('--max-chars-per-source <n>', 'read at most this many training characters per source (0 = all)', nonNegativeInt, 0)
    .option('--json', 'print the report as JSON')
    .option('--no-progress', 'no progress bars')
    .action(async (opts: Record<string, unknown>) => {
      const json = Boolean(opts.json);
      const report = await trainTokenizer(
        {
          corpus: (opts.corpus as string[]).map((f) => path.resolve(f)),
          builtin: opts.builtin as string[],
          vocabSize: opts.vocabSize as number,
          out: path.resolve(opts.out as string),
          cjk: opts.cjk as CjkMode,
          requireCharset: opts.requireCharset as string[],
          ...(opts.maxAlphabet !== undefined ? { maxAlphabet: opts.maxAlphabet as number } : {}),
          minCharFrequency: opts.minCharFrequency as number,
          characterCoverage: opts.characterCoverage as number,
          specialTokens: (opts.specialTokens as string[] | undefined) ?? DEFAULT_SPECIAL_TOKENS,
          holdoutEvery: opts.holdoutEvery as number,
          maxCharsPerSource: opts.maxCharsPerSource as number,
          progress: Boolean(opts.progress) && !json && process.stderr.isTTY === true,
        },
        json ? () => {} : (line) => console.log(line),
      );
      if (json) console.log(JSON.stringify(report, null, 2));
      await writeFile(path.join(path.resolve(opts.out as string), 'tokenizer-training-report.json'), `${JSON.stringify(report, null, 2)}\n`);
    });
}
