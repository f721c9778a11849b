// `npm run bench:train [-- --steps N --json]`: training throughput (tokens/s) of the real trainer
// (forward, backward, AdamW update) for the shipped model's recipe and for a fixed reference
// config (4 layers, 256 dims, 4 heads, context 128, vocabulary 8000, batch 8), on synthetic tokens.
// Goal: the reference config at >= 600 tokens/s on the 2-vCPU development machine. Reports wall
// time and this process's CPU time per step (the machine is shared: the latter is what a step
// costs on an idle core, since the wasm backend runs on one thread).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { nativeStatus } from '../native/index.js';
import { nativeMatMulActive } from '../native/kernels.js';
import { countParams } from '../nn/params.js';
import { Rng } from '../rng.js';
import { loadDataset, writeDataset } from '../data/shards.js';
import { parseTrainConfig, readTrainConfig, type TrainConfig } from '../train/config.js';
import { modelConfigFor, pretrain } from '../train/trainer.js';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`Usage: npm run bench:train [-- --steps N --warmup N --only reference|shipped --json]
Measures training tokens/s (forward + backward + AdamW) on synthetic data for the reference config
(4L/256/4H, ctx 128, vocab 8000, batch 8) and model/train/configs/shipped.json.
On wasm the native matmul addon is used when built (NEMO_NATIVE=0: wasm kernels only;
NEMO_NATIVE_THREADS=n: its threads; CPU seconds then count every thread).`);
  process.exit(0);
}

const REFERENCE = parseTrainConfig({
  model: { nLayer: 4, nEmbd: 256, nHead: 4, nPositions: 128 },
  batchSize: 8,
  gradAccum: 1,
  dropout: 0.1,
  steps: 100000,
  warmupSteps: 10,
});

interface Row {
  name: string;
  params: number;
  vocab: number;
  batchTokens: number;
  stepMs: number;
  tokensPerSec: number;
  /** CPU time of this process per step: what a step costs when the machine is not shared. */
  cpuMsPerStep: number;
  tokensPerCpuSec: number;
}

async function measure(name: string, config: TrainConfig, vocab: number, steps: number, warmup: number): Promise<Row> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-bench-train-'));
  try {
    const rng = new Rng(1);
    const T = config.model.nPositions;
    const need = (steps + warmup + 1) * config.batchSize * config.gradAccum * T + 1;
    const train = Uint32Array.from({ length: need }, () => Math.floor(rng.next() * vocab));
    await writeDataset(path.join(dir, 'data'), { vocabSize: vocab, separator: [], seed: 1, train, val: new Map(), corpora: {} });
    const data = await loadDataset(path.join(dir, 'data'));
    const marks: number[] = [];
    const cpu: number[] = [];
    const cfg = { ...config, checkpointEvery: 1_000_000, evalEvery: 1_000_000, logEvery: 1_000_000 };
    await pretrain({
      config: cfg, data, outDir: path.join(dir, 'run'), untilStep: warmup + steps, progress: 'none',
      afterStep: () => {
        marks.push(performance.now());
        const u = process.cpuUsage();
        cpu.push((u.user + u.system) / 1000);
      },
    });
    const stepMs = (marks[marks.length - 1] - marks[warmup - 1]) / steps;
    const cpuMsPerStep = (cpu[cpu.length - 1] - cpu[warmup - 1]) / steps;
    const batchTokens = config.batchSize * config.gradAccum * T;
    return {
      name, params: countParams(modelConfigFor(config, vocab)), vocab, batchTokens, stepMs, tokensPerSec: (batchTokens / stepMs) * 1000,
      cpuMsPerStep, tokensPerCpuSec: (batchTokens / cpuMsPerStep) * 1000,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const backend = await initBackend();
const steps = Math.max(1, Number(args.steps));
const warmup = Math.max(1, Number(args.warmup));
const rows: Row[] = [];
if (!args.only || args.only === 'reference') rows.push(await measure('reference 4L/256/4H ctx128 V8000 b8', REFERENCE, 8000, steps, warmup));
if (!args.only || args.only === 'shipped') {
  const shipped = await readTrainConfig(path.join(path.dirname(new URL(import.meta.url).pathname), '../train/configs/shipped.json'));
  const m = shipped.model;
  rows.push(await measure(`shipped ${m.nLayer}L/${m.nEmbd}/${m.nHead}H ctx${m.nPositions} b${shipped.batchSize}x${shipped.gradAccum}`, shipped, 8000, steps, warmup));
}
const machine = `${os.cpus().length} vCPU ${os.cpus()[0]?.model ?? ''}, node ${process.version}, tfjs ${tf.version.tfjs} backend ${backend}` +
  `, ${nativeMatMulActive() ? nativeStatus().reason : 'backend matmul kernels'}`;
if (args.json) {
  console.log(JSON.stringify({ machine, steps, warmup, rows }, null, 2));
} else {
  console.log(`training throughput (${machine}; ${steps} measured steps after ${warmup} warm-up)`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(40)} ${(r.params / 1e6).toFixed(2)} M params  ${r.batchTokens} tokens/step  ` +
        `wall ${r.stepMs.toFixed(0)} ms/step = ${r.tokensPerSec.toFixed(0)} tokens/s  ` +
        `cpu ${r.cpuMsPerStep.toFixed(0)} ms/step = ${r.tokensPerCpuSec.toFixed(0)} tokens/cpu-s`,
    );
  }
  console.log(`goal: reference >= 600 tokens/s. Load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}: on a shared machine ` +
    'wall-clock figures fall with the load; tokens per CPU-second (summed over threads) is what a step costs on idle cores.');
}
