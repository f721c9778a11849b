// `npm run bench:chat -- [--model DIR] --data FILE.jsonl [--json] [--limit N]`: how well a model
// converses, on chat JSONL (one conversation per line). For each assistant turn, with the turns
// before it as history and the prompt built by the model's own chat format:
//   ppl            perplexity of the true reply's tokens (and its end token)
//   hits1          Hits@1 of 10: the true reply against 9 replies from other conversations, ranked
//                  by length-normalised log-likelihood
//   hits1Head      the same Hits@1 ranked by the model's next-utterance head (chat fine-tuning's
//                  --mc-coef), present only when the model folder has one
//   distinct1/2    distinct unigrams/bigrams over the replies the model samples
//   languageMatch  share of sampled replies in the user's language (Chinese for Chinese, …)
//   empty          share of sampled replies with nothing to say (empty, punctuation, a new turn)
// Replies are sampled once per turn with the format's default sampling and judged by the chat
// pipeline's own rules (model/chat/reply.ts) without resampling, so the figures describe the model,
// not the safety net. Distractors and sampling seeds come from --seed: same seed, same figures.
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { ChatResponder } from '../chat/reply.js';
import { chatFormatFor } from '../chat/registry.js';
import { hasContent, messageLanguage, replyMatchesLanguage } from '../chat/language.js';
import { intArg, resolveModelDir } from '../cli/commands/common.js';
import { Rng } from '../rng.js';
import { loadRuntime } from '../inference/runtime.js';
import { createGenerator } from '../serving/service.js';
import { readChatJsonl, type ChatExample } from './chat-data.js';
import { distinctN, likelihoodRanker, nextUtteranceRanker, replyIds, replyTargetIds, scoreTargets, type CandidateRanker } from './chat-scoring.js';

const CANDIDATES = 10;

const program = new Command()
  .name('npm run bench:chat --')
  .description('measure a chat model on chat JSONL: reply perplexity, Hits@1 of 10, distinct-1/2, language match, empty replies')
  .requiredOption('--data <file>', 'chat JSONL: {"messages":[{"role","content"}…]} per line')
  .option('--model <dir>', 'model directory (default: model/shipped)')
  .option('--limit <n>', 'score at most this many assistant turns (the first ones)', intArg('--limit', 1))
  .option('--seed <n>', 'seed for distractors and sampling', intArg('--seed', 0), 42)
  .option('--batch <n>', 'replies sampled at once', intArg('--batch', 1, 16), 4)
  .option('--backend <name>', 'node | wasm | cpu')
  .option('--json', 'print {"n","ppl","hits1","distinct1","distinct2","languageMatch","empty"} (+ "hits1Head" with a next-utterance head)')
  .showHelpAfterError();

export interface ChatBenchResult {
  n: number;
  ppl: number;
  hits1: number;
  /** Hits@1 of 10 by the next-utterance head; only for a model folder that has one. */
  hits1Head?: number;
  distinct1: number;
  distinct2: number;
  languageMatch: number;
  empty: number;
}

/** Strictly better than every distractor (the true reply is first): a tie is not a hit. */
const isHit = (scores: number[]) => scores.slice(1).every((r) => scores[0] > r);

/** Nine replies from other conversations (without repeats while there are enough). */
function distractors(examples: ChatExample[], e: ChatExample, rng: Rng): string[] {
  const pool = [...new Set(examples.filter((x) => x.conversation !== e.conversation && x.reply !== e.reply).map((x) => x.reply))];
  if (pool.length === 0) throw new Error('Hits@1 needs replies from at least two conversations');
  const out: string[] = [];
  const left = [...pool];
  while (out.length < CANDIDATES - 1) {
    const from = left.length ? left : pool;
    const i = Math.floor(rng.next() * from.length);
    out.push(from === left ? left.splice(i, 1)[0] : pool[i]);
  }
  return out;
}

const round = (x: number) => Math.round(x * 10_000) / 10_000;

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<{ data: string; model?: string; limit?: number; seed: number; batch: number; backend?: string; json?: boolean }>();
  const dir = resolveModelDir(o.model);
  const all = await readChatJsonl(o.data);
  const examples = o.limit ? all.slice(0, o.limit) : all;
  if (examples.length === 0) throw new Error(`${o.data}: no assistant turn to score`);
  const log = (s: string) => {
    if (!o.json) process.stderr.write(`${s}\n`);
  };
  log(`loading ${dir} ...`);
  const rt = await loadRuntime(dir, { backend: o.backend });
  const generator = await createGenerator({ modelDir: dir, maxBatch: o.batch, backend: o.backend, timeoutMs: 0 });
  let head: CandidateRanker | null = null;
  try {
    const { format } = await chatFormatFor(dir, rt.tokenizer);
    const ranker = likelihoodRanker(rt.engine);
    head = await nextUtteranceRanker(dir);
    log(`${examples.length} assistant turns from ${o.data}; chat format ${format.name}; Hits@1 ranked by ${ranker.name}${head ? ` and by ${head.name}` : ''}`);
    const bar = o.json ? null : new cliProgress.SingleBar({ format: 'bench:chat |{bar}| {value}/{total} turns {phase}', stream: process.stderr }, cliProgress.Presets.shades_classic);
    bar?.start(examples.length * 2, 0, { phase: 'scoring' });
    const rng = new Rng(o.seed);
    const context = rt.config.nPositions;
    let nll = 0;
    let tokens = 0;
    let hits = 0;
    let headHits = 0;
    for (const e of examples) {
      const prompt = format.buildPrompt(e.history, e.message, { system: e.system, maxPromptTokens: Math.floor(context / 2) });
      const truth = replyTargetIds(format, rt.tokenizer, e.reply);
      const replies = [e.reply, ...distractors(all, e, rng)];
      const [own] = scoreTargets(rt.engine, prompt, [truth]);
      nll -= own.logProb;
      tokens += own.tokens;
      if (isHit(ranker.rank(prompt, [truth, ...replies.slice(1).map((r) => replyTargetIds(format, rt.tokenizer, r))]))) hits++;
      // The head reads each reply as chat fine-tuning wrote its candidates: no end token.
      if (head && isHit(head.rank(prompt.ids, replies.map((r) => replyIds(format, rt.tokenizer, r))))) headHits++;
      bar?.increment();
    }
    bar?.update({ phase: 'sampling' });
    const responder = new ChatResponder(generator, { format, maxTries: 1 });
    const sampled: Array<{ text: string; empty: boolean; match: boolean }> = [];
    for (let i = 0; i < examples.length; i += o.batch) {
      const chunk = examples.slice(i, i + o.batch);
      const replies = await Promise.all(chunk.map((e, k) => responder.reply({ history: e.history, message: e.message, system: e.system, seed: o.seed + i + k })));
      replies.forEach((r, k) => {
        const first = r.tries[0] ?? { text: '', rejected: 'empty' as const };
        const lang = messageLanguage(chunk[k].message);
        sampled.push({
          text: first.text,
          empty: first.rejected === 'empty' || first.rejected === 'new-turn',
          match: hasContent(first.text) && replyMatchesLanguage(lang, first.text),
        });
      });
      bar?.increment(chunk.length);
    }
    bar?.stop();
    const n = examples.length;
    const result: ChatBenchResult = {
      n,
      ppl: round(Math.exp(nll / Math.max(1, tokens))),
      hits1: round(hits / n),
      ...(head ? { hits1Head: round(headHits / n) } : {}),
      distinct1: round(distinctN(sampled.map((s) => s.text), 1)),
      distinct2: round(distinctN(sampled.map((s) => s.text), 2)),
      languageMatch: round(sampled.filter((s) => s.match).length / n),
      empty: round(sampled.filter((s) => s.empty).length / n),
    };
    if (o.json) {
      console.log(JSON.stringify(result));
      return;
    }
    console.log(`model          ${dir} (${format.name})`);
    console.log(`turns          ${n}`);
    console.log(`perplexity     ${result.ppl} (reply tokens)`);
    console.log(`Hits@1 of 10   ${result.hits1} (chance 0.1; by ${ranker.name})`);
    if (result.hits1Head !== undefined) console.log(`Hits@1 of 10   ${result.hits1Head} (chance 0.1; by ${head!.name})`);
    console.log(`distinct-1/2   ${result.distinct1} / ${result.distinct2}`);
    console.log(`language match ${result.languageMatch}`);
    console.log(`empty          ${result.empty}`);
  } finally {
    head?.dispose?.();
    rt.engine.dispose();
    await generator.close();
  }
}

main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
