// Statistics of failed key attempts: the counters the access gate's verification script
// increments (core/keys/key-scripts.ts VERIFY_LUA), read for the dashboard and the metrics.
import { guard, type Store } from '../redis.js';
import { failedHourName, HOUR, keyName } from '../keys/key-records.js';

export class FailedKeyAttempts {
  private readonly store: Store;
  private readonly now: () => Date;

  constructor(store: Store, now: () => Date = () => new Date()) {
    this.store = store;
    this.now = now;
  }

  /** Failed attempts ever (well-formed wrong guesses, by anyone). */
  async total(): Promise<number> {
    return Number((await guard(() => this.store.redis.get(keyName(this.store, 'failed', 'total')))) ?? 0);
  }

  /**
   * Failed attempts per hour over the last `hours` (at most 90 days), oldest first, ending with
   * the current hour: `counts[i]` is the hour starting at `startMs + i` hours.
   */
  async hourly(hours = 24): Promise<{ startMs: number; counts: number[] }> {
    const n = Math.max(1, Math.min(Math.floor(hours), 24 * 90));
    const first = Math.floor(this.now().getTime() / HOUR) - n + 1;
    const names = new Array<string>(n);
    for (let i = 0; i < n; i++) names[i] = failedHourName(this.store, first + i);
    const values = await guard(() => this.store.redis.mget(names));
    const counts = new Array<number>(n);
    for (let i = 0; i < n; i++) counts[i] = values[i] == null ? 0 : Number(values[i]);
    return { startMs: first * HOUR, counts };
  }
}
