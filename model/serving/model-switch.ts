// A TextGenerator whose model can be replaced while it serves (the admin panel's Models page).
// Each request runs on the model that was serving when it started — a reply's tries included, via
// use() — and a replaced model is closed once its last such request has finished.
import type { ChatFormat } from '../chat/chat-format.js';
import { GeneratorUnavailableError, type GenerationRequest, type GenerationResult, type GeneratorStats, type ModelInfo, type TextGenerator } from '../inference/generator.js';

interface Served {
  generator: TextGenerator;
  /** Requests (or whole replies) running on it. */
  inFlight: number;
  retired: boolean;
  /** Settled once a retired model has been closed. */
  closed?: Promise<void>;
  markClosed?: (outcome: Promise<void>) => void;
}

export class SwitchableGenerator implements TextGenerator {
  private current: Served;
  private readonly retiring = new Set<Served>();
  private closing: Promise<void> | null = null;

  constructor(initial: TextGenerator) {
    this.current = { generator: initial, inFlight: 0, retired: false };
  }

  /** The model serving new requests now. */
  get serving(): TextGenerator {
    return this.current.generator;
  }

  /**
   * New requests go to `next` from now on; the replaced model finishes what it is doing and is
   * then closed. Resolves when that has happened.
   */
  async switchTo(next: TextGenerator): Promise<void> {
    if (this.closing) {
      await next.close();
      throw new GeneratorUnavailableError('generator is closed');
    }
    const old = this.current;
    this.current = { generator: next, inFlight: 0, retired: false };
    old.retired = true;
    old.closed = new Promise<void>((resolve, reject) => (old.markClosed = (outcome) => outcome.then(resolve, reject)));
    this.retiring.add(old);
    this.closeIfIdle(old);
    await old.closed;
  }

  private closeIfIdle(s: Served): void {
    if (!s.retired || s.inFlight > 0 || !this.retiring.delete(s)) return;
    s.markClosed?.(s.generator.close());
  }

  /** Runs `fn` on the model serving now; that model stays open until `fn` has finished. */
  async use<T>(fn: (generator: TextGenerator) => Promise<T>): Promise<T> {
    if (this.closing) throw new GeneratorUnavailableError('generator is closed');
    const s = this.current;
    s.inFlight++;
    try {
      return await fn(s.generator);
    } finally {
      s.inFlight--;
      this.closeIfIdle(s);
    }
  }

  generate(req: GenerationRequest): Promise<GenerationResult> {
    return this.use((g) => g.generate(req));
  }

  info(): ModelInfo {
    return this.current.generator.info();
  }

  chatFormat(): ChatFormat {
    return this.current.generator.chatFormat();
  }

  countTokens(text: string): number {
    return this.current.generator.countTokens(text);
  }

  decode(ids: readonly number[]): string {
    return this.current.generator.decode(ids);
  }

  stats(): GeneratorStats {
    // Queue and active requests of every model still running (a replaced one finishing its work).
    const all = [this.current, ...this.retiring].map((s) => s.generator.stats());
    return { active: all.reduce((n, s) => n + s.active, 0), queued: all.reduce((n, s) => n + s.queued, 0), maxQueue: all[0].maxQueue };
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([this.current, ...this.retiring].map((s) => {
      const closed = s.generator.close();
      s.markClosed?.(closed);
      return closed;
    })).then(() => undefined);
    return this.closing;
  }
}
