// Scoring replies with the model for bench:chat: the log-likelihood of each candidate reply after
// the prompt (teacher forcing through the inference engine), the token ids a reply is scored as,
// distinct-n, and ranking by a chat model's next-utterance head.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CdialFormat } from '../chat/cdial-format.js';
import type { ChatFormat, ChatTokenizer } from '../chat/chat-format.js';
import type { InferenceEngine } from '../inference/engine.js';
import { FINETUNE_FILE, loadFinetuned } from '../finetune/checkpoint.js';
import { CHAT_FORMAT_FILE } from '../finetune/chat/format-file.js';
import { predictInputs } from '../finetune/evaluate.js';
import { multipleChoiceInput } from '../finetune/transforms.js';
import { namedParams } from '../nn/params.js';

/** The reply's own ids after the prompt, without an end token (as chat fine-tuning's candidates are). */
export function replyIds(format: ChatFormat, tokenizer: ChatTokenizer, reply: string): number[] {
  const line = reply.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  if (format instanceof CdialFormat) return format.encodeUtterance(line);
  return tokenizer.encode(` ${line}`);
}

/**
 * The ids a reply takes after the prompt, as training sees them: " " + reply (one line) then the
 * format's first stop id (end-of-text) for the line formats; for cdial the reply spelt as its
 * utterances are (its speaker token separates the turns) then [SEP], the eos CDial-GPT's
 * build_input_from_segments ends a reply with.
 */
export function replyTargetIds(format: ChatFormat, tokenizer: ChatTokenizer, reply: string): number[] {
  const ids = replyIds(format, tokenizer, reply);
  const end = format instanceof CdialFormat ? tokenizer.tokenToId('[SEP]') : format.stopIds[0];
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
  /** Frees what the ranker holds (tensors); a ranker without any leaves it out. */
  dispose?(): void;
}

/** Length-normalised log-likelihood (mean log-probability per token). */
export function likelihoodRanker(engine: InferenceEngine): CandidateRanker {
  return {
    name: 'likelihood',
    rank: (prompt, candidates) => scoreTargets(engine, prompt, candidates).map((s) => s.logProb / Math.max(1, s.tokens)),
  };
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/**
 * The ranker of a chat model's next-utterance head (GPT-1's multiple-choice head trained by chat
 * fine-tuning's --mc-coef), or null when `modelDir` has none: a chat-tuned folder (chat_format.json)
 * that is also a multiple-choice fine-tuned one (finetune.json). Candidates are the reply ids
 * without an end token (`replyIds`), each read as the trainer reads its candidates,
 * `[start] prompt [delim] reply [extract]`; the head's probability of each is its score.
 */
export async function nextUtteranceRanker(modelDir: string): Promise<CandidateRanker | null> {
  if (!(await exists(path.join(modelDir, CHAT_FORMAT_FILE))) || !(await exists(path.join(modelDir, FINETUNE_FILE)))) return null;
  const { model } = await loadFinetuned(modelDir);
  const dispose = () => tf.dispose([...namedParams(model.params).map(([, t]) => t), model.head.w, model.head.b]);
  if (model.spec.task !== 'multiple-choice') {
    dispose();
    return null;
  }
  return {
    name: 'next-utterance-head',
    rank: (prompt, candidates) => predictInputs(model, [multipleChoiceInput(asPrompt(prompt).ids, candidates, model.spec.specialIds, model.spec.maxLen)])[0].probs!,
    dispose,
  };
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
