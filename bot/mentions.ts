// Group @-mentions. WeChat writes U+2005 (four-per-em space) after `@name`; a mention typed or
// copied as plain text has an ordinary space instead, or nothing at the end of the message.

const MENTION_END = '[\\u2005\\u0020\\u00a0\\u3000]|$';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** True when `text` contains `@name` for one of `names` followed by a mention separator. */
export function mentionsName(text: string, names: string[]): boolean {
  return names.some((n) => n && new RegExp(`(^|\\s)[@＠]${escapeRegExp(n)}(?:${MENTION_END})`, 'u').test(text));
}

/** Removes every `@name` mention of the given names; returns the remaining text, trimmed. */
export function stripMentions(text: string, names: string[]): string {
  let out = text;
  for (const n of names) {
    if (!n) continue;
    out = out.replace(new RegExp(`(^|\\s)[@＠]${escapeRegExp(n)}(?:${MENTION_END})`, 'gu'), '$1');
  }
  return out.replace(/^[\s\u2005]+|[\s\u2005]+$/gu, '');
}
