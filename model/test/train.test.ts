// Pre-training on tiny synthetic data sets: the loss goes down, a resumed run is bit-identical to
// an uninterrupted one, and bad input stops with a clear message leaving the last checkpoint intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { loadCheckpoint } from '../io/checkpoint.js';
import { DataError, loadDataset, writeDataset } from '../data/shards.js';
import { parseTrainConfig, TrainConfigError, type TrainConfigInput } from '../train/config.js';
import { pretrain, TrainingError, type TrainEvent } from '../train/trainer.js';
import { WindowSampler } from '../train/batches.js';
import { learningRate } from '../train/schedule.js';
import { unigramLoss } from '../train/report.js';
import { exportModel } from '../cli/commands/pretrain.js';

const VOCAB = 40;

/** A learnable stream: short "sentences" of a few fixed patterns, in a seeded random order. */
function syntheticTokens(n: number, seed: number): number[] {
  const patterns = [[1, 5, 9, 13, 2], [3, 7, 11, 2], [4, 8, 12, 16, 20, 2], [6, 10, 14, 18, 2]];
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const out: number[] = [];
  while (out.length < n) out.push(...patterns[Math.floor(rnd() * patterns.length)]);
  return out.slice(0, n);
}

async function makeData(dir: string, trainTokens = 4000): Promise<void> {
  await writeDataset(dir, {
    vocabSize: VOCAB,
    separator: [2],
    seed: 1,
    train: syntheticTokens(trainTokens, 7),
    val: new Map([['a', syntheticTokens(400, 99)], ['b', syntheticTokens(300, 5)]]),
    corpora: {},
  });
}

const tiny: TrainConfigInput = {
  model: { nLayer: 2, nEmbd: 32, nHead: 2, nPositions: 16 },
  batchSize: 4,
  gradAccum: 2,
  steps: 40,
  lr: 3e-3,
  warmupSteps: 4,
  dropout: 0.1,
  checkpointEvery: 1000,
  evalEvery: 1000,
  evalWindows: 8,
  logEvery: 1,
};

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nemo-train-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await initBackend();

test('schedule: linear warm-up to the peak, cosine decay to the floor', () => {
  const c = { lr: 1e-3, warmupSteps: 10, steps: 110, minLrRatio: 0.1 };
  assert.ok(Math.abs(learningRate(0, c) - 1e-4) < 1e-12);
  assert.ok(Math.abs(learningRate(9, c) - 1e-3) < 1e-12);
  assert.ok(Math.abs(learningRate(60, c) - (1e-4 + 0.5 * 9e-4)) < 1e-12);
  assert.ok(Math.abs(learningRate(110, c) - 1e-4) < 1e-12);
  assert.ok(learningRate(30, c) > learningRate(50, c));
});

test('training on a tiny corpus for a few steps lowers the loss', async () => {
  await withTmp(async (dir) => {
    await makeData(path.join(dir, 'data'));
    const data = await loadDataset(path.join(dir, 'data'));
    const events: TrainEvent[] = [];
    const res = await pretrain({ config: parseTrainConfig(tiny), data, outDir: path.join(dir, 'run'), untilStep: 30, onEvent: (e) => events.push(e) });
    const evals = events.filter((e) => e.type === 'eval');
    assert.equal(evals.length, 2, 'evaluates at the start and at the end');
    const first = evals[0] as Extract<TrainEvent, { type: 'eval' }>;
    const last = evals[1] as Extract<TrainEvent, { type: 'eval' }>;
    assert.ok(first.valLoss > Math.log(VOCAB) - 0.5, `initial loss ${first.valLoss} is near log(V)`);
    assert.ok(last.valLoss < first.valLoss - 1, `validation loss fell from ${first.valLoss} to ${last.valLoss}`);
    assert.deepEqual(Object.keys(last.perCorpus).sort(), ['a', 'b']);
    assert.equal(res.step, 30);
    assert.equal(res.tokensSeen, 30 * 4 * 16 * 2);
    // The run folder: checkpoint loadable as a model, log, curve.
    const { config } = await loadCheckpoint(path.join(dir, 'run', 'checkpoint'));
    assert.equal(config.nLayer, 2);
    const log = (await readFile(path.join(dir, 'run', 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(log.filter((e) => e.type === 'step').length, 30);
    const svg = await readFile(path.join(dir, 'run', 'loss.svg'), 'utf8');
    assert.match(svg, /^<svg[^>]*>/);
    assert.match(svg, /<path d="M/);
  });
});

test('resuming from a checkpoint continues bit-identically to an uninterrupted run', async () => {
  await withTmp(async (dir) => {
    await makeData(path.join(dir, 'data'));
    const data = await loadDataset(path.join(dir, 'data'));
    const config = parseTrainConfig(tiny);
    await pretrain({ config, data, outDir: path.join(dir, 'straight'), untilStep: 8 });
    await pretrain({ config, data, outDir: path.join(dir, 'split'), untilStep: 3 });
    const resumed: TrainEvent[] = [];
    await pretrain({ config, data, outDir: path.join(dir, 'split'), untilStep: 8, onEvent: (e) => resumed.push(e) });
    const start = resumed.find((e) => e.type === 'start') as Extract<TrainEvent, { type: 'start' }>;
    assert.equal(start.step, 3);
    assert.ok(start.resumedFrom?.endsWith('checkpoint'));
    for (const f of ['model.safetensors', 'optimizer.safetensors']) {
      const a = await readFile(path.join(dir, 'straight', 'checkpoint', f));
      const b = await readFile(path.join(dir, 'split', 'checkpoint', f));
      assert.ok(a.equals(b), `${f} differs between the straight and the resumed run`);
    }
    const sa = JSON.parse(await readFile(path.join(dir, 'straight', 'checkpoint', 'trainer_state.json'), 'utf8'));
    const sb = JSON.parse(await readFile(path.join(dir, 'split', 'checkpoint', 'trainer_state.json'), 'utf8'));
    assert.deepEqual(sb.position, sa.position);
    assert.equal(sb.tokensSeen, sa.tokensSeen);
    // The resumed run's log has each step exactly once.
    const steps = (await readFile(path.join(dir, 'split', 'log.jsonl'), 'utf8')).trim().split('\n')
      .map((l) => JSON.parse(l)).filter((e) => e.type === 'step').map((e) => e.step);
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

test('a NaN loss stops training with a clear message and leaves the last good checkpoint intact', async () => {
  await withTmp(async (dir) => {
    await makeData(path.join(dir, 'data'));
    const data = await loadDataset(path.join(dir, 'data'));
    const config = parseTrainConfig({ ...tiny, checkpointEvery: 3 });
    const out = path.join(dir, 'run');
    let savedWeights: Buffer | undefined;
    await assert.rejects(
      pretrain({
        config, data, outDir: out, untilStep: 10,
        afterStep: ({ step, params }) => {
          // Corrupt one weight right after the step-4 update: step 5's loss is NaN.
          const w = params.blocks[0].fcW;
          if (step === 4 && w instanceof tf.Variable) w.assign(tf.fill(w.shape, NaN) as tf.Tensor2D);
        },
        onEvent: (e) => {
          if (e.type === 'checkpoint') savedWeights = readFileSync(path.join(e.dir, 'model.safetensors'));
        },
      }),
      (err: Error) => err instanceof TrainingError && /NaN at step 5/.test(err.message) && /step 3/.test(err.message) && /intact/.test(err.message),
    );
    assert.ok(savedWeights, 'a checkpoint was written at step 3');
    assert.ok((await readFile(path.join(out, 'checkpoint', 'model.safetensors'))).equals(savedWeights), 'checkpoint untouched');
    const state = JSON.parse(await readFile(path.join(out, 'checkpoint', 'trainer_state.json'), 'utf8'));
    assert.equal(state.step, 3);
    const { params } = await loadCheckpoint(path.join(out, 'checkpoint'));
    const w = await params.blocks[0].fcW.data();
    assert.ok(Array.from(w).every(Number.isFinite), 'the kept checkpoint has finite weights');
    // Resuming from it works and runs again.
    const res = await pretrain({ config, data, outDir: out, untilStep: 5 });
    assert.equal(res.step, 5);
  });
});

test('bad training input: empty corpus, unreadable and truncated files, too little data, bad config', async () => {
  await withTmp(async (dir) => {
    await assert.rejects(loadDataset(path.join(dir, 'nothing')), (e: Error) => e instanceof DataError && /data:prepare/.test(e.message));
    const empty = path.join(dir, 'empty');
    await writeDataset(empty, { vocabSize: VOCAB, separator: [], seed: 1, train: [], val: new Map(), corpora: {} });
    await assert.rejects(loadDataset(empty), (e: Error) => e instanceof DataError && /training split is empty/.test(e.message));

    const good = path.join(dir, 'good');
    await makeData(good);
    await writeFile(path.join(good, 'train-000.bin'), Buffer.from([1, 2, 3]));
    await assert.rejects(loadDataset(good), (e: Error) => e instanceof DataError && e.message.includes('train-000.bin') && /truncated/.test(e.message));
    await rm(path.join(good, 'train-000.bin'));
    await assert.rejects(loadDataset(good), (e: Error) => e instanceof DataError && e.message.includes('train-000.bin'));
    await writeFile(path.join(good, 'train-000.bin'), Buffer.from(new Uint16Array([1, 2, 999]).buffer));
    await assert.rejects(loadDataset(good), (e: Error) => e instanceof DataError && /outside the vocabulary/.test(e.message));
    await writeFile(path.join(good, 'meta.json'), '{ not json');
    await assert.rejects(loadDataset(good), (e: Error) => e instanceof DataError && /meta\.json/.test(e.message));

    const small = path.join(dir, 'small');
    await makeData(small, 10);
    const data = await loadDataset(small);
    await assert.rejects(
      pretrain({ config: parseTrainConfig(tiny), data, outDir: path.join(dir, 'run') }),
      (e: Error) => e instanceof DataError && /at least context \+ 1 = 17/.test(e.message),
    );
    assert.throws(() => parseTrainConfig({ lr: -1 }), (e: Error) => e instanceof TrainConfigError && /lr/.test(e.message));
    assert.throws(() => parseTrainConfig({ model: { nEmbd: 30, nHead: 4 } }), /divisible/);
    assert.throws(() => parseTrainConfig({ batchsize: 3 }), /batchsize/);
  });
});

test('resuming with a different model shape is refused', async () => {
  await withTmp(async (dir) => {
    await makeData(path.join(dir, 'data'));
    const data = await loadDataset(path.join(dir, 'data'));
    await pretrain({ config: parseTrainConfig(tiny), data, outDir: path.join(dir, 'run'), untilStep: 1 });
    await assert.rejects(
      pretrain({ config: parseTrainConfig({ ...tiny, model: { ...tiny.model, nEmbd: 64 } }), data, outDir: path.join(dir, 'run'), untilStep: 2 }),
      (e: Error) => e instanceof TrainingError && /different model shape/.test(e.message),
    );
  });
});

test('two trainers on one run folder: the second is refused while the first runs', async () => {
  await withTmp(async (dir) => {
    await makeData(path.join(dir, 'data'));
    const data = await loadDataset(path.join(dir, 'data'));
    const config = parseTrainConfig(tiny);
    const out = path.join(dir, 'run');
    let second: Promise<unknown> | undefined;
    await pretrain({
      config, data, outDir: out, untilStep: 2,
      afterStep: ({ step }) => {
        // Settled into a value at once: an unhandled rejection would crash the test process.
        if (step === 1) second = pretrain({ config, data, outDir: out, untilStep: 3 }).then(() => 'finished', (e: unknown) => e);
      },
    });
    const err = await second!;
    assert.ok(err instanceof TrainingError && /in use by another training process/.test(err.message), String(err));
    // A stale lock (dead pid) is taken over.
    await writeFile(path.join(out, 'LOCK'), '999999999');
    const res = await pretrain({ config, data, outDir: out, untilStep: 3 });
    assert.equal(res.step, 3);
  });
});

test('export: a float16 model folder that loads with the checkpoint loader and carries the loss curve', async () => {
  await withTmp(async (dir) => {
    await makeData(path.join(dir, 'data'));
    const data = await loadDataset(path.join(dir, 'data'));
    await pretrain({ config: parseTrainConfig(tiny), data, outDir: path.join(dir, 'run'), untilStep: 4 });
    await exportModel(path.join(dir, 'run', 'checkpoint'), path.join(dir, 'model'));
    const a = await loadCheckpoint(path.join(dir, 'run', 'checkpoint'));
    const b = await loadCheckpoint(path.join(dir, 'model'));
    assert.deepEqual(b.config, a.config);
    const wa = await a.params.tokensEmbed.data();
    const wb = await b.params.tokensEmbed.data();
    let maxRel = 0;
    for (let i = 0; i < wa.length; i++) maxRel = Math.max(maxRel, Math.abs(wa[i] - wb[i]) / Math.max(1e-3, Math.abs(wa[i])));
    assert.ok(maxRel < 1e-3, `float16 rounding only (max relative error ${maxRel})`);
    const st = await readFile(path.join(dir, 'model', 'model.safetensors'));
    assert.ok(st.length < (await readFile(path.join(dir, 'run', 'checkpoint', 'model.safetensors'))).length * 0.6, 'about half the size');
    assert.match(await readFile(path.join(dir, 'model', 'loss.svg'), 'utf8'), /<svg/);
    assert.equal(JSON.parse(await readFile(path.join(dir, 'model', 'trainer_state.json'), 'utf8')).step, 4);
  });
});

test('continue from an exported model: schedule, data position and log carry on; a resume of that run is still exact', async () => {
  await withTmp(async (dir) => {
    await makeData(path.join(dir, 'data'));
    const data = await loadDataset(path.join(dir, 'data'));
    const config = parseTrainConfig(tiny);
    const straight: TrainEvent[] = [];
    await pretrain({ config, data, outDir: path.join(dir, 'straight'), untilStep: 8, onEvent: (e) => straight.push(e) });
    await pretrain({ config, data, outDir: path.join(dir, 'run'), untilStep: 4 });
    await exportModel(path.join(dir, 'run', 'checkpoint'), path.join(dir, 'model'));
    const model = path.join(dir, 'model');
    // A later session: no run folder, only the exported model.
    const events: TrainEvent[] = [];
    await pretrain({ config, data, outDir: path.join(dir, 'cont'), untilStep: 8, continueFrom: model, onEvent: (e) => events.push(e) });
    const start = events.find((e) => e.type === 'start') as Extract<TrainEvent, { type: 'start' }>;
    assert.equal(start.step, 4);
    assert.equal(start.resumedFrom, model);
    const st = JSON.parse(await readFile(path.join(dir, 'cont', 'checkpoint', 'trainer_state.json'), 'utf8'));
    const ss = JSON.parse(await readFile(path.join(dir, 'straight', 'checkpoint', 'trainer_state.json'), 'utf8'));
    assert.deepEqual(st.position, ss.position);
    assert.equal(st.tokensSeen, ss.tokensSeen);
    assert.equal(st.optimizerStep, 4, 'the moments have seen the 4 updates since step 4');
    const steps = (await readFile(path.join(dir, 'cont', 'log.jsonl'), 'utf8')).trim().split('\n')
      .map((l) => JSON.parse(l)).filter((e) => e.type === 'step').map((e) => e.step);
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
    // Fresh moments change the path a little, not the destination.
    const last = (ev: TrainEvent[]) => (ev.filter((e) => e.type === 'step').at(-1) as Extract<TrainEvent, { type: 'step' }>).loss;
    const first = (straight.find((e) => e.type === 'step') as Extract<TrainEvent, { type: 'step' }>).loss;
    assert.ok(last(events) < first, `continued run still learns (${last(events)} vs first ${first})`);
    assert.ok(Math.abs(last(events) - last(straight)) < 0.5, `close to the uninterrupted run (${last(events)} vs ${last(straight)})`);

    // That continued run resumes exactly from its own checkpoint (bias correction included).
    await pretrain({ config, data, outDir: path.join(dir, 'cont2'), untilStep: 6, continueFrom: model });
    await pretrain({ config, data, outDir: path.join(dir, 'cont2'), untilStep: 8 });
    for (const f of ['model.safetensors', 'optimizer.safetensors']) {
      const a = await readFile(path.join(dir, 'cont', 'checkpoint', f));
      const b = await readFile(path.join(dir, 'cont2', 'checkpoint', f));
      assert.ok(a.equals(b), `${f} differs between the continued run and its resumed copy`);
    }

    // Another recipe (seed) on the same shape: the weights are used, the schedule starts at 0.
    const other: TrainEvent[] = [];
    await pretrain({ config: parseTrainConfig({ ...tiny, seed: 99 }), data, outDir: path.join(dir, 'other'), untilStep: 1, continueFrom: model, onEvent: (e) => other.push(e) });
    assert.equal((other.find((e) => e.type === 'start') as Extract<TrainEvent, { type: 'start' }>).step, 0);
    const fromModel = (other.find((e) => e.type === 'step') as Extract<TrainEvent, { type: 'step' }>).loss;
    assert.ok(fromModel < first - 0.1, `starts from the trained weights (${fromModel} vs random ${first})`);

    // A different shape is refused with both shapes named.
    await assert.rejects(
      pretrain({ config: parseTrainConfig({ ...tiny, model: { ...tiny.model, nEmbd: 16 } }), data, outDir: path.join(dir, 'bad'), continueFrom: model }),
      (e: Error) => e instanceof TrainingError && /32 dims/.test(e.message) && /16 dims/.test(e.message),
    );
  });
});

test('`npm run model -- pretrain` stopped by a signal to its whole process group (Ctrl-C, pkill) saves a checkpoint', async () => {
  await withTmp(async (dir) => {
    await makeData(path.join(dir, 'data'), 20000);
    // Steps long enough that the event loop is busy when the signal comes.
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...tiny, model: { nLayer: 2, nEmbd: 64, nHead: 2, nPositions: 64 }, batchSize: 8, steps: 100000 }));
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
    const child = spawn('npm', ['run', '-s', 'model', '--', 'pretrain', '--config', path.join(dir, 'config.json'), '--data', path.join(dir, 'data'),
      '--out', path.join(dir, 'run'), '--no-progress'], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    // 'close': every process holding the pipes (npm, and node below it) has exited.
    const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
    const deadline = Date.now() + 60_000;
    while (!/^step 3\//m.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /^step 3\//m, `training started:\n${out}`);
    // npm, sh and node all get it, as from a terminal's Ctrl-C.
    process.kill(-child.pid!, 'SIGTERM');
    await closed; // npm itself exits at once (143); the trainer finishes its step and saves
    assert.match(out, /SIGTERM: saving a checkpoint/);
    const stopped = /stopped at step (\d+) \(aborted\)/.exec(out);
    assert.ok(stopped, out);
    const state = JSON.parse(await readFile(path.join(dir, 'run', 'checkpoint', 'trainer_state.json'), 'utf8'));
    assert.equal(state.step, Number(stopped[1]));
  });
});

test('unigram baseline: add-one smoothed training frequencies', () => {
  const train = Uint16Array.from([0, 0, 0, 1]);
  // counts 4, 2, 1 over 3 symbols → total 7
  assert.ok(Math.abs(unigramLoss(train, 3, [0]) - -Math.log(4 / 7)) < 1e-12);
  assert.ok(Math.abs(unigramLoss(train, 3, [1, 2]) - (-Math.log(2 / 7) - Math.log(1 / 7)) / 2) < 1e-12);
});

test('the window sampler visits every window once per epoch and continues from a saved position', () => {
  const tokens = Uint16Array.from({ length: 16 * 10 + 1 }, (_, i) => i % 60000);
  const a = new WindowSampler(tokens, 16, 5);
  const firstEpoch = new Set<number>();
  for (let i = 0; i < 10; i++) firstEpoch.add(a.next(1).inputs[0]);
  assert.equal(firstEpoch.size, 10);
  a.next(3);
  const b = new WindowSampler(tokens, 16, 5, { ...a.position });
  assert.deepEqual(Array.from(b.next(4).inputs), Array.from(a.next(4).inputs));
});
