// Poems from the npm package chinese-poetry (MIT) as recitation requests: "背一首《静夜思》" → the poem.
// The poems are those of the two anthologies every Chinese reader knows (唐诗三百首 and 千家诗, in
// the package's `dist/mengxue/`), so the requests are the ones chatters make. One poem per title, so
// a request has one right answer (the first anthology's reading of a poem both have); poems of a series (其一, 其二) are left out for the same reason.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DialogueDataError, normalizeText, type SourceConversation } from './conversation.js';
import { pick } from './templates.js';

export const ANTHOLOGIES = ['tangshisanbaishou.json', 'qianjiashi.json'];

export interface Poem {
  title: string;
  author: string;
  text: string;
  id: string;
}

/** The poems of one anthology file (`{content: [{type, content: [{chapter, subchapter, author, paragraphs}]}]}`). */
export function parseAnthology(raw: unknown, file: string): Poem[] {
  const sections = (raw as { content?: unknown } | null)?.content;
  if (!Array.isArray(sections)) throw new DialogueDataError(`${file}: expected {content: [sections]}`);
  const out: Poem[] = [];
  sections.forEach((section: unknown, s) => {
    const poems = (section as { content?: unknown }).content;
    if (!Array.isArray(poems)) throw new DialogueDataError(`${file}: section ${s} has no content list`);
    poems.forEach((p: unknown, i) => {
      const { chapter, subchapter, author, paragraphs } = p as { chapter?: unknown; subchapter?: unknown; author?: unknown; paragraphs?: unknown };
      if (typeof chapter !== 'string' || typeof author !== 'string' || !Array.isArray(paragraphs)) return;
      if (typeof subchapter === 'string' && subchapter !== '' && subchapter !== chapter) return;
      // Editorial notes on variant readings, "(任一作：待)", are not part of the poem (some span two paragraphs).
      const text = paragraphs
        .filter((l): l is string => typeof l === 'string')
        .join('')
        .replace(/[（(][^（()）]*[）)]/g, '')
        .trim();
      // 千家诗 writes the dynasty before the name: "（唐）孟浩然".
      out.push({ title: chapter.trim(), author: author.replace(/^[（(][^）)]*[）)]/, '').trim(), text, id: `${path.basename(file, '.json')}:${s}:${i}` });
    });
  });
  return out;
}

const ASK = [(t: string) => `背一首《${t}》`, (t: string) => `你会背《${t}》吗？`, (t: string, a: string) => `${a}的《${t}》怎么背？`];

/** Recitation exchanges from the anthologies in `dir` (default: chinese-poetry's dist/mengxue). */
export async function* poemConversations(o: { seed: number; dir?: string }): AsyncGenerator<SourceConversation> {
  let dir = o.dir;
  const byTitle = new Map<string, Poem | null>();
  for (const name of ANTHOLOGIES) {
    let raw: unknown;
    try {
      dir ??= path.join(path.dirname(createRequire(import.meta.url).resolve('chinese-poetry/package.json')), 'dist', 'mengxue');
      raw = JSON.parse(await readFile(path.join(dir, name), 'utf8'));
    } catch (err) {
      throw new DialogueDataError(`cannot read ${name} of chinese-poetry (${dir ?? 'a dev dependency: run npm ci'}): ${(err as Error).message}`);
    }
    for (const p of parseAnthology(raw, path.join(dir, name))) {
      const title = normalizeText(p.title);
      if (/其[一二三四五六七八九十]|[一二三四五六七八九十]首/.test(title)) continue;
      const poem = { ...p, title, author: normalizeText(p.author) };
      const prev = byTitle.get(title);
      // A title by one poet in both anthologies is one poem (the anthologies differ in a character or
      // a comma: 唐诗三百首's reading is kept); a title two poets share has no single answer.
      if (prev === undefined) byTitle.set(title, poem);
      else if (prev && prev.author !== poem.author) byTitle.set(title, null);
    }
  }
  for (const [title, poem] of byTitle) {
    if (!poem || poem.text === '') continue;
    const key = `poem:${poem.id}`;
    const answer = `《${title}》${poem.author}：${poem.text}`;
    // The plain request always, and one other phrasing: both in the same split (one group).
    for (const ask of [ASK[0] as (typeof ASK)[number], pick(ASK.slice(1), key, o.seed)]) {
      yield { messages: [{ role: 'user', content: ask(title, poem.author) }, { role: 'assistant', content: answer }], source: 'poems', lang: 'zh', group: key };
    }
  }
}
