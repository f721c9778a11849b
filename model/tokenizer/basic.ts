// GPT-1 text standardisation, as Hugging Face's OpenAIGPTTokenizer does it when ftfy and spaCy are
// not installed: BERT's BasicTokenizer(do_lower_case=True). The original release used ftfy + spaCy
// (Python-only, not portable here); the HF fallback is the documented, reproducible behaviour, so
// this is a line-by-line port of it (transformers/models/bert/tokenization_bert.py):
//   clean (drop NUL, U+FFFD, control/format/unassigned/private-use/surrogate chars; whitespace →
//   space) → put spaces around CJK ideographs → NFC → split on whitespace → per word: lower-case,
//   strip accents (NFD, drop Mn) → split off every punctuation char.

const CONTROL = /^\p{C}$/u;
const SPACE_SEPARATOR = /^\p{Zs}$/u;
const PUNCTUATION_CATEGORY = /^\p{P}$/u;
const NONSPACING_MARK = /\p{Mn}/gu;
const WHITESPACE_RUN = /\s+/u;

/** BERT's `_is_chinese_char`: the CJK Unified Ideographs blocks (not kana, hangul or CJK punctuation). */
export function isCjkIdeograph(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

function isWhitespace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || SPACE_SEPARATOR.test(ch);
}

function isControl(ch: string): boolean {
  if (ch === '\t' || ch === '\n' || ch === '\r') return false;
  return CONTROL.test(ch);
}

/** BERT's `_is_punctuation`: all ASCII non-alphanumerics count, plus Unicode category P*. */
export function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0) ?? 0;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) {
    return true;
  }
  return PUNCTUATION_CATEGORY.test(ch);
}

function cleanText(text: string): string {
  let out = '';
  // for..of walks code points (as Python does); a lone surrogate comes out alone and is category Cs.
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp === 0 || cp === 0xfffd || isControl(ch)) continue;
    out += isWhitespace(ch) ? ' ' : ch;
  }
  return out;
}

function spaceCjk(text: string): string {
  let out = '';
  for (const ch of text) out += isCjkIdeograph(ch.codePointAt(0) ?? 0) ? ` ${ch} ` : ch;
  return out;
}

function splitWhitespace(text: string): string[] {
  const t = text.trim();
  return t === '' ? [] : t.split(WHITESPACE_RUN);
}

function splitOnPunctuation(word: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const ch of word) {
    if (isPunctuation(ch)) {
      if (current) out.push(current);
      out.push(ch);
      current = '';
    } else {
      current += ch;
    }
  }
  if (current) out.push(current);
  return out;
}

export interface BasicTokenizeOptions {
  lowercase?: boolean;
}

/** The words GPT-1's BPE sees (HF fallback path). Never throws. */
export function basicTokenize(text: string, options: BasicTokenizeOptions = {}): string[] {
  const lowercase = options.lowercase ?? true;
  const cleaned = spaceCjk(cleanText(text)).normalize('NFC');
  const words: string[] = [];
  for (let word of splitWhitespace(cleaned)) {
    if (lowercase) word = word.toLowerCase().normalize('NFD').replace(NONSPACING_MARK, '');
    for (const piece of splitOnPunctuation(word)) words.push(...splitWhitespace(piece));
  }
  return words;
}

/**
 * HF's `clean_up_tokenization`: GPT-1 decoding puts a space after every word, so tidy the spaces
 * that English does not put before punctuation and inside contractions.
 */
export function tidyDecodedSpaces(text: string): string {
  return text
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}
