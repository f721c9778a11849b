// Pre-tokenisation for the project's own ("nemo-bpe") vocabularies: cut chat text into the units
// BPE merges within, such that concatenating the units gives back the text EXACTLY.
//
// Why not GPT-1's scheme: its `</w>` word ends cannot tell "a,b" from "a , b" and it lower-cases,
// so text never round-trips. Here a single space before a word travels with the word as a visible
// marker (▁, as SentencePiece does), other whitespace gets visible stand-ins (so no symbol ever
// contains a real whitespace char and merges.txt stays one "a b" pair per line), and every char that
// cannot be represented that way (the marker chars themselves when they occur in user text, rarer
// whitespace such as U+3000) becomes a "raw" unit that is always spelled as UTF-8 byte tokens.

/** Real whitespace char → the visible symbol that stands for it inside tokens. */
export const DEFAULT_WHITESPACE_SYMBOLS: Readonly<Record<string, string>> = {
  ' ': '\u2581', // ▁
  '\n': '\u23ce', // ⏎
  '\t': '\u21e5', // ⇥
  '\r': '\u240d', // ␍
};

export type CjkMode = 'char' | 'run';

export interface Unit {
  /** The unit's text with whitespace replaced by its visible symbol. */
  text: string;
  /** Always spelled as byte tokens (never merged, never a base symbol). */
  raw: boolean;
}

function escapeClass(chars: string[]): string {
  return chars.map((c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`).join('');
}

/**
 * Builds the unit splitter. Alternatives, tried in this order at each position:
 * raw char | English contraction | (space?) Han char (or run of Han chars) | (space?) letters+marks |
 * (space?) 1–3 digits | (space?) run of other symbols/punctuation | whitespace run | anything.
 */
export function createPreTokenizer(whitespaceSymbols: Readonly<Record<string, string>>, cjk: CjkMode): (text: string) => Unit[] {
  const wsChars = Object.keys(whitespaceSymbols);
  const markers = Object.values(whitespaceSymbols);
  const ws = escapeClass(wsChars);
  const mk = escapeClass(markers);
  const han = cjk === 'run' ? '\\p{sc=Han}+' : '\\p{sc=Han}';
  const space = whitespaceSymbols[' '] !== undefined ? ' ?' : '';
  const pattern = [
    `(?<raw>[${mk}]|[\\s--[${ws}]])`,
    `'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])(?!\\p{L})`,
    `${space}${han}`,
    `${space}[[\\p{L}\\p{M}]--\\p{sc=Han}]+`,
    `${space}\\p{N}{1,3}`,
    `${space}[^\\s\\p{L}\\p{N}${mk}]+`,
    // A whitespace run leaves its last plain space to the word that follows it.
    ...(space ? [`[${ws}]+(?= [^\\s])`] : []),
    `[${ws}]+`,
    `[^]`,
  ].join('|');
  const splitter = new RegExp(pattern, 'gv');
  const toSymbol = new Map(Object.entries(whitespaceSymbols));
  const wsClass = new RegExp(`[${ws}]`, 'gv');

  return (text: string): Unit[] => {
    const units: Unit[] = [];
    for (const m of text.matchAll(splitter)) {
      if (m.groups?.raw !== undefined) {
        units.push({ text: m[0], raw: true });
      } else {
        units.push({ text: m[0].replace(wsClass, (c) => toSymbol.get(c) ?? c), raw: false });
      }
    }
    return units;
  };
}

/** Inverse of the whitespace mapping, for decoding. */
export function createSymbolRestorer(whitespaceSymbols: Readonly<Record<string, string>>): (token: string) => string {
  const entries = Object.entries(whitespaceSymbols);
  if (entries.length === 0) return (t) => t;
  const back = new Map(entries.map(([w, s]) => [s, w]));
  const cls = new RegExp(`[${escapeClass([...back.keys()])}]`, 'gv');
  return (token) => token.replace(cls, (s) => back.get(s) ?? s);
}
