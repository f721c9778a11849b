// GPT-1 parameters: names and shapes in the Hugging Face openai-gpt naming, and a seeded
// initialisation. Weights are stored [in, out] (HF "Conv1D"), so every linear layer is a plain
// 2-D `x @ W + b`, the only matmul form that is fast on tfjs-wasm.
import * as tf from '@tensorflow/tfjs';
import type { GptConfig } from './config.js';
import { Rng } from '../rng.js';

export interface BlockParams {
  /** attention input projection [C, 3C] (q, k, v side by side) and its bias [3C] */
  cAttnW: tf.Tensor2D;
  cAttnB: tf.Tensor1D;
  /** attention output projection [C, C] */
  cProjW: tf.Tensor2D;
  cProjB: tf.Tensor1D;
  ln1G: tf.Tensor1D;
  ln1B: tf.Tensor1D;
  /** MLP [C, nInner] then [nInner, C] */
  fcW: tf.Tensor2D;
  fcB: tf.Tensor1D;
  mlpProjW: tf.Tensor2D;
  mlpProjB: tf.Tensor1D;
  ln2G: tf.Tensor1D;
  ln2B: tf.Tensor1D;
}

export interface GptParams {
  config: GptConfig;
  /** [vocabSize, C]; also the (tied) LM head */
  tokensEmbed: tf.Tensor2D;
  /** [nPositions, C] */
  positionsEmbed: tf.Tensor2D;
  blocks: BlockParams[];
}

export interface ParamSpec {
  name: string;
  shape: number[];
  init: 'normal' | 'zeros' | 'ones';
}

const BLOCK_FIELDS: Array<[keyof BlockParams, string, (c: GptConfig) => number[], ParamSpec['init']]> = [
  ['cAttnW', 'attn.c_attn.weight', (c) => [c.nEmbd, 3 * c.nEmbd], 'normal'],
  ['cAttnB', 'attn.c_attn.bias', (c) => [3 * c.nEmbd], 'zeros'],
  ['cProjW', 'attn.c_proj.weight', (c) => [c.nEmbd, c.nEmbd], 'normal'],
  ['cProjB', 'attn.c_proj.bias', (c) => [c.nEmbd], 'zeros'],
  ['ln1G', 'ln_1.weight', (c) => [c.nEmbd], 'ones'],
  ['ln1B', 'ln_1.bias', (c) => [c.nEmbd], 'zeros'],
  ['fcW', 'mlp.c_fc.weight', (c) => [c.nEmbd, c.nInner], 'normal'],
  ['fcB', 'mlp.c_fc.bias', (c) => [c.nInner], 'zeros'],
  ['mlpProjW', 'mlp.c_proj.weight', (c) => [c.nInner, c.nEmbd], 'normal'],
  ['mlpProjB', 'mlp.c_proj.bias', (c) => [c.nEmbd], 'zeros'],
  ['ln2G', 'ln_2.weight', (c) => [c.nEmbd], 'ones'],
  ['ln2B', 'ln_2.bias', (c) => [c.nEmbd], 'zeros'],
];

/**
 * Every parameter in HF order: positions and tokens embeddings, then per layer the order of the
 * original OpenAI release (c_attn, c_proj, ln_1, c_fc, mlp c_proj, ln_2).
 */
export function paramSpecs(c: GptConfig): ParamSpec[] {
  const specs: ParamSpec[] = [
    { name: 'positions_embed.weight', shape: [c.nPositions, c.nEmbd], init: 'normal' },
    { name: 'tokens_embed.weight', shape: [c.vocabSize, c.nEmbd], init: 'normal' },
  ];
  for (let i = 0; i < c.nLayer; i++) {
    for (const [, suffix, shape, init] of BLOCK_FIELDS) specs.push({ name: `h.${i}.${suffix}`, shape: shape(c), init });
  }
  return specs;
}

export const countParams = (c: GptConfig): number =>
  paramSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);

/** Seeded initial values as plain arrays: N(0, initializerRange) weights, zero biases, unit LN gains. */
export function initParamArrays(c: GptConfig, seed = 0): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const s of paramSpecs(c)) {
    const a = new Float32Array(s.shape.reduce((x, y) => x * y, 1));
    if (s.init === 'normal') rng.fillNormal(a, c.initializerRange);
    else if (s.init === 'ones') a.fill(1);
    out.set(s.name, a);
  }
  return out;
}

/** Seeded initial parameters as tensors. */
export function initParams(c: GptConfig, seed = 0): GptParams {
  const arrays = initParamArrays(c, seed);
  const tensors = new Map<string, tf.Tensor>();
  for (const s of paramSpecs(c)) tensors.set(s.name, tf.tensor(arrays.get(s.name)!, s.shape, 'float32'));
  return paramsFromNamed(c, tensors);
}

/** Builds GptParams from tensors named as in HF; throws naming the first missing or misshapen one. */
export function paramsFromNamed(c: GptConfig, named: Map<string, tf.Tensor>, source = 'parameters'): GptParams {
  const get = (name: string, shape: number[]): tf.Tensor => {
    const t = named.get(name);
    if (!t) throw new Error(`${source}: missing tensor ${name}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${source}: tensor ${name} has shape [${t.shape}], config expects [${shape}]`);
    }
    return t;
  };
  const blocks: BlockParams[] = [];
  for (let i = 0; i < c.nLayer; i++) {
    const b = {} as Record<keyof BlockParams, tf.Tensor>;
    for (const [field, suffix, shape] of BLOCK_FIELDS) b[field] = get(`h.${i}.${suffix}`, shape(c));
    blocks.push(b as unknown as BlockParams);
  }
  return {
    config: c,
    positionsEmbed: get('positions_embed.weight', [c.nPositions, c.nEmbd]) as tf.Tensor2D,
    tokensEmbed: get('tokens_embed.weight', [c.vocabSize, c.nEmbd]) as tf.Tensor2D,
    blocks,
  };
}

/** The parameters as [HF name, tensor] pairs in paramSpecs order. */
export function namedParams(p: GptParams): Array<[string, tf.Tensor]> {
  const out: Array<[string, tf.Tensor]> = [
    ['positions_embed.weight', p.positionsEmbed],
    ['tokens_embed.weight', p.tokensEmbed],
  ];
  p.blocks.forEach((b, i) => {
    for (const [field, suffix] of BLOCK_FIELDS) out.push([`h.${i}.${suffix}`, b[field]]);
  });
  return out;
}

/** Applies `fn` to every tensor, keeping the structure (e.g. to make tf.Variables for training). */
export function mapParams(p: GptParams, fn: (t: tf.Tensor, name: string) => tf.Tensor): GptParams {
  const mapped = new Map<string, tf.Tensor>();
  for (const [name, t] of namedParams(p)) mapped.set(name, fn(t, name));
  return paramsFromNamed(p.config, mapped);
}

/** Trainable tf.Variables named after the HF parameter names (optimizers and variableGrads key on them). */
export function toVariables(p: GptParams, prefix = ''): GptParams {
  return mapParams(p, (t, name) => tf.variable(t, true, `${prefix}${name}`));
}

export function disposeParams(p: GptParams): void {
  for (const [, t] of namedParams(p)) t.dispose();
}
