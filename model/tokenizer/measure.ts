// Compression of a tokenizer on text: characters per token, and how much of it went to byte
// fallback (a high share means the vocabulary misses characters the text uses).
import { parseByteToken, type BpeTokenizer } from './bpe.js';
import type { TextDocument } from './corpus-files.js';

export interface CompressionRow {
  source: string;
  documents: number;
  characters: number;
  tokens: number;
  charsPerToken: number;
  /** Fraction of tokens that are <0xNN> byte tokens. */
  byteTokenShare: number;
  /** decode(encode(text)) === text for every document. */
  exactRoundTrip: boolean;
}

/** One row per source, in order of first appearance. Characters are counted as code points. */
export function measureCompression(tokenizer: BpeTokenizer, documents: Iterable<TextDocument>): CompressionRow[] {
  const rows = new Map<string, CompressionRow>();
  for (const doc of documents) {
    let row = rows.get(doc.source);
    if (!row) {
      row = { source: doc.source, documents: 0, characters: 0, tokens: 0, charsPerToken: 0, byteTokenShare: 0, exactRoundTrip: true };
      rows.set(doc.source, row);
    }
    const ids = tokenizer.encode(doc.text);
    let bytes = 0;
    for (const id of ids) if (parseByteToken(tokenizer.idToToken(id) ?? '') !== undefined) bytes++;
    row.documents++;
    row.characters += Array.from(doc.text).length;
    row.tokens += ids.length;
    row.byteTokenShare += bytes; // a count until the end
    if (row.exactRoundTrip && tokenizer.decode(ids) !== doc.text) row.exactRoundTrip = false;
  }
  for (const row of rows.values()) {
    row.charsPerToken = row.tokens ? row.characters / row.tokens : 0;
    row.byteTokenShare = row.tokens ? row.byteTokenShare / row.tokens : 0;
  }
  return [...rows.values()];
}

/** Fixed-width table for terminals and READMEs. */
export function formatCompressionTable(rows: CompressionRow[]): string {
  const lines = ['| source | documents | characters | tokens | chars/token | byte tokens | exact round trip |', '|---|---:|---:|---:|---:|---:|---|'];
  for (const r of rows) {
    lines.push(`| ${r.source} | ${r.documents} | ${r.characters} | ${r.tokens} | ${r.charsPerToken.toFixed(3)} | ${(r.byteTokenShare * 100).toFixed(2)} % | ${r.exactRoundTrip ? 'yes' : 'NO'} |`);
  }
  return lines.join('\n');
}
