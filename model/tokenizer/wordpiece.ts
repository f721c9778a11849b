// BERT-style `vocab.txt` tokenization, exactly as Hugging Face's BertTokenizer(do_lower_case=True)
// (the tokenizer of CDial-GPT): special tokens written by name are split off first, the rest goes
// through BERT's BasicTokenizer (basic.ts: clean, spaces around CJK ideographs, lower-case, strip
// accents, split punctuation), then WordPiece: greedy longest match from the left, continuations
// spelt `##…`, and `[UNK]` for a word that cannot be covered or is over 100 characters.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { basicTokenize, isCjkIdeograph } from './basic.js';
import { TokenizerFileError } from './config.js';

export const WORDPIECE_VOCAB_FILE = 'vocab.txt';
/** Recognised by name when the vocabulary has them. */
export const WORDPIECE_SPECIALS = ['[CLS]', '[SEP]', '[PAD]', '[UNK]', '[MASK]', '[speaker1]', '[speaker2]'];
const MAX_WORD_CHARS = 100;

export interface WordPieceDecodeOptions {
  skipSpecialTokens?: boolean;
}

/** Characters written without spaces around them: CJK ideographs and CJK / full-width punctuation. */
function joinsWithoutSpace(ch: string): boolean {
  const cp = ch.codePointAt(0) ?? 0;
  return isCjkIdeograph(cp) || (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xff00 && cp <= 0xffef) || (cp >= 0x2000 && cp <= 0x206f);
}

export class WordPieceTokenizer {
  readonly config = { type: 'wordpiece' } as const;
  private readonly ids = new Map<string, number>();
  private readonly specials: string[];
  private readonly specialIds: Set<number>;
  private readonly specialPattern: RegExp | null;
  readonly unkId: number;

  private constructor(private readonly tokens: string[], file: string) {
    // As BERT's load_vocab: the line number is the id (a repeated token keeps its last line).
    tokens.forEach((t, i) => this.ids.set(t, i));
    const unk = this.ids.get('[UNK]');
    if (unk === undefined) throw new TokenizerFileError(file, 'the vocabulary has no [UNK] token');
    this.unkId = unk;
    this.specials = WORDPIECE_SPECIALS.filter((t) => this.ids.has(t));
    this.specialIds = new Set(this.specials.map((t) => this.ids.get(t)!));
    const escaped = this.specials.map((t) => t.replace(/[[\]]/g, '\\$&'));
    this.specialPattern = escaped.length ? new RegExp(`(${escaped.join('|')})`) : null;
  }

  /** Loads `dir/vocab.txt` (one token per line). */
  static async load(dir: string): Promise<WordPieceTokenizer> {
    const file = path.join(dir, WORDPIECE_VOCAB_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new TokenizerFileError(file, code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(err)})`);
    }
    return WordPieceTokenizer.fromText(text, file);
  }

  static fromText(text: string, file = WORDPIECE_VOCAB_FILE): WordPieceTokenizer {
    const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    if (lines[lines.length - 1] === '') lines.pop();
    if (lines.length === 0) throw new TokenizerFileError(file, 'the vocabulary is empty');
    return new WordPieceTokenizer(lines, file);
  }

  get vocabSize(): number {
    return this.tokens.length;
  }

  /** The special tokens this vocabulary has, e.g. [CLS] [SEP] [PAD] [UNK] [speaker1] [speaker2]. */
  get specialTokens(): string[] {
    return [...this.specials];
  }

  /** BERT vocabularies have no end-of-text token; [SEP] ends a segment. */
  get eosId(): number | undefined {
    return this.ids.get('[SEP]');
  }

  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokens[id];
  }

  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }

  tokenize(text: string): string[] {
    const out: string[] = [];
    const parts = this.specialPattern ? text.split(this.specialPattern) : [text];
    parts.forEach((part, i) => {
      if (i % 2 === 1) out.push(part); // the captured special token
      else for (const word of basicTokenize(part)) this.wordPiece(word, out);
    });
    return out;
  }

  encode(text: string): number[] {
    return this.tokenize(text).map((t) => this.ids.get(t)!);
  }

  /** Tokens back to text: `##` pieces join their word, CJK text joins without spaces. */
  decode(ids: readonly number[], options: WordPieceDecodeOptions = {}): string {
    let out = '';
    for (const id of ids) {
      const t = this.tokens[id];
      if (t === undefined) continue;
      if (options.skipSpecialTokens && this.specialIds.has(id)) continue;
      if (t.startsWith('##') && out !== '') {
        out += t.slice(2);
      } else if (out === '' || joinsWithoutSpace(Array.from(out).pop()!) || joinsWithoutSpace(t)) {
        out += t;
      } else {
        out += ` ${t}`;
      }
    }
    return out;
  }

  /** Greedy longest-match-first WordPiece of one basic-tokenized word (appended to `out`). */
  private wordPiece(word: string, out: string[]): void {
    const chars = Array.from(word); // code points, as Python's list(str)
    if (chars.length > MAX_WORD_CHARS) {
      out.push('[UNK]');
      return;
    }
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | undefined;
      while (start < end) {
        const sub = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        if (this.ids.has(sub)) {
          found = sub;
          break;
        }
        end--;
      }
      if (found === undefined) {
        out.push('[UNK]');
        return;
      }
      pieces.push(found);
      start = end;
    }
    out.push(...pieces);
  }
}
