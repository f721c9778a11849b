// Learning a nemo-bpe vocabulary: count units (pretokenize.ts) over the corpus, choose the base
// alphabet (the most frequent characters), then merge the most frequent adjacent pair until the
// vocabulary is full. Pair counts are updated incrementally — only the words that contain the
// merged pair are touched — so tens of millions of characters train in seconds to minutes.
//
// Vocabulary layout (ids in this order): special tokens, the 256 byte tokens <0x00>..<0xFF>, the
// alphabet (by frequency), then one token per merge. Deterministic: every tie is broken by a fixed
// order (character frequency then code point; pair count then the pair's symbol ids).
import { NEMO_TYPE, parseTokenizerConfig, type TokenizerConfig } from './config.js';
import { byteToken } from './bpe.js';
import type { TokenizerData } from './files.js';
import { createPreTokenizer, DEFAULT_WHITESPACE_SYMBOLS, type CjkMode } from './pretokenize.js';

export const DEFAULT_SPECIAL_TOKENS = ['<unk>', '<|endoftext|>'];

const PAIR_SHIFT = 2 ** 22;
const HAN = /^\p{sc=Han}$/u;

/** Unit (pre-token) frequencies over a corpus. Feed it documents, then train on it. */
export class UnitCounter {
  readonly counts = new Map<string, number>();
  characters = 0;
  documents = 0;
  private readonly split: ReturnType<typeof createPreTokenizer>;

  constructor(readonly cjk: CjkMode = 'char', readonly whitespaceSymbols: Record<string, string> = { ...DEFAULT_WHITESPACE_SYMBOLS }) {
    this.split = createPreTokenizer(whitespaceSymbols, cjk);
  }

  add(text: string): void {
    this.documents++;
    this.characters += text.length;
    for (const unit of this.split(text)) {
      if (unit.raw) continue; // always spelt in bytes: nothing to learn
      this.counts.set(unit.text, (this.counts.get(unit.text) ?? 0) + 1);
    }
  }
}

export interface TrainOptions {
  vocabSize: number;
  specialTokens?: string[];
  /** Characters seen fewer times than this are left to byte fallback (default 2). */
  minCharFrequency?: number;
  /** Fraction of character occurrences the alphabet must cover before it stops growing (default 0.9999). */
  characterCoverage?: number;
  /** Upper bound on the alphabet (default: half of what remains after specials and bytes). */
  maxAlphabet?: number;
  /** Characters that are base symbols whatever their frequency (they count toward maxAlphabet). */
  requiredChars?: string[];
  /** Stop merging when the best pair occurs fewer times (default 2). */
  minPairFrequency?: number;
  /** Called after each merge with (merges done, merges wanted). */
  onProgress?: (done: number, total: number) => void;
}

export interface TrainStats {
  alphabet: number;
  hanInAlphabet: number;
  /** Fraction of character occurrences (in counted units) whose char is in the alphabet. */
  coverage: number;
  merges: number;
  distinctUnits: number;
  distinctChars: number;
}

export interface TrainResult extends TokenizerData {
  stats: TrainStats;
}

/** Max-heap on (count desc, pair key asc); entries may be stale, the caller re-checks them. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i] as number;
    const cj = this.counts[j] as number;
    return ci > cj || (ci === cj && (this.keys[i] as number) < (this.keys[j] as number));
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i] as number;
    this.counts[i] = this.counts[j] as number;
    this.counts[j] = c;
    const k = this.keys[i] as number;
    this.keys[i] = this.keys[j] as number;
    this.keys[j] = k;
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0] as number, this.keys[0] as number];
    const lastC = this.counts.pop() as number;
    const lastK = this.keys.pop() as number;
    const n = this.counts.length;
    if (n > 0) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      while (true) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.above(r, l) ? r : l;
        if (!this.above(c, i)) break;
        this.swap(c, i);
        i = c;
      }
    }
    return top;
  }
}

/** Learns merges from unit counts. Pure and deterministic: same counts + options → same result. */
export function trainBpe(counter: UnitCounter, options: TrainOptions): TrainResult {
  const specials = [...new Set(options.specialTokens ?? DEFAULT_SPECIAL_TOKENS)];
  const minCharFrequency = options.minCharFrequency ?? 2;
  const coverageTarget = options.characterCoverage ?? 0.9999;
  const minPair = Math.max(1, options.minPairFrequency ?? 2);
  const fixed = specials.length + 256;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize <= fixed) {
    throw new RangeError(`vocabulary size must be an integer above ${fixed} (special tokens + 256 byte tokens); got ${options.vocabSize}`);
  }
  const maxAlphabet = options.maxAlphabet ?? Math.floor((options.vocabSize - fixed) / 2);

  // Sort units so that every later step is independent of Map insertion (corpus) order.
  const units = [...counter.counts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

  // 1. Alphabet: most frequent chars (ties by code point) until coverage, frequency floor or cap.
  const charCounts = new Map<string, number>();
  let totalChars = 0;
  for (const [unit, count] of units) {
    for (const ch of unit) {
      charCounts.set(ch, (charCounts.get(ch) ?? 0) + count);
      totalChars += count;
    }
  }
  const byFrequency = [...charCounts.entries()].sort((a, b) => b[1] - a[1] || (a[0].codePointAt(0) ?? 0) - (b[0].codePointAt(0) ?? 0));
  // (the frequency walk below stops at the first char under the floor: the list is sorted)
  // Whitespace stand-ins are everywhere; required chars are kept even when the corpus lacks them.
  // Lone surrogates and real whitespace can never be symbols (vocab.json / merges.txt format).
  const usable = (ch: string): boolean => Array.from(ch).length === 1 && !/\p{Cs}|\s/u.test(ch);
  const required = new Set([...Object.values(counter.whitespaceSymbols), ...(options.requiredChars ?? [])].filter(usable));
  const chosen = new Set(required);
  let covered = 0;
  for (const ch of required) covered += charCounts.get(ch) ?? 0;
  for (const [ch, count] of byFrequency) {
    if (chosen.has(ch) || !usable(ch)) continue;
    if (chosen.size >= maxAlphabet || count < minCharFrequency || covered / totalChars >= coverageTarget) break;
    chosen.add(ch);
    covered += count;
  }
  const codePoint = (c: string): number => c.codePointAt(0) ?? 0;
  const alphabet = [...chosen].sort((x, y) => (charCounts.get(y) ?? 0) - (charCounts.get(x) ?? 0) || codePoint(x) - codePoint(y));

  if (fixed + alphabet.length > options.vocabSize) {
    throw new RangeError(`the alphabet alone has ${alphabet.length} chars: a vocabulary of ${options.vocabSize} cannot hold it with ${fixed} special/byte tokens; raise the vocabulary size or require fewer chars`);
  }

  // 2. Symbols and the vocabulary so far.
  const vocab: string[] = [...specials];
  for (let b = 0; b < 256; b++) vocab.push(byteToken(b));
  const tokenIds = new Map<string, number>(vocab.map((t, i) => [t, i]));
  if (tokenIds.size !== vocab.length) throw new Error('special tokens must differ from the <0xNN> byte tokens');
  const symbolStrings: string[] = [];
  const symbolOf = new Map<string, number>();
  const internSymbol = (s: string): number => {
    let id = symbolOf.get(s);
    if (id === undefined) {
      id = symbolStrings.length;
      symbolStrings.push(s);
      symbolOf.set(s, id);
    }
    return id;
  };
  for (const ch of alphabet) {
    internSymbol(ch);
    if (!tokenIds.has(ch)) {
      tokenIds.set(ch, vocab.length);
      vocab.push(ch);
    }
  }

  // 3. Words as symbol arrays (-1 = a char outside the alphabet: a barrier nothing merges across).
  const words: number[][] = [];
  const wordCounts: number[] = [];
  for (const [unit, count] of units) {
    const syms = Array.from(unit, (ch) => symbolOf.get(ch) ?? -1);
    if (syms.length < 2) continue;
    words.push(syms);
    wordCounts.push(count);
  }
  const pairCounts = new Map<number, number>();
  const where = new Map<number, number[]>();
  const key = (a: number, b: number): number => a * PAIR_SHIFT + b;
  words.forEach((syms, w) => {
    const c = wordCounts[w] as number;
    for (let i = 0; i + 1 < syms.length; i++) {
      const a = syms[i] as number;
      const b = syms[i + 1] as number;
      if (a < 0 || b < 0) continue;
      const k = key(a, b);
      pairCounts.set(k, (pairCounts.get(k) ?? 0) + c);
      const list = where.get(k);
      if (!list) where.set(k, [w]);
      else if (list[list.length - 1] !== w) list.push(w);
    }
  });
  const heap = new PairHeap();
  // Pushed in key order so equal counts pop in a fixed order whatever the Map's history.
  for (const k of [...pairCounts.keys()].sort((x, y) => x - y)) heap.push(pairCounts.get(k) as number, k);

  // 4. Merge loop.
  const merges: string[] = [];
  const wanted = options.vocabSize - vocab.length;
  const bump = (k: number, delta: number): void => {
    const v = (pairCounts.get(k) ?? 0) + delta;
    if (v <= 0) pairCounts.delete(k);
    else pairCounts.set(k, v);
  };
  while (vocab.length < options.vocabSize && heap.size > 0) {
    const [stored, k] = heap.pop();
    const current = pairCounts.get(k) ?? 0;
    if (current !== stored) {
      // Counts of existing pairs only ever fall; re-queue with the true count.
      if (current > 0) heap.push(current, k);
      continue;
    }
    if (current < minPair) break;
    const a = Math.floor(k / PAIR_SHIFT);
    const b = k - a * PAIR_SHIFT;
    const left = symbolStrings[a] as string;
    const right = symbolStrings[b] as string;
    const merged = left + right;
    const z = internSymbol(merged);
    merges.push(`${left} ${right}`);
    if (!tokenIds.has(merged)) {
      tokenIds.set(merged, vocab.length);
      vocab.push(merged);
    }
    const created = new Map<number, number>();
    for (const w of where.get(k) ?? []) {
      const syms = words[w] as number[];
      const c = wordCounts[w] as number;
      let found = false;
      for (let i = 0; i + 1 < syms.length; i++) {
        if (syms[i] === a && syms[i + 1] === b) {
          found = true;
          break;
        }
      }
      if (!found) continue;
      // Replace the word's pairs wholesale: simple, and words are short.
      for (let i = 0; i + 1 < syms.length; i++) {
        const x = syms[i] as number;
        const y = syms[i + 1] as number;
        if (x >= 0 && y >= 0) bump(key(x, y), -c);
      }
      const out: number[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          out.push(z);
          i++;
        } else {
          out.push(syms[i] as number);
        }
      }
      words[w] = out;
      for (let i = 0; i + 1 < out.length; i++) {
        const x = out[i] as number;
        const y = out[i + 1] as number;
        if (x < 0 || y < 0) continue;
        const pk = key(x, y);
        bump(pk, c);
        if (x === z || y === z) {
          created.set(pk, 0);
          const list = where.get(pk);
          if (!list) where.set(pk, [w]);
          else if (list[list.length - 1] !== w) list.push(w);
        }
      }
    }
    where.delete(k);
    pairCounts.delete(k);
    for (const pk of [...created.keys()].sort((x, y) => x - y)) {
      const c = pairCounts.get(pk);
      if (c !== undefined) heap.push(c, pk);
    }
    options.onProgress?.(merges.length, wanted);
  }

  const encoder: Record<string, number> = {};
  vocab.forEach((t, i) => {
    encoder[t] = i;
  });
  const config: TokenizerConfig = parseTokenizerConfig({
    type: NEMO_TYPE,
    lowercase: false,
    byte_fallback: true,
    cjk: counter.cjk,
    whitespace_symbols: counter.whitespaceSymbols,
    unk_token: specials.includes('<unk>') ? '<unk>' : (specials[0] ?? '<unk>'),
    special_tokens: specials,
    ...(specials.includes('<|endoftext|>') ? { eos_token: '<|endoftext|>' } : {}),
  });
  let han = 0;
  for (const ch of alphabet) if (HAN.test(ch)) han++;
  return {
    encoder,
    merges,
    config,
    stats: {
      alphabet: alphabet.length,
      hanInAlphabet: han,
      coverage: totalChars ? covered / totalChars : 1,
      merges: merges.length,
      distinctUnits: counter.counts.size,
      distinctChars: charCounts.size,
    },
  };
}
