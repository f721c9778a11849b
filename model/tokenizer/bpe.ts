// GPT-1's byte-pair encoding (Hugging Face OpenAIGPTTokenizer behaviour) and the project's own
// "nemo-bpe" flavour, in one class. The flavour comes from tokenizer_config.json (absent = GPT-1):
//
// openai-gpt: BERT BasicTokenizer standardisation (see basic.ts), `</w>` on each word's last
//   symbol, merges by rank, unknown symbols → <unk>; decode joins, turns `</w>` into spaces and
//   tidies spaces before punctuation (HF clean_up_tokenization).
// nemo-bpe:   no normalisation at all (case kept), units from pretokenize.ts (a leading space rides
//   on the word as ▁), merges by rank, symbols outside the vocabulary → UTF-8 byte tokens <0xNN>;
//   decode(encode(x)) === x for every well-formed string.
//
// Vocabulary data never lives in code: load() reads files, fromData() takes what a caller read.
import { basicTokenize, tidyDecodedSpaces } from './basic.js';
import { GPT1_TYPE, NEMO_TYPE, parseTokenizerConfig, TokenizerFileError, type TokenizerConfig, type TokenizerConfigInput } from './config.js';
import { parseMerges, readTokenizerFiles, renderTokenizerFiles, validateEncoder, writeTokenizerFiles, type TokenizerData } from './files.js';
import type { ModelTokenizer } from './model-tokenizer.js';
import { createPreTokenizer, createSymbolRestorer, type Unit } from './pretokenize.js';

export { TokenizerFileError };
export type { TokenizerConfig, TokenizerConfigInput } from './config.js';
export type { TokenizerData } from './files.js';

const WORD_END = '</w>';
const CACHE_LIMIT = 50_000;
const CACHE_MAX_WORD = 64;
/** Pair keys pack two symbol indices into one exact double. */
const PAIR_SHIFT = 2 ** 22;
const BYTE_TOKEN = /^<0x([0-9A-F]{2})>$/;

/** `<0xE4>`-style token for one UTF-8 byte. */
export function byteToken(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

/** The byte a `<0xNN>` token stands for, or undefined. */
export function parseByteToken(token: string): number | undefined {
  const m = BYTE_TOKEN.exec(token);
  return m ? Number.parseInt(m[1] as string, 16) : undefined;
}

export interface EncodeOptions {
  /**
   * Recognise the special tokens (config special_tokens and those added by addSpecialTokens) when
   * they occur literally in the text. Off by default: user text can never smuggle them in.
   */
  specialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave special tokens out of the text. */
  skipSpecialTokens?: boolean;
}

export interface FromDataOptions {
  /** tokenizer_config.json contents (defaults to GPT-1 behaviour). */
  config?: TokenizerConfigInput;
}

interface MergeEntry {
  rank: number;
  result: number;
}

interface CachedWord {
  tokens: string[];
  ids: number[];
}

const utf8 = new TextEncoder();

/** Minimal binary min-heap of numbers (rank * 2^31 + position, so ties go left to right). */
class NumberHeap {
  private items: number[] = [];
  get size(): number {
    return this.items.length;
  }
  push(v: number): void {
    const a = this.items;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((a[p] as number) <= v) break;
      a[i] = a[p] as number;
      i = p;
    }
    a[i] = v;
  }
  pop(): number {
    const a = this.items;
    const top = a[0] as number;
    const last = a.pop() as number;
    if (a.length > 0) {
      let i = 0;
      const n = a.length;
      while (true) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (a[r] as number) < (a[l] as number) ? r : l;
        if ((a[c] as number) >= last) break;
        a[i] = a[c] as number;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

export class BpeTokenizer {
  readonly config: TokenizerConfig;
  private readonly encoder = new Map<string, number>();
  private readonly decoder: string[] = [];
  private readonly mergeList: string[];
  /** Every symbol that takes part in a merge, by index; chars outside it can never merge. */
  private readonly symbolIndex = new Map<string, number>();
  private readonly symbols: string[] = [];
  private readonly merges = new Map<number, MergeEntry>();
  private readonly specials = new Set<string>();
  private specialPattern: RegExp | null = null;
  private readonly cache = new Map<string, CachedWord>();
  private readonly unkId: number | undefined;
  private readonly byteIds: number[] | null;
  private readonly preTokenize: ((text: string) => Unit[]) | null;
  private readonly restoreSymbols: (token: string) => string;

  private constructor(data: TokenizerData) {
    this.config = data.config;
    for (const [token, id] of Object.entries(data.encoder)) {
      this.encoder.set(token, id);
      this.decoder[id] = token;
    }
    this.mergeList = [...data.merges];
    data.merges.forEach((line, rank) => {
      const space = line.indexOf(' ');
      const left = line.slice(0, space);
      const right = line.slice(space + 1);
      // A repeated pair (only in hand-edited files) takes its LAST rank, as HF's
      // dict(zip(merges, range(...))) does.
      this.merges.set(this.pairKey(this.symbolId(left), this.symbolId(right)), { rank, result: this.symbolId(left + right) });
    });
    this.unkId = this.encoder.get(this.config.unkToken);
    if (this.config.byteFallback) {
      const ids: number[] = [];
      for (let b = 0; b < 256; b++) {
        const id = this.encoder.get(byteToken(b));
        if (id === undefined) throw new Error(`byte_fallback is on but the vocabulary has no ${byteToken(b)} token`);
        ids.push(id);
      }
      this.byteIds = ids;
    } else {
      this.byteIds = null;
    }
    this.preTokenize = this.config.type === NEMO_TYPE ? createPreTokenizer(this.config.whitespaceSymbols, this.config.cjk) : null;
    this.restoreSymbols = createSymbolRestorer(this.config.whitespaceSymbols);
    for (const t of this.config.specialTokens) {
      if (this.encoder.has(t)) this.specials.add(t);
    }
    this.rebuildSpecialPattern();
  }

  /** Loads vocab.json + merges.txt (+ tokenizer_config.json), or the original release's two files. */
  static async load(dir: string): Promise<BpeTokenizer> {
    const data = await readTokenizerFiles(dir);
    try {
      return new BpeTokenizer(data);
    } catch (err) {
      throw new TokenizerFileError(dir, (err as Error).message);
    }
  }

  /** Builds a tokenizer from already validated data (what the trainer returns, what load() reads). */
  static fromTokenizerData(data: TokenizerData): BpeTokenizer {
    return new BpeTokenizer({
      encoder: { ...validateEncoder(data.encoder, 'encoder') },
      merges: parseMerges(data.merges.join('\n'), 'merges'),
      config: { ...data.config, specialTokens: [...data.config.specialTokens] },
    });
  }

  /** Builds a tokenizer from an encoder (token → id) and merges ("left right", by rank). */
  static fromData(encoder: Record<string, number>, merges: string[], options: FromDataOptions = {}): BpeTokenizer {
    const config = parseTokenizerConfig(options.config ?? { type: GPT1_TYPE }, 'options.config');
    // Same checks as files get: contiguous distinct ids, one "left right" pair per merge.
    return new BpeTokenizer({ encoder: { ...validateEncoder(encoder, 'encoder') }, merges: parseMerges(merges.join('\n'), 'merges'), config });
  }

  get vocabSize(): number {
    return this.decoder.length;
  }

  /** Special tokens known to this tokenizer (config + added), in id order. */
  get specialTokens(): string[] {
    return [...this.specials].sort((a, b) => (this.encoder.get(a) ?? 0) - (this.encoder.get(b) ?? 0));
  }

  /** Id of the end-of-text token, when the vocabulary has one. */
  get eosId(): number | undefined {
    return this.config.eosToken !== undefined ? this.encoder.get(this.config.eosToken) : undefined;
  }

  tokenToId(token: string): number | undefined {
    return this.encoder.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.decoder[id];
  }

  isSpecialId(id: number): boolean {
    const t = this.decoder[id];
    return t !== undefined && this.specials.has(t);
  }

  /**
   * Appends tokens at the end of the vocabulary as special tokens (GPT-1 fine-tuning adds
   * `_start_`, `_delimiter_`, `_classify_`) and returns their ids. Tokens already in the
   * vocabulary keep their id and become special.
   */
  addSpecialTokens(tokens: string[]): number[] {
    const ids = tokens.map((t) => {
      if (t === '' || /\s/u.test(t)) throw new Error(`special token ${JSON.stringify(t)} must be non-empty and contain no whitespace`);
      let id = this.encoder.get(t);
      if (id === undefined) {
        id = this.decoder.length;
        this.encoder.set(t, id);
        this.decoder.push(t);
      }
      this.specials.add(t);
      if (!this.config.specialTokens.includes(t)) this.config.specialTokens.push(t);
      return id;
    });
    this.rebuildSpecialPattern();
    this.cache.clear();
    return ids;
  }

  /** Token strings for text (no ids); unknown symbols appear as themselves. */
  tokenize(text: string, options: EncodeOptions = {}): string[] {
    const out: string[] = [];
    this.run(text, options, (w) => out.push(...w.tokens), (special) => out.push(special));
    return out;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    this.run(text, options, (w) => {
      for (const id of w.ids) out.push(id);
    }, (special) => out.push(this.encoder.get(special) as number));
    return out;
  }

  /** Text for ids. Throws a RangeError for an id outside the vocabulary. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const tokens = ids.map((id) => {
      const t = Number.isInteger(id) ? this.decoder[id] : undefined;
      if (t === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      return t;
    });
    return this.config.type === NEMO_TYPE ? this.decodeNemo(tokens, options) : this.decodeGpt1(tokens, options);
  }

  /**
   * The text as decode(encode(text)) gives it back when every symbol is in the vocabulary:
   * GPT-1 standardisation (lower-cased, accents stripped, one space between words, tidied), or the
   * text itself for nemo-bpe.
   */
  standardize(text: string): string {
    if (this.config.type === NEMO_TYPE) return text;
    return tidyDecodedSpaces(basicTokenize(text, { lowercase: this.config.lowercase }).join(' '));
  }

  /** The files that describe this tokenizer (vocab.json, merges.txt, tokenizer_config.json). */
  toFiles(): Record<string, string> {
    return renderTokenizerFiles(this.data());
  }

  /** Writes vocab.json, merges.txt and tokenizer_config.json into dir. */
  async save(dir: string): Promise<void> {
    await writeTokenizerFiles(dir, this.data());
  }

  private data(): TokenizerData {
    return { encoder: Object.fromEntries(this.encoder), merges: this.mergeList, config: this.config };
  }

  private symbolId(s: string): number {
    let id = this.symbolIndex.get(s);
    if (id === undefined) {
      id = this.symbols.length;
      this.symbols.push(s);
      this.symbolIndex.set(s, id);
    }
    return id;
  }

  private pairKey(a: number, b: number): number {
    return a * PAIR_SHIFT + b;
  }

  private rebuildSpecialPattern(): void {
    const list = [...this.specials].sort((a, b) => b.length - a.length);
    const escaped = list.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.specialPattern = list.length ? new RegExp(`(${escaped.join('|')})`, 'u') : null;
  }

  /** Splits out special tokens when asked, then feeds each word's cached BPE result to onWord. */
  private run(text: string, options: EncodeOptions, onWord: (w: CachedWord) => void, onSpecial: (t: string) => void): void {
    const str = typeof text === 'string' ? text : String(text ?? '');
    if (options.specialTokens && this.specialPattern) {
      str.split(this.specialPattern).forEach((piece, i) => {
        if (i % 2 === 1) onSpecial(piece);
        else if (piece) this.encodePlain(piece, onWord);
      });
    } else {
      this.encodePlain(str, onWord);
    }
  }

  private encodePlain(text: string, onWord: (w: CachedWord) => void): void {
    if (this.preTokenize) {
      // nemo-bpe keeps case by default (chat text); a lower-casing vocabulary gives up exact round trips.
      const input = this.config.lowercase ? text.toLowerCase() : text;
      for (const unit of this.preTokenize(input)) onWord(unit.raw ? this.rawBytes(unit.text) : this.word(unit.text, false));
    } else {
      for (const w of basicTokenize(text, { lowercase: this.config.lowercase })) onWord(this.word(w, true));
    }
  }

  private rawBytes(text: string): CachedWord {
    const tokens: string[] = [];
    const ids: number[] = [];
    for (const b of utf8.encode(text)) {
      tokens.push(byteToken(b));
      if (this.byteIds) ids.push(this.byteIds[b] as number);
      else if (this.unkId !== undefined) ids.push(this.unkId);
    }
    return { tokens, ids };
  }

  /** BPE for one word/unit, cached. */
  private word(word: string, wordEnd: boolean): CachedWord {
    const hit = this.cache.get(word);
    if (hit) return hit;
    const chars = Array.from(word);
    if (wordEnd && chars.length > 0) chars[chars.length - 1] += WORD_END;
    // (HF's "\n  </w>" special case cannot arise: the BasicTokenizer path never yields a newline word.)
    const tokens = this.bpe(chars);
    const ids: number[] = [];
    const outTokens: string[] = [];
    for (const t of tokens) {
      const id = this.encoder.get(t);
      if (id !== undefined) {
        ids.push(id);
        outTokens.push(t);
      } else if (this.byteIds) {
        // Spell the real text: a whitespace stand-in outside the vocabulary is its whitespace char.
        for (const b of utf8.encode(this.restoreSymbols(t))) {
          ids.push(this.byteIds[b] as number);
          outTokens.push(byteToken(b));
        }
      } else {
        if (this.unkId !== undefined) ids.push(this.unkId);
        outTokens.push(t);
      }
    }
    const entry = { tokens: outTokens, ids };
    // Long "words" (pasted URLs, base64) rarely repeat: keeping them would let one chatty user
    // fill memory with cache entries.
    if (word.length <= CACHE_MAX_WORD) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, entry);
    }
    return entry;
  }

  /**
   * Applies merges lowest rank first, equal ranks left to right — the same result as the
   * reference loop (merge every occurrence of the best pair, repeat) but O(n log n), so a 10 KB
   * "word" (a URL, a run of one letter) cannot stall the caller.
   */
  private bpe(chars: string[]): string[] {
    const n = chars.length;
    if (n < 2) return chars;
    const strs = chars.slice();
    const ids = chars.map((c) => this.symbolIndex.get(c) ?? -1);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap = new NumberHeap();
    const POS = 2 ** 31;
    const consider = (i: number): void => {
      const j = next[i] as number;
      if (i < 0 || j < 0) return;
      const a = ids[i] as number;
      const b = ids[j] as number;
      if (a < 0 || b < 0) return;
      const m = this.merges.get(this.pairKey(a, b));
      if (m) heap.push(m.rank * POS + i);
    };
    for (let i = 0; i < n - 1; i++) consider(i);
    while (heap.size > 0) {
      const top = heap.pop();
      const i = top % POS;
      const rank = (top - i) / POS;
      if (!alive[i]) continue;
      const j = next[i] as number;
      if (j < 0) continue;
      const m = this.merges.get(this.pairKey(ids[i] as number, ids[j] as number));
      if (!m || m.rank !== rank) continue; // stale entry: the pair changed since it was pushed
      ids[i] = m.result;
      strs[i] = (strs[i] as string) + (strs[j] as string);
      alive[j] = 0;
      const k = next[j] as number;
      next[i] = k;
      if (k >= 0) prev[k] = i;
      consider(prev[i] as number);
      consider(i);
    }
    const out: string[] = [];
    for (let i = 0; i >= 0; i = next[i] as number) out.push(strs[i] as string);
    return out;
  }

  private decodeGpt1(tokens: string[], options: DecodeOptions): string {
    const parts: string[] = [];
    let run = '';
    for (const t of tokens) {
      if (this.specials.has(t)) {
        // Special tokens stand apart from the words around them (as HF spaces added tokens).
        if (run) parts.push(run);
        run = '';
        if (!options.skipSpecialTokens) parts.push(`${t}${WORD_END}`);
      } else {
        run += t;
      }
    }
    if (run) parts.push(run);
    const text = parts.join('').replaceAll(WORD_END, ' ').trim();
    return tidyDecodedSpaces(text);
  }

  private decodeNemo(tokens: string[], options: DecodeOptions): string {
    let out = '';
    let pending: number[] = [];
    const flush = (): void => {
      if (pending.length) out += new TextDecoder('utf-8').decode(Uint8Array.from(pending));
      pending = [];
    };
    for (const t of tokens) {
      const b = parseByteToken(t);
      if (b !== undefined) {
        pending.push(b);
        continue;
      }
      flush();
      if (this.specials.has(t)) {
        if (!options.skipSpecialTokens) out += t;
      } else {
        out += this.restoreSymbols(t);
      }
    }
    flush();
    return out;
  }
}

/**
 * Incremental decoding for streaming: push ids one at a time, get back only text that can no
 * longer change — a character spelt by several byte tokens is held until it is complete, and for
 * GPT-1 the last word is held (a following token can still tidy the space before it).
 */
export class StreamDecoder {
  private ids: number[] = [];
  private emitted = '';

  constructor(
    private readonly tokenizer: ModelTokenizer,
    private readonly options: DecodeOptions = {},
  ) {}

  push(id: number): string {
    this.ids.push(id);
    const full = this.tokenizer.decode(this.ids, this.options);
    let stable: string;
    if (this.tokenizer.config.type === NEMO_TYPE) {
      // Trailing U+FFFD may be an incomplete multi-byte character: hold it back.
      stable = full.replace(/\uFFFD+$/u, '');
    } else if (this.tokenizer.config.type === 'wordpiece') {
      stable = full; // WordPiece decoding only ever appends (## pieces and spaces go after the text)
    } else {
      const cut = full.lastIndexOf(' ');
      stable = cut < 0 ? '' : full.slice(0, cut);
    }
    return this.emit(stable);
  }

  /** Everything not yet emitted (call when generation ends). */
  flush(): string {
    return this.emit(this.tokenizer.decode(this.ids, this.options));
  }

  private emit(text: string): string {
    // The stream is append-only: text that no longer extends what was shown is not emitted.
    if (text.length <= this.emitted.length || !text.startsWith(this.emitted)) return '';
    const piece = text.slice(this.emitted.length);
    this.emitted = text;
    return piece;
  }
}
