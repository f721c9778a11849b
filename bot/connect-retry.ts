// Reaching WeChat again after a failed try: exponential backoff (capped, with jitter), and the
// state the panel shows while it fails (since when, the last error, when the next try is).

export interface BackoffOptions {
  /** The wait after the first failure. */
  baseMs: number;
  /** The longest wait. */
  maxMs: number;
  /** Each wait is shortened by up to this share at random, so many bots do not retry in step. */
  jitter: number;
  random?: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 5_000, maxMs: 300_000, jitter: 0.2 };

/** Where a failing connection stands. `since` is when the failures began (kept across retries). */
export interface RetryState {
  since: string;
  /** Failed tries in a row. */
  attempt: number;
  lastError: string;
  nextTryAt: string;
}

export type RetryListener = (state: RetryState & { delayMs: number }) => void;

export class ConnectRetry {
  private state: RetryState | null = null;
  private readonly listeners = new Set<RetryListener>();
  private readonly options: Required<BackoffOptions>;

  constructor(options: Partial<BackoffOptions> = {}) {
    this.options = { ...DEFAULT_BACKOFF, random: Math.random, ...options };
  }

  /** Null while the connection is fine (or was never tried). */
  get current(): RetryState | null {
    return this.state;
  }

  /** The wait before try number `attempt + 1` after `attempt` failures in a row. */
  delayFor(attempt: number): number {
    const { baseMs, maxMs, jitter, random } = this.options;
    const full = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
    return Math.round(full * (1 - jitter * random()));
  }

  /** A try failed: returns how long to wait before the next one, and tells the listeners. */
  failed(error: string, now = new Date()): number {
    const attempt = (this.state?.attempt ?? 0) + 1;
    const delayMs = this.delayFor(attempt);
    this.state = {
      since: this.state?.since ?? now.toISOString(), attempt, lastError: error, nextTryAt: new Date(now.getTime() + delayMs).toISOString(),
    };
    for (const l of this.listeners) l({ ...this.state, delayMs });
    return delayMs;
  }

  /** WeChat answered: the next failure starts a new series. */
  succeeded(): void {
    this.state = null;
  }

  onFailure(listener: RetryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
