// `npm run bench:finetune`: does pre-training help? On the four benchmark tasks (one per input
// transformation, see model/finetune/bench-data.ts), each fine-tuned on the SAME data with the SAME
// budget three ways, and scored on the same held-out test split:
//   pre-trained  the pre-trained model, fine-tuned with λ = 0.5 (GPT-1's recipe)
//   scratch      the same architecture and tokenizer with random weights, λ = 0.5
//   no-lm        the pre-trained model, fine-tuned with λ = 0 (no auxiliary LM loss)
// The budget is small on purpose (the 2-core machine is shared with pre-training): a few hundred
// examples per task, short sequences, a fixed number of epochs.
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import { paramsFromArrays, readCheckpoint } from '../io/checkpoint.js';
import { logits } from '../nn/gpt.js';
import { countParams, disposeParams, namedParams } from '../nn/params.js';
import { BpeTokenizer } from '../tokenizer/bpe.js';
import { BENCH_TASK_IDS, BENCH_TASKS, buildBenchData, writeBenchData, type BenchDataOptions, type BenchTaskId } from '../finetune/bench-data.js';
import { loadFinetuned } from '../finetune/checkpoint.js';
import { parseFinetuneConfig } from '../finetune/config.js';
import { labelSpaceOf, labelTargets, readExamples } from '../finetune/data.js';
import { evaluateExamples, type Metrics } from '../finetune/evaluate.js';
import type { TaskExamples, TaskName } from '../finetune/tasks.js';
import { finetune, formatMetrics, type FinetuneEvent } from '../finetune/trainer.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    tasks: { type: 'string', default: BENCH_TASK_IDS.join(',') },
    variants: { type: 'string', default: 'pretrained,scratch,no-lm' },
    train: { type: 'string', default: '256' },
    valid: { type: 'string', default: '64' },
    test: { type: 'string', default: '200' },
    epochs: { type: 'string', default: '2' },
    lr: { type: 'string', default: '5e-4' },
    'batch-size': { type: 'string', default: '16' },
    seed: { type: 'string', default: '42' },
    'data-seed': { type: 'string', default: '2018' },
    out: { type: 'string', default: 'data/finetune-bench' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`Usage: npm run bench:finetune [-- options]
Fine-tunes the pre-trained model, the same architecture from scratch, and the pre-trained model
with λ = 0 on five tasks (poem dynasty, Brown genre, next sentence, same poem, next couplet among 4) with the
same data and budget, and prints test accuracy for each (a Markdown table for the README).
  --model DIR        pre-trained model (default: model/shipped, else data/runs/shipped/checkpoint);
                     copied to <out>/base first, so a running pre-training may keep saving
  --tasks LIST       ${BENCH_TASK_IDS.join(',')}
  --variants LIST    pretrained,scratch,no-lm
  --train N --valid N --test N   examples per split (default 256 / 64 / 200; --valid 0: no validation)
  --epochs N (2)  --lr X (5e-4)  --batch-size N (16)  --seed N (42)  --data-seed N (2018)
  --out DIR          work folder (default data/finetune-bench): data/, base/, runs/, results.json, results.md
  --json             print the results as JSON`);
  process.exit(0);
}

const exists = (p: string) => stat(p).then(() => true, () => false);
const int = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
};

type Variant = 'pretrained' | 'scratch' | 'no-lm';
const VARIANTS: Record<Variant, { label: string; scratch: boolean; lmCoef: number }> = {
  pretrained: { label: 'pre-trained, λ = 0.5', scratch: false, lmCoef: 0.5 },
  scratch: { label: 'from scratch, λ = 0.5', scratch: true, lmCoef: 0.5 },
  'no-lm': { label: 'pre-trained, λ = 0', scratch: false, lmCoef: 0 },
};
const METRIC: Record<BenchTaskId, string> = {
  dynasty: 'poem dynasty, Tang vs Song (2 classes)',
  genre: 'Brown genre of two sentences (15 classes)',
  'next-sentence': 'B directly follows A (Brown, 2 classes)',
  'same-poem': 'two couplets from the same poem (2 classes)',
  'next-couplet': 'true next couplet among 4',
};

async function defaultModel(): Promise<string> {
  for (const dir of ['model/shipped', 'data/runs/shipped/checkpoint']) {
    if (await exists(path.join(dir, 'model.safetensors'))) return dir;
  }
  throw new Error('no --model given, and neither model/shipped nor data/runs/shipped/checkpoint holds a model');
}

/** Copies the model files (not optimizer state) so a pre-training run may replace its checkpoint meanwhile. */
async function snapshot(src: string, dst: string): Promise<Record<string, unknown>> {
  await rm(dst, { recursive: true, force: true });
  await mkdir(dst, { recursive: true });
  const keep = /^(config\.json|model\.safetensors|vocab\.json|merges\.txt|tokenizer_config\.json|trainer_state\.json|encoder_bpe_40000\.json|vocab_40000\.bpe|params_.*)$/;
  for (const f of await readdir(src)) if (keep.test(f)) await copyFile(path.join(src, f), path.join(dst, f));
  const state = await readFile(path.join(dst, 'trainer_state.json'), 'utf8').then((t) => JSON.parse(t) as Record<string, unknown>, () => undefined);
  return state
    ? { step: state.step, tokensSeen: state.tokensSeen, trainingMinutes: Math.round(Number(state.elapsedMs) / 60000), lastEval: state.lastEval, savedAt: state.savedAt }
    : {};
}

function majority(train: number[], test: number[]): number {
  const counts = new Map<number, number>();
  for (const t of train) counts.set(t, (counts.get(t) ?? 0) + 1);
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
  return test.filter((t) => t === top).length / test.length;
}

/**
 * The pre-trained LM alone, no fine-tuning: picks the choice with the highest log-likelihood after
 * "context\n" (poems were pre-trained one couplet per line). Shows what pre-training learnt about
 * the task, whatever the fine-tuning budget.
 */
async function zeroShotChoice(baseDir: string, examples: Array<TaskExamples['multiple-choice']>): Promise<number> {
  const host = await readCheckpoint(baseDir);
  const tokenizer = await BpeTokenizer.load(baseDir);
  const params = paramsFromArrays(host.config, host.arrays);
  let right = 0;
  try {
    for (const e of examples) {
      const ctx = tokenizer.encode(`${e.context}\n`);
      const scores = e.choices.map((c) => {
        const full = [...ctx, ...tokenizer.encode(c)];
        const cut = Math.max(0, full.length - host.config.nPositions);
        const ids = full.slice(cut);
        const start = ctx.length - cut;
        const t = tf.tidy(() => tf.logSoftmax(logits(params, [ids]).squeeze([0]) as tf.Tensor2D));
        const lp = t.arraySync() as number[][];
        t.dispose();
        let sum = 0;
        for (let i = Math.max(1, start); i < ids.length; i++) sum += lp[i - 1][ids[i]];
        return sum;
      });
      if (scores.indexOf(Math.max(...scores)) === e.label) right++;
    }
  } finally {
    disposeParams(params);
  }
  return right / examples.length;
}

interface RunResult {
  id: BenchTaskId;
  task: TaskName;
  variant: Variant;
  test: Metrics;
  valid?: Metrics;
  steps: number;
  tokensSeen: number;
  seconds: number;
  tokensPerSec: number;
  truncatedTrain: number;
  /** Task and LM loss of the first and last update (the LM loss tells how well the start model knows the task's text). */
  loss: { taskFirst: number; taskLast: number; lmFirst?: number; lmLast?: number };
}

/**
 * A reference that needs no neural network: multinomial naive Bayes on the tokens of the text
 * (classification only). Shows whether the training set carries enough signal at this size.
 */
function naiveBayes(tokenizer: BpeTokenizer, train: Array<{ text: string }>, trainY: number[], test: Array<{ text: string }>, testY: number[], classes: number): number {
  const counts = Array.from({ length: classes }, () => new Map<number, number>());
  const totals = new Array<number>(classes).fill(0);
  const priors = new Array<number>(classes).fill(0);
  const vocab = new Set<number>();
  train.forEach((e, i) => {
    priors[trainY[i]]++;
    for (const id of tokenizer.encode(e.text)) {
      counts[trainY[i]].set(id, (counts[trainY[i]].get(id) ?? 0) + 1);
      totals[trainY[i]]++;
      vocab.add(id);
    }
  });
  let right = 0;
  test.forEach((e, i) => {
    const ids = tokenizer.encode(e.text);
    const scores = counts.map((c, k) => Math.log(priors[k] / train.length) +
      ids.reduce((s, id) => s + Math.log(((c.get(id) ?? 0) + 1) / (totals[k] + vocab.size + 1)), 0));
    if (scores.indexOf(Math.max(...scores)) === testY[i]) right++;
  });
  return right / test.length;
}

async function main(): Promise<void> {
  const ids = args.tasks!.split(',').map((t) => t.trim()) as BenchTaskId[];
  for (const t of ids) if (!BENCH_TASK_IDS.includes(t)) throw new Error(`unknown task ${t} (${BENCH_TASK_IDS.join(', ')})`);
  const variants = args.variants!.split(',').map((v) => v.trim()) as Variant[];
  for (const v of variants) if (!(v in VARIANTS)) throw new Error(`unknown variant ${v} (${Object.keys(VARIANTS).join(', ')})`);
  const out = path.resolve(args.out!);
  const dataOpts: BenchDataOptions = { train: int('train', args.train!), valid: args.valid === '0' ? 0 : int('valid', args.valid!), test: int('test', args.test!), seed: int('data-seed', args['data-seed']!) };
  const backend = await initBackend();
  const modelSrc = path.resolve(args.model ?? (await defaultModel()));
  const base = path.join(out, 'base');
  const pretraining = await snapshot(modelSrc, base);
  const host = await readCheckpoint(base);
  const cfg = host.config;
  host.arrays.clear();
  const files = await writeBenchData(path.join(out, 'data'), await buildBenchData(dataOpts));
  const common = { epochs: int('epochs', args.epochs!), lr: Number(args.lr), batchSize: int('batch-size', args['batch-size']!), seed: int('seed', args.seed!) };
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, tfjs ${backend}`;
  const log = (s: string) => process.stderr.write(`${s}\n`);
  log(`base model ${modelSrc}: ${cfg.nLayer} layers, ${cfg.nEmbd} dims, ${cfg.nHead} heads, context ${cfg.nPositions}, vocabulary ${cfg.vocabSize}, ` +
    `${countParams(cfg).toLocaleString('en')} parameters; pre-training ${JSON.stringify(pretraining)}`);
  log(`budget per run: ${dataOpts.train} training examples × ${common.epochs} epochs, batch ${common.batchSize}, lr ${common.lr}; test ${dataOpts.test}; ${machine}`);

  const results: RunResult[] = [];
  const baselines: Partial<Record<BenchTaskId, number>> = {};
  let zeroShot: number | undefined;
  const naiveBayesAcc: Partial<Record<BenchTaskId, number>> = {};
  const started = performance.now();
  for (const id of ids) {
    const task: TaskName = BENCH_TASKS[id];
    const train = await readExamples(task, files[id].train);
    const valid = dataOpts.valid > 0 ? await readExamples(task, files[id].valid) : undefined;
    const test = await readExamples(task, files[id].test);
    const space = labelSpaceOf(task, train);
    baselines[id] = space.kind === 'choice' ? 1 / 4 : majority(labelTargets(space, train), labelTargets(space, test));
    if (task === 'classification' && space.kind === 'class') {
      const tok = await BpeTokenizer.load(base);
      const ex = (d: typeof train) => d.examples as Array<TaskExamples['classification']>;
      naiveBayesAcc[id] = naiveBayes(tok, ex(train), labelTargets(space, train), ex(test), labelTargets(space, test), space.names.length);
      log(`${id.padEnd(16)} naive Bayes on tokens (no network): test accuracy ${(100 * naiveBayesAcc[id]!).toFixed(1)} %`);
    }
    if (task === 'multiple-choice') {
      zeroShot = await zeroShotChoice(base, test.examples as Array<TaskExamples['multiple-choice']>);
      log(`${id.padEnd(16)} pre-trained LM alone, no fine-tuning: test accuracy ${(100 * zeroShot).toFixed(1)} %`);
    }
    for (const variant of variants) {
      const v = VARIANTS[variant];
      const runDir = path.join(out, 'runs', `${id}-${variant}`);
      const t0 = performance.now();
      const steps: Array<Extract<FinetuneEvent, { type: 'step' }>> = [];
      const res = await finetune({
        task, baseDir: base, scratch: v.scratch, train, valid, outDir: runDir, restart: true, progress: 'none',
        config: parseFinetuneConfig({ ...common, lmCoef: v.lmCoef, checkpointEvery: 1_000_000, logEvery: 1 }),
        onEvent: (e) => {
          if (e.type === 'step') steps.push(e);
        },
      });
      const seconds = (performance.now() - t0) / 1000;
      const { model, tokenizer } = await loadFinetuned(runDir);
      const evaluated = evaluateExamples(model, tokenizer, test);
      tf.dispose([...Object.values(model.head), ...namedParams(model.params).map(([, t]) => t)]);
      const r: RunResult = {
        id, task, variant, test: evaluated.metrics, valid: res.valid, steps: res.step, tokensSeen: res.tokensSeen, seconds,
        tokensPerSec: res.tokensSeen / (res.elapsedMs / 1000), truncatedTrain: res.truncated.train,
        loss: { taskFirst: steps[0].taskLoss, taskLast: steps.at(-1)!.taskLoss, lmFirst: steps[0].lmLoss, lmLast: steps.at(-1)!.lmLoss },
      };
      results.push(r);
      // Written after every run, so an interrupted benchmark still leaves what it measured.
      await writeFile(path.join(out, 'results.partial.json'), `${JSON.stringify({ pretraining, results }, null, 2)}\n`);
      log(`${id.padEnd(16)} ${v.label.padEnd(22)} test ${formatMetrics(r.test)} | ${r.steps} updates, ${r.tokensSeen} tokens, ` +
        `${seconds.toFixed(0)} s (${r.tokensPerSec.toFixed(0)} tok/s train) | task loss ${r.loss.taskFirst.toFixed(3)} → ${r.loss.taskLast.toFixed(3)}` +
        (r.loss.lmFirst !== undefined ? `, LM loss ${r.loss.lmFirst.toFixed(3)} → ${r.loss.lmLast!.toFixed(3)}` : ''));
    }
  }
  const totalMinutes = (performance.now() - started) / 60000;
  const table = markdown(ids, variants, results, baselines, zeroShot, naiveBayesAcc);
  const summary = {
    baseModel: { path: modelSrc, config: cfg, parameters: countParams(cfg), pretraining },
    budget: { train: dataOpts.train, valid: dataOpts.valid, test: dataOpts.test, dataSeed: dataOpts.seed, ...common }, machine, totalMinutes, baselines, zeroShotMultipleChoice: zeroShot, naiveBayesClassification: naiveBayesAcc, results, finishedAt: new Date().toISOString(),
  };
  await writeFile(path.join(out, 'results.json'), `${JSON.stringify(summary, null, 2)}\n`);
  await writeFile(path.join(out, 'results.md'), `${table}\n`);
  if (args.json) console.log(JSON.stringify(summary));
  else console.log(`${table}\n\n${totalMinutes.toFixed(1)} min in all; results in ${path.join(out, 'results.json')}`);
}

function markdown(
  tasks: BenchTaskId[], variants: Variant[], results: RunResult[], baselines: Partial<Record<BenchTaskId, number>>, zeroShot: number | undefined,
  nb: Partial<Record<BenchTaskId, number>>,
): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}`;
  const head = `| task (test accuracy %) | ${variants.map((v) => VARIANTS[v].label).join(' | ')} | majority / chance |`;
  const sep = `|---|${variants.map(() => '---:').join('|')}|---:|`;
  const rows = tasks.map((t) => {
    const cells = variants.map((v) => {
      const r = results.find((x) => x.id === t && x.variant === v);
      if (!r) return '–';
      return r.test.macroF1 !== undefined ? `${pct(r.test.accuracy)} (F1 ${pct(r.test.macroF1)})` : pct(r.test.accuracy);
    });
    return `| ${t} (${BENCH_TASKS[t]}): ${METRIC[t]} | ${cells.join(' | ')} | ${pct(baselines[t] ?? NaN)} |`;
  });
  const note: string[] = [];
  if (zeroShot !== undefined) note.push('', `Multiple choice with the pre-trained LM alone (highest likelihood of the couplet after the context, no fine-tuning): ${pct(zeroShot)} %.`);
  const nbs = Object.entries(nb).map(([t, x]) => `${t} ${pct(x)} %`);
  if (nbs.length) note.push('', `Naive Bayes on the same tokens and training set (no network): ${nbs.join(', ')}.`);
  const lm = tasks.flatMap((t) => variants.filter((v) => VARIANTS[v].lmCoef > 0).map((v) => {
    const r = results.find((x) => x.id === t && x.variant === v);
    return r?.loss.lmFirst !== undefined ? `${t} ${v} ${r.loss.lmFirst.toFixed(2)} → ${r.loss.lmLast!.toFixed(2)}` : undefined;
  })).filter((x) => x !== undefined);
  if (lm.length) note.push('', `LM loss (nats/token) on the tasks' text, first → last update: ${lm.join('; ')}.`);
  return [head, sep, ...rows, ...note].join('\n');
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
