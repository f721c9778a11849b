// Scoring replies with the model for bench:chat: the log-likelihood of each candidate reply after
// the prompt (teacher forcing through the inference engine), the token ids a reply is scored as,
// distinct-n, and the hook for ranking by a next-utterance head.
import { CdialFormat } from '../chat/cdial-format.js';
import type { ChatFormat, ChatTokenizer } from '../chat/chat-format.js';
import type { InferenceEngine } from '../inference/engine.js';

/**
 * The ids a reply takes after the prompt, as training sees them: " " + reply (one line) then the
 * format's first stop id (end-of-text) for the line formats; for cdial the reply spelt as its
 * utterances are (its speaker token separates the turns) then [SEP], the eos CDial-GPT's
 * build_input_from_segments ends a reply with.
 */
export function replyTargetIds(format: ChatFormat, tokenizer: ChatTokenizer, reply: string): number[] {
  const line = reply.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  if (format instanceof CdialFormat) {
    const sep = tokenizer.tokenToId('[SEP]');
    const ids = format.encodeUtterance(line);
    return sep === undefined ? ids : [...ids, sep];
  }
  const ids = tokenizer.encode(` ${line}`);
  const end = format.stopIds[0];
  return end === undefined ? ids : [...ids, end];
}

/** A prompt to score after: its ids and, for CDial-GPT, its token types and the reply's type. */
export interface ScoringPrompt {
  ids: number[];
  tokenTypes?: number[];
  replyTokenType?: number;
}

const asPrompt = (p: number[] | ScoringPrompt): ScoringPrompt => (Array.isArray(p) ? { ids: p } : p);

function logProbAt(logits: Float32Array, token: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[token] - max - Math.log(sum);
}

export interface CandidateScore {
  /** Sum of the target tokens' log-probabilities. */
  logProb: number;
  tokens: number;
}

/**
 * Log-likelihood of each target after `prompt`. All candidates are decoded together (one batched
 * step per position); the prompt is cut from the left when prompt + target exceeds the context.
 * With token types, the prompt's positions take theirs and every target token the reply's.
 */
export function scoreTargets(engine: InferenceEngine, given: number[] | ScoringPrompt, targets: number[][]): CandidateScore[] {
  const prompt = asPrompt(given);
  if (prompt.tokenTypes && prompt.tokenTypes.length !== prompt.ids.length) {
    throw new Error(`${prompt.tokenTypes.length} token types for a prompt of ${prompt.ids.length} tokens`);
  }
  const context = engine.config.nPositions;
  const longest = Math.max(...targets.map((t) => Math.min(t.length, context - 1)));
  const from = Math.max(0, prompt.ids.length - (context - longest));
  const kept = prompt.ids.slice(from);
  const keptTypes = prompt.tokenTypes?.slice(from);
  const cut = targets.map((t) => t.slice(0, context - kept.length));
  const started = engine.prefillMany(cut.map(() => kept), cut.map(() => keptTypes));
  const scores = cut.map((): CandidateScore => ({ logProb: 0, tokens: 0 }));
  const live = started.map((s, i) => ({ i, cache: s.cache, logits: s.logits, pos: 0 }));
  try {
    let active = live;
    while (active.length) {
      for (const a of active) {
        scores[a.i].logProb += logProbAt(a.logits, cut[a.i][a.pos]);
        scores[a.i].tokens++;
        a.pos++;
      }
      active = active.filter((a) => a.pos < cut[a.i].length);
      if (!active.length) break;
      const out = engine.step(active.map((a) => ({ cache: a.cache, token: cut[a.i][a.pos - 1], tokenType: prompt.replyTokenType })));
      active.forEach((a, k) => (a.logits = out[k].slice()));
    }
  } finally {
    for (const s of started) engine.release(s.cache);
  }
  return scores;
}

/** Ranks candidate replies: higher is more likely the true one. */
export interface CandidateRanker {
  readonly name: 'likelihood' | 'next-utterance-head' | string;
  rank(prompt: number[] | ScoringPrompt, candidates: number[][]): number[];
}

/** Length-normalised log-likelihood (mean log-probability per token). */
export function likelihoodRanker(engine: InferenceEngine): CandidateRanker {
  return {
    name: 'likelihood',
    rank: (prompt, candidates) => scoreTargets(engine, prompt, candidates).map((s) => s.logProb / Math.max(1, s.tokens)),
  };
}

/**
 * The ranker of a model folder's next-utterance head (GPT-1's multiple-choice head trained with
 * chat fine-tuning's --mc-coef), or null. No model folder stores such a head yet: when chat
 * fine-tuning saves one, load it here and rank by its score of each candidate's final state.
 */
export async function nextUtteranceRanker(_modelDir: string, _engine: InferenceEngine): Promise<CandidateRanker | null> {
  return null;
}

/** The units distinct-n counts: Han characters one by one, other words whole. */
export function distinctUnits(text: string): string[] {
  return text.toLowerCase().match(/\p{Script=Han}|[\p{L}\p{N}]+/gu) ?? [];
}

/** Distinct n-grams over all n-grams of all texts (0 when there are none). */
export function distinctN(texts: string[], n: number): number {
  const seen = new Set<string>();
  let total = 0;
  for (const t of texts) {
    const u = distinctUnits(t);
    for (let i = 0; i + n <= u.length; i++) {
      seen.add(u.slice(i, i + n).join('\u0001'));
      total++;
    }
  }
  return total ? seen.size / total : 0;
}
