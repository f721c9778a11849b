// Choosing the next token from logits: repetition penalty, no-repeat n-grams, banned tokens,
// then greedy (temperature 0) or temperature + top-k + top-p sampling with a seeded PRNG.
// Works on host Float32Arrays (the logits of one position; ~40k entries for GPT-1).
import { loadNative } from '../native/index.js';
import { Rng } from '../rng.js';

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

/**
 * Indices of the k largest values, largest first; ties go to the lower index (deterministic).
 * One pass with a min-heap of k (O(n) when k is small: the heap changes rarely). `ids`, when given,
 * restricts the search to those indices; `out` (length >= k) is reused to avoid allocation.
 */
export function topIndices(values: Float32Array, k: number, ids?: ArrayLike<number>, out?: Int32Array): Int32Array {
  const n = ids ? ids.length : values.length;
  k = Math.min(k, n);
  const heap = out && out.length >= k ? out : new Int32Array(k);
  if (k <= 0) return heap.subarray(0, 0);
  // The native addon's vector loop gives the same indices (it declines NaN and k > 256): over a
  // GPT-1 vocabulary ~0.1 ms less per sequence and decode step.
  if (!ids && n >= NATIVE_TOPK_MIN && useNativeTopK) {
    const got = loadNative()?.topK(values, k, heap) ?? -1;
    if (got === k) return heap.subarray(0, k);
  }
  return topIndicesJs(values, k, ids, heap);
}

/** Smaller inputs (test vocabularies, candidate lists) stay on the JS loop: a few microseconds either way. */
const NATIVE_TOPK_MIN = 4096;
let useNativeTopK = true;

/** Runs `fn` with topIndices in plain JS (tests compare the two). */
export function withJsTopK<T>(fn: () => T): T {
  const was = useNativeTopK;
  useNativeTopK = false;
  try {
    return fn();
  } finally {
    useNativeTopK = was;
  }
}

/** topIndices' own loop: `heap` has room for k (1 <= k <= n). */
function topIndicesJs(values: Float32Array, k: number, ids: ArrayLike<number> | undefined, heap: Int32Array): Int32Array {
  const n = ids ? ids.length : values.length;
  // Heap order: the root is the worst kept index (smallest value; on equal values the larger index).
  let size = 0;
  let rootValue = Infinity;
  const push = (i: number, v: number) => {
    if (size < k) {
      let c = size++;
      while (c > 0) {
        const p = (c - 1) >> 1;
        const hp = heap[p];
        const pv = values[hp];
        if (!(v < pv || (v === pv && i > hp))) break;
        heap[c] = hp;
        c = p;
      }
      heap[c] = i;
    } else {
      let c = 0;
      for (;;) {
        const l = 2 * c + 1;
        if (l >= k) break;
        let m = l;
        const r = l + 1;
        if (r < k) {
          const lv = values[heap[l]];
          const rv = values[heap[r]];
          if (rv < lv || (rv === lv && heap[r] > heap[l])) m = r;
        }
        const hm = heap[m];
        const mv = values[hm];
        if (!(mv < v || (mv === v && hm > i))) break;
        heap[c] = hm;
        c = m;
      }
      heap[c] = i;
    }
    return values[heap[0]];
  };
  if (ids) {
    for (let q = 0; q < n; q++) {
      const i = ids[q] as number;
      const v = values[i];
      if (size < k || v > rootValue || (v === rootValue && i < heap[0])) rootValue = push(i, v);
    }
  } else {
    for (let i = 0; i < k; i++) rootValue = push(i, values[i]);
    // Indices come in increasing order, so an equal value is never better than the root.
    for (let i = k; i < n; i++) {
      const v = values[i];
      if (v > rootValue) rootValue = push(i, v);
    }
  }
  const res = heap.subarray(0, k);
  // Insertion sort: k is small in practice (top-k); fall back to sort() when it is not.
  if (k > 64) return res.sort((a, b) => values[b] - values[a] || a - b);
  for (let a = 1; a < k; a++) {
    const x = res[a];
    const xv = values[x];
    let b = a - 1;
    while (b >= 0 && (values[res[b]] < xv || (values[res[b]] === xv && res[b] > x))) {
      res[b + 1] = res[b];
      b--;
    }
    res[b + 1] = x;
  }
  return res;
}

export function argmax(values: Float32Array): number {
  let best = 0;
  let bestValue = values[0];
  for (let i = 1; i < values.length; i++) {
    const v = values[i];
    if (v > bestValue) {
      best = i;
      bestValue = v;
    }
  }
  return best;
}

/** argmax over `ids` only (ties: the lowest id); 0 when all of them are -Infinity, like argmax. */
export function argmaxAmong(values: Float32Array, ids: ArrayLike<number>): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let q = 0; q < ids.length; q++) {
    const i = ids[q] as number;
    const v = values[i];
    if (v > bestValue || (v === bestValue && best >= 0 && i < best)) {
      best = i;
      bestValue = v;
    }
  }
  return best < 0 ? 0 : best;
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

/** Ids below 2^21: a float32's 32 order bits and the id fit a float64's 53-bit integer range. */
const ID_SPACE = 2 ** 21;
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

export class Sampler {
  private readonly rng: Rng;
  /** Reused per call (no vocabulary-sized allocation per token). */
  private candBuf = new Int32Array(64);
  private weightBuf = new Float64Array(64);
  private keyBuf = new Float64Array(64);
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
    // `allowed`: only those ids are looked at below (as if every other logit were -Infinity).
    let kept: Float32Array | null = null;
    if (allowed) {
      kept = new Float32Array(allowed.length);
      for (let j = 0; j < allowed.length; j++) kept[j] = logits[allowed[j]];
    }
    for (const id of banned) logits[id] = -Infinity;
    for (const id of bannedByNgram(context, this.noRepeatNgramSize)) logits[id] = -Infinity;
    if (allowed && kept) {
      let open = false;
      for (let j = 0; j < allowed.length && !open; j++) open = logits[allowed[j]] > -Infinity;
      if (!open) for (let j = 0; j < allowed.length; j++) logits[allowed[j]] = kept[j];
    }
    const best = () => (allowed ? argmaxAmong(logits, allowed) : argmax(logits));
    if (this.temperature === 0) return best();
    const d = this.distribution(logits, allowed);
    if (!d) return best(); // everything banned: nothing sensible left
    let r = this.rng.next() * d.mass;
    for (let j = 0; j < d.count; j++) {
      r -= d.weights[j];
      if (r < 0) return d.ids[j];
    }
    return d.ids[d.count - 1];
  }

  /**
   * Sorts `ids` in place by logit, largest first, ties by lower id: a numeric sort of packed keys
   * (order-preserving float bits above the id) — much faster than a comparator for thousands.
   */
  private sortByLogit(logits: Float32Array, ids: Int32Array): Int32Array {
    const n = ids.length;
    if (logits.length > ID_SPACE) return ids.sort((a, b) => logits[b] - logits[a] || a - b);
    if (this.keyBuf.length < n) this.keyBuf = new Float64Array(Math.max(n, 2 * this.keyBuf.length));
    const keys = this.keyBuf.subarray(0, n);
    for (let j = 0; j < n; j++) {
      const id = ids[j];
      F32[0] = logits[id] + 0; // -0 -> +0: equal values must give equal keys
      const u = U32[0];
      const up = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0; // increases with the value
      keys[j] = (0xffffffff - up) * ID_SPACE + id;
    }
    keys.sort();
    for (let j = 0; j < n; j++) ids[j] = keys[j] % ID_SPACE;
    return ids;
  }

  /** How many of `ids[0..count)` (sorted by logit) hold top-p of the softmax (`total`); 0 if they all fall short. */
  private cutAtP(logits: Float32Array, ids: Int32Array, count: number, max: number, invT: number, total: number): number {
    let cum = 0;
    for (let j = 0; j < count; j++) {
      cum += Math.exp((logits[ids[j]] - max) * invT) / total;
      if (cum >= this.topP) return j + 1;
    }
    return 0;
  }

  /**
   * The candidates and their (unnormalised) weights for sampling from `logits` after the filters
   * (temperature, top-k, top-p), in the order the draw walks them: by logit (ties: lower id first)
   * when top-k or top-p cut, by id otherwise. Every token outside `ids[0..count)` has probability
   * 0; token ids[j] has probability weights[j] / mass. Only `allowed` is looked at when given (the
   * rest of `logits` is -Infinity then). Null when every logit is -Infinity. The arrays are reused
   * by the next call.
   */
  distribution(logits: Float32Array, allowed?: ArrayLike<number>): { ids: Int32Array; weights: Float64Array; count: number; mass: number } | null {
    const n = allowed ? allowed.length : logits.length;
    const invT = 1 / this.temperature;
    const topP = this.topP;
    // Top-k over the whole vocabulary without top-p is plain sampling (walked in id order).
    const topK = this.topK >= logits.length && topP >= 1 ? 0 : this.topK;
    let ids: Int32Array;
    let count: number;
    let max: number;
    if (topK > 0) {
      const k = Math.min(topK, n);
      if (this.candBuf.length < k) this.candBuf = new Int32Array(k);
      ids = topIndices(logits, k, allowed, this.candBuf);
      count = ids.length;
      max = count ? logits[ids[0]] : -Infinity;
    } else {
      max = -Infinity;
      if (allowed) for (let q = 0; q < n; q++) max = Math.max(max, logits[allowed[q]]);
      else for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
      ids = this.candBuf;
      count = 0;
    }
    if (max === -Infinity) return null;
    if (this.weightBuf.length < Math.max(count, 1)) this.weightBuf = new Float64Array(Math.max(count, 64));

    if (topP >= 1 && topK > 0) {
      // Top-k alone: the k weights are all that matter (the softmax total cancels out).
      const w = this.weightBuf;
      let mass = 0;
      for (let j = 0; j < count; j++) mass += w[j] = Math.exp((logits[ids[j]] - max) * invT);
      return { ids, weights: w, count, mass };
    }
    if (topP >= 1) {
      // Plain temperature sampling: every token, in id order.
      if (this.candBuf.length < n) this.candBuf = new Int32Array(n);
      if (this.weightBuf.length < n) this.weightBuf = new Float64Array(n);
      ids = this.candBuf;
      const w = this.weightBuf;
      let mass = 0;
      if (allowed) {
        for (let q = 0; q < n; q++) ids[q] = allowed[q];
        ids.subarray(0, n).sort();
        for (let q = 0; q < n; q++) mass += w[q] = Math.exp((logits[ids[q]] - max) * invT);
      } else {
        for (let i = 0; i < n; i++) {
          ids[i] = i;
          mass += w[i] = Math.exp((logits[i] - max) * invT);
        }
      }
      return { ids, weights: w, count: n, mass };
    }

    // Top-p (over the full softmax, also after top-k): the total over every token is needed.
    // Terms below e^-80 relative to the largest cannot change it beyond float64 rounding.
    const floor = max - 80 * this.temperature;
    let total = 0;
    if (allowed) {
      for (let q = 0; q < n; q++) {
        const l = logits[allowed[q]];
        if (l > floor) total += Math.exp((l - max) * invT);
      }
    } else {
      for (let i = 0; i < n; i++) {
        const l = logits[i];
        if (l > floor) total += Math.exp((l - max) * invT);
      }
    }
    if (topK === 0) {
      // Candidates by a falling logit threshold: everything at or above it, sorted; stop as soon
      // as their mass reaches p (then they are exactly the top of the sorted vocabulary).
      if (this.candBuf.length < n) this.candBuf = new Int32Array(n);
      for (let c = 4; ; c *= 2) {
        const t = c > 256 ? -Infinity : max - c * this.temperature;
        count = 0;
        const buf = this.candBuf;
        let sum = 0;
        if (allowed) {
          for (let q = 0; q < n; q++) {
            const l = logits[allowed[q]];
            if (l >= t) {
              buf[count++] = allowed[q];
              sum += Math.exp((l - max) * invT);
            }
          }
        } else {
          for (let i = 0; i < n; i++) {
            const l = logits[i];
            if (l >= t) {
              buf[count++] = i;
              sum += Math.exp((l - max) * invT);
            }
          }
        }
        if (t === -Infinity && !allowed) {
          // All of them (as the full sort did); -Infinity logits included, with weight 0.
          count = n;
          for (let i = 0; i < n; i++) buf[i] = i;
        }
        // Sorting only pays once the candidates can hold p of the mass (a margin for rounding).
        if (t !== -Infinity && sum / total < topP * (1 - 1e-9)) continue;
        ids = this.sortByLogit(logits, buf.subarray(0, count));
        const cut = this.cutAtP(logits, ids, count, max, invT, total);
        if (cut) {
          count = cut;
          break;
        }
        if (t === -Infinity) break;
      }
    } else {
      count = this.cutAtP(logits, ids, count, max, invT, total) || count;
    }
    if (this.weightBuf.length < count) this.weightBuf = new Float64Array(count);
    const w = this.weightBuf;
    let mass = 0;
    for (let j = 0; j < count; j++) mass += w[j] = Math.exp((logits[ids[j]] - max) * invT) / total;
    return { ids, weights: w, count, mass };
  }
}
