// Character sets a trained vocabulary can be told to contain as base symbols whatever the corpus
// says. The corpora here hold CLASSICAL Chinese (Tang/Song poetry): everyday characters of modern
// chat (你们哪吗呢…) are rare or missing in them, and without this they would cost 3 byte tokens
// each. The sets are derived from standards at run time (Node's ICU GB2312 decoder), so no
// character list is stored in the code.

/** GB2312 level-1 hanzi: the 3755 most frequently used simplified characters (rows 16–55). */
export function gb2312Level1(): string[] {
  const decoder = new TextDecoder('gb2312');
  const out: string[] = [];
  for (let hi = 0xb0; hi <= 0xd7; hi++) {
    for (let lo = 0xa1; lo <= 0xfe; lo++) {
      if (hi === 0xd7 && lo > 0xf9) break; // row 55 ends at D7F9
      out.push(decoder.decode(Uint8Array.from([hi, lo])));
    }
  }
  return out;
}

/** Printable ASCII (space excluded: it is the ▁ stand-in). */
export function printableAscii(): string[] {
  const out: string[] = [];
  for (let cp = 0x21; cp <= 0x7e; cp++) out.push(String.fromCodePoint(cp));
  return out;
}

/** Punctuation of Chinese text: the CJK marks of GB2312 row 1 and the full-width ASCII forms. */
export function chinesePunctuation(): string[] {
  const marks = Array.from('、。·—～…‘’“”〈〉《》「」『』〔〕【】');
  const fullWidth: string[] = [];
  // Full-width ！…～ except the letters (rare in chat; byte fallback covers them).
  for (let cp = 0xff01; cp <= 0xff5e; cp++) {
    const ch = String.fromCodePoint(cp);
    if (!/\p{L}/u.test(ch)) fullWidth.push(ch);
  }
  return [...new Set([...marks, ...fullWidth])];
}

export const CHARSETS: Record<string, () => string[]> = {
  'gb2312-1': gb2312Level1,
  ascii: printableAscii,
  'zh-punct': chinesePunctuation,
};

/** Union of the named sets; an unknown name is an error listing the known ones. */
export function resolveCharsets(names: string[]): string[] {
  const out = new Set<string>();
  for (const name of names) {
    const make = CHARSETS[name];
    if (!make) throw new Error(`unknown charset "${name}" (known: ${Object.keys(CHARSETS).join(', ')})`);
    for (const ch of make()) out.add(ch);
  }
  return [...out];
}
