// Ready-made models to download: hub repository, the files each needs, the folder name and the
// chat format the folder declares (chat_format.json), so that the result loads with
// `--model models/<name>` and MODEL_DIR as it is.

export interface DownloadPreset {
  repo: string;
  files: string[];
  /** folder under models/ */
  dir: string;
  chatFormat: { format: string; version: number };
  description: string;
}

export const DOWNLOAD_PRESETS: Readonly<Record<string, DownloadPreset>> = Object.freeze({
  'cdial-large': {
    repo: 'thu-coai/CDial-GPT_LCCC-large',
    files: ['config.json', 'vocab.txt', 'pytorch_model.bin'],
    dir: 'cdial-large',
    chatFormat: { format: 'cdial', version: 1 },
    description: 'CDial-GPT (LCCC-large): Chinese dialogue GPT-1, 95.5 M parameters',
  },
  'cdial-base': {
    repo: 'thu-coai/CDial-GPT_LCCC-base',
    files: ['config.json', 'vocab.txt', 'pytorch_model.bin'],
    dir: 'cdial-base',
    chatFormat: { format: 'cdial', version: 1 },
    description: 'CDial-GPT (LCCC-base): Chinese dialogue GPT-1, 95.5 M parameters',
  },
  'openai-gpt': {
    repo: 'openai-community/openai-gpt',
    files: ['config.json', 'vocab.json', 'merges.txt', 'model.safetensors'],
    dir: 'openai-gpt',
    chatFormat: { format: 'openai-gpt', version: 1 },
    description: 'GPT-1 (OpenAI, 2018): English, 116.5 M parameters, no dialogue training',
  },
});
