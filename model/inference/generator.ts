// The one small interface through which bot/ and server/ meet the model.
// Implemented by the generation service (worker thread, continuous batching); nothing here
// knows about Redis or WeChat.
import type { ChatFormat } from '../chat/chat-format.js';

export interface SamplingOptions {
  /** Maximum new tokens (GPT-1 has no end token: a turn ends at a stop string or this limit). */
  maxNewTokens?: number;
  minNewTokens?: number;
  /** 0 means greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  noRepeatNgramSize?: number;
  /** Generation stops before the first occurrence of any of these strings. */
  stop?: string[];
  /** Same seed, same prompt, same options → same text. */
  seed?: number;
  /** Token ids that end the reply (not part of its text), besides the tokenizer's end-of-text. */
  stopIds?: number[];
}

export interface GenerationRequest extends SamplingOptions {
  /** Text, or token ids already built by a chat format (model/chat). */
  prompt: string | number[];
  /** Per-position token types of an id prompt (speaker embeddings), same length as it. */
  tokenTypes?: number[];
  /** Token type every generated token takes. */
  replyTokenType?: number;
  signal?: AbortSignal;
  /** Per-request deadline, queueing included. */
  timeoutMs?: number;
  /** Called with each new piece of decoded text, in order (streaming). */
  onText?: (chunk: string) => void;
}

export type FinishReason = 'stop' | 'length' | 'aborted' | 'timeout';

export interface GenerationResult {
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
  /** Prompt tokens dropped from the left to fit the context. */
  truncatedTokens: number;
  latencyMs: number;
}

export interface ModelInfo {
  name: string;
  path: string;
  parameters: number;
  backend: string;
  contextLength: number;
  vocabSize: number;
  layers: number;
  embd: number;
  heads: number;
  /** Measured decode throughput, when known. */
  tokensPerSecond?: number;
  /** The model's chat format (model/chat), e.g. 'nemo-lines'. */
  chatFormat?: string;
}

export interface GeneratorStats {
  active: number;
  queued: number;
  maxQueue: number;
}

export interface TextGenerator {
  info(): ModelInfo;
  /** How this model's prompts are built and its replies end (from its folder). */
  chatFormat(): ChatFormat;
  generate(request: GenerationRequest): Promise<GenerationResult>;
  countTokens(text: string): number;
  /** Text of token ids (a built prompt, for logs and tests). */
  decode(ids: readonly number[]): string;
  stats(): GeneratorStats;
  close(): Promise<void>;
  /**
   * Runs `fn` on the model serving now, kept until `fn` ends (a generator whose model can be
   * replaced live: a reply's prompt and tries stay on one model). Absent: `fn(this)`.
   */
  use?<T>(fn: (generator: TextGenerator) => Promise<T>): Promise<T>;
}

/** The queue is full: the caller should ask the user to try again shortly. */
export class GeneratorBusyError extends Error {
  constructor(message = 'The model is busy; try again shortly') {
    super(message);
    this.name = 'GeneratorBusyError';
  }
}

/** The request did not finish before its deadline. */
export class GeneratorTimeoutError extends Error {
  constructor(message = 'Generation timed out') {
    super(message);
    this.name = 'GeneratorTimeoutError';
  }
}

/** The request itself is invalid (bad sampling option, empty prompt): a client error, not retryable. */
export class GenerationRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GenerationRequestError';
  }
}

/** The model could not be loaded or crashed: the generator is unusable until restarted. */
export class GeneratorUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GeneratorUnavailableError';
  }
}
