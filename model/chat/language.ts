// Which language a chat message is in, as far as the reply checks need it: Chinese (any Han
// character), English (Latin letters, no Han), or either (digits, emoji, punctuation only, or a
// message that asks for the other language: a translation's answer rightly switches language).

export type ChatLanguage = 'zh' | 'en' | 'any';

const HAN = /\p{Script=Han}/gu;
const LATIN = /\p{Script=Latin}/gu;
const count = (text: string, re: RegExp) => text.match(re)?.length ?? 0;

const ASKS_FOR_A_LANGUAGE = /英语|英文|中文|汉语|普通话|翻译|\b(?:english|chinese|mandarin|translate|translation)\b/i;

export function messageLanguage(text: string): ChatLanguage {
  if (ASKS_FOR_A_LANGUAGE.test(text)) return 'any';
  if (count(text, HAN) > 0) return 'zh';
  if (count(text, LATIN) > 0) return 'en';
  return 'any';
}

/**
 * True when a reply suits a message in `lang`: a Chinese message gets a reply containing Chinese;
 * an English one a reply that is not mostly Han characters (names or a quoted word may be).
 */
export function replyMatchesLanguage(lang: ChatLanguage, reply: string): boolean {
  const han = count(reply, HAN);
  if (lang === 'zh') return han > 0;
  if (lang === 'en') return han <= count(reply, LATIN);
  return true;
}

/** A reply with no letter or digit at all ("…", "?!", "🤔 …") says nothing. */
export function hasContent(reply: string): boolean {
  return /[\p{L}\p{N}]/u.test(reply);
}
