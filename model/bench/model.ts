// `npm run bench:model [-- --json]`: GPT-1 inference speed on this machine, full GPT-1 shape, or
// CDial-GPT's with --shape cdial (random weights unless --model points at a real checkpoint, of any
// layout: safetensors, PyTorch, the OpenAI release): load time, prefill of 128 tokens,
// single-stream decode ms/token at positions ~16 and ~400, aggregate tokens/s with 1, 4 and 8
// concurrent streams (continuous batching with real sampling), peak RSS, and the floors a step is
// held to on this machine: the weights' read time at the measured memory rate, and the
// multiply-adds' time at the measured FMA peak (the native addon's probes, before each round).
import { spawnSync } from 'node:child_process';
import { cp, mkdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Batcher } from '../inference/batcher.js';
import { initBackend } from '../backend.js';
import { saveCheckpoint, torchWeightsFile } from '../io/checkpoint.js';
import { GPT1_CONFIG, makeConfig, readConfigFile, type GptConfig } from '../nn/config.js';
import type { InferenceEngine } from '../inference/engine.js';
import { Sequence, type PromptIds, type SequenceResult } from '../inference/sequence.js';
import type { ChatFormat } from '../chat/chat-format.js';
import { chatFormatFor } from '../chat/registry.js';
import { countParams, initParamArrays, paramSpecs } from '../nn/params.js';
import { loadRuntime, type Runtime } from '../inference/runtime.js';
import { createTinyModel } from '../test/tiny-model.js';
import { ADDON_PATH, nativeStatus } from '../native/index.js';
import { nativeMatMulActive } from '../native/kernels.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    model: { type: 'string' },
    shape: { type: 'string', default: 'gpt1' },
    backend: { type: 'string' },
    streams: { type: 'string', default: '1,4,8' },
    tokens: { type: 'string', default: '48' },
    repeat: { type: 'string', default: '3' },
    prepare: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`Usage: npm run bench:model [-- --json] [--model DIR | --shape gpt1|cdial] [--backend node|wasm|cpu] [--streams 1,4,8] [--tokens 48] [--repeat 3]
Measures GPT-1 inference (random full-size weights unless --model is given). --shape cdial takes
CDial-GPT's shape instead (13,088-entry vocab.txt, 513 positions; needs $NEMO_CDIAL_DIR or
../shared/cdial-gpt for its config.json and vocab.txt). A model whose chat format has token types
(cdial) gets its streams' prompts from that format, types included. The stream counts
run --repeat times in turn (1, 4, 8, 1, 4, 8, ...): medians are reported, and the 8-vs-1 ratio is
the median of the ratios within each round, so a slow moment on a shared machine skews one round,
not the ratio. Before each round the native addon probes the machine (memory read rate, FMA peak
on its threads): "floors" gives the time a step needs to read the weights at that rate, and its
multiply-adds' time at that peak for one stream and for 8.
On wasm the native matmul addon is used when built; NEMO_NATIVE=0 measures the wasm kernels,
NEMO_NATIVE_THREADS=n its thread count.`);
  process.exit(0);
}

const log = (...a: unknown[]) => {
  if (!args.json) console.error(...a);
};
/** Memory read by the probe: well beyond any last-level cache. */
const PROBE_BYTES = 256 * 2 ** 20;

/**
 * The native addon's machine probe (memory read rate, FMA peak) on as many threads as its pool
 * here, in a child process: its buffer must not count in this process's peak RSS. Undefined when
 * the addon is not in use.
 */
function probeMachine(): { fmaGflops: number; readGBs: number } | undefined {
  const threads = nativeStatus().threads;
  if (!nativeMatMulActive() || !threads) return undefined;
  // (An addon built before the probe existed has none: null, and the floors are not reported.)
  const code = `const a = require(${JSON.stringify(ADDON_PATH)}); a.setThreads(${threads}); console.log(JSON.stringify(a.probe ? a.probe(${PROBE_BYTES}) : null));`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the machine probe failed: ${r.stderr.trim()}`);
  return (JSON.parse(r.stdout) as { fmaGflops: number; readGBs: number } | null) ?? undefined;
}
/** Bytes of the folder's weights file, whichever layout it has. */
async function weightsBytes(dir: string): Promise<number | undefined> {
  const file = existsSync(path.join(dir, 'model.safetensors')) ? path.join(dir, 'model.safetensors') : await torchWeightsFile(dir);
  return file ? (await stat(file)).size : undefined;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const GPT1_VOCAB = path.resolve('..', 'shared', 'gpt1');
const CDIAL_DIR = process.env.NEMO_CDIAL_DIR ?? path.resolve('..', 'shared', 'cdial-gpt');
const SHAPES = ['gpt1', 'cdial'];

/** Writes a random checkpoint of the shape into `dir` (run in a child process: keeps this RSS honest). */
async function writeRandomModel(dir: string, shape: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  let config: GptConfig;
  if (shape === 'cdial') {
    // CDial-GPT's own config.json and vocab.txt: a CDial-layout folder but for its weights.
    for (const f of ['config.json', 'vocab.txt']) await cp(path.join(CDIAL_DIR, f), path.join(dir, f));
    config = await readConfigFile(path.join(dir, 'config.json'));
  } else {
    if (existsSync(path.join(GPT1_VOCAB, 'encoder_bpe_40000.json'))) {
      for (const f of ['encoder_bpe_40000.json', 'vocab_40000.bpe']) await cp(path.join(GPT1_VOCAB, f), path.join(dir, f));
    } else {
      await createTinyModel(dir); // for its tokenizer; the checkpoint is overwritten below
    }
    config = makeConfig(GPT1_CONFIG);
  }
  const arrays = initParamArrays(config, 1);
  const shapes = new Map(paramSpecs(config).map((s) => [s.name, s.shape]));
  await saveCheckpoint(dir, config, new Map([...arrays].map(([n, data]) => [n, { shape: shapes.get(n)!, data }])));
}

async function prepareModel(): Promise<{ dir: string; random: boolean }> {
  if (args.model) return { dir: path.resolve(args.model), random: false };
  const shape = args.shape!;
  if (!SHAPES.includes(shape)) throw new Error(`--shape must be one of ${SHAPES.join(', ')} (got ${JSON.stringify(shape)})`);
  if (shape === 'cdial' && !existsSync(path.join(CDIAL_DIR, 'vocab.txt'))) {
    throw new Error(`--shape cdial needs CDial-GPT's config.json and vocab.txt in ${CDIAL_DIR} (set NEMO_CDIAL_DIR), or --model with a downloaded CDial-GPT`);
  }
  const real = path.resolve('models', 'openai-gpt');
  if (shape === 'gpt1' && existsSync(path.join(real, 'model.safetensors'))) return { dir: real, random: false };
  // Cached between runs in the temp folder (400-470 MB).
  const dir = path.join(os.tmpdir(), `nemo-bench-${shape}-random-v1`);
  if (!existsSync(path.join(dir, 'model.safetensors'))) {
    log(`writing a random ${shape}-shape checkpoint (real weights absent) ...`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--prepare', dir, '--shape', shape], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('could not write the random checkpoint');
  }
  return { dir, random: true };
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * Median wall ms per decode step, and CPU ms per step summed over all threads of the process:
 * on a machine shared with other work, CPU time is the steadier of the two.
 */
function timeDecode(engine: InferenceEngine, promptLen: number, steps: number): { wall: number; cpu: number } {
  const V = engine.config.vocabSize;
  const ids = Array.from({ length: promptLen }, (_, i) => (i * 7919) % V);
  const { cache } = engine.prefill(ids);
  const times: number[] = [];
  const c0 = cpuMs();
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    engine.step([{ cache, token: (i * 31) % V }]);
    times.push(performance.now() - t);
  }
  const cpu = (cpuMs() - c0) / steps;
  engine.release(cache);
  return { wall: median(times), cpu };
}

/**
 * Stream i's prompt: 12 words as text, or, for a format with token types (cdial), the format's
 * prompt for them as a message, types included, as the bot would send it.
 */
function streamPrompt(format: ChatFormat, i: number): string | PromptIds {
  const words = format.name === 'cdial' ? [...'你好今天天气怎么样我们去公园散步吧'] : ['hello', 'there', 'how', 'are', 'you', 'today', 'the', 'weather', 'is', 'nice'];
  const text = Array.from({ length: 12 }, (_, j) => words[(i * 3 + j) % words.length]).join(' ');
  const p = format.buildPrompt([], text, { maxPromptTokens: 64 });
  return p.tokenTypes ? { ids: p.ids, tokenTypes: p.tokenTypes, replyTokenType: p.replyTokenType } : text;
}

async function streams(rt: Runtime, format: ChatFormat, n: number, tokens: number): Promise<{ tokensPerSecond: number; msPerStep: number }> {
  const batcher = new Batcher(rt.engine, n);
  const t = performance.now();
  const stepsBefore = batcher.stats().steps;
  const results = await Promise.all(Array.from({ length: n }, (_, i) => new Promise<SequenceResult>((resolve, reject) => {
    const topK = Math.min(40, rt.config.vocabSize);
    const seq = new Sequence(rt.tokenizer, rt.config, streamPrompt(format, i), { maxNewTokens: tokens, minNewTokens: tokens, temperature: 1, topK, seed: i });
    batcher.add({ id: String(i), seq, onDone: resolve, onError: reject });
  })));
  const ms = performance.now() - t;
  const total = results.reduce((a, r) => a + r.completionTokens, 0);
  const steps = batcher.stats().steps - stepsBefore;
  return { tokensPerSecond: (total / ms) * 1000, msPerStep: ms / Math.max(1, steps) };
}

async function main(): Promise<void> {
  const backendName = await initBackend(args.backend);
  try {
    const model = await prepareModel();
    const t0 = performance.now();
    const rt = await loadRuntime(model.dir, { backend: args.backend });
    const loadMs = performance.now() - t0;
    const { format } = await chatFormatFor(model.dir, rt.tokenizer);
    log(`loaded in ${(loadMs / 1000).toFixed(1)} s (incl. warm-up), backend ${backendName}; ${nativeMatMulActive() ? nativeStatus().reason : 'backend matmul kernels'}; chat format ${format.name}`);
    const prefill: number[] = [];
    const pc0 = cpuMs();
    for (let i = 0; i < 3; i++) {
      const ids = Array.from({ length: 128 }, (_, j) => (j * 131 + i) % rt.config.vocabSize);
      const t = performance.now();
      const { cache } = rt.engine.prefill(ids);
      prefill.push(performance.now() - t);
      rt.engine.release(cache);
    }
    const prefillCpu = (cpuMs() - pc0) / 3;
    log(`prefill 128 tokens: ${median(prefill).toFixed(0)} ms (${prefillCpu.toFixed(0)} ms CPU)`);
    const decode16 = timeDecode(rt.engine, 16, 20);
    log(`decode at ~16: ${decode16.wall.toFixed(1)} ms/token (${decode16.cpu.toFixed(1)} ms CPU)`);
    const decode400 = timeDecode(rt.engine, 400, 20);
    log(`decode at ~400: ${decode400.wall.toFixed(1)} ms/token (${decode400.cpu.toFixed(1)} ms CPU)`);
    const tokens = Number(args.tokens);
    const counts = args.streams!.split(',').map(Number);
    const rounds = Math.max(1, Number(args.repeat));
    const runs: Record<string, Array<{ tokensPerSecond: number; msPerStep: number }>> = {};
    const probes: Array<{ fmaGflops: number; readGBs: number }> = [];
    for (let r = 0; r < rounds; r++) {
      // The machine's floors now (a shared host's memory rate moves between rounds).
      const probe = probeMachine();
      if (probe) {
        probes.push(probe);
        log(`probe: reading memory at ${probe.readGBs.toFixed(1)} GB/s, multiply-adds at ${probe.fmaGflops.toFixed(0)} GFLOP/s (the native thread pool)`);
      }
      for (const n of counts) {
        const m = await streams(rt, format, n, tokens);
        (runs[n] ??= []).push(m);
        log(`${n} stream(s): ${m.tokensPerSecond.toFixed(1)} tokens/s aggregate (${m.msPerStep.toFixed(1)} ms per batched step, prefill included)${rounds > 1 ? ` [round ${r + 1}/${rounds}]` : ''}`);
      }
    }
    const aggregate: Record<string, { tokensPerSecond: number; msPerStep: number; runs: number[] }> = {};
    for (const [n, ms] of Object.entries(runs)) {
      aggregate[n] = { tokensPerSecond: median(ms.map((m) => m.tokensPerSecond)), msPerStep: median(ms.map((m) => m.msPerStep)), runs: ms.map((m) => +m.tokensPerSecond.toFixed(1)) };
    }
    const ratios = runs['8'] && runs['1'] ? runs['8'].map((m, i) => m.tokensPerSecond / runs['1'][i].tokensPerSecond) : [];
    const c = rt.config;
    // Bytes of weights read per generated token: every matrix and the LM head (tied embedding),
    // plus one row of each embedding table.
    const bytesPerToken = 4 * (countParams(c) - c.nPositions * c.nEmbd);
    // Multiply-adds of one token in the weight matmuls: each block's four, and the LM head.
    const macs = c.nLayer * (4 * c.nEmbd * c.nEmbd + 2 * c.nEmbd * c.nInner) + c.nEmbd * c.vocabSize;
    const result = {
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), loadavg: os.loadavg().map((x) => +x.toFixed(2)) },
      node: process.version,
      backend: rt.info.backend,
      matmul: nativeMatMulActive() ? nativeStatus().reason : 'backend kernels',
      weights: model.random ? `random (${args.shape === 'cdial' ? 'CDial-GPT' : 'GPT-1'} shape)` : model.dir,
      chatFormat: format.name,
      vocabSize: rt.config.vocabSize,
      parameters: countParams(c),
      checkpointBytes: await weightsBytes(model.dir),
      loadMs: Math.round(loadMs),
      prefill128Ms: Math.round(median(prefill)),
      prefill128CpuMs: Math.round(prefillCpu),
      decodeMsPerToken: { pos16: +decode16.wall.toFixed(1), pos400: +decode400.wall.toFixed(1) },
      decodeCpuMsPerToken: { pos16: +decode16.cpu.toFixed(1), pos400: +decode400.cpu.toFixed(1) },
      aggregate: Object.fromEntries(Object.entries(aggregate).map(([k, v]) => [k, { tokensPerSecond: +v.tokensPerSecond.toFixed(1), msPerStep: +v.msPerStep.toFixed(1), runs: v.runs }])),
      batchSpeedup8: ratios.length ? +median(ratios).toFixed(2) : undefined,
      batchSpeedup8Rounds: ratios.map((x) => +x.toFixed(2)),
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      // What a step cannot beat here: reading every weight once (any batch), and its multiply-adds
      // at the FMA peak (8 streams: 8x). Measured before each round; absent without the addon.
      floors: {
        bytesPerTokenMB: Math.round(bytesPerToken / 1e6),
        macsPerToken: macs,
        readGBs: probes.map((p) => +p.readGBs.toFixed(1)),
        fmaGflops: probes.map((p) => Math.round(p.fmaGflops)),
        memoryMsPerStep: probes.map((p) => +(bytesPerToken / p.readGBs / 1e6).toFixed(1)),
        computeMsPerStep: {
          '1': probes.map((p) => +((2 * macs) / p.fmaGflops / 1e6).toFixed(1)),
          '8': probes.map((p) => +((16 * macs) / p.fmaGflops / 1e6).toFixed(1)),
        },
      },
      // The weights' read rate one stream reached in each round (bytes per token x tokens/s, a lower
      // bound): on a shared host it moves with the neighbours' memory traffic, and with it the
      // single-stream figure and the 8-vs-1 ratio (a batch-8 step moves less with it: its matmuls
      // are held back by their own register passes more than by the memory rate).
      singleStreamGBs: (runs['1'] ?? []).map((m) => +((bytesPerToken * m.tokensPerSecond) / 1e9).toFixed(1)),
    };
    rt.engine.dispose();
    if (args.json) console.log(JSON.stringify(result, null, 2));
    else {
      if (ratios.length) log(`8 streams vs 1: ${result.batchSpeedup8}x (median of rounds: ${result.batchSpeedup8Rounds.join(', ')}; one stream read the weights at ${result.singleStreamGBs.join(', ')} GB/s)`);
      log(`peak RSS ${result.peakRssMB} MB`);
      const f = result.floors;
      if (f.readGBs.length) {
        log(`floors per step: reading the weights (${f.bytesPerTokenMB} MB) ${f.memoryMsPerStep.join(', ')} ms; multiply-adds at the FMA peak ${f.computeMsPerStep['1'].join(', ')} ms for one stream, ${f.computeMsPerStep['8'].join(', ')} ms for 8`);
      } else log(`floors not measured: the native addon is not loaded, or built before its probe (${f.bytesPerTokenMB} MB of weights read per step)`);
      log(`machine: ${result.machine.cpus} vCPU ${result.machine.model}, load average ${result.machine.loadavg.join(' ')} (shared machine: figures are noisy)`);
    }
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

if (args.prepare) await writeRandomModel(args.prepare, args.shape!);
else await main();
