// CC-CEDICT as packaged by @tykok/cedict-dictionary (CC BY-SA 4.0): `{simplified, pinyin, english[]}`
// entries, as "X是什么意思？" (asked in Chinese) and "How do you say X in Chinese?" (asked in English)
// exchanges. Most of the 122k entries are rare words; the builder ranks words by how often they occur
// in the Chinese dialogue data and keeps the most used ones.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DialogueDataError, type SourceConversation } from './conversation.js';
import { pick } from './templates.js';

export interface CedictEntry {
  simplified: string;
  english: string[];
}

export async function loadCedict(file?: string): Promise<CedictEntry[]> {
  let f = file;
  try {
    f ??= path.join(path.dirname(createRequire(import.meta.url).resolve('@tykok/cedict-dictionary/package.json')), 'data', 'cedict.json');
    const raw: unknown = JSON.parse(await readFile(f, 'utf8'));
    if (!Array.isArray(raw)) throw new Error('expected an array of entries');
    return raw.filter((e: unknown): e is CedictEntry => {
      const x = e as Partial<CedictEntry>;
      return typeof x.simplified === 'string' && Array.isArray(x.english) && x.english.every((g) => typeof g === 'string');
    });
  } catch (err) {
    throw new DialogueDataError(`cannot read CC-CEDICT (${f ?? '@tykok/cedict-dictionary, a dev dependency: run npm ci'}): ${(err as Error).message}`);
  }
}

// Glosses that are cross-references or grammar notes, not meanings a chatter asks for.
const NOT_A_MEANING = /^(variant of|old variant|see |surname |abbr\.|CL:|also written|also pr\.|used in|erhua variant|\(old\)|\(archaic\)|\(literary\)|\(dialect\)|\(slang\)|\(vulgar\)|\(Tw\))/i;

/** Usable glosses of an entry: meanings only, without classifier notes and parenthesised asides. */
export function cleanGlosses(english: string[]): string[] {
  return english
    .filter((g) => !NOT_A_MEANING.test(g))
    .map((g) => g.replace(/\s*\([^)]*\)/g, '').trim())
    // Cross-references left inside a gloss ("CL:个[ge4]", "瞭|了[liao3]") are for dictionary readers.
    .filter((g) => g !== '' && g.length <= 40 && !/[\u3400-\u9fff|[\]]/.test(g));
}

const ASK_MEANING = [(w: string) => `${w}是什么意思？`, (w: string) => `“${w}”是什么意思？`, (w: string) => `“${w}”用英语怎么说？`];
const ASK_WORD = [(g: string) => `How do you say "${g}" in Chinese?`, (g: string) => `What is the Chinese word for "${g}"?`];

/**
 * Dictionary exchanges for `words` (most used first): one meaning question per word, and one
 * "how do you say" question per English gloss (each gloss for its most used word only).
 */
export function* cedictConversations(entries: CedictEntry[], words: string[], seed: number): Generator<SourceConversation> {
  const byWord = new Map<string, string[]>();
  for (const e of entries) {
    const glosses = cleanGlosses(e.english);
    if (glosses.length > 0 && !byWord.has(e.simplified)) byWord.set(e.simplified, glosses);
  }
  const glossSeen = new Set<string>();
  for (const w of words) {
    const glosses = byWord.get(w);
    if (!glosses) continue;
    const key = `cedict:${w}`;
    const meaning = glosses.slice(0, 2).join('; ');
    yield {
      messages: [{ role: 'user', content: pick(ASK_MEANING, key, seed)(w) }, { role: 'assistant', content: `“${w}”的意思是 ${meaning}。` }],
      source: 'cedict-zh-en',
      lang: 'mixed',
      group: key,
    };
    // Asked the other way round, a gloss must be a plain word or phrase: its first sense, at most
    // three words, not a name (names are asked about in Chinese, not looked up from English).
    const g = (glosses[0] as string).split(';')[0]?.trim() ?? '';
    if (g === '' || g.split(' ').length > 3 || /^[A-Z]/.test(g) || glossSeen.has(g.toLowerCase())) continue;
    glossSeen.add(g.toLowerCase());
    yield {
      messages: [{ role: 'user', content: pick(ASK_WORD, key, seed)(g) }, { role: 'assistant', content: `"${g}" in Chinese is ${w}.` }],
      source: 'cedict-en-zh',
      lang: 'mixed',
      group: `${key}:en`,
    };
  }
}

/** Words (2–4 Chinese characters) by how often they occur in `texts`, most used first. */
export function rankWords(texts: Iterable<string>, dictionary: Set<string>, minCount = 2): string[] {
  const counts = new Map<string, number>();
  for (const t of texts) {
    for (const run of t.match(/[\u3400-\u9fff]{2,}/g) ?? []) {
      for (let n = 2; n <= 4; n++) {
        for (let i = 0; i + n <= run.length; i++) {
          const w = run.slice(i, i + n);
          if (dictionary.has(w)) counts.set(w, (counts.get(w) ?? 0) + 1);
        }
      }
    }
  }
  return [...counts.entries()]
    .filter(([, c]) => c >= minCount)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([w]) => w);
}
