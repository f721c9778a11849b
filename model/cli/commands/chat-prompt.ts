// `npm run model -- chat-prompt --model DIR --turn "…" [--turn "…"]`: the prompt the model's chat
// format builds for the next reply — ids and, for CDial-GPT, token types — as the bot, the web chat
// and `npm run chat` send it to the engine. Turns alternate user, bot, user, …; the last is the
// message being answered.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { ChatTurn } from '../../chat/chat-format.js';
import { chatFormatFor } from '../../chat/registry.js';
import { loadTokenizerFor } from '../../io/tokenizer.js';
import { GPT1_CONFIG, readConfigFile } from '../../nn/config.js';
import { collect, intArg, resolveModelDir } from './common.js';

interface Options {
  model?: string;
  turn?: string[];
  system?: string;
  maxPromptTokens?: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('chat-prompt')
    .description("show the prompt (token ids and types) the model's chat format builds for the next reply")
    .option('--model <dir>', 'model directory (default: model/shipped)')
    .option('--turn <text>', 'a turn of the conversation, oldest first: user, bot, user, …; the last one is answered (repeatable)', collect)
    .option('--system <text>', 'system line (formats that have one)')
    .option('--max-prompt-tokens <n>', 'prompt budget (default: the context minus the reply the format allows)', intArg('--max-prompt-tokens', 1))
    .option('--json', 'print {"format", "ids", "tokenTypes", "replyTokenType", "droppedTurns", "tokens"}')
    .addHelpText('after', '\nExample: npm run model -- chat-prompt --model models/cdial-gpt --turn 你好 --turn 你好呀 --turn 你是谁？ --json')
    .action(async (o: Options) => {
      const turns = o.turn ?? [];
      if (turns.length % 2 !== 1) {
        throw new InvalidArgumentError(`--turn: give an odd number of turns (user, bot, …, user); got ${turns.length}`);
      }
      const dir = resolveModelDir(o.model);
      if (!existsSync(dir)) throw new InvalidArgumentError(`model directory ${dir} does not exist`);
      const cfgFile = path.join(dir, 'config.json');
      const config = existsSync(cfgFile) ? await readConfigFile(cfgFile) : GPT1_CONFIG;
      const tokenizer = await loadTokenizerFor(dir, existsSync(cfgFile) ? config : undefined);
      const { format } = await chatFormatFor(dir, tokenizer);
      // The budget the reply pipeline (model/chat/reply.ts) gives a prompt by default.
      const maxNew = Math.max(1, Math.min(format.defaults.maxNewTokens ?? 64, Math.floor(config.nPositions / 2)));
      const maxPromptTokens = o.maxPromptTokens ?? Math.max(1, config.nPositions - maxNew);
      const history: ChatTurn[] = turns.slice(0, -1).map((text, i) => ({ role: i % 2 ? 'bot' : 'user', text }));
      const p = format.buildPrompt(history, turns[turns.length - 1], { system: o.system, maxPromptTokens });
      const tokens = p.ids.map((id) => tokenizer.idToToken(id) ?? `<${id}>`);
      if (o.json) {
        console.log(JSON.stringify({ format: format.name, ids: p.ids, tokenTypes: p.tokenTypes ?? null, replyTokenType: p.replyTokenType ?? null, droppedTurns: p.droppedTurns, tokens }));
        return;
      }
      console.log(`format ${format.name}, ${p.ids.length} tokens, ${p.droppedTurns} oldest turn(s) left out`);
      for (let i = 0; i < p.ids.length; i++) {
        const type = p.tokenTypes ? `  type ${String(p.tokenTypes[i]).padStart(6)}` : '';
        console.log(`${String(p.ids[i]).padStart(6)}${type}  ${JSON.stringify(tokens[i])}`);
      }
      if (p.replyTokenType !== undefined) console.log(`reply tokens take type ${p.replyTokenType}`);
    });
}
