// The models an operator can choose from (the admin panel's Models page): the shipped one and each
// folder under the models directory (where `npm run model:download` puts them), described from
// their files alone — nothing is loaded: architecture and parameters from config.json, the chat
// format from chat_format.json or the tokenizer files, the size on disk.
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { readChatFormatDeclaration } from '../chat/declaration.js';
import { impliedFormat } from '../chat/registry.js';
import { detectFormat } from '../io/checkpoint.js';
import { GPT1_CONFIG, readConfigFile, type GptConfig } from '../nn/config.js';
import { countParams } from '../nn/params.js';
import { DEFAULT_MODEL_DIR } from './service.js';

/** The name the shipped model goes by. */
export const SHIPPED_MODEL = 'shipped';
/** Names of folders under the models directory that can be chosen (no path tricks). */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface ModelEntry {
  name: string;
  dir: string;
  /** hf (safetensors) | pytorch | openai; absent when the folder holds no readable checkpoint. */
  layout?: string;
  /** e.g. "GPT-1, 12 layers, 768 wide, 12 heads, 512 positions, 40,478 tokens". */
  architecture?: string;
  parameters?: number;
  chatFormat?: string;
  sizeBytes: number;
  /** Why the folder cannot be used (then it cannot be chosen). */
  error?: string;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(path.join(e.parentPath, e.name))).size;
  }
  return total;
}

/** Describes the model folder `dir` from its files. */
export async function describeModel(name: string, dir: string): Promise<ModelEntry> {
  const entry: ModelEntry = { name, dir, sizeBytes: 0 };
  try {
    entry.sizeBytes = await folderBytes(dir);
    entry.layout = await detectFormat(dir);
    const cfgFile = path.join(dir, 'config.json');
    const c: GptConfig = existsSync(cfgFile) ? await readConfigFile(cfgFile) : GPT1_CONFIG;
    entry.architecture = `GPT-1, ${c.nLayer} layer${c.nLayer === 1 ? '' : 's'}, ${c.nEmbd} wide, ${c.nHead} heads, ${c.nPositions} positions, ${c.vocabSize.toLocaleString('en')} tokens`;
    entry.parameters = countParams(c);
    entry.chatFormat = (await readChatFormatDeclaration(dir))?.format ?? impliedFormat(dir);
  } catch (err) {
    entry.error = (err as Error).message;
  }
  return entry;
}

/** The shipped model and every folder under `modelsDir` (which may not exist), by name. */
export async function listModels(modelsDir: string): Promise<ModelEntry[]> {
  const out = [await describeModel(SHIPPED_MODEL, path.resolve(DEFAULT_MODEL_DIR))];
  const names = existsSync(modelsDir)
    ? (await readdir(modelsDir, { withFileTypes: true })).filter((e) => e.isDirectory() && MODEL_NAME.test(e.name) && e.name !== SHIPPED_MODEL).map((e) => e.name).sort()
    : [];
  for (const name of names) out.push(await describeModel(name, path.join(modelsDir, name)));
  return out;
}

/** The folder of the model called `name`, or null when there is no such model. */
export function modelDirOf(name: string, modelsDir: string): string | null {
  if (name === SHIPPED_MODEL) return path.resolve(DEFAULT_MODEL_DIR);
  if (!MODEL_NAME.test(name)) return null;
  const dir = path.join(path.resolve(modelsDir), name);
  return existsSync(dir) ? dir : null;
}
