// Checkpoints on disk. Two layouts are read:
//  - Hugging Face (also the project's own): config.json, model.safetensors or a PyTorch state dict
//    (pytorch_model.bin, or a single *.pt / *.pth), vocab.json + merges.txt or vocab.txt
//  - the original OpenAI release: params_shapes.json, params_0..9.npy (one flat float32 stream cut
//    by the shapes; positions [512,768] first, then tokens [40478,768], conv weights [1,in,out]),
//    encoder_bpe_40000.json, vocab_40000.bpe
// and the HF layout is written. Errors name the file and the tensor.
import { copyFile, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GPT1_CONFIG, makeConfig, readConfigFile, writeConfigFile, type GptConfig } from '../nn/config.js';
import { CheckpointError } from '../errors.js';
import { readNpy } from './npy.js';
import { namedParams, paramsFromNamed, paramSpecs, type GptParams } from '../nn/params.js';
import { loadTorchParamArrays } from './pytorch/state-dict.js';
import { checkAgainstConfig, loadParamArrays, writeSafetensors, type HostTensor, type WriteDtype } from './safetensors.js';

export type CheckpointFormat = 'hf' | 'pytorch' | 'openai';

export interface HostCheckpoint {
  dir: string;
  format: CheckpointFormat;
  config: GptConfig;
  /** Parameters by HF name, as host float32 arrays. */
  arrays: Map<string, HostTensor>;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/** The PyTorch state dict of an HF-layout folder: pytorch_model.bin, else its only *.pt / *.pth. */
export async function torchWeightsFile(dir: string): Promise<string | null> {
  if (await exists(path.join(dir, 'pytorch_model.bin'))) return path.join(dir, 'pytorch_model.bin');
  const found = (await readdir(dir)).filter((f) => /\.(pt|pth)$/.test(f));
  return found.length === 1 ? path.join(dir, found[0]) : null;
}

export async function detectFormat(dir: string): Promise<CheckpointFormat> {
  if (!(await exists(dir))) throw new CheckpointError(`${dir}: model directory does not exist`, dir);
  if (await exists(path.join(dir, 'model.safetensors'))) return 'hf';
  if (await exists(path.join(dir, 'params_shapes.json'))) return 'openai';
  if (await torchWeightsFile(dir)) return 'pytorch';
  throw new CheckpointError(
    `${dir}: no checkpoint found (expected config.json + model.safetensors or pytorch_model.bin, or params_shapes.json + params_*.npy)`,
    dir,
  );
}

/**
 * The config.json and the parameters of an HF-layout folder (safetensors or PyTorch weights),
 * each tensor handed to `consume` as soon as it is read when given.
 */
export async function readHfFolder(
  dir: string,
  format: 'hf' | 'pytorch',
  consume?: (config: GptConfig, name: string, t: HostTensor) => void,
  check?: (config: GptConfig) => void,
): Promise<{ config: GptConfig; arrays: Map<string, HostTensor> }> {
  const cfgFile = path.join(dir, 'config.json');
  if (!(await exists(cfgFile))) throw new CheckpointError(`${cfgFile}: missing (the model's config)`, cfgFile);
  const config = await readConfigFile(cfgFile);
  check?.(config);
  const each = consume && ((name: string, t: HostTensor) => consume(config, name, t));
  const arrays = format === 'hf'
    ? await loadParamArrays(path.join(dir, 'model.safetensors'), config, each)
    : await loadTorchParamArrays((await torchWeightsFile(dir))!, config, each);
  return { config, arrays };
}

/** Reads a checkpoint's config and parameters into host memory (no tfjs needed). */
export async function readCheckpoint(dir: string): Promise<HostCheckpoint> {
  const format = await detectFormat(dir);
  if (format === 'openai') return readOpenAiCheckpoint(dir);
  return { dir, format, ...(await readHfFolder(dir, format)) };
}

async function readOpenAiCheckpoint(dir: string): Promise<HostCheckpoint> {
  const shapesFile = path.join(dir, 'params_shapes.json');
  let shapes: number[][];
  try {
    shapes = JSON.parse(await readFile(shapesFile, 'utf8')) as number[][];
  } catch (err) {
    throw new CheckpointError(`${shapesFile}: unreadable (${(err as Error).message})`, shapesFile);
  }
  if (!Array.isArray(shapes) || shapes.length < 2 || (shapes.length - 2) % 12 !== 0 ||
      !shapes.every((s) => Array.isArray(s) && s.every((d) => Number.isSafeInteger(d) && d > 0))) {
    throw new CheckpointError(`${shapesFile}: expected 2 + 12 * layers shapes of positive integers`, shapesFile);
  }
  // config.json next to the release (if any) gives nHead; the release itself does not record it.
  const cfgFile = path.join(dir, 'config.json');
  const base = (await exists(cfgFile)) ? await readConfigFile(cfgFile) : GPT1_CONFIG;
  const [P, C] = shapes[0];
  const config = makeConfig({
    ...base,
    nPositions: P,
    nEmbd: C,
    vocabSize: shapes[1][0],
    nLayer: (shapes.length - 2) / 12,
    nInner: shapes[8]?.[shapes[8].length - 1] ?? 4 * C,
  }, shapesFile);
  const files = (await readdir(dir)).filter((f) => /^params_\d+\.npy$/.test(f))
    .sort((a, b) => Number(a.slice(7, -4)) - Number(b.slice(7, -4)));
  if (files.length === 0) throw new CheckpointError(`${dir}: params_0.npy missing`, path.join(dir, 'params_0.npy'));
  files.forEach((f, i) => {
    if (f !== `params_${i}.npy`) throw new CheckpointError(`${path.join(dir, `params_${i}.npy`)}: missing`, path.join(dir, `params_${i}.npy`));
  });
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const total = sizes.reduce((a, b) => a + b, 0);
  const flat = new Float32Array(total);
  let filled = 0;
  for (const f of files) {
    const a = await readNpy(path.join(dir, f));
    if (filled + a.data.length > total) {
      throw new CheckpointError(`${path.join(dir, f)}: more values than params_shapes.json describes (${total})`, path.join(dir, f));
    }
    flat.set(a.data, filled);
    filled += a.data.length;
  }
  if (filled !== total) {
    throw new CheckpointError(`${dir}: params_*.npy hold ${filled} values, params_shapes.json needs ${total} (truncated or missing file?)`, dir);
  }
  const names = paramSpecs(config).map((s) => s.name); // same order as the release
  const byName = new Map<string, HostTensor>();
  let off = 0;
  shapes.forEach((shape, i) => {
    // Squeeze the leading 1 of conv weights [1, in, out].
    byName.set(names[i], { shape: shape.filter((d, k) => !(d === 1 && k === 0 && shape.length === 3)), data: flat.subarray(off, off + sizes[i]) });
    off += sizes[i];
  });
  return { dir, format: 'openai', config, arrays: checkAgainstConfig(byName, config, dir) };
}

/** Host arrays → tfjs tensors (GptParams). */
export function paramsFromArrays(config: GptConfig, arrays: Map<string, HostTensor>): GptParams {
  const named = new Map<string, tf.Tensor>();
  for (const [name, t] of arrays) named.set(name, tf.tensor(t.data, t.shape, 'float32'));
  return paramsFromNamed(config, named);
}

/**
 * Loads a checkpoint directory as tensors on the current backend. The HF layout is streamed: each
 * tensor is uploaded as soon as it is read, so the host never holds the whole model.
 */
export async function loadCheckpoint(dir: string): Promise<{ config: GptConfig; params: GptParams; format: CheckpointFormat }> {
  const format = await detectFormat(dir);
  if (format === 'openai') {
    const host = await readCheckpoint(dir);
    return { config: host.config, params: paramsFromArrays(host.config, host.arrays), format };
  }
  const named = new Map<string, tf.Tensor>();
  let config: GptConfig;
  try {
    ({ config } = await readHfFolder(dir, format, (_c, name, t) => named.set(name, tf.tensor(t.data, t.shape, 'float32'))));
  } catch (err) {
    for (const t of named.values()) t.dispose();
    throw err;
  }
  return { config, params: paramsFromNamed(config, named), format };
}

export interface SaveOptions {
  /** Tokenizer files to copy next to the weights (e.g. vocab.json, merges.txt). */
  tokenizerFiles?: string[];
  /** F16 halves the file (the shipped model); F32 is exact. */
  dtype?: WriteDtype;
  metadata?: Record<string, string>;
}

/** Writes `dir` in the HF layout: config.json, model.safetensors (+ tokenizer files). */
export async function saveCheckpoint(
  dir: string,
  config: GptConfig,
  params: GptParams | Map<string, HostTensor>,
  opts: SaveOptions = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  let arrays: Map<string, HostTensor>;
  if (params instanceof Map) {
    arrays = params;
  } else {
    arrays = new Map();
    for (const [name, t] of namedParams(params)) arrays.set(name, { shape: t.shape, data: (await t.data()) as Float32Array });
  }
  checkAgainstConfig(arrays, config, dir);
  await writeSafetensors(
    path.join(dir, 'model.safetensors'),
    paramSpecs(config).map((s) => [s.name, arrays.get(s.name)!]),
    opts.dtype ?? 'F32',
    { format: 'pt', ...opts.metadata },
  );
  await writeConfigFile(path.join(dir, 'config.json'), config);
  for (const f of opts.tokenizerFiles ?? []) {
    if (path.resolve(path.dirname(f)) !== path.resolve(dir)) await copyFile(f, path.join(dir, path.basename(f)));
  }
}
