// chatterbot-corpus (gunthercox, BSD-3-Clause): YAML files of short conversations by topic
// (`conversations:` = lists of alternating turns, the first one the user's). `chinese/humor.yml` is
// machine-translated nonsense and is left out; repeated conversations (english/tech_support.yml
// repeats ten pairs ~100 times) are removed here and again by the builder's de-duplication.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { load } from 'js-yaml';
import { DialogueDataError, type SourceConversation } from './conversation.js';

/** Files left out, relative to the corpus folder. */
export const CHATTERBOT_EXCLUDED = new Set(['chinese/humor.yml']);

export function parseChatterbot(text: string, file: string): string[][] {
  let doc: unknown;
  try {
    doc = load(text);
  } catch (err) {
    throw new DialogueDataError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  const conversations = (doc as { conversations?: unknown } | null)?.conversations;
  if (!Array.isArray(conversations)) throw new DialogueDataError(`${file}: no "conversations:" list`);
  const seen = new Set<string>();
  const out: string[][] = [];
  for (const c of conversations) {
    // YAML reads a bare turn such as `42` or `yes` as a number or boolean: it is still text.
    if (!Array.isArray(c) || c.length < 2) continue;
    const turns = c.map((t: unknown) => (t === null || t === undefined ? '' : String(t)));
    const key = JSON.stringify(turns);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(turns);
  }
  return out;
}

export async function* chatterbotConversations(dir: string, lang: 'zh' | 'en'): AsyncGenerator<SourceConversation> {
  const folder = lang === 'zh' ? 'chinese' : 'english';
  let files: string[];
  try {
    files = (await readdir(path.join(dir, folder))).filter((f) => f.endsWith('.yml')).sort();
  } catch (err) {
    throw new DialogueDataError(`cannot read ${path.join(dir, folder)}: ${(err as Error).message}`);
  }
  const source = `chatterbot-${lang}`;
  for (const f of files) {
    if (CHATTERBOT_EXCLUDED.has(`${folder}/${f}`)) continue;
    const file = path.join(dir, folder, f);
    const conversations = parseChatterbot(await readFile(file, 'utf8'), file);
    for (const [i, turns] of conversations.entries()) {
      yield {
        messages: turns.map((content, j) => ({ role: j % 2 === 0 ? 'user' : 'assistant', content })),
        source,
        lang,
        group: `${source}:${f}:${i}`,
      };
    }
  }
}
