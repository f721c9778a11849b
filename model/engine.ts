// Fast inference for GPT-1 on tfjs (tuned for the wasm backend; see /work/shared/notes/tfjs.md):
// prefill of a prompt, then batched one-token decode steps over sequences with per-sequence
// KV caches of different lengths (continuous batching). Numerically the same model as gpt.ts
// (tests compare them); written differently for speed:
//  - every weight matmul is a plain 2-D fused matmul [rows, in] x [in, out] (XNNPACK; batched or
//    transposed matmuls fall back to a slow scalar loop on wasm);
//  - the tied LM head uses a transposed copy of the token embedding [C, V], and only the last
//    position's logits are computed;
//  - decode attention of one query against T cached keys uses a head-indicator matrix S [C, H]:
//    scores[T,H] = (K ⊙ q) S, and the weighted values are 1ᵀ((pᵀ Sᵀ) ⊙ V) — all plain 2-D ops;
//  - prefill attention loops over heads with 2-D matmuls.
import * as tf from '@tensorflow/tfjs';
import { headSize, type GptConfig } from './config.js';
import { checkIds } from './gpt.js';
import type { GptParams } from './params.js';

/** Per-sequence keys and values for every layer, each [T, C]. */
export interface KvCache {
  k: tf.Tensor2D[];
  v: tf.Tensor2D[];
  length: number;
}

export function disposeCache(c: KvCache): void {
  for (const t of c.k) t.dispose();
  for (const t of c.v) t.dispose();
  c.k = [];
  c.v = [];
}

const SQRT_2_OVER_PI_X2 = 2 * Math.sqrt(2 / Math.PI);

function gelu(x: tf.Tensor2D): tf.Tensor2D {
  // tanh-GELU via sigmoid (same function; wasm sigmoid is much faster than tanh)
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), SQRT_2_OVER_PI_X2);
  return tf.mul(x, tf.sigmoid(inner));
}

export class Engine {
  readonly config: GptConfig;
  private readonly p: GptParams;
  /** token embedding transposed [C, V] for the LM head */
  private readonly wteT: tf.Tensor2D;
  /** head indicator [C, H] and its transpose [H, C] */
  private readonly s: tf.Tensor2D;
  private readonly sT: tf.Tensor2D;
  private readonly masks = new Map<number, tf.Tensor2D>();
  private disposed = false;

  /** Takes ownership of `params` (disposed with the engine). */
  constructor(params: GptParams) {
    this.p = params;
    this.config = params.config;
    const { nEmbd: C, nHead: H } = this.config;
    const D = headSize(this.config);
    this.wteT = tf.tidy(() => tf.transpose(params.tokensEmbed) as tf.Tensor2D);
    // The embedding lookup reads columns of wteT instead: the [V, C] copy (124 MB for GPT-1) goes.
    params.tokensEmbed.dispose();
    const ind = new Float32Array(C * H);
    for (let c = 0; c < C; c++) ind[c * H + Math.floor(c / D)] = 1;
    this.s = tf.tensor2d(ind, [C, H]);
    this.sT = tf.tidy(() => tf.transpose(this.s) as tf.Tensor2D);
  }

  /** Runs one prefill and one decode step so that XNNPACK packs the weights now, not on the first request. */
  warmUp(): void {
    const { cache } = this.prefill([0, 0]);
    this.step([{ cache, token: 0 }]);
    disposeCache(cache);
  }

  private mask(T: number): tf.Tensor2D {
    let m = this.masks.get(T);
    if (!m) {
      const a = new Float32Array(T * T);
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) a[i * T + j] = -1e9;
      m = tf.tensor2d(a, [T, T]);
      // Cached (kept beyond the caller's tidy) for the common lengths only.
      if (this.masks.size < 64) this.masks.set(T, tf.keep(m));
    }
    return m;
  }

  /** Token embeddings [N, C]: columns of the transposed table. */
  private embed(ids: number[]): tf.Tensor2D {
    return tf.transpose(tf.gather(this.wteT, tf.tensor1d(ids, 'int32'), 1));
  }

  private layerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D): tf.Tensor2D {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.config.layerNormEpsilon))), g), b);
  }

  private dense(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, activation?: 'gelu'): tf.Tensor2D {
    const y = tf.fused.matMul({ a: x, b: w, bias: b }) as tf.Tensor2D;
    return activation === 'gelu' ? gelu(y) : y;
  }

  /** The MLP half of a block and the two residual LayerNorms, on rows x [N, C]. */
  private finishBlock(l: number, x: tf.Tensor2D, a: tf.Tensor2D): tf.Tensor2D {
    const b = this.p.blocks[l];
    const n = this.layerNorm(tf.add(x, a), b.ln1G, b.ln1B);
    const m = this.dense(this.dense(n, b.fcW, b.fcB, 'gelu'), b.mlpProjW, b.mlpProjB);
    return this.layerNorm(tf.add(n, m), b.ln2G, b.ln2B);
  }

  /**
   * Runs the prompt; returns a new cache (caller owns it: disposeCache) and the logits of the
   * last position. `ids` must fit the context.
   */
  prefill(ids: number[]): { cache: KvCache; logits: Float32Array } {
    this.check();
    checkIds(this.config, [ids]);
    const { nEmbd: C, nHead: H, nLayer: L } = this.config;
    const D = headSize(this.config);
    const T = ids.length;
    const scale = 1 / Math.sqrt(D);
    const out = tf.tidy(() => {
      let x = tf.add(
        this.embed(ids),
        tf.slice(this.p.positionsEmbed, [0, 0], [T, C]),
      ) as tf.Tensor2D;
      const ks: tf.Tensor2D[] = [];
      const vs: tf.Tensor2D[] = [];
      const mask = this.mask(T);
      for (let l = 0; l < L; l++) {
        const b = this.p.blocks[l];
        const qkv = this.dense(x, b.cAttnW, b.cAttnB); // [T, 3C]
        const q = tf.mul(tf.slice(qkv, [0, 0], [T, C]), scale);
        const k = tf.slice(qkv, [0, C], [T, C]) as tf.Tensor2D;
        const v = tf.slice(qkv, [0, 2 * C], [T, C]) as tf.Tensor2D;
        ks.push(k);
        vs.push(v);
        const qh = tf.transpose(tf.reshape(q, [T, H, D]), [1, 0, 2]); // [H, T, D]
        const kh = tf.transpose(tf.reshape(k, [T, H, D]), [1, 2, 0]); // [H, D, T]
        const vh = tf.transpose(tf.reshape(v, [T, H, D]), [1, 0, 2]); // [H, T, D]
        const heads: tf.Tensor2D[] = [];
        for (let h = 0; h < H; h++) {
          const idx = tf.tensor1d([h], 'int32');
          const w = tf.add(tf.matMul(tf.reshape(tf.gather(qh, idx), [T, D]), tf.reshape(tf.gather(kh, idx), [D, T])), mask);
          heads.push(tf.matMul(tf.softmax(w), tf.reshape(tf.gather(vh, idx), [T, D])));
        }
        const a = this.dense(tf.concat(heads, 1), b.cProjW, b.cProjB);
        x = this.finishBlock(l, x, a);
      }
      const last = tf.gather(x, tf.tensor1d([T - 1], 'int32'));
      return { logits: tf.matMul(last, this.wteT), ks, vs };
    });
    const logits = out.logits.dataSync() as Float32Array;
    out.logits.dispose();
    return { cache: { k: out.ks, v: out.vs, length: T }, logits };
  }

  /**
   * One decode step for several sequences at once: appends `token` to each cache (in place: the
   * cache's tensors are replaced) and returns each sequence's next-token logits.
   */
  step(items: Array<{ cache: KvCache; token: number }>): Float32Array[] {
    this.check();
    const B = items.length;
    if (B === 0) return [];
    const { nEmbd: C, nLayer: L, nPositions: P, vocabSize: V } = this.config;
    const scale = 1 / Math.sqrt(headSize(this.config));
    for (const it of items) {
      if (it.cache.length >= P) throw new Error(`sequence is full (${P} positions)`);
      if (!Number.isInteger(it.token) || it.token < 0 || it.token >= V) throw new Error(`token id ${it.token} is outside the vocabulary`);
    }
    const out = tf.tidy(() => {
      let x = tf.add(
        this.embed(items.map((i) => i.token)),
        tf.gather(this.p.positionsEmbed, tf.tensor1d(items.map((i) => i.cache.length), 'int32')),
      ) as tf.Tensor2D;
      const newK: tf.Tensor2D[][] = items.map(() => []);
      const newV: tf.Tensor2D[][] = items.map(() => []);
      for (let l = 0; l < L; l++) {
        const b = this.p.blocks[l];
        const qkv = this.dense(x, b.cAttnW, b.cAttnB); // [B, 3C]
        const q = tf.mul(tf.slice(qkv, [0, 0], [B, C]), scale);
        const k = tf.slice(qkv, [0, C], [B, C]);
        const v = tf.slice(qkv, [0, 2 * C], [B, C]);
        const rows: tf.Tensor2D[] = [];
        for (let i = 0; i < B; i++) {
          const idx = tf.tensor1d([i], 'int32');
          const K = tf.concat([items[i].cache.k[l], tf.gather(k, idx)], 0) as tf.Tensor2D; // [T, C]
          const Vv = tf.concat([items[i].cache.v[l], tf.gather(v, idx)], 0) as tf.Tensor2D;
          newK[i].push(K);
          newV[i].push(Vv);
          const scores = tf.matMul(tf.mul(K, tf.gather(q, idx)), this.s); // [T, H]
          const p = tf.softmax(tf.transpose(scores)); // [H, T]
          const weighted = tf.mul(tf.matMul(tf.transpose(p), this.sT), Vv); // [T, C]
          rows.push(tf.matMul(tf.ones([1, K.shape[0]]), weighted)); // [1, C]
        }
        const a = this.dense(B === 1 ? rows[0] : tf.concat(rows, 0), b.cProjW, b.cProjB);
        x = this.finishBlock(l, x, a);
      }
      return { logits: tf.matMul(x, this.wteT), newK, newV };
    });
    items.forEach((it, i) => {
      disposeCache(it.cache);
      it.cache.k = out.newK[i];
      it.cache.v = out.newV[i];
      it.cache.length += 1;
    });
    const flat = out.logits.dataSync() as Float32Array;
    out.logits.dispose();
    return items.map((_, i) => flat.subarray(i * V, (i + 1) * V));
  }

  private check(): void {
    if (this.disposed) throw new Error('engine disposed');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const [, t] of [['', this.wteT], ['', this.s], ['', this.sT]] as const) t.dispose();
    for (const m of this.masks.values()) m.dispose();
    for (const b of this.p.blocks) for (const t of Object.values(b)) (t as tf.Tensor).dispose();
    this.p.positionsEmbed.dispose();
  }
}
