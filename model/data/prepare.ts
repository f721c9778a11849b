// `npm run data:prepare`: the three corpora → tokenized, shuffled train and validation shards.
// Every decision is a function of the document's identity and the seed (which documents are held
// out, which are kept by the mix, the order), so the same inputs give byte-identical shards.
import cliProgress from 'cli-progress';
import { BpeTokenizer } from '../tokenizer/bpe.js';
import { Rng } from '../rng.js';
import { CORPUS_NAMES, corpusDocuments, type CorpusDocument, type CorpusName } from './corpora.js';
import { DataError, writeDataset, type DatasetMeta, type SplitCounts } from './shards.js';

export interface PrepareOptions {
  tokenizerDir: string;
  outDir: string;
  seed: number;
  /** Share of each corpus's documents held out for validation (by a hash of the document id). */
  valFraction: number;
  /** Share of each corpus's training documents kept (e.g. poetry 0.3 balances Chinese and English). */
  mix: Partial<Record<CorpusName, number>>;
  corpora: CorpusName[];
  /** At most this many documents per corpus (quick runs, tests). */
  limit?: number;
  shardTokens?: number;
  progress?: boolean;
  /** Overrides the document source (tests); default: the installed corpora. */
  documents?: (name: CorpusName) => AsyncIterable<CorpusDocument>;
}

/** FNV-1a of a string, as a number in [0, 1): a stable coin for per-document decisions. */
export function hashUnit(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Final avalanche so that ids differing in the last character spread over [0, 1).
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) / 4294967296;
}

export interface PrepareReport {
  meta: DatasetMeta;
  seconds: number;
}

export async function prepareData(o: PrepareOptions): Promise<PrepareReport> {
  const t0 = performance.now();
  const tokenizer = await BpeTokenizer.load(o.tokenizerDir);
  const eos = tokenizer.eosId;
  const separator = eos !== undefined ? [eos] : tokenizer.encode('\n\n');
  const source = o.documents ?? ((name: CorpusName) => corpusDocuments(name, { limit: o.limit }));
  const trainDocs: Uint32Array[] = [];
  const valDocs = new Map<string, Uint32Array[]>();
  const corpora: DatasetMeta['corpora'] = {};
  const bar = o.progress
    ? new cliProgress.SingleBar({ format: 'tokenizing {corpus} | {docs} documents | {tokens} tokens | {rate} chars/s', hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(1, 0, { corpus: '', docs: 0, tokens: 0, rate: 0 });
  let chars = 0;
  for (const name of o.corpora) {
    const keep = o.mix[name] ?? 1;
    const zero = (): SplitCounts => ({ documents: 0, tokens: 0, characters: 0 });
    const counts = { train: zero(), val: zero(), keepFraction: keep };
    corpora[name] = counts;
    const val: Uint32Array[] = [];
    valDocs.set(name, val);
    let n = 0;
    for await (const doc of source(name)) {
      if (o.limit !== undefined && n >= o.limit) break;
      n++;
      const key = `${doc.source}:${doc.id}`;
      const isVal = hashUnit(`val:${key}`) < o.valFraction;
      if (!isVal && hashUnit(`mix:${o.seed}:${key}`) >= keep) continue;
      const ids = tokenizer.encode(doc.text);
      if (ids.length === 0) continue;
      const tokens = new Uint32Array(ids.length + separator.length);
      tokens.set(ids);
      tokens.set(separator, ids.length);
      const c = isVal ? counts.val : counts.train;
      c.documents++;
      c.tokens += tokens.length;
      c.characters += doc.text.length;
      chars += doc.text.length;
      (isVal ? val : trainDocs).push(tokens);
      if (n % 500 === 0) {
        const s = (performance.now() - t0) / 1000;
        bar?.update(0, { corpus: name, docs: n, tokens: counts.train.tokens + counts.val.tokens, rate: Math.round(chars / s) });
      }
    }
  }
  bar?.stop();
  if (trainDocs.length === 0) throw new DataError('no training documents: the corpora are empty or the mix keeps nothing');

  // Shuffle whole documents (a document stays contiguous: the model learns from coherent text).
  const rng = new Rng(o.seed);
  for (let i = trainDocs.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [trainDocs[i], trainDocs[j]] = [trainDocs[j], trainDocs[i]];
  }
  const concat = (docs: Uint32Array[]) => {
    const out = new Uint32Array(docs.reduce((s, d) => s + d.length, 0));
    let off = 0;
    for (const d of docs) {
      out.set(d, off);
      off += d.length;
    }
    return out;
  };
  const val = new Map<string, Uint32Array>();
  for (const [name, docs] of valDocs) if (docs.length) val.set(name, concat(docs));
  const meta = await writeDataset(o.outDir, {
    vocabSize: tokenizer.vocabSize,
    separator,
    seed: o.seed,
    train: concat(trainDocs),
    val,
    corpora,
    tokenizerDir: o.tokenizerDir,
    shardTokens: o.shardTokens,
  });
  return { meta, seconds: (performance.now() - t0) / 1000 };
}

/** The counts as a fixed-width table for the terminal and the README. */
export function formatCounts(meta: DatasetMeta): string {
  const rows = [['corpus', 'kept', 'train docs', 'train tokens', 'val docs', 'val tokens', 'chars/token']];
  let td = 0;
  let tt = 0;
  let vd = 0;
  let vt = 0;
  let ch = 0;
  const sep = meta.separator.length;
  for (const [name, c] of Object.entries(meta.corpora)) {
    rows.push([
      name, String(c.keepFraction), String(c.train.documents), String(c.train.tokens), String(c.val.documents), String(c.val.tokens),
      ((c.train.characters + c.val.characters) / Math.max(1, c.train.tokens + c.val.tokens - sep * (c.train.documents + c.val.documents))).toFixed(2),
    ]);
    td += c.train.documents;
    tt += c.train.tokens;
    vd += c.val.documents;
    vt += c.val.tokens;
    ch += c.train.characters + c.val.characters;
  }
  rows.push(['total', '', String(td), String(tt), String(vd), String(vt), (ch / Math.max(1, tt + vt - sep * (td + vd))).toFixed(2)]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

// Poetry is ~3x the English text in tokens: keeping 15 % of the poems gives about half Chinese, half English.
export const DEFAULT_MIX: Partial<Record<CorpusName, number>> = { brown: 1, 'nlp-corpus': 1, poetry: 0.15 };
export { CORPUS_NAMES };
