// `npm run model -- finetune`: GPT-1's supervised fine-tuning of a model on one task (JSONL data),
// with a progress bar, checkpoints and exact resume from --out/checkpoint.
import { Command, Option } from 'commander';
import path from 'node:path';
import { initBackend } from '../../backend.js';
import { CHAT_HELP, runChatFinetune, type ChatCommandOptions } from '../../finetune/chat/command.js';
import { FinetuneConfigError, parseFinetuneConfig } from '../../finetune/config.js';
import { readExamples, TASK_FIELDS } from '../../finetune/data.js';
import { TASKS, type TaskName } from '../../finetune/tasks.js';
import { finetune, formatMetrics, type FinetuneEvent } from '../../finetune/trainer.js';
import { intArg, numArg, resolveModelDir } from './common.js';
import { addRunOptions, runControls } from './training-run.js';

export const taskOption = () =>
  new Option('--task <task>', 'task type').choices([...TASKS]);
const finetuneTaskOption = () => new Option('--task <task>', 'task type (chat: conversations, see below)').choices([...TASKS, 'chat']);

function describe(e: FinetuneEvent): string | undefined {
  switch (e.type) {
    case 'start': {
      const labels = e.labels.kind === 'class' ? `classes ${e.labels.names.join(', ')}` : e.labels.kind === 'score' ? `scores in [${e.labels.min}, ${e.labels.max}]` : 'choices';
      return `${e.resumedFrom ? `resuming from ${e.resumedFrom} at step ${e.step}` : `starting from ${e.base}`}: ${e.task}, ${labels}; ` +
        `${e.trainExamples} training / ${e.validExamples} validation examples, ${e.totalSteps} updates, ` +
        `${e.parameters.toLocaleString('en')} parameters, backend ${e.backend}` +
        (e.truncatedTrain || e.truncatedValid
          ? `\ntruncated to the context of ${e.maxLen} tokens: ${e.truncatedTrain} training and ${e.truncatedValid} validation examples`
          : '');
    }
    default:
      return undefined;
  }
}

/** Every option of the command; the chat task reads its own (ChatCommandOptions) too. */
interface Opts extends ChatCommandOptions {
  task: TaskName | 'chat';
}

export function register(program: Command): void {
  const cmd = program
    .command('finetune')
    .description('fine-tune a model on a task (GPT-1 input transformations, linear head, task loss + λ·LM loss)')
    .addOption(finetuneTaskOption().makeOptionMandatory())
    .option('--model <dir>', 'model to start from (default: model/shipped)')
    .option('--scratch', 'same architecture and tokenizer as --model, random weights (a baseline without pre-training)')
    .requiredOption('--train <file>', 'training examples, JSONL')
    .requiredOption('--valid <file>', 'validation examples, JSONL (scored after every epoch)')
    .requiredOption('--out <dir>', 'where the fine-tuned model goes (checkpoint/ while training)')
    .option('--epochs <n>', 'passes over the training data (default 3)', intArg('--epochs', 1))
    .option('--lr <x>', 'peak learning rate (default 6.25e-5)', numArg('--lr', 1e-9, 1))
    .option('--lm-coef <λ>', 'weight of the auxiliary LM loss, 0 = off (default 0.5)', numArg('--lm-coef', 0, 100))
    .option('--batch-size <n>', 'examples per update (default 32)', intArg('--batch-size', 1))
    .option('--micro-batch <n>', 'examples per forward pass, gradients summed (default: the whole batch)', intArg('--micro-batch', 1))
    .option('--warmup <fraction>', 'warm-up share of the updates (default 0.002)', numArg('--warmup', 0, 0.5))
    .option('--clf-dropout <p>', 'dropout on the classifier input (default 0.1)', numArg('--clf-dropout', 0, 0.99))
    .option('--dropout <p>', 'decoder dropout (default: the model config\'s)', numArg('--dropout', 0, 0.99))
    .option('--weight-decay <w>', 'decoupled weight decay (default 0.01)', numArg('--weight-decay', 0, 1))
    .option('--max-len <n>', 'longest sequence in tokens (default: the context)', intArg('--max-len', 3))
    .option('--max-steps <n>', 'stop after this many updates (a fixed budget)', intArg('--max-steps', 1))
    .option('--seed <n>', 'seed for the head, new embeddings, data order and dropout (default 42)', intArg('--seed', 0))
    .option('--checkpoint-every <n>', 'updates between checkpoints (default 100)', intArg('--checkpoint-every', 1))
    // Chat only (--task chat):
    .addOption(new Option('--loss-on <which>', 'chat: tokens the LM loss counts (default assistant)').choices(['assistant', 'all']))
    .option('--mc-coef <x>', 'chat: weight of the next-utterance head\'s loss, 0 = no head (default 0)', numArg('--mc-coef', 0, 100))
    .option('--num-candidates <n>', 'chat: replies the head chooses among (default 2)', intArg('--num-candidates', 2, 16))
    .option('--min-lr-ratio <x>', 'chat: final learning rate as a share of --lr (default 0.1)', numArg('--min-lr-ratio', 0, 1))
    .option('--eval-every <n>', 'chat: updates between validations (default: every epoch)', intArg('--eval-every', 1))
    .option('--eval-sequences <n>', 'chat: validation sequences scored each time (default: all)', intArg('--eval-sequences', 1));
  addRunOptions(cmd, 'discard a checkpoint or finished model in --out')
    .option('--json', 'print the result as one JSON object')
    .addHelpText('after', `\nData lines by task:\n${TASKS.map((t) => `  ${t.padEnd(16)} ${TASK_FIELDS[t]}`).join('\n')}\n${CHAT_HELP}`)
    .action(async (o: Opts) => {
      if (o.task === 'chat') return runChatFinetune(o);
      const task = o.task;
      const chatOnly = (['lossOn', 'mcCoef', 'numCandidates', 'minLrRatio', 'evalEvery', 'evalSequences'] as const).filter((k) => o[k] !== undefined);
      if (chatOnly.length) {
        throw new FinetuneConfigError(`${chatOnly.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} only apply to --task chat`);
      }
      const config = parseFinetuneConfig({
        epochs: o.epochs, lr: o.lr, lmCoef: o.lmCoef, batchSize: o.batchSize, microBatch: o.microBatch, warmup: o.warmup, clfDropout: o.clfDropout,
        dropout: o.dropout, weightDecay: o.weightDecay, maxLen: o.maxLen, maxSteps: o.maxSteps, seed: o.seed, checkpointEvery: o.checkpointEvery,
      });
      // Both files are checked before anything else happens: a broken file never starts a run.
      const train = await readExamples(task, o.train);
      const valid = await readExamples(task, o.valid);
      const baseDir = resolveModelDir(o.model);
      await initBackend(o.backend);
      const res = await finetune({
        task, baseDir, scratch: o.scratch, train, valid, outDir: path.resolve(o.out), config, untilStep: o.untilStep, restart: o.restart,
        ...runControls(o.progress, describe),
      });
      if (o.json) {
        console.log(JSON.stringify(res));
      } else {
        console.log(res.finished
          ? `fine-tuned model written to ${res.outDir} (${res.step} updates, ${res.tokensSeen.toLocaleString('en')} tokens, ${(res.elapsedMs / 1000).toFixed(1)} s)`
          : `paused at update ${res.step}/${res.totalSteps}; run the same command again to resume`);
        if (res.valid) console.log(`validation: ${formatMetrics(res.valid)}`);
      }
    });
}
