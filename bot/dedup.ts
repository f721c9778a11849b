// De-duplication of incoming messages by id: puppets redeliver after reconnects, and several
// processes may run a bot on one account. SET NX in Redis decides across processes; a small
// in-memory set catches redeliveries even while Redis is away.
import { guard, type Store } from '../core/redis.js';

export class MessageDedup {
  private readonly recent = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly ttlSeconds = 24 * 3600,
    private readonly localCapacity = 10_000,
  ) {}

  /**
   * True when this process may handle the message (first time anyone has seen it). Rejects with
   * RedisUnavailableError when Redis is away (the caller still handles it, once, locally).
   */
  async claim(messageId: string): Promise<boolean> {
    if (this.recent.has(messageId)) return false;
    this.remember(messageId);
    const res = await guard(() => this.store.redis.set(this.store.key('bot', 'seen', messageId), '1', 'EX', this.ttlSeconds, 'NX'));
    return res === 'OK';
  }

  private remember(id: string): void {
    this.recent.add(id);
    if (this.recent.size > this.localCapacity) {
      // Sets iterate in insertion order: drop the oldest.
      const oldest = this.recent.values().next().value;
      if (oldest !== undefined) this.recent.delete(oldest);
    }
  }
}
