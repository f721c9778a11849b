// The tokenizer a model folder carries, whichever kind: byte-level BPE (vocab.json + merges.txt:
// the project's own and GPT-1's, or GPT-1's original release files) or BERT WordPiece (vocab.txt:
// CDial-GPT). Generation and serving use only this surface.
import { access } from 'node:fs/promises';
import path from 'node:path';
import { BpeTokenizer } from './bpe.js';
import { ORIGINAL_VOCAB_FILE, VOCAB_FILE } from './files.js';
import { WORDPIECE_VOCAB_FILE, WordPieceTokenizer } from './wordpiece.js';

export interface ModelTokenizer {
  readonly vocabSize: number;
  readonly eosId: number | undefined;
  readonly specialTokens: string[];
  /** `type` names the kind (nemo-bpe, gpt1-bpe, wordpiece); byte fallback for nemo-bpe */
  readonly config: { readonly type: string; readonly byteFallback?: boolean };
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  isSpecialId(id: number): boolean;
  encode(text: string): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
}

const exists = (p: string) => access(p).then(() => true, () => false);

/** The folder's tokenizer: BPE files when present, else a BERT vocab.txt. */
export async function loadModelTokenizer(dir: string): Promise<ModelTokenizer> {
  const bpe = (await exists(path.join(dir, VOCAB_FILE))) || (await exists(path.join(dir, ORIGINAL_VOCAB_FILE)));
  if (!bpe && (await exists(path.join(dir, WORDPIECE_VOCAB_FILE)))) return WordPieceTokenizer.load(dir);
  return BpeTokenizer.load(dir);
}
