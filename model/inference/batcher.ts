// Continuous batching: every active request advances by one token in ONE engine step (the
// weights are read once for all of them); new requests join between steps after their prefill
// (fed in chunks between steps, so running streams keep going; several short waiting prompts are
// prefilled together in one engine call),
// finished, cancelled or timed-out ones leave between steps. Runs on whichever thread owns the
// engine (the generation worker, or the CLI's main thread).
import type { InferenceEngine, KvCache } from './engine.js';
import type { FinishReason } from './generator.js';
import type { Sequence, SequenceResult } from './sequence.js';

export interface BatchJob {
  id: string;
  seq: Sequence;
  /** ms since epoch; the job finishes with 'timeout' after it. */
  deadline?: number;
  onDone(result: SequenceResult): void;
  onError(err: Error): void;
}

interface Active {
  job: BatchJob;
  cache: KvCache;
  next: number;
}

export interface BatcherStats {
  active: number;
  pending: number;
  steps: number;
  tokens: number;
}

export class Batcher {
  private readonly pending: BatchJob[] = [];
  private readonly active: Active[] = [];
  /** The job whose prompt is being fed, a chunk per iteration, while the others keep decoding. */
  private filling: { job: BatchJob; cache: KvCache | null; fed: number } | null = null;
  private running = false;
  private closed = false;
  private steps = 0;
  private tokens = 0;
  private logitsBuf?: Float32Array;

  /**
   * `prefillChunk`: prompt tokens fed per iteration while other requests are decoding, so a long
   * prompt delays them by one chunk per token instead of by its whole prefill (GPT-1 on one wasm
   * thread: ~0.5 s per 64 tokens). Alone, a prompt is fed in one go.
   */
  constructor(
    private readonly engine: InferenceEngine,
    private readonly maxBatch: number,
    private readonly prefillChunk = 64,
  ) {}

  add(job: BatchJob): void {
    if (this.closed) {
      job.onError(new Error('generator closed'));
      return;
    }
    this.pending.push(job);
    this.kick();
  }

  /** Ends a job early; its result keeps the text generated so far. */
  cancel(id: string, reason: FinishReason = 'aborted'): void {
    const p = this.pending.findIndex((j) => j.id === id);
    if (p >= 0) {
      const [job] = this.pending.splice(p, 1);
      job.seq.finish(reason);
      job.onDone(job.seq.result());
      return;
    }
    if (this.filling?.job.id === id) {
      this.dropFilling(reason);
      return;
    }
    const a = this.active.findIndex((x) => x.job.id === id);
    if (a >= 0) this.retire(a, reason);
  }

  private dropFilling(reason: FinishReason): void {
    const f = this.filling!;
    this.filling = null;
    if (f.cache) this.engine.release(f.cache);
    f.job.seq.finish(reason);
    f.job.onDone(f.job.seq.result());
  }

  stats(): BatcherStats {
    return { active: this.active.length + (this.filling ? 1 : 0), pending: this.pending.length, steps: this.steps, tokens: this.tokens };
  }

  close(): void {
    this.closed = true;
    for (const j of this.pending.splice(0)) j.onError(new Error('generator closed'));
    if (this.filling) this.dropFilling('aborted');
    while (this.active.length) this.retire(0, 'aborted');
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => this.loop());
  }

  private retire(index: number, reason?: FinishReason): void {
    const [a] = this.active.splice(index, 1);
    this.engine.release(a.cache);
    if (reason) a.job.seq.finish(reason);
    a.job.onDone(a.job.seq.result());
  }

  private loop(): void {
    try {
      this.expire();
      // Several short waiting prompts are prefilled together in one engine call (the weights are
      // read once for all of them); otherwise one prompt at a time is fed, a chunk per iteration,
      // between batched decode steps.
      if (!this.filling && this.pending.length > 1 && this.maxBatch - this.active.length > 1) this.prefillBatch();
      if (!this.filling && this.active.length < this.maxBatch && this.pending.length) {
        this.filling = { job: this.pending.shift()!, cache: null, fed: 0 };
      }
      if (this.filling) this.feed();
      if (this.active.length) this.step();
    } catch (err) {
      // An engine failure (e.g. out of memory) fails the requests in flight, not the process.
      const e = err instanceof Error ? err : new Error(String(err));
      for (const a of this.active.splice(0)) {
        this.engine.release(a.cache);
        a.job.onError(e);
      }
    }
    if (this.active.length || this.pending.length || this.filling) setImmediate(() => this.loop());
    else this.running = false;
  }

  private expire(): void {
    const now = Date.now();
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const j = this.pending[i];
      if (j.deadline !== undefined && now >= j.deadline) {
        this.pending.splice(i, 1);
        j.seq.finish('timeout');
        j.onDone(j.seq.result());
      }
    }
    for (let i = this.active.length - 1; i >= 0; i--) {
      const d = this.active[i].job.deadline;
      if (d !== undefined && now >= d) this.retire(i, 'timeout');
    }
    const fd = this.filling?.job.deadline;
    if (fd !== undefined && now >= fd) this.dropFilling('timeout');
  }

  /**
   * Takes waiting jobs (in order, while there is room) whose prompts fit in one chunk, at most one
   * chunk of rows in all while other requests are decoding, and prefills them in one call. An
   * engine error falls back to one prefill per job, so only the failing job fails.
   */
  private prefillBatch(): void {
    const room = this.maxBatch - this.active.length;
    const budget = this.active.length ? this.prefillChunk : this.prefillChunk * this.maxBatch;
    const jobs: BatchJob[] = [];
    let rows = 0;
    while (jobs.length < room && this.pending.length) {
      const n = this.pending[0].seq.promptIds.length;
      if (n > this.prefillChunk || rows + n > budget) break;
      rows += n;
      jobs.push(this.pending.shift()!);
    }
    if (jobs.length < 2) {
      this.pending.unshift(...jobs);
      return;
    }
    let out: Array<{ cache: KvCache; logits: Float32Array }> | null = null;
    try {
      out = this.engine.prefillMany(jobs.map((j) => j.seq.promptIds), jobs.map((j) => j.seq.promptTokenTypes));
    } catch {
      out = null;
    }
    jobs.forEach((job, i) => {
      let r = out?.[i];
      if (!r) {
        try {
          r = this.engine.prefill(job.seq.promptIds, job.seq.promptTokenTypes);
        } catch (err) {
          job.onError(err instanceof Error ? err : new Error(String(err)));
          return;
        }
      }
      this.started(job, r.cache, r.logits);
    });
  }

  /** A job whose whole prompt is in `cache`: its first token, then it decodes with the others. */
  private started(job: BatchJob, cache: KvCache, logits: Float32Array): void {
    const next = job.seq.accept(logits);
    this.tokens++;
    if (next === null) {
      this.engine.release(cache);
      job.onDone(job.seq.result());
      return;
    }
    this.active.push({ job, cache, next });
  }

  private feed(): void {
    const f = this.filling!;
    const ids = f.job.seq.promptIds;
    const n = this.active.length ? this.prefillChunk : ids.length;
    const chunk = ids.slice(f.fed, f.fed + n);
    const types = f.job.seq.promptTokenTypes?.slice(f.fed, f.fed + n);
    let logits: Float32Array;
    try {
      if (f.cache) logits = this.engine.extend(f.cache, chunk, types);
      else ({ cache: f.cache, logits } = this.engine.prefill(chunk, types));
    } catch (err) {
      this.filling = null;
      if (f.cache) this.engine.release(f.cache);
      f.job.onError(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    f.fed += chunk.length;
    if (f.fed < ids.length) return;
    this.filling = null;
    this.started(f.job, f.cache, logits);
  }

  private step(): void {
    // The logits are consumed below, before the next step: one buffer serves every step.
    this.logitsBuf ??= new Float32Array(this.maxBatch * this.engine.config.vocabSize);
    const logits = this.engine.step(this.active.map((a) => ({ cache: a.cache, token: a.next, tokenType: a.job.seq.replyTokenType })), this.logitsBuf);
    this.steps++;
    this.tokens += logits.length;
    const finished: number[] = [];
    this.active.forEach((a, i) => {
      const next = a.job.seq.accept(logits[i]);
      if (next === null) finished.push(i);
      else a.next = next;
    });
    for (let k = finished.length - 1; k >= 0; k--) this.retire(finished[k]);
  }
}
