// Splitting GPT-1's weights across threads (tensor parallelism, Megatron style): shard s of n
// holds heads [s·H/n, (s+1)·H/n) — the matching q/k/v columns of c_attn and rows of attn.c_proj —
// columns [s·I/n, ...) of mlp.c_fc and the matching rows of mlp.c_proj, and a vocabulary range
// of the (transposed, tied) embedding. Each block then needs two sums of partial results across
// shards (after attn.c_proj and after mlp.c_proj); the embedding lookup and the LM head need one
// exchange each. With n = 1 this is just the layout the engine uses (embedding transposed).
import * as tf from '@tensorflow/tfjs';
import { detectFormat, readCheckpoint } from './io/checkpoint.js';
import { readConfigFile, type GptConfig } from './nn/config.js';
import { CheckpointError } from './errors.js';
import { namedParams, type GptParams } from './nn/params.js';
import { loadParamArrays, type HostTensor } from './io/safetensors.js';
import path from 'node:path';
import { existsSync } from 'node:fs';

export interface ShardSpec {
  index: number;
  count: number;
}

export const SINGLE: ShardSpec = Object.freeze({ index: 0, count: 1 });

export function checkShard(c: GptConfig, s: ShardSpec): void {
  if (!Number.isInteger(s.count) || s.count < 1 || c.nHead % s.count !== 0 || c.nInner % s.count !== 0) {
    throw new Error(`cannot split ${c.nHead} heads / MLP ${c.nInner} across ${s.count} threads`);
  }
}

/** [start, end) of the vocabulary held by shard s. */
export function vocabRange(c: GptConfig, s: ShardSpec): [number, number] {
  const per = Math.ceil(c.vocabSize / s.count);
  return [Math.min(c.vocabSize, s.index * per), Math.min(c.vocabSize, (s.index + 1) * per)];
}

/** Columns [from, to) of a row-major [rows, cols] matrix. */
function cols(t: HostTensor, from: number, to: number): HostTensor {
  const [rows, n] = t.shape;
  const w = to - from;
  const out = new Float32Array(rows * w);
  for (let r = 0; r < rows; r++) out.set(t.data.subarray(r * n + from, r * n + to), r * w);
  return { shape: [rows, w], data: out };
}

function rows(t: HostTensor, from: number, to: number): HostTensor {
  const n = t.shape[1];
  return { shape: [to - from, n], data: t.data.slice(from * n, to * n) };
}

function range1d(t: HostTensor, from: number, to: number): HostTensor {
  return { shape: [to - from], data: t.data.slice(from, to) };
}

/**
 * The part of one parameter that shard s keeps, under the engine's names: `wteT` [C, Vs] for the
 * token embedding, otherwise the HF name. Host-side, so that only the shard is ever uploaded.
 */
export function shardTensor(c: GptConfig, s: ShardSpec, name: string, t: HostTensor): [string, HostTensor] {
  const C = c.nEmbd;
  const cs = C / s.count;
  const is = c.nInner / s.count;
  const a = s.index * cs;
  if (name === 'tokens_embed.weight') {
    const [v0, v1] = vocabRange(c, s);
    const vs = v1 - v0;
    const out = new Float32Array(C * vs);
    for (let v = v0; v < v1; v++) {
      const row = t.data.subarray(v * C, (v + 1) * C);
      for (let j = 0; j < C; j++) out[j * vs + (v - v0)] = row[j];
    }
    return ['wteT', { shape: [C, vs], data: out }];
  }
  if (s.count === 1) return [name, t];
  const suffix = name.replace(/^h\.\d+\./, '');
  switch (suffix) {
    case 'attn.c_attn.weight': {
      const q = cols(t, a, a + cs);
      const k = cols(t, C + a, C + a + cs);
      const v = cols(t, 2 * C + a, 2 * C + a + cs);
      const out = new Float32Array(C * 3 * cs);
      for (let r = 0; r < C; r++) {
        out.set(q.data.subarray(r * cs, (r + 1) * cs), r * 3 * cs);
        out.set(k.data.subarray(r * cs, (r + 1) * cs), r * 3 * cs + cs);
        out.set(v.data.subarray(r * cs, (r + 1) * cs), r * 3 * cs + 2 * cs);
      }
      return [name, { shape: [C, 3 * cs], data: out }];
    }
    case 'attn.c_attn.bias': {
      const out = new Float32Array(3 * cs);
      for (let p = 0; p < 3; p++) out.set(t.data.subarray(p * C + a, p * C + a + cs), p * cs);
      return [name, { shape: [3 * cs], data: out }];
    }
    case 'attn.c_proj.weight':
      return [name, rows(t, a, a + cs)];
    case 'mlp.c_fc.weight':
      return [name, cols(t, s.index * is, (s.index + 1) * is)];
    case 'mlp.c_fc.bias':
      return [name, range1d(t, s.index * is, (s.index + 1) * is)];
    case 'mlp.c_proj.weight':
      return [name, rows(t, s.index * is, (s.index + 1) * is)];
    default:
      return [name, t]; // LayerNorms, output biases, positions: replicated
  }
}

/** Loads shard s of a checkpoint directory, uploading each piece as soon as it is cut. */
export async function loadShard(dir: string, s: ShardSpec): Promise<{ config: GptConfig; tensors: Map<string, tf.Tensor> }> {
  const tensors = new Map<string, tf.Tensor>();
  const put = (config: GptConfig, name: string, t: HostTensor) => {
    const [n, part] = shardTensor(config, s, name, t);
    tensors.set(n, tf.tensor(part.data, part.shape, 'float32'));
  };
  try {
    if ((await detectFormat(dir)) === 'openai') {
      const host = await readCheckpoint(dir);
      checkShard(host.config, s);
      for (const [name, t] of host.arrays) put(host.config, name, t);
      return { config: host.config, tensors };
    }
    const cfgFile = path.join(dir, 'config.json');
    if (!existsSync(cfgFile)) throw new CheckpointError(`${cfgFile}: missing (the model's config)`, cfgFile);
    const config = await readConfigFile(cfgFile);
    checkShard(config, s);
    await loadParamArrays(path.join(dir, 'model.safetensors'), config, (name, t) => put(config, name, t));
    return { config, tensors };
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
}

/** Shard tensors from in-memory parameters (tests, freshly trained models). Does not dispose `p`. */
export function shardFromParams(p: GptParams, s: ShardSpec): Map<string, tf.Tensor> {
  checkShard(p.config, s);
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of namedParams(p)) {
    const [n, part] = shardTensor(p.config, s, name, { shape: t.shape, data: t.dataSync() as Float32Array });
    out.set(n, tf.tensor(part.data, part.shape, 'float32'));
  }
  return out;
}
