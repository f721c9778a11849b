// The engine's weight layout: HF parameter names, except the token embedding, kept transposed as
// `wteT` [C, V] — the tied LM head multiplies by it and lookups read its columns. Transposed on the
// host, tensor by tensor, so that a checkpoint is never held twice in memory.
import * as tf from '@tensorflow/tfjs';
import { detectFormat, readCheckpoint, readHfFolder } from '../io/checkpoint.js';
import type { HostTensor } from '../io/safetensors.js';
import type { GptConfig } from '../nn/config.js';
import { namedParams, type GptParams } from '../nn/params.js';

/** One parameter under the engine's name and layout. */
function engineTensor(c: GptConfig, name: string, t: HostTensor): [string, HostTensor] {
  if (name !== 'tokens_embed.weight') return [name, t];
  const C = c.nEmbd;
  const V = c.vocabSize;
  const out = new Float32Array(C * V);
  for (let v = 0; v < V; v++) {
    const row = t.data.subarray(v * C, (v + 1) * C);
    for (let j = 0; j < C; j++) out[j * V + v] = row[j];
  }
  return ['wteT', { shape: [C, V], data: out }];
}

/** Loads a checkpoint directory in the engine's layout, uploading each tensor as soon as it is read. */
export async function loadEngineWeights(dir: string): Promise<{ config: GptConfig; tensors: Map<string, tf.Tensor> }> {
  const tensors = new Map<string, tf.Tensor>();
  const put = (config: GptConfig, name: string, t: HostTensor) => {
    const [n, part] = engineTensor(config, name, t);
    tensors.set(n, tf.tensor(part.data, part.shape, 'float32'));
  };
  try {
    const format = await detectFormat(dir);
    if (format === 'openai') {
      const host = await readCheckpoint(dir);
      for (const [name, t] of host.arrays) put(host.config, name, t);
      return { config: host.config, tensors };
    }
    const { config } = await readHfFolder(dir, format, (c, name, t) => put(c, name, t));
    return { config, tensors };
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
}

/** Engine tensors from in-memory parameters (tests, freshly trained models). Does not dispose `p`. */
export function engineTensorsFromParams(p: GptParams): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of namedParams(p)) {
    const [n, part] = engineTensor(p.config, name, { shape: t.shape, data: t.dataSync() as Float32Array });
    out.set(n, tf.tensor(part.data, part.shape, 'float32'));
  }
  return out;
}
