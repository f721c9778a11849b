// 歇后语 from the npm package cnchar-xhy (MIT): `[前半句, 后半句]` pairs, as riddle exchanges.
import { createRequire } from 'node:module';
import { DialogueDataError, type SourceConversation } from './conversation.js';
import { pick } from './templates.js';

const require = createRequire(import.meta.url);

/** The package's pairs; `pairs` overrides them (tests). */
export function loadXiehouyu(): [string, string][] {
  let dict: unknown;
  try {
    dict = (require('cnchar-xhy') as { dict?: { array?: unknown } }).dict?.array;
  } catch (err) {
    throw new DialogueDataError(`cannot load cnchar-xhy (a dev dependency: run npm ci): ${(err as Error).message}`);
  }
  if (!Array.isArray(dict)) throw new DialogueDataError('cnchar-xhy: dict.array is not a list of pairs');
  return dict.filter((p): p is [string, string] => Array.isArray(p) && typeof p[0] === 'string' && typeof p[1] === 'string');
}

const ASK = [(a: string) => `猜个歇后语：${a}——？`, (a: string) => `“${a}”的下一句是什么？`, (a: string) => `歇后语“${a}”，后半句是什么？`];

export function* xiehouyuConversations(pairs: [string, string][], seed: number): Generator<SourceConversation> {
  for (const [i, [a, b]] of pairs.entries()) {
    const key = `xiehouyu:${i}`;
    const ask = pick(ASK, key, seed);
    // The first phrasing is a riddle: the answer repeats the whole saying, as people say it.
    const answer = ask === ASK[0] ? `${a}——${b}` : b;
    yield { messages: [{ role: 'user', content: ask(a) }, { role: 'assistant', content: answer }], source: 'xiehouyu', lang: 'zh', group: key };
  }
}
