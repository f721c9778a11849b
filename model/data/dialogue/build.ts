// The chat data builder: reads every source, normalises the messages, cuts long dialogues into
// windows that fit the model's context, drops overlong turns and repeated exchanges, caps the
// templated sources, splits by conversation group (stratified by source) and writes
// train.jsonl / valid.jsonl / NOTICE / stats.json. Every choice is a function of the seed.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Rng } from '../../rng.js';
import { cedictConversations, rankWords, type CedictEntry } from './cedict.js';
import { normalizeMessages, type DialogueRecord, type Lang, type Message, type SourceConversation } from './conversation.js';
import { SOURCE_INFO } from './sources.js';

export interface Reader {
  name: string;
  read: () => AsyncIterable<SourceConversation>;
}

export interface BuildOptions {
  readers: Reader[];
  /** CC-CEDICT entries; without them no dictionary exchanges are made. */
  cedict?: () => Promise<CedictEntry[]>;
  /** Token count of a text with the model's tokenizer. */
  countTokens: (text: string) => number;
  seed: number;
  /** Share of each source's conversation groups held out for validation. */
  validShare: number;
  /** At most this many conversations per source (after de-duplication). */
  caps: Record<string, number>;
  /** A user turn and its reply (counted as sequenceTokens does) must fit in this many tokens. */
  maxPairTokens: number;
  /** A whole conversation (counted as sequenceTokens does) must fit in this many tokens. */
  maxTokens: number;
  onSource?: (name: string, conversations: number) => void;
}

/** Conversations per source that make the mix: the templated sources stay small. */
export const DEFAULT_CAPS: Record<string, number> = {
  // Task-oriented and knowledge-grounded dialogues: capped so Chinese does not outweigh English.
  crosswoz: 1500,
  kdconv: 2000,
  tatoeba: 3000,
  'cedict-zh-en': 2000,
  'cedict-en-zh': 2000,
  xiehouyu: 1500,
  poems: 1500,
};

export interface SourceStats {
  lang: Record<Lang, number>;
  train: { conversations: number; assistantTurns: number; tokens: number };
  valid: { conversations: number; assistantTurns: number; tokens: number };
  /** Read, then dropped: overlong turns, empty messages, repeats, over the cap. */
  dropped: { overlong: number; empty: number; duplicate: number; capped: number };
}

export interface DialogueStats {
  seed: number;
  validShare: number;
  sources: Record<string, SourceStats>;
  /** Tokens per language and split (nemo-lines format with the end-of-text token). */
  tokens: Record<'train' | 'valid', Record<Lang, number>>;
}

export interface BuildResult {
  train: DialogueRecord[];
  valid: DialogueRecord[];
  stats: DialogueStats;
  /** Per-record attributions a licence asks to keep (Tatoeba), for the records written. */
  attributions: string[];
}

interface Item {
  record: DialogueRecord;
  group: string;
  tokens: number;
  attribution?: string;
}

function emptyStats(): SourceStats {
  return {
    lang: { zh: 0, en: 0, mixed: 0 },
    train: { conversations: 0, assistantTurns: 0, tokens: 0 },
    valid: { conversations: 0, assistantTurns: 0, tokens: 0 },
    dropped: { overlong: 0, empty: 0, duplicate: 0, capped: 0 },
  };
}

/**
 * Tokens of a conversation as the chat trainer builds its sequence (the nemo-lines contract): each
 * prompt part up to and including `Bot:` tokenized on its own, each reply as `" " + reply` on its
 * own, then one terminator token (`\n` before the next `User:` line, or end-of-text after the last).
 */
export function sequenceTokens(messages: Message[], countTokens: (text: string) => number): number {
  let n = 0;
  let prompt: string[] = [];
  let first = true;
  for (const m of messages) {
    if (m.role === 'system') prompt.push(m.content);
    else if (m.role === 'user') prompt.push(`User: ${m.content}`);
    else {
      prompt.push('Bot:');
      n += countTokens((first ? '' : '\n') + prompt.join('\n')) + countTokens(` ${m.content}`) + 1;
      prompt = [];
      first = false;
    }
  }
  return n;
}

/**
 * Cuts a normalised dialogue into windows of whole user→assistant exchanges that fit `maxTokens`
 * (the system line, if any, opens the first window only). An exchange longer than `maxPairTokens`
 * is dropped and ends the window, since a reply without its question teaches nothing.
 */
export function windows(messages: Message[], o: Pick<BuildOptions, 'countTokens' | 'maxPairTokens' | 'maxTokens'>): { windows: Message[][]; overlong: number } {
  let system = messages[0]?.role === 'system' ? messages[0] : undefined;
  const turns = system ? messages.slice(1) : messages;
  const pairs: [Message, Message][] = [];
  for (let i = 0; i + 1 < turns.length; i++) {
    const a = turns[i] as Message;
    const b = turns[i + 1] as Message;
    if (a.role === 'user' && b.role === 'assistant') {
      pairs.push([a, b]);
      i++;
    }
  }
  const out: Message[][] = [];
  let overlong = 0;
  let current: Message[] = [];
  const flush = () => {
    if (current.some((m) => m.role === 'assistant')) out.push(current);
    current = [];
  };
  for (const [u, b] of pairs) {
    if (sequenceTokens([u, b], o.countTokens) > o.maxPairTokens) {
      overlong++;
      flush();
      continue;
    }
    if (current.length === 0 && system) {
      // The persona opens the dialogue's first window when it fits there, and no other.
      if (sequenceTokens([system, u, b], o.countTokens) <= o.maxTokens) current.push(system);
      system = undefined;
    }
    const next = [...current, u, b];
    if (current.some((m) => m.role === 'assistant') && sequenceTokens(next, o.countTokens) > o.maxTokens) {
      flush();
      current = [u, b];
    } else {
      current = next;
    }
  }
  flush();
  return { windows: out, overlong };
}

function exchangeKey(messages: Message[]): string {
  return JSON.stringify(messages.filter((m) => m.role !== 'system').map((m) => [m.role[0], m.content]));
}

function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

function countAssistant(r: DialogueRecord): number {
  return r.messages.filter((m) => m.role === 'assistant').length;
}

export async function buildDialogueData(o: BuildOptions): Promise<BuildResult> {
  const seen = new Set<string>();
  const stats: Record<string, SourceStats> = {};
  const bySource = new Map<string, Item[]>();
  const chineseTexts: string[] = [];

  const take = async (it: AsyncIterable<SourceConversation> | Iterable<SourceConversation>) => {
    for await (const c of it) {
      const s = (stats[c.source] ??= emptyStats());
      const messages = normalizeMessages(c.messages);
      if (!messages) {
        s.dropped.empty++;
        continue;
      }
      const cut = windows(messages, o);
      s.dropped.overlong += cut.overlong;
      for (const w of cut.windows) {
        const key = exchangeKey(w);
        if (seen.has(key)) {
          s.dropped.duplicate++;
          continue;
        }
        seen.add(key);
        if (c.lang === 'zh') for (const m of w) chineseTexts.push(m.content);
        const list = bySource.get(c.source) ?? [];
        bySource.set(c.source, list);
        list.push({ record: { messages: w, source: c.source, lang: c.lang }, group: c.group, tokens: sequenceTokens(w, o.countTokens), attribution: c.attribution });
      }
    }
  };

  for (const reader of o.readers) {
    const before = [...bySource.values()].reduce((n, l) => n + l.length, 0);
    await take(reader.read());
    o.onSource?.(reader.name, [...bySource.values()].reduce((n, l) => n + l.length, 0) - before);
  }
  if (o.cedict) {
    const entries = await o.cedict();
    // The words chatters use: ranked by their frequency in the Chinese dialogue data read above.
    const words = rankWords(chineseTexts, new Set(entries.map((e) => e.simplified)));
    const before = [...bySource.values()].reduce((n, l) => n + l.length, 0);
    await take(cedictConversations(entries, words, o.seed));
    o.onSource?.('cedict', [...bySource.values()].reduce((n, l) => n + l.length, 0) - before);
  }

  const rng = new Rng(o.seed);
  const train: Item[] = [];
  const valid: Item[] = [];
  for (const [source, items] of [...bySource.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const s = stats[source] as SourceStats;
    let kept = items;
    const cap = o.caps[source];
    if (cap !== undefined && items.length > cap) {
      // cedict items come most used word first: keep the head; other capped sources are sampled.
      kept = source.startsWith('cedict') ? items.slice(0, cap) : shuffle([...items], rng).slice(0, cap);
      s.dropped.capped += items.length - cap;
    }
    const groups = [...new Set(kept.map((i) => i.group))].sort();
    shuffle(groups, rng);
    const nValid = groups.length < 2 ? 0 : Math.max(1, Math.round(groups.length * o.validShare));
    const validGroups = new Set(groups.slice(0, nValid));
    for (const item of kept) {
      const split = validGroups.has(item.group) ? 'valid' : 'train';
      (split === 'valid' ? valid : train).push(item);
      s.lang[item.record.lang]++;
      s[split].conversations++;
      s[split].assistantTurns += countAssistant(item.record);
      s[split].tokens += item.tokens;
    }
  }
  shuffle(train, rng);
  shuffle(valid, rng);
  const tokens: DialogueStats['tokens'] = { train: { zh: 0, en: 0, mixed: 0 }, valid: { zh: 0, en: 0, mixed: 0 } };
  for (const i of train) tokens.train[i.record.lang] += i.tokens;
  for (const i of valid) tokens.valid[i.record.lang] += i.tokens;
  return {
    train: train.map((i) => i.record),
    valid: valid.map((i) => i.record),
    stats: { seed: o.seed, validShare: o.validShare, sources: stats, tokens },
    attributions: [...train, ...valid].filter((i) => i.attribution).map((i) => i.attribution as string).sort(),
  };
}

/** The NOTICE: every source that contributed, its licence and attribution, then per-record attributions. */
export function notice(result: BuildResult): string {
  const used = Object.entries(result.stats.sources).filter(([, s]) => s.train.conversations + s.valid.conversations > 0);
  const lines = [
    'nemo chat data (train.jsonl, valid.jsonl): sources, licences and attributions',
    '',
    'The records are derived from the sources below (normalised, cut into windows, de-duplicated).',
    'Each record names its source in its "source" field.',
    '',
  ];
  for (const [name] of used) {
    const info = SOURCE_INFO[name] ?? { name, what: name, origin: 'unknown', licence: 'unknown', attribution: '' };
    lines.push(`* ${name}: ${info.what}`, `  from: ${info.origin}`, `  licence: ${info.licence}`, `  attribution: ${info.attribution}`, '');
  }
  if (result.attributions.length > 0) {
    lines.push('Per-record attributions (Tatoeba, CC BY 2.0 FR):', ...result.attributions, '');
  }
  return lines.join('\n');
}

export async function writeDialogueData(outDir: string, result: BuildResult): Promise<Record<string, string>> {
  await mkdir(outDir, { recursive: true });
  const files = {
    train: path.join(outDir, 'train.jsonl'),
    valid: path.join(outDir, 'valid.jsonl'),
    notice: path.join(outDir, 'NOTICE'),
    stats: path.join(outDir, 'stats.json'),
  };
  const jsonl = (records: DialogueRecord[]) => records.map((r) => JSON.stringify(r)).join('\n') + (records.length > 0 ? '\n' : '');
  await writeFile(files.train, jsonl(result.train));
  await writeFile(files.valid, jsonl(result.valid));
  await writeFile(files.notice, notice(result));
  await writeFile(files.stats, `${JSON.stringify(result.stats, null, 2)}\n`);
  return files;
}

/** The counts as a text table: one row per source, then one per language. */
export function statsTable(stats: DialogueStats): string {
  const rows: string[][] = [['source', 'lang', 'train conv', 'train turns', 'train tokens', 'valid conv', 'valid turns', 'valid tokens', 'dropped (long/dup/cap)']];
  for (const [name, s] of Object.entries(stats.sources)) {
    const lang = (Object.entries(s.lang) as [Lang, number][]).filter(([, n]) => n > 0).map(([l]) => l).join('+');
    rows.push([name, lang, s.train.conversations, s.train.assistantTurns, s.train.tokens, s.valid.conversations, s.valid.assistantTurns, s.valid.tokens, `${s.dropped.overlong}/${s.dropped.duplicate}/${s.dropped.capped}`].map(String));
  }
  const total = (split: 'train' | 'valid') => Object.values(stats.tokens[split]).reduce((a, b) => a + b, 0);
  for (const lang of ['zh', 'en', 'mixed'] as const) {
    const t = stats.tokens.train[lang];
    rows.push([`all ${lang}`, lang, '', '', `${t} (${((100 * t) / Math.max(1, total('train'))).toFixed(1)}%)`, '', '', String(stats.tokens.valid[lang]), '']);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((v, c) => (c < 2 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ')).join('\n');
}
