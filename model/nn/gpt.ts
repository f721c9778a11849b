// GPT-1 (Radford et al. 2018) as the Hugging Face openai-gpt model computes it, in one readable
// page. Differentiable end to end (training calls it); fast batched generation with a KV cache
// lives in engine.ts and is tested against this file.
//
//   x = tokens_embed[ids] + positions_embed[0..T)            (dropout embd_pdrop when training)
//       (+ tokens_embed[types] with token types: CDial-GPT's speaker embeddings)
//   per block (post-LN, no final LayerNorm):
//     n = LayerNorm_1(x + Attn(x))
//     x = LayerNorm_2(n + MLP(n))
//   logits = x @ tokens_embed^T                               (LM head tied to the embedding)
import * as tf from '@tensorflow/tfjs';
import { headSize, type GptConfig } from './config.js';
import { causalMask, dropout, embed, gelu, layerNorm, linear } from './layers.js';
import type { BlockParams, GptParams } from './params.js';

export interface DropoutRates {
  embd: number;
  attn: number;
  resid: number;
}

export interface ForwardOptions {
  /** Enables dropout (rates from the config unless `dropout` overrides). */
  training?: boolean;
  /** One rate for all three places, or each separately. Ignored unless training. */
  dropout?: number | Partial<DropoutRates>;
  /** Seed for dropout masks (reproducible training steps). */
  seed?: number;
  /** Token types [B, T] (ids into the token table, as HF's token_type_ids), added to the input. */
  tokenTypes?: number[][];
}

export class InvalidTokensError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidTokensError';
  }
}

/** Checks a batch of token ids (rectangular, 1..nPositions long, each in [0, vocabSize)). */
export function checkIds(config: GptConfig, ids: number[][]): void {
  if (ids.length === 0) throw new InvalidTokensError('empty batch');
  const T = ids[0].length;
  if (T === 0) throw new InvalidTokensError('empty sequence');
  if (T > config.nPositions) throw new InvalidTokensError(`sequence of ${T} tokens exceeds the context of ${config.nPositions}`);
  for (const row of ids) {
    if (row.length !== T) throw new InvalidTokensError('all sequences in a batch must have the same length');
    for (const id of row) {
      if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
        throw new InvalidTokensError(`token id ${id} is outside the vocabulary [0, ${config.vocabSize})`);
      }
    }
  }
}

function rates(config: GptConfig, opts: ForwardOptions): DropoutRates {
  if (!opts.training) return { embd: 0, attn: 0, resid: 0 };
  const d = opts.dropout;
  if (typeof d === 'number') return { embd: d, attn: d, resid: d };
  return { embd: d?.embd ?? config.embdPdrop, attn: d?.attn ?? config.attnPdrop, resid: d?.resid ?? config.residPdrop };
}

/** Causal multi-head self-attention on x [B, T, C]. */
function attention(b: BlockParams, x: tf.Tensor3D, config: GptConfig, r: DropoutRates, seed?: number): tf.Tensor3D {
  const [B, T, C] = x.shape;
  const H = config.nHead;
  const D = headSize(config);
  const qkv = linear(tf.reshape(x, [B * T, C]), b.cAttnW, b.cAttnB); // [B*T, 3C]
  const [q, k, v] = tf.split(qkv, 3, 1).map((t) => tf.transpose(tf.reshape(t, [B, T, H, D]), [0, 2, 1, 3])); // [B,H,T,D]
  let w = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D)); // [B,H,T,T]
  // Causal mask: position i sees positions 0..i (HF adds -1e4 where masked; -1e9 is the same after softmax).
  const mask = causalMask(T);
  w = tf.add(tf.mul(w, mask), tf.mul(tf.sub(1, mask), -1e9));
  const p = dropout(tf.softmax(w, -1), r.attn, seed);
  const y = tf.reshape(tf.transpose(tf.matMul(p, v), [0, 2, 1, 3]), [B * T, C]);
  const out = linear(y as tf.Tensor2D, b.cProjW, b.cProjB);
  return dropout(tf.reshape(out, [B, T, C]) as tf.Tensor3D, r.resid, seed === undefined ? undefined : seed + 1);
}

function mlp(b: BlockParams, x: tf.Tensor3D, r: DropoutRates, seed?: number): tf.Tensor3D {
  const [B, T, C] = x.shape;
  const h = gelu(linear(tf.reshape(x, [B * T, C]), b.fcW, b.fcB));
  const out = tf.reshape(linear(h, b.mlpProjW, b.mlpProjB), [B, T, C]) as tf.Tensor3D;
  return dropout(out, r.resid, seed);
}

/**
 * Hidden states [B, T, C] of the last block for token ids [B, T] (numbers or an int32 tensor).
 * Call inside tf.tidy (or a gradient function): intermediate tensors are not disposed here.
 */
export function forward(params: GptParams, ids: number[][] | tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
  const config = params.config;
  let idt: tf.Tensor2D;
  if (Array.isArray(ids)) {
    checkIds(config, ids);
    idt = tf.tensor2d(ids, [ids.length, ids[0].length], 'int32');
  } else {
    if (ids.shape[1] > config.nPositions) {
      throw new InvalidTokensError(`sequence of ${ids.shape[1]} tokens exceeds the context of ${config.nPositions}`);
    }
    idt = ids.dtype === 'int32' ? ids : tf.cast(ids, 'int32');
  }
  const [, T] = idt.shape;
  const r = rates(config, opts);
  const seed = opts.seed;
  const pos = tf.slice(params.positionsEmbed, [0, 0], [T, config.nEmbd]);
  let input = tf.add(embed(params.tokensEmbed, idt), pos) as tf.Tensor3D;
  if (opts.tokenTypes) {
    const types = opts.tokenTypes;
    checkIds(config, types);
    if (types.length !== idt.shape[0] || types[0].length !== T) throw new InvalidTokensError(`token types [${types.length}, ${types[0].length}] do not match the ids [${idt.shape}]`);
    input = tf.add(input, embed(params.tokensEmbed, tf.tensor2d(types, [types.length, T], 'int32')));
  }
  let x = dropout(input, r.embd, seed);
  params.blocks.forEach((b, i) => {
    const s = seed === undefined ? undefined : seed + 10 * (i + 1);
    const n = layerNorm(tf.add(x, attention(b, x, config, r, s)), b.ln1G, b.ln1B, config.layerNormEpsilon) as tf.Tensor3D;
    x = layerNorm(tf.add(n, mlp(b, n, r, s === undefined ? undefined : s + 5)), b.ln2G, b.ln2B, config.layerNormEpsilon);
  });
  return x;
}

/** Next-token logits [B, T, V] from hidden states [B, T, C] (tied LM head). */
export function logitsFromHidden(params: GptParams, hidden: tf.Tensor3D): tf.Tensor3D {
  const [B, T, C] = hidden.shape;
  const l = tf.matMul(tf.reshape(hidden, [B * T, C]), params.tokensEmbed, false, true);
  return tf.reshape(l, [B, T, params.config.vocabSize]);
}

/** forward + LM head: logits [B, T, V]. */
export function logits(params: GptParams, ids: number[][] | tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
  return logitsFromHidden(params, forward(params, ids, opts));
}

/** Logits [B, V] of the last position only (what generation needs). */
export function lastLogits(params: GptParams, ids: number[][] | tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
  const h = forward(params, ids, opts);
  const [B, T, C] = h.shape;
  const last = tf.reshape(tf.slice(h, [0, T - 1, 0], [B, 1, C]), [B, C]);
  return tf.matMul(last, params.tokensEmbed, false, true);
}
