// The record every dialogue reader yields and the builder writes: one conversation, JSONL-ready,
// plus the text normalisation every message goes through (one rule set for all sources).
import { readFile } from 'node:fs/promises';
import * as OpenCC from 'opencc-js/t2cn';

export type Role = 'system' | 'user' | 'assistant';
export type Lang = 'zh' | 'en' | 'mixed';

export interface Message {
  role: Role;
  content: string;
}

/** A conversation as a reader yields it, before normalisation, windowing and splitting. */
export interface SourceConversation {
  messages: Message[];
  /** Source name as it appears in the output's `source` field, e.g. 'chitchat-zh'. */
  source: string;
  lang: Lang;
  /** Conversations with the same group always land in the same split (e.g. windows of one dialogue). */
  group: string;
  /** Attribution line a licence asks to keep for this very record (Tatoeba). */
  attribution?: string;
}

/** One output line. */
export interface DialogueRecord {
  messages: Message[];
  source: string;
  lang: Lang;
}

/** Thrown when a source file is missing or not in the expected format. */
export class DialogueDataError extends Error {
  override name = 'DialogueDataError';
}

/** A source file's text; a missing or unreadable file is a DialogueDataError naming it. */
export async function readSourceText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new DialogueDataError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** A source file's JSON, with the same errors (a parse error names the file too). */
export async function readSourceJson(file: string): Promise<unknown> {
  const text = await readSourceText(file);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DialogueDataError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

let toSimplified: ((s: string) => string) | undefined;

const CJK = /[\u3400-\u9fff\uf900-\ufaff]/;
// Chinese characters and the CJK / full-width punctuation written between them (，。！？、；：（）「」《》…).
const CJK_OR_PUNCT = '[\\u3400-\\u9fff\\uf900-\\ufaff\\u3000-\\u303f\\uff01-\\uff0f\\uff1a-\\uff20\\uff3b-\\uff40\\uff5b-\\uff65]';

/**
 * Trims, collapses every run of whitespace (newlines included: one line per turn) to one space,
 * removes the end-of-text marker, and converts Chinese to Simplified (mainland) characters.
 * Full-width punctuation is kept as it is.
 */
export function normalizeText(text: string): string {
  let t = text.replaceAll('<|endoftext|>', ' ').replace(/[\s\u00a0\u3000]+/gu, ' ').trim();
  if (CJK.test(t)) {
    t = (toSimplified ??= OpenCC.Converter({ from: 't', to: 'cn' }))(t);
    // A space between two Chinese characters is a typing artefact, not a word boundary.
    t = t.replace(new RegExp(`(?<=${CJK_OR_PUNCT})\\s+(?=${CJK_OR_PUNCT})`, 'gu'), '');
  }
  return t;
}

/** Normalises every message; drops the conversation (null) when a message becomes empty. */
export function normalizeMessages(messages: Message[]): Message[] | null {
  const out: Message[] = [];
  for (const m of messages) {
    const content = normalizeText(m.content);
    if (content === '') return null;
    out.push({ role: m.role, content });
  }
  return out;
}
