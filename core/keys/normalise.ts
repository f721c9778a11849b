// Turns what a chatter typed into a key candidate. People paste keys from an announcement with
// quotes, full-width digits (２３８７１５), spaces or a trailing 。 — all of that should still work,
// while anything that cannot be a key is told apart from a wrong guess so it never costs a try.

/** Longer input is not looked at: no key is that long, and NFKC over 10 KB is wasted work. */
export const MAX_ATTEMPT_CHARS = 256;

export type Candidate =
  | { kind: 'empty' }
  /** Not shaped like a key (wrong length, characters outside the alphabet, huge input). */
  | { kind: 'malformed' }
  | { kind: 'candidate'; value: string };

export interface KeyShape {
  length: number;
  alphabet: string;
}

const EDGE = /[\p{P}\p{S}\p{Z}\p{C}\s]/u;
const SPACE = /[\p{Z}\s\u200b-\u200d\u2060\ufeff]+/gu;

export function normaliseAttempt(raw: unknown, shape: KeyShape): Candidate {
  if (typeof raw !== 'string') return { kind: 'empty' };
  if (raw.length > MAX_ATTEMPT_CHARS) return { kind: 'malformed' };
  const alphabet = alphabetSet(shape.alphabet);
  // Fast path: a key typed exactly as announced needs no normalisation.
  if (raw.length === shape.length && [...raw].every((c) => alphabet.has(c))) return { kind: 'candidate', value: raw };
  let s = raw.normalize('NFKC').replace(SPACE, '');
  // Strip surrounding punctuation, symbols (emoji) and quotes, unless the alphabet uses them.
  const chars = [...s];
  let a = 0;
  let b = chars.length;
  while (a < b && !alphabet.has(chars[a]) && EDGE.test(chars[a])) a++;
  while (b > a && !alphabet.has(chars[b - 1]) && EDGE.test(chars[b - 1])) b--;
  s = chars.slice(a, b).join('');
  if (s === '') return { kind: 'empty' };
  s = foldCase(s, shape.alphabet);
  const out = [...s];
  if (out.length !== shape.length || !out.every((c) => alphabet.has(c))) return { kind: 'malformed' };
  return { kind: 'candidate', value: s };
}

const alphabetSets = new Map<string, Set<string>>();
function alphabetSet(alphabet: string): Set<string> {
  let set = alphabetSets.get(alphabet);
  if (!set) {
    set = new Set(alphabet);
    alphabetSets.set(alphabet, set);
  }
  return set;
}

/** A single-case alphabet accepts either case from the chatter. */
function foldCase(s: string, alphabet: string): string {
  const hasLower = alphabet !== alphabet.toUpperCase();
  const hasUpper = alphabet !== alphabet.toLowerCase();
  if (hasLower && !hasUpper) return s.toLowerCase();
  if (hasUpper && !hasLower) return s.toUpperCase();
  return s;
}
