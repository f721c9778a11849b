// A tiny real checkpoint whose next-token choice is fixed by its weights: the last block's ln_2
// outputs the same vector v = (B, 0, …) at every position (gain 0, bias v), and the tied head
// scores token t as B · wte[t][0]. Setting wte[·][0] chooses which tokens the model says and how
// often, whatever the prompt — a real model through the real generation path, not a stub.
import { readCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import { createTinyModel } from './tiny-model.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';

/**
 * Writes a tiny model into `dir`; `weights(tokenizer)` gives token id → relative logit (0-1);
 * every other token gets 0. With `scale` 30, a weight of 1 wins against weight 0 by e^30.
 */
export async function createForcedModel(
  dir: string,
  weights: (tokenizer: BpeTokenizer) => Map<number, number>,
  opts: { scale?: number; nPositions?: number } = {},
): Promise<BpeTokenizer> {
  await createTinyModel(dir, { nPositions: opts.nPositions ?? 128 });
  const tokenizer = await BpeTokenizer.load(dir);
  const chosen = weights(tokenizer);
  const ck = await readCheckpoint(dir);
  const c = ck.config;
  const wte = ck.arrays.get('tokens_embed.weight')!.data;
  for (let t = 0; t < c.vocabSize; t++) wte[t * c.nEmbd] = chosen.get(t) ?? 0;
  const last = c.nLayer - 1;
  ck.arrays.get(`h.${last}.ln_2.weight`)!.data.fill(0);
  const bias = ck.arrays.get(`h.${last}.ln_2.bias`)!.data;
  bias.fill(0);
  bias[0] = opts.scale ?? 30;
  await saveCheckpoint(dir, c, ck.arrays);
  return tokenizer;
}

/** The id of a word that the tokenizer keeps as one token after a space, from `candidates`. */
export function singleTokenWord(tokenizer: BpeTokenizer, candidates: string[]): { word: string; id: number } {
  for (const word of candidates) {
    const ids = tokenizer.encode(` ${word}`);
    if (ids.length === 1) return { word, id: ids[0] };
  }
  throw new Error(`none of ${candidates.join(', ')} is a single token`);
}
