// Splits a long reply into ordered parts that each fit WeChat's practical message length,
// breaking at a paragraph, sentence or word boundary when one is near, never inside a character.

const SENTENCE_END = new Set(['。', '！', '？', '!', '?', '；', ';', '…', '.']);

/** Parts of at most `maxChars` characters (code points), in order; empty text gives no parts. */
export function splitReply(text: string, maxChars: number): string[] {
  if (maxChars < 1) throw new RangeError('maxChars must be at least 1');
  const parts: string[] = [];
  let rest = [...text.trim()];
  while (rest.length > maxChars) {
    const window = rest.slice(0, maxChars).join('');
    const cut = breakPoint(window, maxChars);
    const head = [...window].slice(0, cut).join('').trim();
    if (head) parts.push(head);
    rest = [...rest.slice(cut).join('').trimStart()];
  }
  const tail = rest.join('').trim();
  if (tail) parts.push(tail);
  return parts;
}

/** Where to cut `window` (in code points): the last good boundary in its second half, else the end. */
function breakPoint(window: string, maxChars: number): number {
  const chars = [...window];
  const min = Math.floor(maxChars / 2);
  const lastIndex = (pred: (c: string, i: number) => boolean) => {
    for (let i = chars.length - 1; i >= min; i--) if (pred(chars[i], i)) return i + 1;
    return -1;
  };
  const newline = lastIndex((c) => c === '\n');
  if (newline > 0) return newline;
  // A full stop ends a sentence only before whitespace (not in 3.14 or example.com).
  const sentence = lastIndex((c, i) => SENTENCE_END.has(c) && (c !== '.' || (i + 1 < chars.length && /\s/u.test(chars[i + 1]))));
  if (sentence > 0) return sentence;
  const space = lastIndex((c) => /\s/u.test(c));
  if (space > 0) return space;
  return chars.length;
}

/** Cuts over-long input to `maxChars` code points; says whether it was cut. */
export function truncateInput(text: string, maxChars: number): { text: string; cut: boolean } {
  const chars = [...text];
  if (chars.length <= maxChars) return { text, cut: false };
  return { text: chars.slice(0, maxChars).join(''), cut: true };
}
