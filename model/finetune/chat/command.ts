// `npm run model -- finetune --task chat`: the options of the finetune command that apply to the
// chat objective, turned into a run of ./trainer.ts with the same conveniences as the other tasks.
import path from 'node:path';
import { initBackend } from '../../backend.js';
import { resolveModelDir } from '../../cli/commands/common.js';
import { abortOnStopSignals } from '../../cli/commands/stop-signals.js';
import { FinetuneConfigError } from '../config.js';
import { parseChatConfig } from './config.js';
import { readConversations } from './data.js';
import { formatValidation, trainChat, type ChatTrainEvent } from './trainer.js';

export interface ChatCommandOptions {
  model?: string; train: string; valid: string; out: string; epochs?: number; lr?: number; lmCoef?: number; batchSize?: number; microBatch?: number;
  warmup?: number; minLrRatio?: number; clfDropout?: number; dropout?: number; weightDecay?: number; maxLen?: number; maxSteps?: number; seed?: number;
  checkpointEvery?: number; evalEvery?: number; evalSequences?: number; lossOn?: 'assistant' | 'all'; mcCoef?: number; numCandidates?: number;
  untilStep?: number; restart?: boolean; scratch?: boolean; backend?: string; progress: boolean; json?: boolean;
}

export const CHAT_HELP = `
--task chat: one conversation per line,
  {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...], "source": "..."}
  each becomes one or more sequences in the model's chat format (User:/Bot: lines, oldest turns
  dropped to fit the context); the LM loss counts the assistant's replies (--loss-on all: every
  token). Defaults for chat: --lr 2.5e-4, --batch-size 16 sequences (--micro-batch at most 16),
  --warmup 0.02, decay to --min-lr-ratio 0.1, 3 epochs, validation after every epoch.`;

function describe(e: ChatTrainEvent): string | undefined {
  switch (e.type) {
    case 'start':
      return `${e.resumedFrom ? `resuming from ${e.resumedFrom} at step ${e.step}` : `starting from ${e.base}`}: chat, loss on ${e.lossOn === 'all' ? 'every token' : 'assistant replies'}` +
        `${e.mcCoef > 0 ? ` + ${e.mcCoef} × next-utterance` : ''}; ${e.trainConversations} conversations → ${e.trainSequences} sequences ` +
        `(${e.trainReplies} replies, ${e.trainTargetTokens.toLocaleString('en')} target tokens), ${e.validSequences} validation sequences, ` +
        `${e.totalSteps} updates, ${e.parameters.toLocaleString('en')} parameters, backend ${e.backend}` +
        (e.truncatedTrain || e.truncatedValid ? `\ncut to the context of ${e.maxLen} tokens: ${e.truncatedTrain} training and ${e.truncatedValid} validation replies` : '');
    case 'checkpoint':
      return `checkpoint @ step ${e.step} → ${e.dir}`;
    case 'stop':
      return `stopped at step ${e.step} (${e.reason})`;
    default:
      return undefined;
  }
}

export async function runChatFinetune(o: ChatCommandOptions): Promise<void> {
  if (o.lmCoef !== undefined) throw new FinetuneConfigError('--lm-coef does not apply to --task chat: the LM loss is the objective (--mc-coef weighs the next-utterance head)');
  if (o.scratch) throw new FinetuneConfigError('--scratch does not apply to --task chat: chat fine-tuning starts from a pre-trained model');
  const config = parseChatConfig({
    epochs: o.epochs, lr: o.lr, batchSize: o.batchSize, microBatch: o.microBatch, warmup: o.warmup, minLrRatio: o.minLrRatio, dropout: o.dropout,
    weightDecay: o.weightDecay, maxLen: o.maxLen, maxSteps: o.maxSteps, seed: o.seed, checkpointEvery: o.checkpointEvery, evalEvery: o.evalEvery,
    evalSequences: o.evalSequences, lossOn: o.lossOn, mcCoef: o.mcCoef, numCandidates: o.numCandidates, clfDropout: o.clfDropout,
  });
  // Both files are checked before anything else happens: a broken file never starts a run.
  const train = await readConversations(o.train);
  const valid = await readConversations(o.valid);
  const baseDir = resolveModelDir(o.model);
  await initBackend(o.backend);
  const signal = abortOnStopSignals();
  const bar = o.progress && process.stderr.isTTY;
  const res = await trainChat({
    baseDir, train, valid, outDir: path.resolve(o.out), config, untilStep: o.untilStep, restart: o.restart, progress: bar ? 'bar' : 'lines', signal,
    onEvent: (e) => {
      const line = describe(e);
      if (line) process.stderr.write(`[${new Date().toISOString()}] ${line}\n`);
    },
  });
  if (o.json) {
    console.log(JSON.stringify(res));
    return;
  }
  console.log(res.finished
    ? `chat model written to ${res.outDir} (${res.step} updates, ${res.tokensSeen.toLocaleString('en')} tokens, ${(res.elapsedMs / 1000).toFixed(1)} s)`
    : `paused at update ${res.step}/${res.totalSteps}; run the same command again to resume`);
  if (res.valid) console.log(`validation: ${formatValidation(res.valid)}`);
}
