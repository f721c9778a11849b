// Tatoeba sentence pairs (tatoeba.org, CC BY 2.0 FR), one `English<TAB>Chinese<TAB>attribution` per
// line. Each pair becomes a translation request in one direction (chosen by the seed): English →
// Chinese asked in English, Chinese → English asked in Chinese. The attribution travels with the record.
import { DialogueDataError, readSourceText, type SourceConversation } from './conversation.js';
import { pick } from './templates.js';

export interface TatoebaPair {
  en: string;
  zh: string;
  attribution: string;
  line: number;
}

export function parseTatoeba(text: string, file: string): TatoebaPair[] {
  const out: TatoebaPair[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const cols = line.split('\t');
    if (cols.length < 3 || !cols[2]?.includes('tatoeba.org')) {
      throw new DialogueDataError(`${file}:${i + 1}: expected "English<TAB>Chinese<TAB>attribution (tatoeba.org …)"`);
    }
    out.push({ en: (cols[0] as string).trim(), zh: (cols[1] as string).trim(), attribution: (cols[2] as string).trim(), line: i + 1 });
  });
  return out;
}

const TO_ZH = [(s: string) => `How do you say "${s}" in Chinese?`, (s: string) => `Translate into Chinese: ${s}`, (s: string) => `What is "${s}" in Chinese?`];
const TO_EN = [(s: string) => `“${s}”用英语怎么说？`, (s: string) => `把“${s}”翻译成英语。`, (s: string) => `翻译成英文：${s}`];

export async function* tatoebaConversations(file: string, seed: number): AsyncGenerator<SourceConversation> {
  const text = await readSourceText(file);
  for (const p of parseTatoeba(text, file)) {
    const key = `tatoeba:${p.line}`;
    const toChinese = pick([true, false], key, seed);
    const ask = toChinese ? pick(TO_ZH, key, seed)(p.en) : pick(TO_EN, key, seed)(p.zh);
    yield {
      messages: [{ role: 'user', content: ask }, { role: 'assistant', content: toChinese ? p.zh : p.en }],
      source: 'tatoeba',
      lang: 'mixed',
      group: key,
      attribution: `"${p.en}" / "${p.zh}": ${p.attribution}`,
    };
  }
}
