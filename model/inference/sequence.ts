// One generation in progress: request validation, prompt truncation (keep the newest text),
// sampling of each next token, streaming of stable text, stop strings, end token, limits.
// The decode loop itself (prefill + batched steps) is in batcher.ts; this file is per sequence.
import { randomInt } from 'node:crypto';
import type { GptConfig } from '../nn/config.js';
import { GenerationRequestError, type FinishReason, type SamplingOptions } from './generator.js';
import { Sampler } from './sampling.js';
import { StreamDecoder, type BpeTokenizer } from '../tokenizer/bpe.js';
import { Utf8Guard, utf8TablesFor } from './utf8-constraint.js';

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
  const topK = int('topK', o.topK, 0, 0, config.vocabSize);
  const topP = o.topP ?? 1;
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) bad('topP', 'a number in (0, 1]', topP);
  const repetitionPenalty = o.repetitionPenalty ?? 1;
  if (typeof repetitionPenalty !== 'number' || !(repetitionPenalty > 0 && repetitionPenalty <= 10)) bad('repetitionPenalty', 'a number in (0, 10]', repetitionPenalty);
  const noRepeatNgramSize = int('noRepeatNgramSize', o.noRepeatNgramSize, 0, 0, 32);
  const stop = o.stop ?? [];
  if (!Array.isArray(stop) || stop.length > MAX_STOPS || stop.some((s) => typeof s !== 'string' || s.length === 0 || s.length > MAX_STOP_LENGTH)) {
    bad('stop', `up to ${MAX_STOPS} non-empty strings of at most ${MAX_STOP_LENGTH} characters`, stop);
  }
  const seed = o.seed === undefined || o.seed === null ? randomInt(0, 2 ** 31) : o.seed;
  if (!Number.isSafeInteger(seed)) bad('seed', 'an integer', seed);
  return { maxNewTokens, minNewTokens, temperature, topK, topP, repetitionPenalty, noRepeatNgramSize, stop, seed };
}

/**
 * Encodes the prompt and drops the oldest tokens so that prompt + maxNewTokens fits the context.
 * Very long text is cut before encoding (keeping the end) so a huge message costs little.
 */
export function encodePrompt(tokenizer: BpeTokenizer, config: GptConfig, prompt: string, maxNewTokens: number): { ids: number[]; truncatedTokens: number } {
  if (typeof prompt !== 'string') throw new GenerationRequestError('prompt must be a string');
  const budget = config.nPositions - maxNewTokens;
  // No token spans more than ~64 characters; keep generously more than the budget can use.
  const charCap = budget * 64;
  let text = prompt;
  let cutChars = false;
  if (text.length > charCap) {
    let start = text.length - charCap;
    if (/[\uDC00-\uDFFF]/.test(text[start])) start++; // do not split a surrogate pair
    text = text.slice(start);
    cutChars = true;
  }
  const ids = tokenizer.encode(text);
  if (ids.length === 0) throw new GenerationRequestError('prompt is empty (it encodes to no tokens)');
  const drop = Math.max(0, ids.length - budget);
  // When characters were cut the true count of dropped tokens is unknown; report at least 1.
  return { ids: ids.slice(drop), truncatedTokens: drop + (cutChars && drop === 0 ? 1 : 0) };
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
function heldForStop(text: string, stops: string[]): number {
  let hold = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > hold; n--) {
      if (text.endsWith(s.slice(0, n))) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}

export interface SequenceResult {
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
  truncatedTokens: number;
}

/** The state of one request while it decodes. */
export class Sequence {
  readonly promptIds: number[];
  readonly truncatedTokens: number;
  readonly generated: number[] = [];
  readonly settings: ResolvedSampling;
  finishReason: FinishReason | null = null;
  private readonly sampler: Sampler;
  private readonly decoder: StreamDecoder;
  /** Keeps generated byte tokens valid UTF-8 (null for vocabularies without byte tokens). */
  private readonly utf8: Utf8Guard | null;
  private streamed = '';
  private sent = '';
  /** Length of the text of the first minNewTokens tokens: stop strings ending inside it do not count. */
  private minTextLength = 0;
  private finalText: string | null = null;

  constructor(
    private readonly tokenizer: BpeTokenizer,
    private readonly config: GptConfig,
    prompt: string | number[],
    options: SamplingOptions,
    private readonly onText?: (chunk: string) => void,
  ) {
    this.settings = resolveSampling(config, options);
    if (typeof prompt === 'string') {
      const p = encodePrompt(tokenizer, config, prompt, this.settings.maxNewTokens);
      this.promptIds = p.ids;
      this.truncatedTokens = p.truncatedTokens;
    } else {
      const budget = config.nPositions - this.settings.maxNewTokens;
      if (prompt.length === 0) throw new GenerationRequestError('prompt is empty');
      this.promptIds = prompt.slice(Math.max(0, prompt.length - budget));
      this.truncatedTokens = prompt.length - this.promptIds.length;
    }
    this.sampler = new Sampler(this.settings);
    this.decoder = new StreamDecoder(tokenizer, { skipSpecialTokens: true });
    const tables = utf8TablesFor(tokenizer);
    this.utf8 = tables ? new Utf8Guard(tables) : null;
  }

  get done(): boolean {
    return this.finishReason !== null;
  }

  /** Tokens the model has seen so far (prompt + generated). */
  get length(): number {
    return this.promptIds.length + this.generated.length;
  }

  /**
   * Takes the logits for the next position; returns the chosen token to feed to the model, or
   * null when the sequence has finished (then `finishReason` is set and the final text is sent).
   */
  accept(logits: Float32Array): number | null {
    if (this.done) return null;
    const s = this.settings;
    const eos = this.tokenizer.eosId;
    const banned = eos !== undefined && this.generated.length < s.minNewTokens ? [eos] : [];
    const context = this.promptIds.concat(this.generated);
    let token: number;
    if (this.utf8) {
      const rule = this.utf8.rule();
      token = rule.allowed ? this.sampler.pick(logits, context, banned, rule.allowed) : this.sampler.pick(logits, context, [...banned, ...rule.banned]);
    } else {
      token = this.sampler.pick(logits, context, banned);
    }
    if (eos !== undefined && token === eos) return this.finish('stop');
    this.generated.push(token);
    this.utf8?.push(token);
    this.streamed += this.decoder.push(token);
    const enough = this.generated.length >= s.minNewTokens;
    if (enough && s.stop.length) {
      // Stop strings are searched in the full decoded text (the stream holds the last word back).
      const full = this.completeText();
      if (this.generated.length === s.minNewTokens) this.minTextLength = full.length;
      let at = -1;
      for (const stop of s.stop) {
        const i = full.indexOf(stop, Math.max(0, this.minTextLength - stop.length + 1));
        if (i >= 0 && (at < 0 || i < at)) at = i;
      }
      if (at >= 0) {
        this.finalText = full.slice(0, at);
        return this.finish('stop');
      }
    }
    if (this.generated.length >= s.maxNewTokens || this.length >= this.config.nPositions) return this.finish('length');
    this.emitStable();
    return token;
  }

  private emitStable(): void {
    const safe = this.streamed.slice(0, this.streamed.length - heldForStop(this.streamed, this.settings.stop));
    if (safe.length > this.sent.length && safe.startsWith(this.sent)) {
      const chunk = safe.slice(this.sent.length);
      this.sent = safe;
      this.onText?.(chunk);
    }
  }

  /** Ends the sequence (also used for cancellation and timeouts) and sends the remaining text. */
  finish(reason: FinishReason): null {
    if (this.done) return null;
    this.finishReason = reason;
    if (this.finalText === null) this.finalText = this.completeText();
    if (reason === 'aborted' || reason === 'timeout') {
      // Only what the caller already saw counts: the text stays consistent with the stream.
      if (this.finalText.startsWith(this.sent)) this.finalText = this.sent;
    } else if (this.finalText.length > this.sent.length && this.finalText.startsWith(this.sent)) {
      const chunk = this.finalText.slice(this.sent.length);
      this.sent = this.finalText;
      this.onText?.(chunk);
    }
    return null;
  }

  /**
   * The generated text without a trailing character whose bytes are unfinished (when the token
   * limit lands inside one): a partial character cannot be shown, and U+FFFD is never correct.
   */
  private completeText(): string {
    const pending = this.utf8?.pendingTokens ?? 0;
    return this.tokenizer.decode(pending ? this.generated.slice(0, this.generated.length - pending) : this.generated, { skipSpecialTokens: true });
  }

  result(): SequenceResult {
    return {
      text: this.finalText ?? '',
      promptTokens: this.promptIds.length,
      completionTokens: this.generated.length,
      finishReason: this.finishReason ?? 'length',
      truncatedTokens: this.truncatedTokens,
    };
  }
}
