// The tokenized data set `npm run data:prepare` writes and the trainer reads:
//   DIR/meta.json            counts, tokenizer, seed, shard list (human-readable)
//   DIR/train-000.bin …      the shuffled training documents, concatenated, little-endian uint16/uint32
//   DIR/val-<corpus>.bin     held-out documents, one file per corpus (per-corpus perplexity)
//   DIR/tokenizer/           a copy of the tokenizer files the ids refer to
// Raw token files keep loading instant and the format obvious (numpy.fromfile reads them).
import { copyFile, mkdir, readdir, readFile, writeFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';

export const DATASET_VERSION = 1;

export type TokenDtype = 'uint16' | 'uint32';
export type TokenArray = Uint16Array | Uint32Array;

export interface SplitCounts {
  documents: number;
  tokens: number;
  characters: number;
}

export interface DatasetMeta {
  version: number;
  vocabSize: number;
  dtype: TokenDtype;
  /** Token ids appended after every document (the document separator). */
  separator: number[];
  seed: number;
  createdAt: string;
  /** Per corpus: what went into train and validation. */
  corpora: Record<string, { train: SplitCounts; val: SplitCounts; keepFraction: number }>;
  train: Array<{ file: string; tokens: number }>;
  val: Array<{ source: string; file: string; tokens: number }>;
  /** The tokenizer the ids belong to, relative to the data set folder. */
  tokenizerDir: string;
}

/** Bad, missing or empty training data: the message says which file and what to do. */
export class DataError extends Error {
  override name = 'DataError';
}

export function dtypeFor(vocabSize: number): TokenDtype {
  return vocabSize <= 65536 ? 'uint16' : 'uint32';
}

export function toTokenArray(ids: ArrayLike<number>, dtype: TokenDtype): TokenArray {
  return dtype === 'uint16' ? Uint16Array.from(ids) : Uint32Array.from(ids);
}

/** Writes a token file atomically (temp file + rename: a crash never leaves half a shard). */
export async function writeTokenFile(file: string, tokens: TokenArray): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength));
  await rename(tmp, file);
}

export async function readTokenFile(file: string, dtype: TokenDtype, vocabSize?: number): Promise<TokenArray> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    throw new DataError(`cannot read token file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const width = dtype === 'uint16' ? 2 : 4;
  if (buf.length % width !== 0) throw new DataError(`${file}: ${buf.length} bytes is not a whole number of ${dtype} tokens (truncated?)`);
  // Copy into an aligned buffer (Buffer slices may start at odd offsets).
  const aligned = new Uint8Array(buf.length);
  aligned.set(buf);
  const tokens = dtype === 'uint16' ? new Uint16Array(aligned.buffer) : new Uint32Array(aligned.buffer);
  if (vocabSize !== undefined) {
    for (let i = 0; i < tokens.length; i++) {
      if (tokens[i] >= vocabSize) throw new DataError(`${file}: token ${tokens[i]} at position ${i} is outside the vocabulary (${vocabSize})`);
    }
  }
  return tokens;
}

export interface Dataset {
  dir: string;
  meta: DatasetMeta;
  /** All training shards concatenated, in order. */
  train: TokenArray;
  /** Validation tokens per corpus. */
  val: Map<string, TokenArray>;
  /** Absolute path of the tokenizer folder. */
  tokenizerDir: string;
}

/** Reads meta.json and every shard; errors name the file and say what is wrong. */
export async function loadDataset(dir: string): Promise<Dataset> {
  const metaFile = path.join(dir, 'meta.json');
  let raw: string;
  try {
    raw = await readFile(metaFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataError(
      code === 'ENOENT'
        ? `${metaFile} not found: prepare the data first with \`npm run data:prepare -- --out ${dir}\``
        : `cannot read ${metaFile}: ${code ?? String(err)}`,
    );
  }
  let meta: DatasetMeta;
  try {
    meta = JSON.parse(raw) as DatasetMeta;
  } catch (err) {
    throw new DataError(`${metaFile} is not valid JSON: ${(err as Error).message}`);
  }
  if (meta.version !== DATASET_VERSION || !Array.isArray(meta.train) || !Array.isArray(meta.val) || !(meta.vocabSize > 0)) {
    throw new DataError(`${metaFile}: not a data set of version ${DATASET_VERSION} (re-run npm run data:prepare)`);
  }
  const parts: TokenArray[] = [];
  for (const s of meta.train) parts.push(await readTokenFile(path.join(dir, s.file), meta.dtype, meta.vocabSize));
  const total = parts.reduce((n, p) => n + p.length, 0);
  if (total === 0) throw new DataError(`${dir}: the training split is empty (no tokens): check the corpora and the mix`);
  const train = meta.dtype === 'uint16' ? new Uint16Array(total) : new Uint32Array(total);
  let off = 0;
  for (const p of parts) {
    train.set(p, off);
    off += p.length;
  }
  const val = new Map<string, TokenArray>();
  for (const v of meta.val) val.set(v.source, await readTokenFile(path.join(dir, v.file), meta.dtype, meta.vocabSize));
  const tokenizerDir = path.resolve(dir, meta.tokenizerDir ?? 'tokenizer');
  try {
    await stat(tokenizerDir);
  } catch {
    throw new DataError(`${dir}: tokenizer folder ${tokenizerDir} is missing`);
  }
  return { dir, meta, train, val, tokenizerDir };
}

export interface WriteDatasetInput {
  vocabSize: number;
  separator: number[];
  seed: number;
  /** Training tokens in their final (already shuffled) order. */
  train: ArrayLike<number>;
  /** Validation tokens per corpus. */
  val: Map<string, ArrayLike<number>>;
  corpora: DatasetMeta['corpora'];
  /** Folder whose tokenizer files are copied into DIR/tokenizer (none copied when absent). */
  tokenizerDir?: string;
  /** Tokens per training shard file. */
  shardTokens?: number;
}

/** Writes a data set folder (shards, meta.json, tokenizer copy); returns its meta. */
export async function writeDataset(dir: string, input: WriteDatasetInput): Promise<DatasetMeta> {
  await mkdir(path.join(dir, 'tokenizer'), { recursive: true });
  const dtype = dtypeFor(input.vocabSize);
  const shardTokens = input.shardTokens ?? 4_000_000;
  const train: DatasetMeta['train'] = [];
  const all = toTokenArray(input.train, dtype);
  for (let off = 0, i = 0; off < all.length || i === 0; off += shardTokens, i++) {
    const file = `train-${String(i).padStart(3, '0')}.bin`;
    const part = all.subarray(off, Math.min(all.length, off + shardTokens));
    await writeTokenFile(path.join(dir, file), part);
    train.push({ file, tokens: part.length });
    if (all.length === 0) break;
  }
  const val: DatasetMeta['val'] = [];
  for (const [source, tokens] of input.val) {
    const file = `val-${source}.bin`;
    const arr = toTokenArray(tokens, dtype);
    await writeTokenFile(path.join(dir, file), arr);
    val.push({ source, file, tokens: arr.length });
  }
  if (input.tokenizerDir) {
    for (const name of await readdir(input.tokenizerDir)) {
      if (/\.(json|txt|bpe)$/.test(name)) await copyFile(path.join(input.tokenizerDir, name), path.join(dir, 'tokenizer', name));
    }
  }
  const meta: DatasetMeta = {
    version: DATASET_VERSION,
    vocabSize: input.vocabSize,
    dtype,
    separator: input.separator,
    seed: input.seed,
    createdAt: new Date().toISOString(),
    corpora: input.corpora,
    train,
    val,
    tokenizerDir: 'tokenizer',
  };
  await writeFile(path.join(dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
  return meta;
}
