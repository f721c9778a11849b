// Reading and writing vocabulary folders: the Hugging Face layout (vocab.json, merges.txt,
// optional tokenizer_config.json) or the original OpenAI release (encoder_bpe_40000.json,
// vocab_40000.bpe). Every problem is reported with the file's path.
import { access, readFile, writeFile, mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { parseTokenizerConfig, serializeTokenizerConfig, TokenizerFileError, GPT1_TYPE, type TokenizerConfig } from './config.js';

export const VOCAB_FILE = 'vocab.json';
export const MERGES_FILE = 'merges.txt';
export const CONFIG_FILE = 'tokenizer_config.json';
export const ORIGINAL_VOCAB_FILE = 'encoder_bpe_40000.json';
export const ORIGINAL_MERGES_FILE = 'vocab_40000.bpe';

export interface TokenizerData {
  encoder: Record<string, number>;
  /** "left right" per merge, in rank order. */
  merges: string[];
  config: TokenizerConfig;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TokenizerFileError(file, code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(err)})`);
  }
}

async function readJson(file: string): Promise<unknown> {
  const text = await readText(file);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new TokenizerFileError(file, `not valid JSON (${(err as Error).message})`);
  }
}

/** Checks an encoder: an object of token → distinct non-negative integer ids. */
export function validateEncoder(raw: unknown, file: string): Record<string, number> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TokenizerFileError(file, 'expected a JSON object mapping tokens to ids');
  }
  const seen = new Map<number, string>();
  for (const [token, id] of Object.entries(raw)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new TokenizerFileError(file, `token ${JSON.stringify(token)} has invalid id ${JSON.stringify(id)}`);
    }
    const other = seen.get(id);
    if (other !== undefined) {
      throw new TokenizerFileError(file, `id ${id} is used by both ${JSON.stringify(other)} and ${JSON.stringify(token)}`);
    }
    seen.set(id, token);
  }
  if (seen.size === 0) throw new TokenizerFileError(file, 'the vocabulary is empty');
  for (let id = 0; id < seen.size; id++) {
    if (!seen.has(id)) throw new TokenizerFileError(file, `ids are not contiguous: ${id} is missing (vocabulary of ${seen.size})`);
  }
  return raw as Record<string, number>;
}

/** Parses merges text: an optional "#version" first line, then one "left right" pair per line. */
export function parseMerges(text: string, file: string): string[] {
  const lines = text.split('\n');
  const merges: string[] = [];
  lines.forEach((rawLine, i) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (i === 0 && line.startsWith('#version')) return;
    if (line === '') {
      // Only a trailing newline may leave an empty line.
      if (i === lines.length - 1) return;
      throw new TokenizerFileError(file, `line ${i + 1} is empty`);
    }
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new TokenizerFileError(file, `line ${i + 1} is not a "left right" pair: ${JSON.stringify(line.slice(0, 80))}`);
    }
    merges.push(line);
  });
  return merges;
}

/** Loads a vocabulary folder in either layout. */
export async function readTokenizerFiles(dir: string): Promise<TokenizerData> {
  const hfVocab = path.join(dir, VOCAB_FILE);
  const origVocab = path.join(dir, ORIGINAL_VOCAB_FILE);
  let vocabFile: string;
  let mergesFile: string;
  if (await exists(hfVocab)) {
    vocabFile = hfVocab;
    mergesFile = path.join(dir, MERGES_FILE);
  } else if (await exists(origVocab)) {
    vocabFile = origVocab;
    mergesFile = path.join(dir, ORIGINAL_MERGES_FILE);
  } else {
    throw new TokenizerFileError(dir, `no tokenizer here: expected ${VOCAB_FILE} + ${MERGES_FILE} or ${ORIGINAL_VOCAB_FILE} + ${ORIGINAL_MERGES_FILE}`);
  }
  const encoder = validateEncoder(await readJson(vocabFile), vocabFile);
  const merges = parseMerges(await readText(mergesFile), mergesFile);
  const configFile = path.join(dir, CONFIG_FILE);
  const config = (await exists(configFile))
    ? parseTokenizerConfig(await readJson(configFile), configFile)
    : parseTokenizerConfig({ type: GPT1_TYPE });
  return { encoder, merges, config };
}

/** The three files' contents, for writing or for bundling into a checkpoint. */
export function renderTokenizerFiles(data: TokenizerData): Record<string, string> {
  // Sort by id so the file reads in vocabulary order (and is byte-identical for identical data).
  const entries = Object.entries(data.encoder).sort((a, b) => a[1] - b[1]);
  const vocab = `{${entries.map(([t, id]) => `${JSON.stringify(t)}: ${id}`).join(', ')}}\n`;
  return {
    [VOCAB_FILE]: vocab,
    [MERGES_FILE]: `#version: 0.2\n${data.merges.map((m) => `${m}\n`).join('')}`,
    [CONFIG_FILE]: `${JSON.stringify(serializeTokenizerConfig(data.config), null, 2)}\n`,
  };
}

/** Writes the HF layout (each file via a temporary name, so a crash never leaves half a file). */
export async function writeTokenizerFiles(dir: string, data: TokenizerData): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(renderTokenizerFiles(data))) {
    const target = path.join(dir, name);
    await writeFile(`${target}.tmp`, content, 'utf8');
    await rename(`${target}.tmp`, target);
  }
}
