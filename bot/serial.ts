// Runs tasks one after another per key (a chat), concurrently across keys. Wechaty runs message
// handlers concurrently; without this, two quick messages could be answered out of order or
// their reply parts interleaved.
export class KeyedSerialQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(task, task);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  /** Chats with work in flight. */
  get size(): number {
    return this.tails.size;
  }
}
