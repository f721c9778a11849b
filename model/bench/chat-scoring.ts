// Scoring replies with the model for bench:chat: the log-likelihood of each candidate reply after
// the prompt (teacher forcing through the inference engine), the token ids a reply is scored as,
// distinct-n, and the hook for ranking by a next-utterance head.
import type { ChatFormat, ChatTokenizer } from '../chat/chat-format.js';
import type { InferenceEngine } from '../inference/engine.js';

/**
 * The ids a reply takes after the prompt, as training sees them: " " + reply (one line) for the
 * line formats, the bare reply for cdial (its speaker token separates the turns), then the
 * format's first stop id (end-of-text) when it has one.
 */
export function replyTargetIds(format: ChatFormat, tokenizer: ChatTokenizer, reply: string): number[] {
  const line = reply.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  const ids = tokenizer.encode(format.name === 'cdial' ? line : ` ${line}`);
  const end = format.stopIds[0];
  return end === undefined ? ids : [...ids, end];
}

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
 */
export function scoreTargets(engine: InferenceEngine, prompt: number[], targets: number[][]): CandidateScore[] {
  const context = engine.config.nPositions;
  const longest = Math.max(...targets.map((t) => Math.min(t.length, context - 1)));
  const kept = prompt.slice(Math.max(0, prompt.length - (context - longest)));
  const cut = targets.map((t) => t.slice(0, context - kept.length));
  const started = engine.prefillMany(cut.map(() => kept));
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
      const out = engine.step(active.map((a) => ({ cache: a.cache, token: cut[a.i][a.pos - 1] })));
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
  rank(prompt: number[], candidates: number[][]): number[];
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
