// `npm run chat -- --model DIR`: a terminal chat with the model, replies streamed as they are
// generated. Uses the same prompt format (model/chat/format.ts) and generation service as the bot.
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { buildChatPrompt, cleanReply, type ChatTurn } from '../chat/format.js';
import { collect, intArg, numArg, resolveModelDir } from './commands/common.js';
import { createGenerator } from '../serving/service.js';

const program = new Command()
  .name('npm run chat --')
  .description('chat with the model in the terminal (commands: /reset, /quit)')
  .option('--model <dir>', 'model directory (default: model/shipped)')
  .option('--max-tokens <n>', 'maximum tokens per reply', intArg('--max-tokens', 1), 64)
  .option('--temperature <t>', '0 = greedy', numArg('--temperature', 0, 100), 0.8)
  .option('--top-k <k>', 'top-k sampling', intArg('--top-k', 0), 40)
  .option('--top-p <p>', 'nucleus sampling', numArg('--top-p', 0.000001, 1), 0.95)
  .option('--repetition-penalty <r>', 'discourage repeats', numArg('--repetition-penalty', 0.01, 10), 1.2)
  .option('--history <n>', 'turns of history kept', intArg('--history', 0), 10)
  .option('--seed <s>', 'random seed', intArg('--seed', 0))
  .option('--stop <text>', 'extra stop string (repeatable)', collect)
  .option('--backend <name>', 'node | wasm | cpu')
  .showHelpAfterError();

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<{
    model?: string; maxTokens: number; temperature: number; topK: number; topP: number;
    repetitionPenalty: number; history: number; seed?: number; stop?: string[]; backend?: string;
  }>();
  const dir = resolveModelDir(o.model);
  process.stderr.write(`loading ${dir} ...\n`);
  const gen = await createGenerator({ modelDir: dir, maxBatch: 1, backend: o.backend, timeoutMs: 0 });
  const info = gen.info();
  process.stderr.write(`${info.name}: ${info.parameters.toLocaleString('en-US')} parameters on ${info.backend}. /reset clears the history, /quit or Ctrl-D leaves.\n`);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  const history: ChatTurn[] = [];
  let current: AbortController | null = null;
  rl.on('SIGINT', () => {
    if (current) current.abort();
    else rl.close();
  });
  try {
    // The async iterator queues lines typed (or piped) while a reply is being generated.
    process.stdout.write('you> ');
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/quit' || text === '/exit') break;
      if (text === '/reset') history.length = 0;
      if (!text || text === '/reset') {
        process.stdout.write(text ? '(history cleared)\nyou> ' : 'you> ');
        continue;
      }
      const { prompt, stop } = buildChatPrompt(history.slice(-o.history * 2), text);
      process.stdout.write('bot> ');
      current = new AbortController();
      let first = true;
      const r = await gen.generate({
        prompt,
        stop: [...stop, ...(o.stop ?? [])],
        maxNewTokens: o.maxTokens,
        temperature: o.temperature,
        topK: o.topK,
        topP: o.topP,
        repetitionPenalty: o.repetitionPenalty,
        seed: o.seed,
        signal: current.signal,
        onText: (chunk) => {
          // The reply conventionally starts after a space: do not print it.
          const out = first ? chunk.replace(/^\s+/, '') : chunk;
          if (!out) return;
          process.stdout.write(out);
          first = false;
        },
      });
      current = null;
      process.stdout.write(r.finishReason === 'aborted' ? ' [stopped]\n' : '\n');
      history.push({ role: 'user', text }, { role: 'bot', text: cleanReply(r.text) });
      process.stdout.write('you> ');
    }
  } finally {
    rl.close();
    await gen.close();
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
