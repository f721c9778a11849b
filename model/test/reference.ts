// An independent, deliberately plain GPT-1 in float64 loops: the yardstick the tfjs model is
// tested against. No tfjs, no shared code with gpt.ts beyond the parameter names.
import type { GptConfig } from '../nn/config.js';
import { initParamArrays, paramSpecs } from '../nn/params.js';
import { Rng } from '../rng.js';

export type Arrays = Map<string, Float32Array>;

function layerNorm(x: number[], g: Float32Array, b: Float32Array, eps: number): number[] {
  const n = x.length;
  const mean = x.reduce((a, v) => a + v, 0) / n;
  const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / n;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * g[i] + b[i]);
}

/** y = x @ W + b with W stored [in, out] row-major. */
function linear(x: number[], w: Float32Array, b: Float32Array, out: number): number[] {
  const y = Array.from(b, Number);
  for (let i = 0; i < x.length; i++) for (let j = 0; j < out; j++) y[j] += x[i] * w[i * out + j];
  return y;
}

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Logits [T][V] for one sequence (token types, if given, add their token embeddings). */
export function referenceLogits(c: GptConfig, p: Arrays, ids: number[], types?: number[]): number[][] {
  const C = c.nEmbd;
  const H = c.nHead;
  const D = C / H;
  const get = (n: string) => p.get(n)!;
  const wte = get('tokens_embed.weight');
  const wpe = get('positions_embed.weight');
  let x = ids.map((id, t) => Array.from({ length: C }, (_, j) => wte[id * C + j] + wpe[t * C + j] + (types ? wte[types[t] * C + j] : 0)));
  for (let l = 0; l < c.nLayer; l++) {
    const g = (s: string) => get(`h.${l}.${s}`);
    const qkv = x.map((row) => linear(row, g('attn.c_attn.weight'), g('attn.c_attn.bias'), 3 * C));
    const att = x.map(() => new Array<number>(C).fill(0));
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < x.length; i++) {
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += qkv[i][h * D + d] * qkv[j][C + h * D + d];
          scores.push(s / Math.sqrt(D));
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, v) => a + v, 0);
        for (let j = 0; j <= i; j++) for (let d = 0; d < D; d++) att[i][h * D + d] += (e[j] / z) * qkv[j][2 * C + h * D + d];
      }
    }
    const a = att.map((row) => linear(row, g('attn.c_proj.weight'), g('attn.c_proj.bias'), C));
    const n = x.map((row, i) => layerNorm(row.map((v, j) => v + a[i][j]), g('ln_1.weight'), g('ln_1.bias'), c.layerNormEpsilon));
    const m = n.map((row) => {
      const hdn = linear(row, g('mlp.c_fc.weight'), g('mlp.c_fc.bias'), c.nInner).map(gelu);
      return linear(hdn, g('mlp.c_proj.weight'), g('mlp.c_proj.bias'), C);
    });
    x = n.map((row, i) => layerNorm(row.map((v, j) => v + m[i][j]), g('ln_2.weight'), g('ln_2.bias'), c.layerNormEpsilon));
  }
  return x.map((row) => {
    const out = new Array<number>(c.vocabSize).fill(0);
    for (let v = 0; v < c.vocabSize; v++) for (let j = 0; j < C; j++) out[v] += row[j] * wte[v * C + j];
    return out;
  });
}

/**
 * Random parameters that exercise every term: larger weights than the 0.02 init (so attention is
 * not uniform) and random biases and LayerNorm gains (which the init leaves at 0 and 1).
 */
export function randomArrays(c: GptConfig, seed: number): Arrays {
  const rng = new Rng(seed + 1000);
  const p = initParamArrays({ ...c, initializerRange: 0.3 }, seed);
  for (const s of paramSpecs(c)) {
    const a = p.get(s.name)!;
    if (s.init === 'zeros') for (let i = 0; i < a.length; i++) a[i] = 0.1 * rng.normal();
    if (s.init === 'ones') for (let i = 0; i < a.length; i++) a[i] = 1 + 0.2 * rng.normal();
  }
  return p;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** float64 reference: [batchA|1, ...] x [batchB|1, ...] with transposes, optional bias and relu. */
export function refMatMul(a: Float32Array, as: number[], b: Float32Array, bs: number[], ta: boolean, tb: boolean, bias?: Float32Array, relu = false): Float64Array {
  const batchA = as.slice(0, -2).reduce((x, y) => x * y, 1);
  const batchB = bs.slice(0, -2).reduce((x, y) => x * y, 1);
  const batch = Math.max(batchA, batchB);
  const [ar, ac] = as.slice(-2);
  const [br, bc] = bs.slice(-2);
  const M = ta ? ac : ar;
  const K = ta ? ar : ac;
  const N = tb ? br : bc;
  const out = new Float64Array(batch * M * N);
  for (let x = 0; x < batch; x++) {
    const ao = (batchA === 1 ? 0 : x) * ar * ac;
    const bo = (batchB === 1 ? 0 : x) * br * bc;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = ta ? a[ao + k * ac + i] : a[ao + i * ac + k];
          const bv = tb ? b[bo + j * bc + k] : b[bo + k * bc + j];
          s += av * bv;
        }
        if (bias) s += bias[j];
        out[x * M * N + i * N + j] = relu ? Math.max(0, s) : s;
      }
    }
  }
  return out;
}
