// `npm run bench:tokenizer [-- --json]`: tokenizer speed — load time, encoding 10 KB of English,
// Chinese and mixed chat text with a cold cache (fresh tokenizer) and a warm one, decoding, and
// the same for the GPT-1 release vocabulary when ../shared/gpt1 is present.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { BpeTokenizer } from '../tokenizer/bpe.js';

const { values } = parseArgs({
  options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false }, vocab: { type: 'string', multiple: true } },
});
if (values.help) {
  console.log('Usage: npm run bench:tokenizer [-- --json] [--vocab DIR ...]\nTimes loading, encoding 10 KB texts (cold and warm cache) and decoding, per vocabulary folder.\nDefault folders: model/shipped and ../shared/gpt1 when present.');
  process.exit(0);
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dirs = values.vocab?.length
  ? values.vocab
  : [path.join(ROOT, 'model/shipped'), path.resolve(ROOT, '../shared/gpt1')].filter((d) => existsSync(d));

const ENGLISH = 'The committee said on Friday that the investigation had produced no evidence of irregularities, and it praised the city officials for the manner in which the election was conducted. ';
const CHINESE = '床前明月光，疑是地上霜。举头望明月，低头思故乡。你好，我们今天去哪里吃饭？我想吃面条，你呢？';
const MIXED = '今天 meeting 改到 3 点了 😀 OK 吗？Sure, see you at 3pm! 好的👍 ';

function tenKb(unit: string): string {
  let s = '';
  while (Buffer.byteLength(s) < 10_240) s += unit;
  return s;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

interface Row {
  vocab: string;
  text: string;
  bytes: number;
  tokens: number;
  coldMs: number;
  warmMs: number;
  decodeMs: number;
  warmMBps: number;
}

const rows: Row[] = [];
const loads: { vocab: string; loadMs: number }[] = [];
for (const dir of dirs) {
  const name = path.relative(ROOT, dir) || dir;
  const l0 = performance.now();
  await BpeTokenizer.load(dir);
  loads.push({ vocab: name, loadMs: performance.now() - l0 });
  for (const [label, unit] of [['english', ENGLISH], ['chinese', CHINESE], ['mixed', MIXED]] as const) {
    const text = tenKb(unit);
    const cold: number[] = [];
    for (let i = 0; i < 5; i++) {
      const fresh = await BpeTokenizer.load(dir);
      const t0 = performance.now();
      fresh.encode(text);
      cold.push(performance.now() - t0);
    }
    const tok = await BpeTokenizer.load(dir);
    const ids = tok.encode(text);
    const warm: number[] = [];
    const dec: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      tok.encode(text);
      warm.push(performance.now() - t0);
      const t1 = performance.now();
      tok.decode(ids);
      dec.push(performance.now() - t1);
    }
    const bytes = Buffer.byteLength(text);
    rows.push({ vocab: name, text: label, bytes, tokens: ids.length, coldMs: median(cold), warmMs: median(warm), decodeMs: median(dec), warmMBps: bytes / 1e6 / (median(warm) / 1000) });
  }
}

const machine = `${os.cpus().length} vCPU ${os.cpus()[0]?.model ?? ''}, node ${process.version}, load average ${os.loadavg()[0]?.toFixed(1)}`;
if (values.json) {
  console.log(JSON.stringify({ machine, loads, rows }, null, 2));
} else {
  console.log(`machine: ${machine} (shared machine: figures are noisy)`);
  for (const l of loads) console.log(`load ${l.vocab}: ${l.loadMs.toFixed(0)} ms`);
  console.log('| vocabulary | text (10 KB) | tokens | encode cold ms | encode warm ms | warm MB/s | decode ms |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.vocab} | ${r.text} | ${r.tokens} | ${r.coldMs.toFixed(2)} | ${r.warmMs.toFixed(2)} | ${r.warmMBps.toFixed(1)} | ${r.decodeMs.toFixed(2)} |`);
  }
}
