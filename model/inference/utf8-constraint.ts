// Keeps the byte tokens (<0xNN>) a nemo-bpe model generates a valid UTF-8 prefix. Without it a
// model can sample a lone continuation byte, or a lead byte followed by a word, and the user sees
// U+FFFD. The rule, applied to the logits before sampling:
//   - between characters: continuation bytes 80–BF, C0, C1 and F5–FF may never be chosen;
//   - inside a character: only the continuation bytes that can come next (with the narrower
//     second-byte ranges after E0, ED, F0, F4) may be chosen — no word, no special token, no end.
// The id tables are built once per tokenizer (cached); each sequence keeps a few numbers of state.
import { byteToken } from '../tokenizer/bpe.js';
import type { ModelTokenizer } from '../tokenizer/model-tokenizer.js';
import { NEMO_TYPE } from '../tokenizer/config.js';

/** What the sampler is told for one step: ids never to pick, or the only ids it may pick. */
export type ByteRule = { banned: Int32Array; allowed?: undefined } | { allowed: Int32Array; banned?: undefined };

/** Per-tokenizer tables (immutable, shared by every sequence of that tokenizer). */
export class Utf8ByteTables {
  /** Byte value of each token id, -1 for tokens that are not byte tokens. */
  readonly byteOf: Int16Array;
  /** Byte tokens that can never start a character: 80–BF, C0, C1, F5–FF. */
  readonly neverFirst: Int32Array;
  private readonly ranges = new Map<number, Int32Array>();
  private readonly byteIds: Int32Array;

  constructor(byteIds: Int32Array) {
    this.byteIds = byteIds;
    let max = 0;
    for (const id of byteIds) max = Math.max(max, id);
    this.byteOf = new Int16Array(max + 1).fill(-1);
    byteIds.forEach((id, b) => (this.byteOf[id] = b));
    const never: number[] = [];
    for (let b = 0x80; b <= 0xff; b++) if (b <= 0xc1 || b >= 0xf5) never.push(byteIds[b] as number);
    this.neverFirst = Int32Array.from(never);
  }

  /** Ids of the byte tokens lo..hi (cached: only five ranges ever occur). */
  range(lo: number, hi: number): Int32Array {
    const key = lo * 256 + hi;
    let ids = this.ranges.get(key);
    if (!ids) {
      ids = this.byteIds.slice(lo, hi + 1);
      this.ranges.set(key, ids);
    }
    return ids;
  }

  isByte(id: number): boolean {
    return id >= 0 && id < this.byteOf.length && (this.byteOf[id] as number) >= 0;
  }
}

const tablesByTokenizer = new WeakMap<ModelTokenizer, Utf8ByteTables | null>();

/**
 * The tables for a tokenizer, or null when it has no byte-fallback tokens (GPT-1): then sampling
 * is left exactly as it was.
 */
export function utf8TablesFor(tokenizer: ModelTokenizer): Utf8ByteTables | null {
  let t = tablesByTokenizer.get(tokenizer);
  if (t === undefined) {
    t = null;
    if (tokenizer.config.type === NEMO_TYPE && tokenizer.config.byteFallback) {
      const ids = new Int32Array(256);
      for (let b = 0; b < 256; b++) ids[b] = tokenizer.tokenToId(byteToken(b)) as number; // all 256 exist (checked on load)
      t = new Utf8ByteTables(ids);
    }
    tablesByTokenizer.set(tokenizer, t);
  }
  return t;
}

/** The UTF-8 state of one sequence's generated tokens. */
export class Utf8Guard {
  /** Continuation bytes still needed to finish the current character. */
  private need = 0;
  /** Byte tokens of the unfinished character so far (dropped from the text if generation ends). */
  private have = 0;
  private lo = 0x80;
  private hi = 0xbf;

  constructor(private readonly tables: Utf8ByteTables) {}

  /** Byte tokens at the end of the output that do not yet form a whole character. */
  get pendingTokens(): number {
    return this.need > 0 ? this.have : 0;
  }

  /** The constraint for the next token. */
  rule(): ByteRule {
    return this.need > 0 ? { allowed: this.tables.range(this.lo, this.hi) } : { banned: this.tables.neverFirst };
  }

  /** Records the chosen token. */
  push(id: number): void {
    const b = this.tables.isByte(id) ? (this.tables.byteOf[id] as number) : -1;
    if (this.need > 0) {
      // The sampler only offers allowed bytes here; anything else (a caller bypassing the rule)
      // abandons the broken character rather than corrupting the state.
      if (b >= this.lo && b <= this.hi) {
        this.need--;
        this.have++;
        this.lo = 0x80;
        this.hi = 0xbf;
        return;
      }
      this.need = 0;
    }
    this.have = 0;
    if (b < 0xc2 || b > 0xf4) return; // ASCII byte, non-byte token, or (never offered) invalid lead
    this.have = 1;
    this.lo = 0x80;
    this.hi = 0xbf;
    if (b < 0xe0) this.need = 1;
    else if (b < 0xf0) {
      this.need = 2;
      if (b === 0xe0) this.lo = 0xa0; // no overlong 3-byte forms
      if (b === 0xed) this.hi = 0x9f; // no UTF-16 surrogates
    } else {
      this.need = 3;
      if (b === 0xf0) this.lo = 0x90; // no overlong 4-byte forms
      if (b === 0xf4) this.hi = 0x8f; // nothing above U+10FFFF
    }
  }
}
