// Choosing the next token from logits: repetition penalty, no-repeat n-grams, banned tokens,
// then greedy (temperature 0) or temperature + top-k + top-p sampling with a seeded PRNG.
// Works on host Float32Arrays (the logits of one position; ~40k entries for GPT-1).
import { Rng } from './rng.js';

export interface SamplerOptions {
  /** 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = off). */
  topP?: number;
  /** > 1 makes tokens already in the context less likely (CTRL paper; HF semantics). */
  repetitionPenalty?: number;
  /** Never repeat an n-gram of this size that already occurs in the context (0 = off). */
  noRepeatNgramSize?: number;
  seed?: number;
}

/** Indices of the k largest values, largest first (min-heap; O(n log k)). */
export function topIndices(values: Float32Array, k: number): Int32Array {
  const n = values.length;
  k = Math.min(k, n);
  const heap = new Int32Array(k);
  let size = 0;
  const less = (a: number, b: number) => values[a] < values[b];
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && less(heap[l], heap[m])) m = l;
      if (r < size && less(heap[r], heap[m])) m = r;
      if (m === i) return;
      const t = heap[i];
      heap[i] = heap[m];
      heap[m] = t;
      i = m;
    }
  };
  for (let i = 0; i < n; i++) {
    if (size < k) {
      heap[size] = i;
      let c = size++;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!less(heap[c], heap[p])) break;
        const t = heap[c];
        heap[c] = heap[p];
        heap[p] = t;
        c = p;
      }
    } else if (values[i] > values[heap[0]]) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return Int32Array.from(heap).sort((a, b) => values[b] - values[a] || a - b);
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Tokens that would complete an n-gram already present in `context` (HF's no_repeat_ngram_size). */
export function bannedByNgram(context: readonly number[], n: number): Set<number> {
  const banned = new Set<number>();
  if (n <= 0 || context.length < n) return banned;
  const prefix = context.slice(context.length - n + 1);
  for (let i = 0; i + n <= context.length; i++) {
    let match = true;
    for (let j = 0; j < n - 1; j++) {
      if (context[i + j] !== prefix[j]) {
        match = false;
        break;
      }
    }
    if (match) banned.add(context[i + n - 1]);
  }
  return banned;
}

export class Sampler {
  private readonly rng: Rng;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly repetitionPenalty: number;
  readonly noRepeatNgramSize: number;

  constructor(opts: SamplerOptions = {}) {
    this.temperature = opts.temperature ?? 1;
    this.topK = opts.topK ?? 0;
    this.topP = opts.topP ?? 1;
    this.repetitionPenalty = opts.repetitionPenalty ?? 1;
    this.noRepeatNgramSize = opts.noRepeatNgramSize ?? 0;
    this.rng = new Rng(opts.seed ?? 0);
  }

  /**
   * Picks the next token. `logits` is modified in place. `context` is every token the model has
   * seen (prompt + generated); `banned` are never chosen (e.g. an end token before min length).
   * `allowed`, when given, are the only tokens that may be chosen (the rest of a UTF-8 character);
   * it is a hard rule: if `banned` and the n-gram rule remove every allowed token, they yield.
   */
  pick(logits: Float32Array, context: readonly number[], banned: Iterable<number> = [], allowed?: ArrayLike<number>): number {
    if (this.repetitionPenalty !== 1) {
      for (const id of new Set(context)) {
        const l = logits[id];
        logits[id] = l > 0 ? l / this.repetitionPenalty : l * this.repetitionPenalty;
      }
    }
    let kept: Float32Array | null = null;
    if (allowed) {
      kept = new Float32Array(allowed.length);
      for (let j = 0; j < allowed.length; j++) kept[j] = logits[allowed[j]];
      logits.fill(-Infinity);
      for (let j = 0; j < allowed.length; j++) logits[allowed[j]] = kept[j];
    }
    for (const id of banned) logits[id] = -Infinity;
    for (const id of bannedByNgram(context, this.noRepeatNgramSize)) logits[id] = -Infinity;
    if (allowed && kept) {
      let open = false;
      for (let j = 0; j < allowed.length && !open; j++) open = logits[allowed[j]] > -Infinity;
      if (!open) for (let j = 0; j < allowed.length; j++) logits[allowed[j]] = kept[j];
    }
    if (this.temperature === 0) return argmax(logits);

    // Candidates: the top-k (or, for top-p alone, a growing top set until it holds p of the mass).
    const n = logits.length;
    let max = -Infinity;
    for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
    if (max === -Infinity) return argmax(logits); // everything banned: nothing sensible left
    const invT = 1 / this.temperature;
    let total = 0;
    for (let i = 0; i < n; i++) total += Math.exp((logits[i] - max) * invT);
    const prob = (i: number) => Math.exp((logits[i] - max) * invT) / total;

    let k = this.topK > 0 ? Math.min(this.topK, n) : this.topP < 1 ? Math.min(256, n) : n;
    let cand: Int32Array;
    let keep: number;
    for (;;) {
      cand = k === n && this.topP >= 1 ? Int32Array.from({ length: n }, (_, i) => i) : topIndices(logits, k);
      keep = cand.length;
      if (this.topP >= 1) break;
      let cum = 0;
      let reached = false;
      for (let j = 0; j < cand.length; j++) {
        cum += prob(cand[j]);
        if (cum >= this.topP) {
          keep = j + 1;
          reached = true;
          break;
        }
      }
      if (reached || k >= n || this.topK > 0) break;
      k = Math.min(n, k * 4);
    }
    let mass = 0;
    const ps = new Float64Array(keep);
    for (let j = 0; j < keep; j++) mass += ps[j] = prob(cand[j]);
    let r = this.rng.next() * mass;
    for (let j = 0; j < keep; j++) {
      r -= ps[j];
      if (r < 0) return cand[j];
    }
    return cand[keep - 1];
  }
}
