// The batches of one epoch: a seeded shuffle, then sequences of similar length grouped together
// within windows of BUCKET_BATCHES batches (a batch is padded to its longest sequence, and chat
// data mixes one-line exchanges with context-long conversations), then the batches shuffled.
// Deterministic in (seed, epoch), so a resumed run continues with the same batches.
import { Rng } from '../../rng.js';

const BUCKET_BATCHES = 32;

function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** Indices into `lengths`, as ceil(n / batchSize) batches of batchSize (the last may be smaller). */
export function epochBatches(lengths: readonly number[], batchSize: number, seed: number, epoch: number): number[][] {
  const rng = new Rng((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
  const order = shuffle(lengths.map((_, i) => i), rng);
  const batches: number[][] = [];
  const window = batchSize * BUCKET_BATCHES;
  for (let w = 0; w < order.length; w += window) {
    // Stable by length within the window: ties keep the shuffled order.
    const group = order.slice(w, w + window).sort((a, b) => lengths[a] - lengths[b]);
    for (let b = 0; b < group.length; b += batchSize) batches.push(group.slice(b, b + batchSize));
  }
  return shuffle(batches, rng);
}
