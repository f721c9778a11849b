// Which model every process serves, as chosen on the admin panel's Models page: one Redis hash
// shared by all processes, and a pub/sub message that tells each to switch at once (the same
// pattern as the run-time chat settings).
import { guard, type Store } from '../core/redis.js';
import type { Logger } from '../core/logger.js';
import { watchChannel } from '../core/watch-channel.js';

export interface ActiveModelChoice {
  name: string;
  actor?: string;
  at?: string;
}

export class ActiveModel {
  constructor(
    private readonly store: Store,
    private readonly log?: Logger,
  ) {}

  private get key(): string {
    return this.store.key('models', 'active');
  }

  private get channel(): string {
    return this.store.key('models', 'events');
  }

  /** The chosen model, or null while none was chosen (MODEL_DIR or the shipped one serves). */
  async get(): Promise<ActiveModelChoice | null> {
    const raw = await guard(() => this.store.redis.hgetall(this.key));
    return raw.name ? { name: raw.name, actor: raw.actor, at: raw.at } : null;
  }

  async set(name: string, actor: string): Promise<ActiveModelChoice> {
    const choice = { name, actor, at: new Date().toISOString() };
    await guard(() => this.store.redis.multi().del(this.key).hset(this.key, choice).publish(this.channel, 'changed').exec());
    return choice;
  }

  /** Calls `listener` with the choice now and after every change by any process; returns an unwatch function. */
  async watch(listener: (choice: ActiveModelChoice | null) => void): Promise<() => Promise<void>> {
    return watchChannel(this.store, this.channel, () =>
      this.get().then(
        (c) => listener(c),
        (err: Error) => this.log?.warn({ err: err.message }, 'active model not reloaded'),
      ));
  }
}
