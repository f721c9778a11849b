// `npm run model -- tokenize --model DIR --text "…"`: the ids (and tokens) the model folder's own
// tokenizer gives a text, whichever kind it is (BPE vocab.json or BERT vocab.txt).
import type { Command } from 'commander';
import { loadTokenizerFor } from '../../io/tokenizer.js';
import { resolveModelDir } from './common.js';

export function register(program: Command): void {
  program
    .command('tokenize')
    .description("show the token ids the model's tokenizer gives a text")
    .option('--model <dir>', 'model directory (default: model/shipped)')
    .requiredOption('--text <text>', 'the text to tokenize')
    .option('--json', 'print {"ids": [...], "tokens": [...]}')
    .action(async (o: { model?: string; text: string; json?: boolean }) => {
      const tok = await loadTokenizerFor(resolveModelDir(o.model));
      const ids = tok.encode(o.text);
      const tokens = ids.map((id) => tok.idToToken(id) ?? `<${id}>`);
      if (o.json) console.log(JSON.stringify({ tokenizer: tok.config.type, ids, tokens }));
      else for (let i = 0; i < ids.length; i++) console.log(`${String(ids[i]).padStart(6)}  ${JSON.stringify(tokens[i])}`);
    });
}
