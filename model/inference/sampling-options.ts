// A request's sampling options checked and completed. Apart from the sequence so that the service
// on the main thread can refuse bad options at once without loading the tokenizer or the kernels.
import { randomInt } from 'node:crypto';
import type { GptConfig } from '../nn/config.js';
import { GenerationRequestError, type SamplingOptions } from './generator.js';

export const DEFAULT_MAX_NEW_TOKENS = 64;
const MAX_STOPS = 16;
const MAX_STOP_LENGTH = 200;

export interface ResolvedSampling {
  maxNewTokens: number;
  minNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  noRepeatNgramSize: number;
  stop: string[];
  stopIds: number[];
  seed: number;
}

/** Checks and completes sampling options; throws GenerationRequestError naming the bad option. */
export function resolveSampling(config: GptConfig, o: SamplingOptions): ResolvedSampling {
  const bad = (name: string, want: string, got: unknown): never => {
    throw new GenerationRequestError(`${name} must be ${want} (got ${JSON.stringify(got)})`);
  };
  const int = (name: string, v: number | undefined, def: number, min: number, max: number): number => {
    if (v === undefined || v === null) return def;
    if (!Number.isInteger(v) || v < min || v > max) bad(name, `an integer in [${min}, ${max}]`, v);
    return v;
  };
  const maxNewTokens = int('maxNewTokens', o.maxNewTokens, Math.min(DEFAULT_MAX_NEW_TOKENS, config.nPositions - 1), 1, config.nPositions - 1);
  const minNewTokens = int('minNewTokens', o.minNewTokens, 0, 0, maxNewTokens);
  const temperature = o.temperature ?? 1;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0 || temperature > 100) bad('temperature', 'a number in [0, 100]', temperature);
  // A top-k wider than the vocabulary keeps every token, as Hugging Face's TopKLogitsWarper does:
  // the bot's default (40) must not break a model with a small vocabulary.
  const topK = Math.min(int('topK', o.topK, 0, 0, 1_000_000), config.vocabSize);
  const topP = o.topP ?? 1;
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) bad('topP', 'a number in (0, 1]', topP);
  const repetitionPenalty = o.repetitionPenalty ?? 1;
  if (typeof repetitionPenalty !== 'number' || !(repetitionPenalty > 0 && repetitionPenalty <= 10)) bad('repetitionPenalty', 'a number in (0, 10]', repetitionPenalty);
  const noRepeatNgramSize = int('noRepeatNgramSize', o.noRepeatNgramSize, 0, 0, 32);
  const stop = o.stop ?? [];
  if (!Array.isArray(stop) || stop.length > MAX_STOPS || stop.some((s) => typeof s !== 'string' || s.length === 0 || s.length > MAX_STOP_LENGTH)) {
    bad('stop', `up to ${MAX_STOPS} non-empty strings of at most ${MAX_STOP_LENGTH} characters`, stop);
  }
  const stopIds = o.stopIds ?? [];
  if (!Array.isArray(stopIds) || stopIds.length > 4096 || stopIds.some((id) => !Number.isInteger(id) || id < 0 || id >= config.vocabSize)) {
    bad('stopIds', `up to 4096 token ids in [0, ${config.vocabSize})`, stopIds.length > 8 ? `${stopIds.length} ids` : stopIds);
  }
  const seed = o.seed === undefined || o.seed === null ? randomInt(0, 2 ** 31) : o.seed;
  if (!Number.isSafeInteger(seed)) bad('seed', 'an integer', seed);
  return { maxNewTokens, minNewTokens, temperature, topK, topP, repetitionPenalty, noRepeatNgramSize, stop, stopIds, seed };
}

