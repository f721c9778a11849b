// GPT-1 parameters from a PyTorch state dict (HF OpenAIGPTLMHeadModel / OpenAIGPTModel key names).
import type { GptConfig } from '../../nn/config.js';
import { loadParamsFrom, type HostTensor } from '../safetensors.js';
import { openTorchCheckpoint } from './torch-file.js';

/** Reads and checks every GPT parameter of `file` (see loadParamsFrom for `consume`). */
export async function loadTorchParamArrays(
  file: string,
  config: GptConfig,
  consume?: (name: string, t: HostTensor) => void,
): Promise<Map<string, HostTensor>> {
  const ckpt = await openTorchCheckpoint(file);
  try {
    const shapes = new Map([...ckpt.tensors].map(([name, t]) => [name, t.shape]));
    return await loadParamsFrom({ shapes, read: (name) => ckpt.read(name) }, file, config, consume);
  } finally {
    await ckpt.close();
  }
}
