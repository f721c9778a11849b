// `npm run model -- pretrain`: GPT-1's unsupervised pre-training on a prepared data set, resuming
// from the run folder's checkpoint when there is one; and `npm run model -- export`: a training
// checkpoint → a compact model folder (HF layout, float16) such as model/shipped/.
import { Command, InvalidArgumentError, Option } from 'commander';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../../backend.js';
import { readCheckpoint, saveCheckpoint } from '../../io/checkpoint.js';
import { loadDataset } from '../../data/shards.js';
import { readTrainConfig } from '../../train/config.js';
import { formatPerplexityMarkdown, formatSamplesMarkdown, generateSamples, perplexityTable, SAMPLE_SETTINGS } from '../../train/report.js';
import { compactLog, EXPORTED_LOG_FILE, formatDuration, pretrain, writeCurve, type TrainEvent } from '../../train/trainer.js';
import { addRunOptions, runControls } from './training-run.js';

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function describe(e: TrainEvent): string | undefined {
  switch (e.type) {
    case 'start':
      return `${e.resumedFrom ? `resuming from ${e.resumedFrom} at step ${e.step}` : 'starting from scratch'}: ` +
        `${e.parameters.toLocaleString('en')} parameters, backend ${e.backend}, ${e.trainTokens.toLocaleString('en')} training tokens`;
    case 'eval':
      return `eval @ step ${e.step}: val loss ${e.valLoss.toFixed(4)} (perplexity ${e.valPerplexity.toFixed(1)}); ` +
        Object.entries(e.perCorpus).map(([k, v]) => `${k} ${v.loss.toFixed(3)}/${v.perplexity.toFixed(1)}`).join(', ');
    default:
      return undefined;
  }
}

export function register(program: Command): void {
  const pretrainCmd = program
    .command('pretrain')
    .description('pre-train a GPT-1-architecture model (language-model objective); resumes exactly from --out/checkpoint')
    .requiredOption('--config <file>', 'training recipe (JSON), e.g. model/train/configs/shipped.json')
    .requiredOption('--data <dir>', 'data set from `npm run data:prepare`')
    .requiredOption('--out <dir>', 'run folder: checkpoint/, log.jsonl, loss.svg')
    .option('--continue-from <dir>', 'when --out has no checkpoint: start from this model folder (e.g. model/shipped); ' +
      'if it was exported from a run of this config and data, continue that run\'s schedule, data position and log ' +
      '(optimizer moments restart from zero)');
  addRunOptions(pretrainCmd, 'discard an existing checkpoint in --out and start from scratch')
    .action(async (o: { config: string; data: string; out: string; untilStep?: number; restart?: boolean; continueFrom?: string; backend?: string; progress: boolean }) => {
      const config = await readTrainConfig(o.config);
      const backend = await initBackend(o.backend);
      const data = await loadDataset(path.resolve(o.data));
      const res = await pretrain({
        config,
        data,
        outDir: path.resolve(o.out),
        untilStep: o.untilStep,
        restart: o.restart,
        continueFrom: o.continueFrom ? path.resolve(o.continueFrom) : undefined,
        ...runControls(o.progress, describe, true),
      });
      console.log(
        `done: step ${res.step}, ${res.tokensSeen.toLocaleString('en')} tokens seen, training time ${formatDuration(res.elapsedMs)} (backend ${backend})` +
          (res.lastEval ? `, val loss ${res.lastEval.valLoss.toFixed(4)} (perplexity ${Math.exp(res.lastEval.valLoss).toFixed(1)})` : ''),
      );
    });

  program
    .command('pretrain-report')
    .description('validation perplexity per corpus vs a unigram baseline, and samples from fixed prompts and seeds (Markdown)')
    .requiredOption('--model <dir>', 'model folder (e.g. model/shipped)')
    .requiredOption('--data <dir>', 'the data set it was trained on (for the validation split)')
    .option('--windows <n>', 'validation windows (of context length) per corpus', intArg, 64)
    .option('--no-samples', 'skip the samples')
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['node', 'wasm', 'cpu']))
    .action(async (o: { model: string; data: string; windows: number; samples: boolean; backend?: string }) => {
      const backend = await initBackend(o.backend);
      const data = await loadDataset(path.resolve(o.data));
      const rows = await perplexityTable(o.model, data, o.windows);
      console.log(`### Validation perplexity (${o.windows} windows per corpus, backend ${backend})\n\n${formatPerplexityMarkdown(rows)}\n`);
      if (o.samples) {
        const samples = await generateSamples(o.model);
        console.log(`### Samples (unedited; ${JSON.stringify(SAMPLE_SETTINGS)})\n\n${formatSamplesMarkdown(samples)}`);
      }
    });

  program
    .command('export')
    .description('copy a (training) checkpoint to a model folder in the HF layout, float16 by default')
    .requiredOption('--from <dir>', 'checkpoint folder, e.g. data/runs/shipped/checkpoint')
    .requiredOption('--out <dir>', 'model folder, e.g. model/shipped')
    .addOption(new Option('--dtype <dtype>', 'weight type').choices(['f16', 'f32']).default('f16'))
    .action(async (o: { from: string; out: string; dtype: 'f16' | 'f32' }) => {
      await exportModel(o.from, o.out, o.dtype);
      console.log(`exported ${o.from} → ${o.out} (${o.dtype})`);
    });
}

/** Weights + config + tokenizer files (+ trainer_state.json for the record) of a checkpoint. */
export async function exportModel(from: string, out: string, dtype: 'f16' | 'f32' = 'f16'): Promise<void> {
  const host = await readCheckpoint(from);
  await mkdir(out, { recursive: true });
  const names = await readdir(from);
  const tokenizerFiles = names.filter((n) => /^(vocab\.json|merges\.txt|tokenizer_config\.json|special_tokens_map\.json)$/.test(n)).map((n) => path.join(from, n));
  await saveCheckpoint(out, host.config, host.arrays, { dtype: dtype === 'f16' ? 'F16' : 'F32', tokenizerFiles });
  // The chat format a chat-tuned model declares travels with it, as does the trainer state.
  for (const name of ['trainer_state.json', 'chat_format.json']) if (names.includes(name)) await copyFile(path.join(from, name), path.join(out, name));
  // A run folder's checkpoint (or a finished fine-tuning run, which keeps its log inside): the loss curve of the run goes along.
  const runDir = names.includes('log.jsonl') ? path.resolve(from) : path.dirname(path.resolve(from));
  if ((await readdir(runDir)).includes('log.jsonl')) {
    const c = host.config;
    const state = JSON.parse(await readFile(path.join(from, 'trainer_state.json'), 'utf8').catch(() => '{}')) as { step?: number; kind?: string };
    const stage = state.kind === 'nemo-chat-finetune' ? 'chat fine-tuning' : 'pre-training';
    await writeCurve(runDir, `${stage}: ${c.nLayer} layers, ${c.nEmbd} dims, vocab ${c.vocabSize}`, path.join(out, 'loss.svg'), state.step ?? Infinity);
    // The curve's data goes along too, so `pretrain --continue-from` can carry the run on later.
    await writeFile(path.join(out, EXPORTED_LOG_FILE), await compactLog(runDir, state.step ?? Infinity));
  }
}
