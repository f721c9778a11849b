// Fast inference for GPT-1 on tfjs (tuned for the wasm backend):
// prefill of a prompt, then batched one-token decode steps over sequences with per-sequence
// KV caches of different lengths (continuous batching). Numerically the same model as gpt.ts
// (tests compare them); written differently for speed:
//  - every weight matmul is a plain 2-D fused matmul [rows, in] x [in, out] (XNNPACK; batched or
//    transposed matmuls fall back to a slow scalar loop on wasm);
//  - the tied LM head uses the transposed token embedding [C, V] (also used for lookups), and only
//    the last position's logits are computed;
//  - decode attention of one query against T cached keys: per-head scores by a reduction,
//    scores[h, t] = Σ_d (K ⊙ q)[t, h·D + d]; then p [H, T] · V [T, C] and a head mask Sᵀ [H, C]
//    keeps each head's own columns — plain 2-D ops, no per-head loop;
//  - prefill attention loops over heads with 2-D matmuls; a prompt can be fed in chunks (extend);
//  - with the native addon (nativeOpsActive()), decode steps and prompts (one or several) take one
//    path, forwardFused: a few fused native ops per layer instead of ~80 small tfjs ops: residual
//    add + LayerNorm, matmul + GELU, and one causal attention call for all sequences over
//    per-sequence K/V buffers (KvCache.nk/nv) outside the heap, which it appends to in place;
//    the engine makes those calls directly (forwardDirect), without tfjs.
import * as tf from '@tensorflow/tfjs';
import { headSize, type GptConfig } from '../nn/config.js';
import { checkIds } from '../nn/gpt.js';
import type { NativeAddon } from '../native/index.js';
import { nativeAddon, nativeOpsActive, packedWeight, tensorView } from '../native/kernels.js';
import type { GptParams } from '../nn/params.js';
import { engineTensorsFromParams } from './weights.js';

/**
 * Per-sequence keys and values for every layer. Each layer's rows are a large
 * block `k`/`v` [Tb, C] plus a short tail `kTail`/`vTail` [Tt, C] that grows by one row per
 * step and is merged into the block every TAIL_ROWS steps: appending to the whole cache each step
 * (a concat copies everything) cost ~1 ms per layer at 400 tokens.
 * With the native fused ops the cache is instead `nk`/`nv`: per layer one buffer (plain memory,
 * freed by the GC), head-major [heads][capacity][head size] so that each head's rows are
 * contiguous for the attention kernel; rows from `length` on are unused. The decode attention
 * writes each step's row in place; the capacity doubles when full.
 */
export interface KvCache {
  id: number;
  k: tf.Tensor2D[];
  v: tf.Tensor2D[];
  kTail: Array<tf.Tensor2D | null>;
  vTail: Array<tf.Tensor2D | null>;
  nk?: Float32Array[];
  nv?: Float32Array[];
  length: number;
}

const TAIL_ROWS = 32;
/** Released KV buffers kept for reuse (Engine.poolKv): eight 64-row GPT-1 caches. */
const KV_POOL_BYTES = 64 * 2 ** 20;

/** Frees a cache's tensors (engine.release also keeps its native buffers for reuse). */
export function disposeCache(c: KvCache): void {
  for (const t of [...c.k, ...c.v, ...c.kTail, ...c.vTail]) t?.dispose();
  c.k = [];
  c.v = [];
  c.kTail = [];
  c.vTail = [];
  if (c.nk) c.nk = c.nv = [];
}

/** What the batcher needs from an engine. */
export interface InferenceEngine {
  readonly config: GptConfig;
  /**
   * `types` (optional, same length as `ids`): token types, e.g. CDial-GPT's speaker ids; each adds
   * the embedding of that token id to its position's input (HF OpenAIGPTModel's token_type_ids).
   */
  prefill(ids: number[], types?: number[]): { cache: KvCache; logits: Float32Array };
  /**
   * Several prompts at once (each its own new cache; no attention across prompts): the weight
   * matmuls run on all their rows together, so the weights are read once. Same results as one
   * `prefill` per prompt.
   */
  prefillMany(prompts: number[][], types?: Array<number[] | undefined>): Array<{ cache: KvCache; logits: Float32Array }>;
  /** Feeds several more tokens to an existing cache (chunked prefill); logits of the last one. */
  extend(cache: KvCache, ids: number[], types?: number[]): Float32Array;
  /**
   * One decode step for every item. `into` (optional, at least items x vocabulary floats): the
   * logits may be written there and returned as views of it, valid until the caller reuses it —
   * the batcher's way to spare a vocabulary-sized allocation per sequence and step (1.3 MB at
   * batch 8 for GPT-1, and the garbage collections that follow).
   */
  step(items: StepItem[], into?: Float32Array): Float32Array[];
  release(cache: KvCache): void;
  warmUp(): void;
  dispose(): void;
}

/** One sequence's token for a decode step, with its token type (e.g. the replying speaker) if any. */
export interface StepItem {
  cache: KvCache;
  token: number;
  tokenType?: number;
}

const SQRT_2_OVER_PI_X2 = 2 * Math.sqrt(2 / Math.PI);

function gelu(x: tf.Tensor2D): tf.Tensor2D {
  // tanh-GELU via sigmoid (same function; wasm sigmoid is much faster than tanh)
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), SQRT_2_OVER_PI_X2);
  return tf.mul(x, tf.sigmoid(inner));
}

interface Block {
  qkvW: tf.Tensor2D;
  qkvB: tf.Tensor1D;
  projW: tf.Tensor2D;
  projB: tf.Tensor1D;
  ln1G: tf.Tensor1D;
  ln1B: tf.Tensor1D;
  fcW: tf.Tensor2D;
  fcB: tf.Tensor1D;
  fc2W: tf.Tensor2D;
  fc2B: tf.Tensor1D;
  ln2G: tf.Tensor1D;
  ln2B: tf.Tensor1D;
}

/** One forwardFused pass: the caches, their new tokens, and what follows from them. */
interface FusedPass {
  caches: KvCache[];
  ids: number[][];
  /** per cache, the token types of its new rows (undefined: none) */
  types: Array<number[] | undefined>;
  /** each cache's length before the pass */
  lengths: number[];
  /** new rows per cache */
  counts: number[];
  /** each cache's last new row among all the pass's rows */
  lastRows: number[];
  /** new rows in all */
  rows: number;
  scale: number;
}

export class Engine implements InferenceEngine {
  readonly config: GptConfig;
  private readonly blocks: Block[] = [];
  /** the transposed token embedding [C, V] */
  private readonly wteT: tf.Tensor2D;
  private readonly wpe: tf.Tensor2D;
  /** heads, width */
  private readonly hs: number;
  private readonly cs: number;
  /** head mask [H, C]: row h is 1 on head h's columns (decode attention) */
  private readonly sT: tf.Tensor2D;
  private readonly all: tf.Tensor[] = [];
  private nextId = 1;
  private readonly kvPool = new Map<number, Array<{ nk: Float32Array[]; nv: Float32Array[]; bytes: number }>>();
  private kvPooledBytes = 0;
  private disposed = false;
  /** forwardDirect's activations, grown to the largest pass so far (rows of C, 3C and nInner floats) */
  private scratch?: { rows: number; x: Float32Array; n: Float32Array; att: Float32Array; tmp: Float32Array; qkv: Float32Array; h: Float32Array };

  /**
   * `tensors` are in the engine's layout as made by weights.ts (loadEngineWeights /
   * engineTensorsFromParams); the engine owns them.
   */
  constructor(config: GptConfig, tensors: Map<string, tf.Tensor>) {
    this.config = config;
    const get = <T extends tf.Tensor>(n: string): T => {
      const t = tensors.get(n);
      if (!t) throw new Error(`engine: missing tensor ${n}`);
      this.all.push(t);
      return t as T;
    };
    this.wteT = get('wteT');
    this.wpe = get('positions_embed.weight');
    for (let i = 0; i < config.nLayer; i++) {
      const h = (s: string) => get<tf.Tensor>(`h.${i}.${s}`);
      this.blocks.push({
        qkvW: h('attn.c_attn.weight') as tf.Tensor2D,
        qkvB: h('attn.c_attn.bias') as tf.Tensor1D,
        projW: h('attn.c_proj.weight') as tf.Tensor2D,
        projB: h('attn.c_proj.bias') as tf.Tensor1D,
        ln1G: h('ln_1.weight') as tf.Tensor1D,
        ln1B: h('ln_1.bias') as tf.Tensor1D,
        fcW: h('mlp.c_fc.weight') as tf.Tensor2D,
        fcB: h('mlp.c_fc.bias') as tf.Tensor1D,
        fc2W: h('mlp.c_proj.weight') as tf.Tensor2D,
        fc2B: h('mlp.c_proj.bias') as tf.Tensor1D,
        ln2G: h('ln_2.weight') as tf.Tensor1D,
        ln2B: h('ln_2.bias') as tf.Tensor1D,
      });
    }
    this.hs = config.nHead;
    this.cs = config.nEmbd;
    const D = headSize(config);
    const mask = new Float32Array(this.hs * this.cs);
    for (let c = 0; c < this.cs; c++) mask[Math.floor(c / D) * this.cs + c] = 1;
    this.sT = tf.tensor2d(mask, [this.hs, this.cs]);
  }

  /** An engine from in-memory parameters (copies them; `params` stay the caller's). */
  static fromParams(params: GptParams): Engine {
    return new Engine(params.config, engineTensorsFromParams(params));
  }

  /** Runs one prefill and one decode step so that XNNPACK packs the weights now, not on the first request. */
  warmUp(): void {
    const { cache } = this.prefill([0, 0]);
    this.step([{ cache, token: 0 }]);
    this.release(cache);
  }

  release(cache: KvCache): void {
    if (cache.nk?.length && cache.nv) this.poolKv(cache.nk, cache.nv);
    disposeCache(cache);
  }

  /**
   * Keeps a released cache's native buffers for the next cache of the same capacity: allocating
   * and first touching ~5 MB per new GPT-1 cache (12 layers x K and V x 64 rows) took 2-18 ms
   * for 8 prompts, a tenth of their prefill. At most KV_POOL_BYTES are kept.
   */
  private poolKv(nk: Float32Array[], nv: Float32Array[]): void {
    const bytes = 2 * nk.reduce((a, b) => a + b.byteLength, 0);
    if (this.kvPooledBytes + bytes > KV_POOL_BYTES) return;
    const cap = nk[0].length / this.cs;
    let list = this.kvPool.get(cap);
    if (!list) this.kvPool.set(cap, (list = []));
    list.push({ nk, nv, bytes });
    this.kvPooledBytes += bytes;
  }

  private layerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D): tf.Tensor2D {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.config.layerNormEpsilon))), g), b);
  }

  private dense(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D, activation?: 'gelu'): tf.Tensor2D {
    const y = tf.fused.matMul({ a: x, b: w, bias: b }) as tf.Tensor2D;
    return activation === 'gelu' ? gelu(y) : y;
  }

  /**
   * Token embeddings [N, C] (+ positions, + the embeddings of the token types where given):
   * columns of the transposed table.
   */
  private embed(ids: number[], positions: tf.Tensor2D, types?: Array<number | undefined>): tf.Tensor2D {
    const N = ids.length;
    const typed = types?.some((t) => t !== undefined) ? types : undefined;
    // Token and type rows come from the same table: one lookup for both.
    const all = typed ? [...ids, ...typed.map((t) => t ?? 0)] : ids;
    const rows = tf.transpose(tf.gather(this.wteT, tf.tensor1d(all, 'int32'), 1)) as tf.Tensor2D;
    if (!typed) return tf.add(rows, positions);
    const C = rows.shape[1];
    const has = tf.tensor2d(typed.map((t) => (t === undefined ? 0 : 1)), [N, 1]);
    const typeRows = tf.mul(tf.slice(rows, [N, 0], [N, C]), has);
    return tf.add(tf.add(tf.slice(rows, [0, 0], [N, C]), typeRows), positions);
  }

  /** attn.c_proj + residual LayerNorm, then the MLP likewise. */
  private finishBlock(b: Block, x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D {
    const a = tf.add(this.dense(y, b.projW), b.projB);
    const n = this.layerNorm(tf.add(x, a), b.ln1G, b.ln1B);
    const m = tf.add(this.dense(this.dense(n, b.fcW, b.fcB, 'gelu'), b.fc2W), b.fc2B);
    return this.layerNorm(tf.add(n, m), b.ln2G, b.ln2B);
  }

  /** Logits [N, V]. */
  private lmHead(x: tf.Tensor2D): Float32Array[] {
    const N = x.shape[0];
    const l = tf.tidy(() => tf.matMul(x, this.wteT));
    const full = l.dataSync() as Float32Array;
    l.dispose();
    const V = this.config.vocabSize;
    return Array.from({ length: N }, (_, i) => full.subarray(i * V, (i + 1) * V));
  }

  /**
   * Throws unless `ids` can be fed after `cache` (or as a new prompt): engine alive, ids in the
   * vocabulary, within the context.
   */
  validatePrefill(ids: number[], cache?: KvCache, types?: number[]): void {
    if (types !== undefined) {
      if (types.length !== ids.length) throw new Error(`${types.length} token types for ${ids.length} tokens`);
      checkIds(this.config, [types]);
    }
    this.check();
    checkIds(this.config, [ids]);
    const T0 = cache?.length ?? 0;
    if (T0 + ids.length > this.config.nPositions) {
      throw new Error(`${T0} cached + ${ids.length} new tokens exceed the context of ${this.config.nPositions}`);
    }
  }

  validateStep(items: StepItem[]): void {
    this.check();
    const { nPositions: P, vocabSize: V } = this.config;
    for (const it of items) {
      if (it.cache.length >= P) throw new Error(`sequence is full (${P} positions)`);
      if (!Number.isInteger(it.token) || it.token < 0 || it.token >= V) throw new Error(`token id ${it.token} is outside the vocabulary`);
      if (it.tokenType !== undefined && (!Number.isInteger(it.tokenType) || it.tokenType < 0 || it.tokenType >= V)) {
        throw new Error(`token type ${it.tokenType} is outside the vocabulary`);
      }
    }
  }

  /**
   * Runs the prompt; returns a new cache (caller releases it) and the logits of the last position.
   * `ids` must fit the context. `id` names the cache.
   */
  prefill(ids: number[], types?: number[]): { cache: KvCache; logits: Float32Array } {
    this.validatePrefill(ids, undefined, types);
    const cache: KvCache = { id: this.nextId++, k: [], v: [], kTail: [], vTail: [], length: 0 };
    const logits = this.fusedFor([cache]) ? this.forwardFused([cache], [ids], [types])[0] : this.run(cache, ids, types);
    return { cache, logits };
  }

  /**
   * Prefill of several prompts in one pass (forwardFused): embeddings, weight matmuls, LayerNorm
   * and GELU run on the concatenated rows (the weights are read once for all prompts); attention
   * is per prompt. Without the native fused ops, or for one prompt, it is one `prefill` per
   * prompt. Caller releases the caches.
   */
  prefillMany(prompts: number[][], types: Array<number[] | undefined> = []): Array<{ cache: KvCache; logits: Float32Array }> {
    prompts.forEach((ids, i) => this.validatePrefill(ids, undefined, types[i]));
    if (prompts.length <= 1 || !nativeOpsActive()) return prompts.map((ids, i) => this.prefill(ids, types[i]));
    const caches = prompts.map((): KvCache => ({ id: this.nextId++, k: [], v: [], kTail: [], vTail: [], length: 0 }));
    const logits = this.forwardFused(caches, prompts, prompts.map((_, i) => types[i]));
    return caches.map((cache, i) => ({ cache, logits: logits[i] }));
  }

  /** Feeds `ids` after the cached tokens (chunked prefill); returns the last position's logits. */
  extend(cache: KvCache, ids: number[], types?: number[]): Float32Array {
    this.validatePrefill(ids, cache, types);
    return this.fusedFor([cache]) ? this.forwardFused([cache], [ids], [types])[0] : this.run(cache, ids, types);
  }

  /**
   * The multi-token pass: new tokens attend to the cached ones and causally to each other.
   * Attention loops over heads with plain 2-D matmuls. The cache is updated only on success.
   */
  private run(cache: KvCache, ids: number[], types?: number[]): Float32Array {
    const { nEmbd } = this.config;
    const D = headSize(this.config);
    const H = this.hs;
    const C = this.cs;
    const T = ids.length;
    const T0 = cache.length;
    const S = T0 + T;
    const scale = 1 / Math.sqrt(D);
    // Row i (position T0 + i) sees columns 0..T0+i.
    const maskData = new Float32Array(T * S);
    for (let i = 0; i < T; i++) maskData.fill(-1e9, i * S + T0 + i + 1, (i + 1) * S);
    // One tidy per layer (and per head): only the running activations, not every intermediate of
    // the whole pass, are alive at once — the wasm heap grows to the peak and never shrinks.
    let x = tf.tidy(() => this.embed(ids, tf.slice(this.wpe, [T0, 0], [T, nEmbd]), types));
    const mask = tf.tensor2d(maskData, [T, S]);
    const ks: tf.Tensor2D[] = [];
    const vs: tf.Tensor2D[] = [];
    try {
      this.blocks.forEach((b, l) => {
        const [nx, kAll, vAll] = tf.tidy(() => {
          const qkv = this.dense(x, b.qkvW, b.qkvB); // [T, 3C]
          const q = tf.mul(tf.slice(qkv, [0, 0], [T, C]), scale);
          const kNew = tf.slice(qkv, [0, C], [T, C]) as tf.Tensor2D;
          const vNew = tf.slice(qkv, [0, 2 * C], [T, C]) as tf.Tensor2D;
          const past = (a: tf.Tensor2D | undefined, tail: tf.Tensor2D | null | undefined) => [a, tail].filter((t): t is tf.Tensor2D => !!t);
          const k = T0 ? tf.concat([...past(cache.k[l], cache.kTail[l]), kNew], 0) as tf.Tensor2D : kNew; // [S, C]
          const v = T0 ? tf.concat([...past(cache.v[l], cache.vTail[l]), vNew], 0) as tf.Tensor2D : vNew;
          const qh = tf.transpose(tf.reshape(q, [T, H, D]), [1, 0, 2]); // [H, T, D]
          const kh = tf.transpose(tf.reshape(k, [S, H, D]), [1, 2, 0]); // [H, D, S]
          const vh = tf.transpose(tf.reshape(v, [S, H, D]), [1, 0, 2]); // [H, S, D]
          const heads: tf.Tensor2D[] = [];
          for (let h = 0; h < H; h++) {
            heads.push(tf.tidy(() => {
              const idx = tf.tensor1d([h], 'int32');
              const w = tf.add(tf.matMul(tf.reshape(tf.gather(qh, idx), [T, D]), tf.reshape(tf.gather(kh, idx), [D, S])), mask);
              return tf.matMul(tf.softmax(w), tf.reshape(tf.gather(vh, idx), [S, D]));
            }));
          }
          return [this.finishBlock(b, x, H === 1 ? heads[0] : tf.concat(heads, 1)), k, v] as const;
        });
        x.dispose();
        x = nx;
        ks.push(kAll);
        vs.push(vAll);
      });
    } catch (err) {
      x.dispose();
      for (const t of [...ks, ...vs]) t.dispose();
      throw err;
    } finally {
      mask.dispose();
    }
    const last = tf.tidy(() => tf.gather(x, tf.tensor1d([T - 1], 'int32')) as tf.Tensor2D);
    x.dispose();
    let logits: Float32Array;
    try {
      [logits] = this.lmHead(last);
    } catch (err) {
      for (const t of [...ks, ...vs]) t.dispose();
      throw err;
    } finally {
      last.dispose();
    }
    // Commit: the whole sequence becomes the cache block.
    for (const t of [...cache.k, ...cache.v, ...cache.kTail, ...cache.vTail]) t?.dispose();
    cache.k = ks;
    cache.v = vs;
    cache.kTail = ks.map(() => null);
    cache.vTail = vs.map(() => null);
    cache.length = S;
    return logits;
  }

  /**
   * One decode step for several sequences at once: appends `token` to each cache (in place: the
   * cache's tensors are replaced) and returns each sequence's next-token logits.
   */
  step(items: StepItem[], into?: Float32Array): Float32Array[] {
    this.validateStep(items);
    const B = items.length;
    if (B === 0) return [];
    if (this.fusedFor(items.map((it) => it.cache))) {
      const types = items.map((it) => (it.tokenType === undefined ? undefined : [it.tokenType]));
      return this.forwardFused(items.map((it) => it.cache), items.map((it) => [it.token]), types, into);
    }
    const C = this.cs;
    const scale = 1 / Math.sqrt(headSize(this.config));
    let x = tf.tidy(() => this.embed(items.map((i) => i.token), tf.gather(this.wpe, tf.tensor1d(items.map((i) => i.cache.length), 'int32')), items.map((i) => i.tokenType)));
    // Replaced cache tensors are disposed only after the whole step succeeded.
    const old: tf.Tensor[] = [];
    const made: tf.Tensor[] = [];
    const D = headSize(this.config);
    const H = this.hs;
    /** [H, rows] scores of q [1, C] against keys K [rows, C]: per-head dot products by reduction. */
    const scoresOf = (K: tf.Tensor2D, q: tf.Tensor2D): tf.Tensor2D =>
      tf.transpose(tf.reshape(tf.sum(tf.reshape(tf.mul(K, q), [K.shape[0] * H, D]), -1), [K.shape[0], H]));
    try {
      this.blocks.forEach((b, l) => {
        const nx = tf.tidy(() => {
          const qkv = this.dense(x, b.qkvW, b.qkvB); // [B, 3C]
          const q = tf.mul(tf.slice(qkv, [0, 0], [B, C]), scale);
          const k = tf.slice(qkv, [0, C], [B, C]);
          const v = tf.slice(qkv, [0, 2 * C], [B, C]);
          const rows: tf.Tensor2D[] = [];
          for (let i = 0; i < B; i++) {
            const cache = items[i].cache;
            const idx = tf.tensor1d([i], 'int32');
            const kt0 = cache.kTail[l];
            const vt0 = cache.vTail[l];
            const kt = tf.keep(kt0 ? tf.concat([kt0, tf.gather(k, idx)], 0) : tf.gather(k, idx)) as tf.Tensor2D;
            const vt = tf.keep(vt0 ? tf.concat([vt0, tf.gather(v, idx)], 0) : tf.gather(v, idx)) as tf.Tensor2D;
            made.push(kt, vt);
            // Per sequence: its [T, C] temporaries are freed before the next one's are made.
            rows.push(tf.tidy(() => {
              const qi = tf.gather(q, idx) as tf.Tensor2D;
              const kb = cache.k[l];
              const vb = cache.v[l];
              const tb = kb.shape[0];
              const p = tf.softmax(tf.concat([scoresOf(kb, qi), scoresOf(kt, qi)], 1)); // [H, T]
              const pv = tf.add(
                tf.matMul(tf.slice(p, [0, 0], [H, tb]), vb),
                tf.matMul(tf.slice(p, [0, tb], [H, kt.shape[0]]), vt),
              ); // [H, C]: row h holds head h's output in its own columns
              return tf.sum(tf.mul(pv, this.sT), 0, true) as tf.Tensor2D; // [1, C]
            }));
          }
          return this.finishBlock(b, x, B === 1 ? rows[0] : tf.concat(rows, 0));
        });
        x.dispose();
        x = nx;
      });
    } catch (err) {
      x.dispose();
      for (const t of made) t.dispose();
      throw err;
    }
    // Commit: new tails replace old ones; full tails are merged into the block.
    items.forEach((it, i) => {
      const c = it.cache;
      for (let l = 0; l < this.blocks.length; l++) {
        // `made` is layer-major: [layer][sequence][k, v]
        const kt = made[(l * B + i) * 2] as tf.Tensor2D;
        const vt = made[(l * B + i) * 2 + 1] as tf.Tensor2D;
        old.push(...[c.kTail[l], c.vTail[l]].filter((t): t is tf.Tensor2D => t !== null));
        if (kt.shape[0] >= TAIL_ROWS) {
          old.push(c.k[l], c.v[l], kt, vt);
          c.k[l] = tf.concat([c.k[l], kt], 0);
          c.v[l] = tf.concat([c.v[l], vt], 0);
          c.kTail[l] = null;
          c.vTail[l] = null;
        } else {
          c.kTail[l] = kt;
          c.vTail[l] = vt;
        }
      }
      c.length += 1;
    });
    for (const t of old) t.dispose();
    try {
      return this.lmHead(x);
    } finally {
      x.dispose();
    }
  }

  /**
   * Whether these caches are (to be) used with the native fused ops: when the ops are active. A
   * cache keeps the layout it was made with; mixing is refused (only tests switch kernels).
   */
  private fusedFor(caches: KvCache[]): boolean {
    const fused = nativeOpsActive();
    for (const c of caches) {
      if (c.length > 0 && !!c.nk !== fused) throw new Error(`this sequence's KV cache was made ${c.nk ? 'with' : 'without'} the native fused ops, which are now ${fused ? 'on' : 'off'}`);
    }
    return fused;
  }

  /** Grows a fused-layout cache's buffers to hold at least `rows` rows (capacity doubles, up to the context). */
  private reserve(cache: KvCache, rows: number): void {
    const C = this.cs;
    const L = this.blocks.length;
    if (!cache.nk || cache.nk.length !== L) {
      cache.nk = [];
      cache.nv = [];
    }
    const have = cache.nk.length ? cache.nk[0].length / C : 0;
    if (have >= rows && cache.nk.length === L) return;
    let cap = Math.max(64, have);
    while (cap < rows) cap *= 2;
    cap = Math.min(cap, Math.max(rows, this.config.nPositions));
    const pooled = !cache.nk.length ? this.kvPool.get(cap)?.pop() : undefined;
    if (pooled) {
      this.kvPooledBytes -= pooled.bytes;
      cache.nk = pooled.nk;
      cache.nv = pooled.nv;
      return;
    }
    const D = C / this.hs;
    if (cache.nk.length === L) this.poolKv([...cache.nk], [...cache.nv!]); // the outgrown buffers
    // One block for every layer's keys and values: one allocation instead of 24. Not on huge
    // pages: faulting those in (the kernel compacts memory for them) costs more than it gains.
    const block = new Float32Array(2 * L * cap * C);
    const grow = (old: Float32Array | undefined, i: number) => {
      const b = block.subarray(i * cap * C, (i + 1) * cap * C);
      // each head's first `length` rows move to the head's new block
      if (old) for (let h = 0; h < this.hs; h++) b.set(old.subarray(h * have * D, (h * have + cache.length) * D), h * cap * D);
      return b;
    };
    for (let l = 0; l < L; l++) {
      cache.nk[l] = grow(cache.nk[l], 2 * l);
      cache.nv![l] = grow(cache.nv![l], 2 * l + 1);
    }
  }

  /**
   * The pass with the native fused ops, for decode steps and prompts alike: each cache's new
   * tokens attend to its cached rows and causally to each other. Per layer one dense, one native
   * attention call for all sequences (it writes the new keys and values into the cache buffers,
   * past `length`: a failed pass leaves every cache as it was) and the fused block end; the LM
   * head on each sequence's last row. Returns each sequence's next-token logits.
   */
  private forwardFused(caches: KvCache[], ids: number[][], types: Array<number[] | undefined>, into?: Float32Array): Float32Array[] {
    const lengths = caches.map((c) => c.length);
    const counts = ids.map((t) => t.length);
    caches.forEach((c, i) => this.reserve(c, lengths[i] + counts[i]));
    // Each sequence's last row (the only ones the LM head needs).
    let row = -1;
    const lastRows = counts.map((n) => (row += n));
    const pass: FusedPass = { caches, ids, types, lengths, counts, lastRows, rows: row + 1, scale: 1 / Math.sqrt(headSize(this.config)) };
    const addon = nativeAddon();
    if (!addon) throw new Error('the native fused ops are not available');
    const logits = this.forwardDirect(addon, pass, into);
    caches.forEach((c, i) => (c.length = lengths[i] + counts[i]));
    return logits;
  }

  /**
   * forwardFused without tfjs: the native calls made directly on packed weights, heap views of the small parameters and reused activation buffers.
   * A decode step is ~85 addon calls; through tfjs each cost ~40 us of dispatch (~20% of a step).
   */
  private forwardDirect(addon: NativeAddon, { caches, ids, types, lengths, counts, lastRows, rows, scale }: FusedPass, into?: Float32Array): Float32Array[] {
    const { nEmbd: C, nHead: H, nInner: F, vocabSize: V, layerNormEpsilon: eps } = this.config;
    if (!this.scratch || this.scratch.rows < rows) {
      const f = (w: number) => new Float32Array(rows * w);
      this.scratch = { rows, x: f(C), n: f(C), att: f(C), tmp: f(C), qkv: f(3 * C), h: f(F) };
    }
    const { x, n, att, tmp, qkv, h } = this.scratch;
    // Packing (first use only) allocates no heap memory: the views below stay valid throughout.
    const packed = this.blocks.map((b) => [b.qkvW, b.projW, b.fcW, b.fc2W].map((w) => packedWeight(w)));
    const head = packedWeight(this.wteT);
    const wteT = tensorView(this.wteT);
    const wpe = tensorView(this.wpe);
    let r = 0;
    ids.forEach((seq, i) => {
      seq.forEach((id, j) => {
        const p = (lengths[i] + j) * C;
        for (let c = 0; c < C; c++) x[r * C + c] = wteT[c * V + id] + wpe[p + c];
        const type = types[i]?.[j];
        if (type !== undefined) for (let c = 0; c < C; c++) x[r * C + c] += wteT[c * V + type];
        r++;
      });
    });
    this.blocks.forEach((b, l) => {
      const [qkvW, projW, fcW, fc2W] = packed[l];
      addon.matmul(x, qkvW, qkv, tensorView(b.qkvB), 1, rows, C, 3 * C, 0, 0, 0, 0, 0, 1);
      const ks = caches.map((c) => c.nk![l]);
      const vs = caches.map((c) => c.nv![l]);
      addon.decodeAttention(qkv, att, ks, vs, lengths, C, H, scale, counts);
      addon.matmul(att, projW, tmp, null, 1, rows, C, C, 0, 0, 0, 0, 0, 1);
      addon.addLayerNorm(x, tmp, tensorView(b.projB), tensorView(b.ln1G), tensorView(b.ln1B), n, rows, C, eps);
      addon.matmul(n, fcW, h, tensorView(b.fcB), 1, rows, C, F, 0, 0, 0, 0, 2, 1);
      addon.matmul(h, fc2W, tmp, null, 1, rows, F, C, 0, 0, 0, 0, 0, 1);
      addon.addLayerNorm(n, tmp, tensorView(b.fc2B), tensorView(b.ln2G), tensorView(b.ln2B), x, rows, C, eps);
    });
    // The LM head on each sequence's last row.
    let last = x;
    if (rows > caches.length) {
      last = att;
      lastRows.forEach((r, i) => att.set(x.subarray(r * C, (r + 1) * C), i * C));
    }
    const B = caches.length;
    const logits = into && into.length >= B * V ? into : new Float32Array(B * V);
    addon.matmul(last, head, logits, null, 1, B, C, V, 0, 0, 0, 0, 0, 1);
    return Array.from({ length: B }, (_, i) => logits.subarray(i * V, (i + 1) * V));
  }

  private check(): void {
    if (this.disposed) throw new Error('engine disposed');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.kvPool.clear();
    this.kvPooledBytes = 0;
    this.sT.dispose();
    for (const t of this.all) t.dispose();
  }
}
