// The generation service: implements TextGenerator for the server and the bot. The model runs in
// a worker thread (the event loop stays free for HTTP and WeChat); concurrent requests are decoded
// together there (continuous batching, see inference/batcher.ts). This side keeps the bounded queue,
// deadlines and cancellation, so stats() and GeneratorBusyError need no round trip.
//
// Outcomes: finished → finishReason 'stop' | 'length'; signal aborted → 'aborted' (text so far);
// deadline passed while generating → 'timeout' (text so far); deadline passed while still queued
// → rejects GeneratorTimeoutError; queue full → rejects GeneratorBusyError at once.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import type { ChatFormat } from '../chat/chat-format.js';
import { chatFormatFor } from '../chat/registry.js';
import { readConfigFile } from '../nn/config.js';
import { resolveSampling } from '../inference/sampling-options.js';
import {
  GenerationRequestError,
  GeneratorBusyError,
  GeneratorTimeoutError,
  GeneratorUnavailableError,
  type GenerationRequest,
  type GenerationResult,
  type GeneratorStats,
  type ModelInfo,
  type TextGenerator,
} from '../inference/generator.js';
import type { ModelTokenizer } from '../tokenizer/model-tokenizer.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';
import { startTsWorker } from './ts-worker.js';

/** Most sequences one batched step may have. */
const MAX_BATCH_ROWS = 64;

/** The model that ships with the project (HF layout). */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../shipped/', import.meta.url));

export interface GeneratorOptions {
  /** Model directory (HF layout or the original OpenAI release). Default: model/shipped/. */
  modelDir?: string;
  /** Requests decoded together (default 8). */
  maxBatch?: number;
  /** Requests waiting for a slot before GeneratorBusyError (default 32). */
  maxQueue?: number;
  /** Default per-request deadline in ms, queueing included (default 60000; 0 = none). */
  timeoutMs?: number;
  /** node | wasm | cpu (default: $TFJS_BACKEND, else the best available). */
  backend?: string;
}

interface Pending {
  id: string;
  req: GenerationRequest;
  started: number;
  deadline?: number;
  timer?: NodeJS.Timeout;
  dispatched: boolean;
  dispatchedAt?: number;
  resolve(r: GenerationResult): void;
  reject(e: Error): void;
  cleanup(): void;
}

/** A crashed worker is restarted at most this often per RESTART_WINDOW_MS, then the generator gives up. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 10 * 60_000;

class WorkerGenerator implements TextGenerator {
  private readonly queue: Pending[] = [];
  private readonly inFlight = new Map<string, Pending>();
  private failure: Error | null = null;
  private closing: Promise<void> | null = null;
  private worker: Worker | null = null;
  private readonly restarts: number[] = [];

  constructor(
    worker: Worker,
    private readonly init: WorkerInit,
    private readonly modelInfo: ModelInfo,
    private readonly tokenizer: ModelTokenizer,
    private readonly format: ChatFormat,
    private readonly maxBatch: number,
    private readonly maxQueue: number,
    private readonly timeoutMs: number,
  ) {
    this.attach(worker);
  }

  private attach(worker: Worker): void {
    this.worker = worker;
    let gone = false;
    const crashed = (why: string) => {
      if (gone) return;
      gone = true;
      if (this.worker === worker) this.worker = null;
      if (!this.closing) this.onCrash(why);
    };
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => crashed(`model worker crashed: ${err.message}`));
    worker.on('exit', (code) => crashed(`model worker exited (code ${code})`));
  }

  /**
   * The worker died (out of memory, a bug): the requests it held fail, queued ones wait, and a new
   * worker loads the model again — unless that keeps happening.
   */
  private onCrash(why: string): void {
    const lost = new GeneratorUnavailableError(`${why}; the model is restarting, try again shortly`);
    for (const p of this.inFlight.values()) {
      p.cleanup();
      p.reject(lost);
    }
    this.inFlight.clear();
    const now = Date.now();
    while (this.restarts.length && now - this.restarts[0] > RESTART_WINDOW_MS) this.restarts.shift();
    if (this.restarts.length >= MAX_RESTARTS) {
      this.fail(new GeneratorUnavailableError(`${why}; gave up after ${MAX_RESTARTS} restarts in ${RESTART_WINDOW_MS / 60_000} minutes`));
      return;
    }
    this.restarts.push(now);
    launch(this.init).then(
      ({ worker }) => {
        if (this.closing || this.failure) {
          void worker.terminate();
          return;
        }
        this.attach(worker);
        this.pump();
      },
      (err: Error) => this.fail(err),
    );
  }

  /** Smoothed decode speed of finished requests (tokens/s per request, queueing excluded). */
  private tokensPerSecond: number | undefined;

  info(): ModelInfo {
    return { ...this.modelInfo, ...(this.tokensPerSecond !== undefined ? { tokensPerSecond: Math.round(this.tokensPerSecond * 10) / 10 } : {}) };
  }

  chatFormat(): ChatFormat {
    return this.format;
  }

  countTokens(text: string): number {
    return this.tokenizer.encode(text).length;
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer.decode(ids);
  }

  stats(): GeneratorStats {
    return { active: this.inFlight.size, queued: this.queue.length, maxQueue: this.maxQueue };
  }

  generate(req: GenerationRequest): Promise<GenerationResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new GeneratorUnavailableError('generator is closed'));
    try {
      // Validate here so a bad option is a clear error before any queueing.
      resolveSampling({ ...this.configLike() }, req);
      if (typeof req.prompt !== 'string' && !(Array.isArray(req.prompt) && req.prompt.every((id) => Number.isInteger(id)))) {
        throw new GenerationRequestError('prompt must be a string or an array of token ids');
      }
    } catch (err) {
      return Promise.reject(err);
    }
    if (req.signal?.aborted) return Promise.resolve(this.emptyResult('aborted', Date.now()));
    if (this.inFlight.size >= this.maxBatch && this.queue.length >= this.maxQueue) {
      return Promise.reject(new GeneratorBusyError());
    }
    return new Promise<GenerationResult>((resolve, reject) => {
      const started = Date.now();
      const timeout = req.timeoutMs ?? this.timeoutMs;
      const p: Pending = {
        id: randomUUID(),
        req,
        started,
        deadline: timeout > 0 ? started + timeout : undefined,
        dispatched: false,
        resolve,
        reject,
        cleanup: () => {
          if (p.timer) clearTimeout(p.timer);
          req.signal?.removeEventListener('abort', onAbort);
        },
      };
      const onAbort = () => this.cancel(p, 'aborted');
      req.signal?.addEventListener('abort', onAbort, { once: true });
      if (p.deadline !== undefined) p.timer = setTimeout(() => this.cancel(p, 'timeout'), timeout);
      this.queue.push(p);
      this.pump();
    });
  }

  private configLike() {
    return { nPositions: this.modelInfo.contextLength, vocabSize: this.modelInfo.vocabSize } as Parameters<typeof resolveSampling>[0];
  }

  private emptyResult(reason: GenerationResult['finishReason'], started: number): GenerationResult {
    return { text: '', promptTokens: 0, completionTokens: 0, finishReason: reason, truncatedTokens: 0, latencyMs: Date.now() - started };
  }

  private cancel(p: Pending, reason: 'aborted' | 'timeout'): void {
    if (!p.dispatched) {
      const i = this.queue.indexOf(p);
      if (i < 0) return;
      this.queue.splice(i, 1);
      p.cleanup();
      if (reason === 'timeout') p.reject(new GeneratorTimeoutError('Generation timed out while waiting for a free slot'));
      else p.resolve(this.emptyResult('aborted', p.started));
      return;
    }
    this.post({ type: 'cancel', id: p.id, reason });
  }

  private pump(): void {
    if (!this.worker) return; // restarting: the queue waits
    while (this.inFlight.size < this.maxBatch && this.queue.length) {
      const p = this.queue.shift()!;
      p.dispatched = true;
      p.dispatchedAt = Date.now();
      this.inFlight.set(p.id, p);
      const { prompt, tokenTypes, replyTokenType, signal: _s, onText: _o, timeoutMs: _t, ...options } = p.req;
      this.post({ type: 'generate', id: p.id, prompt, options, deadline: p.deadline, tokenTypes, replyTokenType });
    }
  }

  private post(m: ToWorker): void {
    this.worker?.postMessage(m);
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'text') {
      const p = this.inFlight.get(m.id);
      try {
        p?.req.onText?.(m.chunk);
      } catch {
        // A failing stream consumer must not break the generator.
      }
    } else if (m.type === 'done' || m.type === 'error') {
      const p = this.inFlight.get(m.id);
      if (!p) return;
      this.inFlight.delete(m.id);
      p.cleanup();
      if (m.type === 'done') {
        const generatingMs = Date.now() - (p.dispatchedAt ?? p.started);
        if (m.result.completionTokens >= 4 && generatingMs > 0) {
          const tps = (m.result.completionTokens * 1000) / generatingMs;
          this.tokensPerSecond = this.tokensPerSecond === undefined ? tps : 0.8 * this.tokensPerSecond + 0.2 * tps;
        }
        p.resolve({ ...m.result, latencyMs: Date.now() - p.started });
      }
      else p.reject(m.name === 'GenerationRequestError' ? new GenerationRequestError(m.message) : new Error(m.message));
      this.pump();
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const p of [...this.queue.splice(0), ...this.inFlight.values()]) {
      p.cleanup();
      p.reject(err);
    }
    this.inFlight.clear();
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = new Promise<void>((resolve) => {
      for (const p of this.queue.splice(0)) {
        p.cleanup();
        p.reject(new GeneratorUnavailableError('generator is closed'));
      }
      const done = () => {
        clearTimeout(kill);
        resolve();
      };
      const worker = this.worker;
      if (!worker) {
        resolve();
        return;
      }
      // Give the worker a moment to finish its requests as 'aborted', then make sure it is gone.
      const kill = setTimeout(() => void worker.terminate(), 5000);
      worker.once('exit', done);
      if (this.failure) void worker.terminate();
      else this.post({ type: 'close' });
    });
    return this.closing;
  }
}

function startWorker(init: WorkerInit): Worker {
  return startTsWorker(new URL('./worker.ts', import.meta.url), init);
}

/** Starts a generation worker and waits until its model is loaded. */
async function launch(init: WorkerInit): Promise<{ worker: Worker; info: ModelInfo }> {
  const worker = startWorker(init);
  const info = await new Promise<ModelInfo>((resolve, reject) => {
    const onMessage = (m: FromWorker) => {
      if (m.type === 'ready') {
        off();
        resolve(m.info);
      } else if (m.type === 'fatal') {
        off();
        reject(new GeneratorUnavailableError(`cannot load the model: ${m.message}`));
      }
    };
    const onError = (err: Error) => {
      off();
      reject(new GeneratorUnavailableError(`model worker failed to start: ${err.message}`));
    };
    const onExit = (code: number) => {
      off();
      reject(new GeneratorUnavailableError(`model worker exited during start-up (code ${code})`));
    };
    const off = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  }).catch(async (err) => {
    await worker.terminate();
    throw err;
  });
  return { worker, info };
}

/**
 * Starts the generation worker, loads the model there (once) and resolves when it is ready to
 * generate. Rejects with GeneratorUnavailableError (message names the file) when the model
 * cannot be loaded.
 */
export async function createGenerator(opts: GeneratorOptions = {}): Promise<TextGenerator> {
  const modelDir = path.resolve(opts.modelDir ?? DEFAULT_MODEL_DIR);
  const maxBatch = opts.maxBatch ?? 8;
  const maxQueue = opts.maxQueue ?? 32;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new GenerationRequestError(`maxBatch must be a positive integer (got ${maxBatch})`);
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new GenerationRequestError(`maxQueue must be an integer >= 0 (got ${maxQueue})`);
  if (!existsSync(modelDir)) throw new GeneratorUnavailableError(`model directory ${modelDir} does not exist`);
  let tokenizer: ModelTokenizer;
  let format: ChatFormat;
  try {
    const cfgFile = path.join(modelDir, 'config.json');
    // Loaded here, not at import: bot/ and server/ import this module through model/index.ts
    // also where they never start a model (the tokenizer's modules take ~0.2 s to load).
    const { loadTokenizerFor } = await import('../io/tokenizer.js');
    tokenizer = await loadTokenizerFor(modelDir, existsSync(cfgFile) ? await readConfigFile(cfgFile) : undefined);
    format = (await chatFormatFor(modelDir, tokenizer)).format;
  } catch (err) {
    throw new GeneratorUnavailableError((err as Error).message);
  }
  const batch = Math.min(maxBatch, MAX_BATCH_ROWS);
  const init: WorkerInit = { modelDir, maxBatch: batch, backend: opts.backend };
  const { worker, info } = await launch(init);
  return new WorkerGenerator(worker, init, { ...info, chatFormat: format.name }, tokenizer, format, batch, maxQueue, timeoutMs);
}
