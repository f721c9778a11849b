// GPT-1 hyper-parameters, and reading/writing them as a Hugging Face `config.json` (openai-gpt layout).
// The project's own checkpoints use the same file, so a config written here loads in `transformers`.
import { readFile, writeFile } from 'node:fs/promises';

export interface GptConfig {
  vocabSize: number;
  /** Context length (HF `n_positions`; `n_ctx` only when n_positions is absent). */
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  /** Width of the MLP's hidden layer (4 * nEmbd for GPT-1). */
  nInner: number;
  layerNormEpsilon: number;
  initializerRange: number;
  residPdrop: number;
  embdPdrop: number;
  attnPdrop: number;
}

/** The original GPT-1 (openai-gpt) shape. */
export const GPT1_CONFIG: Readonly<GptConfig> = Object.freeze({
  vocabSize: 40478,
  nPositions: 512,
  nEmbd: 768,
  nLayer: 12,
  nHead: 12,
  nInner: 3072,
  layerNormEpsilon: 1e-5,
  initializerRange: 0.02,
  residPdrop: 0.1,
  embdPdrop: 0.1,
  attnPdrop: 0.1,
});

export class ModelConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelConfigError';
  }
}

/**
 * Fills defaults (GPT-1's, and nInner = 4 * nEmbd) and validates; throws ModelConfigError naming
 * every bad field. `source` (a file name) goes into the message.
 */
export function makeConfig(partial: Partial<GptConfig> = {}, source = 'config'): GptConfig {
  const nEmbd = partial.nEmbd ?? GPT1_CONFIG.nEmbd;
  const cfg: GptConfig = { ...GPT1_CONFIG, nInner: 4 * nEmbd, ...stripUndefined(partial) };
  const problems: string[] = [];
  const posInt = (k: keyof GptConfig) => {
    const v = cfg[k];
    if (!Number.isSafeInteger(v) || v <= 0) problems.push(`${k} must be a positive integer (got ${JSON.stringify(v)})`);
  };
  const prob = (k: keyof GptConfig) => {
    const v = cfg[k];
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) problems.push(`${k} must be a number in [0, 1) (got ${JSON.stringify(v)})`);
  };
  (['vocabSize', 'nPositions', 'nEmbd', 'nLayer', 'nHead', 'nInner'] as const).forEach(posInt);
  (['residPdrop', 'embdPdrop', 'attnPdrop'] as const).forEach(prob);
  if (!(typeof cfg.layerNormEpsilon === 'number' && cfg.layerNormEpsilon > 0 && cfg.layerNormEpsilon < 1)) {
    problems.push(`layerNormEpsilon must be in (0, 1) (got ${JSON.stringify(cfg.layerNormEpsilon)})`);
  }
  if (!(typeof cfg.initializerRange === 'number' && cfg.initializerRange > 0)) {
    problems.push(`initializerRange must be > 0 (got ${JSON.stringify(cfg.initializerRange)})`);
  }
  if (problems.length === 0 && cfg.nEmbd % cfg.nHead !== 0) {
    problems.push(`nEmbd (${cfg.nEmbd}) must be divisible by nHead (${cfg.nHead})`);
  }
  if (problems.length) throw new ModelConfigError(`${source}: invalid model config: ${problems.join('; ')}`);
  return cfg;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Head size (nEmbd / nHead). */
export const headSize = (c: GptConfig): number => c.nEmbd / c.nHead;

/** Converts a parsed HF `config.json` object; `source` names the file in errors. */
export function configFromHf(json: unknown, source = 'config.json'): GptConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelConfigError(`${source}: expected a JSON object`);
  }
  const j = json as Record<string, unknown>;
  if (j.afn !== undefined && j.afn !== 'gelu' && j.afn !== 'gelu_new') {
    // GPT-1 used the tanh approximation ("gelu" in the openai-gpt config means that form).
    throw new ModelConfigError(`${source}: unsupported activation afn=${JSON.stringify(j.afn)} (only gelu)`);
  }
  // n_positions sizes the position table; n_ctx (when it differs, as CDial-GPT's 513 vs 512) only
  // sized the causal-mask buffer old versions saved, so n_positions wins.
  const num = (k: string): number | undefined => (j[k] === undefined || j[k] === null ? undefined : (j[k] as number));
  const nEmbd = num('n_embd');
  return makeConfig(
    {
      vocabSize: num('vocab_size'),
      nPositions: num('n_positions') ?? num('n_ctx'),
      nEmbd,
      nLayer: num('n_layer'),
      nHead: num('n_head'),
      nInner: num('n_inner') ?? (nEmbd !== undefined ? 4 * nEmbd : undefined),
      layerNormEpsilon: num('layer_norm_epsilon'),
      initializerRange: num('initializer_range'),
      residPdrop: num('resid_pdrop'),
      embdPdrop: num('embd_pdrop'),
      attnPdrop: num('attn_pdrop'),
    },
    source,
  );
}

/** The HF `config.json` object for `cfg` (loads with transformers' OpenAIGPTLMHeadModel). */
export function configToHf(cfg: GptConfig): Record<string, unknown> {
  return {
    architectures: ['OpenAIGPTLMHeadModel'],
    model_type: 'openai-gpt',
    afn: 'gelu',
    vocab_size: cfg.vocabSize,
    n_positions: cfg.nPositions,
    n_ctx: cfg.nPositions,
    n_embd: cfg.nEmbd,
    n_layer: cfg.nLayer,
    n_head: cfg.nHead,
    ...(cfg.nInner !== 4 * cfg.nEmbd ? { n_inner: cfg.nInner } : {}),
    layer_norm_epsilon: cfg.layerNormEpsilon,
    initializer_range: cfg.initializerRange,
    resid_pdrop: cfg.residPdrop,
    embd_pdrop: cfg.embdPdrop,
    attn_pdrop: cfg.attnPdrop,
  };
}

export async function readConfigFile(file: string): Promise<GptConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ModelConfigError(`${file}: cannot read model config (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelConfigError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  return configFromHf(json, file);
}

export async function writeConfigFile(file: string, cfg: GptConfig): Promise<void> {
  await writeFile(file, `${JSON.stringify(configToHf(makeConfig(cfg)), null, 2)}\n`);
}
