// `node --import tsx model/bench/sampler.ts [--module PATH] [--json]`: cost of Sampler.pick per
// token (ms) at GPT-1's vocabulary (40,478) and a small one (8,000), for top-k 40, top-p 0.9,
// both, plain temperature and greedy, on random normal logits (context of 60 tokens, no filters).
// --module measures another copy of sampling.ts (e.g. an older version, for before/after).
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Rng } from '../rng.js';
import type { Sampler as SamplerClass, SamplerOptions } from '../inference/sampling.js';

const { values: args } = parseArgs({ options: { module: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } });
if (args.help) {
  console.log('Usage: node --import tsx model/bench/sampler.ts [--module PATH] [--json]');
  process.exit(0);
}
const mod = (await import(args.module ? pathToFileURL(path.resolve(args.module)).href : '../sampling.js')) as { Sampler: typeof SamplerClass };

const settings: [string, SamplerOptions][] = [
  ['top-k 40', { temperature: 1, topK: 40 }],
  ['top-p 0.9', { temperature: 1, topP: 0.9 }],
  ['top-k 40 + top-p 0.9', { temperature: 0.8, topK: 40, topP: 0.9 }],
  ['temperature 1', { temperature: 1 }],
  ['greedy', { temperature: 0 }],
];
const rows: { vocab: number; setting: string; msPerToken: number }[] = [];
for (const vocab of [40_478, 8_000]) {
  const rng = new Rng(1);
  const logits = Array.from({ length: 16 }, () => Float32Array.from({ length: vocab }, () => rng.normal() * 3));
  const context = Array.from({ length: 60 }, (_, i) => (i * 7919) % vocab);
  for (const [name, opts] of settings) {
    const s = new mod.Sampler({ ...opts, seed: 1 });
    const run = (n: number) => {
      const t = performance.now();
      for (let i = 0; i < n; i++) s.pick(logits[i % logits.length], context);
      return (performance.now() - t) / n;
    };
    run(200); // warm-up
    const times = [run(400), run(400), run(400)].sort((a, b) => a - b);
    rows.push({ vocab, setting: name, msPerToken: Number(times[1].toFixed(4)) });
  }
}
if (args.json) console.log(JSON.stringify(rows));
else for (const r of rows) console.log(`V=${r.vocab}  ${r.setting.padEnd(22)} ${r.msPerToken.toFixed(4)} ms/token`);
