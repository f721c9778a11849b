// `npm run chat -- --model DIR`: a terminal chat with the model, replies streamed as they are
// generated; `--once "message"` answers one message and exits (`--json` for scripts). Goes through
// the same chat code as the bot and the web chat: the model's chat format, its stop rules, the
// reply checks and the blocked-words filter (model/chat/reply.ts).
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { BlockedWords } from '../chat/blocked-words.js';
import type { ChatTurn } from '../chat/chat-format.js';
import { ChatResponder, DEFAULT_REPLY_TRIES, type ChatReplyResult } from '../chat/reply.js';
import { intArg, numArg, resolveModelDir } from './commands/common.js';
import type { TextGenerator } from '../inference/generator.js';
import { createGenerator } from '../serving/service.js';

const program = new Command()
  .name('npm run chat --')
  .description('chat with the model in the terminal (commands: /reset, /quit), or answer one message with --once')
  .option('--model <dir>', 'model directory (default: model/shipped)')
  .option('--once <message>', 'answer this one message and exit')
  .option('--json', 'with --once: print {"reply","finishReason","fallback","tokens"}')
  .option('--max-tokens <n>', 'maximum tokens per reply (default: the chat format\'s)', intArg('--max-tokens', 1))
  .option('--temperature <t>', '0 = greedy (default: the chat format\'s)', numArg('--temperature', 0, 100))
  .option('--top-k <k>', 'top-k sampling (default: the chat format\'s)', intArg('--top-k', 0))
  .option('--top-p <p>', 'nucleus sampling (default: the chat format\'s)', numArg('--top-p', 0.000001, 1))
  .option('--repetition-penalty <r>', 'discourage repeats', numArg('--repetition-penalty', 0.01, 10), 1.2)
  .option('--history <n>', 'turns of history kept', intArg('--history', 0), 10)
  .option('--seed <s>', 'random seed of the first try (later tries derive theirs from it)', intArg('--seed', 0))
  .option('--tries <n>', 'generations before the polite fallback line', intArg('--tries', 1, 10), DEFAULT_REPLY_TRIES)
  .option('--system <text>', 'a first line describing the bot')
  .option('--blocked-words <file>', 'extra blocked words, one per line (default: $BOT_BLOCKED_WORDS_FILE)')
  .option('--backend <name>', 'node | wasm | cpu')
  .showHelpAfterError();

interface Options {
  model?: string; once?: string; json?: boolean; maxTokens?: number; temperature?: number; topK?: number; topP?: number;
  repetitionPenalty: number; history: number; seed?: number; tries: number; system?: string; blockedWords?: string;
  backend?: string;
}

function responderFor(gen: TextGenerator, o: Options): ChatResponder {
  const blockedWords = BlockedWords.load({ file: o.blockedWords ?? (process.env.BOT_BLOCKED_WORDS_FILE || undefined) });
  return new ChatResponder(gen, { blockedWords, maxTries: o.tries });
}

function sampling(o: Options) {
  return { maxNewTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, repetitionPenalty: o.repetitionPenalty };
}

/** `--once`: one reply, printed (as JSON with --json), then exit. */
async function once(gen: TextGenerator, o: Options, message: string): Promise<void> {
  const r: ChatReplyResult = await responderFor(gen, o).reply({ history: [], message, system: o.system, sampling: sampling(o), seed: o.seed });
  if (o.json) {
    console.log(JSON.stringify({
      reply: r.text,
      finishReason: r.generation?.finishReason ?? null,
      fallback: r.outcome === 'fallback' || r.outcome === 'blocked',
      tokens: r.completionTokens,
    }));
  } else {
    console.log(r.text);
  }
}

async function repl(gen: TextGenerator, o: Options): Promise<void> {
  const responder = responderFor(gen, o);
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
      process.stdout.write('bot> ');
      current = new AbortController();
      let first = true;
      const r = await responder.reply({
        history: history.slice(-o.history * 2),
        message: text,
        system: o.system,
        sampling: sampling(o),
        seed: o.seed,
        signal: current.signal,
        onText: (chunk) => {
          // The reply conventionally starts after a space: do not print it.
          const out = first ? chunk.replace(/^\s+/, '') : chunk;
          if (!out) return;
          process.stdout.write(out);
          first = false;
        },
        onRetry: () => {
          process.stdout.write(' [rejected, trying again]\nbot> ');
          first = true;
        },
      });
      current = null;
      const cut = r.generation?.finishReason === 'aborted';
      process.stdout.write(cut ? ' [stopped]\n' : '\n');
      // The fallback line is not the model's turn: it stays out of the history.
      if (!cut && (r.outcome === 'ok' || r.outcome === 'resampled')) history.push({ role: 'user', text }, { role: 'bot', text: r.text });
      process.stdout.write('you> ');
    }
  } finally {
    rl.close();
  }
}

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<Options>();
  if (o.json && o.once === undefined) throw new Error('--json needs --once');
  if (o.once !== undefined && !o.once.trim()) throw new Error('--once needs a non-empty message');
  const dir = resolveModelDir(o.model);
  if (!o.json) process.stderr.write(`loading ${dir} ...\n`);
  const gen = await createGenerator({ modelDir: dir, maxBatch: 1, backend: o.backend, timeoutMs: 0 });
  try {
    if (o.once !== undefined) {
      await once(gen, o, o.once);
      return;
    }
    const info = gen.info();
    process.stderr.write(`${info.name}: ${info.parameters.toLocaleString('en-US')} parameters on ${info.backend}, chat format ${info.chatFormat}. /reset clears the history, /quit or Ctrl-D leaves.\n`);
    await repl(gen, o);
  } finally {
    await gen.close();
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
