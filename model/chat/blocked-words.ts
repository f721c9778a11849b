// The blocked-words filter on what the bot says (and optionally on what it is told): a small
// built-in list for English and Chinese (blocked-words.default.txt) plus the operator's file
// (BOT_BLOCKED_WORDS_FILE). Latin words match as whole words, so "class" never trips on "ass";
// Chinese has no word boundaries, so its phrases match anywhere.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DEFAULT_BLOCKED_WORDS_FILE = fileURLToPath(new URL('./blocked-words.default.txt', import.meta.url));

export class BlockedWordsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BlockedWordsError';
  }
}

/** One word or phrase per line; blank lines and '#' comments are skipped. */
export function parseBlockedWords(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter(Boolean);
}

function readList(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BlockedWordsError(`blocked words file ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseBlockedWords(text);
}

const normalise = (s: string) => s.normalize('NFKC').toLowerCase();
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class BlockedWords {
  private readonly pattern: RegExp | null;
  /** Longest entry in characters: a stream holds back one less than this (see BlockedStreamGuard). */
  readonly longest: number;
  readonly size: number;

  constructor(words: readonly string[]) {
    const unique = [...new Set(words.map(normalise).filter(Boolean))].sort((a, b) => b.length - a.length);
    this.size = unique.length;
    this.longest = unique.reduce((m, w) => Math.max(m, w.length), 0);
    // Whole words for entries that start/end with a letter or digit of a spaced script.
    const parts = unique.map((w) => {
      const pre = /^[\p{Script=Latin}\p{N}]/u.test(w) ? '(?<![\\p{L}\\p{N}])' : '';
      const post = /[\p{Script=Latin}\p{N}]$/u.test(w) ? '(?![\\p{L}\\p{N}])' : '';
      return `${pre}${escape(w).replace(/\s+/g, '\\s+')}${post}`;
    });
    this.pattern = parts.length ? new RegExp(parts.join('|'), 'u') : null;
  }

  /** The built-in list plus the operator's file (if any). */
  static load(options: { file?: string; builtIn?: boolean } = {}): BlockedWords {
    const words = options.builtIn === false ? [] : readList(DEFAULT_BLOCKED_WORDS_FILE);
    if (options.file) words.push(...readList(options.file));
    return new BlockedWords(words);
  }

  /** The first blocked word in `text`, or null. */
  find(text: string): string | null {
    if (!this.pattern) return null;
    return this.pattern.exec(normalise(text))?.[0] ?? null;
  }
}

/**
 * Streams text to a consumer without letting a blocked word through: the last `longest - 1`
 * characters are held back until more text shows they do not start a blocked word, and once a
 * blocked word appears nothing more is passed on.
 */
export class BlockedStreamGuard {
  private text = '';
  private sent = 0;
  blocked = false;

  constructor(
    private readonly words: BlockedWords,
    private readonly out: (chunk: string) => void,
  ) {}

  push(chunk: string): void {
    if (this.blocked) return;
    this.text += chunk;
    if (this.words.find(this.text) !== null) {
      this.blocked = true;
      return;
    }
    // A blocked word that could still complete starts within the last `longest - 1` characters
    // (plus one: a whole-word match needs to see the character after it).
    this.emit(this.text.length - this.words.longest);
  }

  /** The generation ended: what is left goes out if the whole text is clean. */
  end(): void {
    if (!this.blocked && this.words.find(this.text) === null) this.emit(this.text.length);
  }

  private emit(upTo: number): void {
    if (upTo <= this.sent) return;
    let end = upTo;
    if (/[\uD800-\uDBFF]/.test(this.text[end - 1] ?? '')) end--; // never split a surrogate pair
    if (end <= this.sent) return;
    this.out(this.text.slice(this.sent, end));
    this.sent = end;
  }
}
