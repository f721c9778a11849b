// tokenizer_config.json: which flavour of BPE a vocabulary folder holds. Absent file = GPT-1.
import { z } from 'zod';
import { DEFAULT_WHITESPACE_SYMBOLS } from './pretokenize.js';

export const GPT1_TYPE = 'openai-gpt';
export const NEMO_TYPE = 'nemo-bpe';

const schema = z
  .object({
    /** "openai-gpt": HF OpenAIGPTTokenizer behaviour; "nemo-bpe": the project's own vocabularies. */
    type: z.enum([GPT1_TYPE, NEMO_TYPE]),
    version: z.number().int().positive().default(1),
    lowercase: z.boolean().optional(),
    /** Unknown chars become <0xNN> byte tokens instead of <unk> (nemo-bpe only). */
    byte_fallback: z.boolean().optional(),
    /** "char": every Han char is its own unit; "run": runs of Han chars are units BPE merges within. */
    cjk: z.enum(['char', 'run']).default('char'),
    /** Real whitespace char → visible symbol used inside tokens (nemo-bpe only). */
    whitespace_symbols: z.record(z.string().length(1), z.string().length(1)).optional(),
    unk_token: z.string().min(1).default('<unk>'),
    /** Tokens matched in text only when encode() is asked to; never produced by BPE. */
    special_tokens: z.array(z.string().min(1)).default([]),
    /** End-of-text token of the project's vocabularies (documents are separated by it in training). */
    eos_token: z.string().min(1).optional(),
  })
  .loose();

export type TokenizerConfigInput = z.input<typeof schema>;

export interface TokenizerConfig {
  type: typeof GPT1_TYPE | typeof NEMO_TYPE;
  version: number;
  lowercase: boolean;
  byteFallback: boolean;
  cjk: 'char' | 'run';
  whitespaceSymbols: Record<string, string>;
  unkToken: string;
  specialTokens: string[];
  eosToken?: string;
}

export class TokenizerFileError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'TokenizerFileError';
  }
}

/** Validates a parsed tokenizer_config.json (or options given in code) and fills flavour defaults. */
export function parseTokenizerConfig(raw: unknown, file = 'tokenizer_config.json'): TokenizerConfig {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'root';
    throw new TokenizerFileError(file, `invalid tokenizer config at ${where}: ${issue?.message ?? 'unknown error'}`);
  }
  const c = parsed.data;
  const nemo = c.type === NEMO_TYPE;
  const whitespaceSymbols = nemo ? (c.whitespace_symbols ?? { ...DEFAULT_WHITESPACE_SYMBOLS }) : {};
  const markers = Object.values(whitespaceSymbols);
  if (new Set(markers).size !== markers.length || markers.some((m) => /\s/u.test(m))) {
    throw new TokenizerFileError(file, 'whitespace_symbols must map to distinct non-whitespace chars');
  }
  return {
    type: c.type,
    version: c.version,
    lowercase: c.lowercase ?? !nemo,
    byteFallback: nemo ? (c.byte_fallback ?? true) : false,
    cjk: c.cjk,
    whitespaceSymbols,
    unkToken: c.unk_token,
    specialTokens: [...new Set(c.special_tokens)],
    ...(c.eos_token !== undefined ? { eosToken: c.eos_token } : {}),
  };
}

/** The JSON written next to vocab.json / merges.txt. */
export function serializeTokenizerConfig(c: TokenizerConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { type: c.type, version: c.version, lowercase: c.lowercase };
  if (c.type === NEMO_TYPE) {
    out.byte_fallback = c.byteFallback;
    out.cjk = c.cjk;
    out.whitespace_symbols = c.whitespaceSymbols;
  }
  out.unk_token = c.unkToken;
  out.special_tokens = c.specialTokens;
  if (c.eosToken !== undefined) out.eos_token = c.eosToken;
  return out;
}
