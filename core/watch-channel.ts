// Following a value that any process may change in Redis: `reload` runs now, on every message
// published on `channel`, and after a reconnect (a change may have been missed meanwhile).
import type { Store } from './redis.js';

/** Returns a function that stops watching. */
export async function watchChannel(store: Store, channel: string, reload: () => Promise<void>): Promise<() => Promise<void>> {
  const sub = await store.duplicate();
  sub.on('message', (ch: string) => {
    if (ch === channel) void reload();
  });
  sub.on('ready', () => void reload());
  await sub.subscribe(channel);
  await reload();
  return async () => {
    sub.removeAllListeners('message');
    sub.removeAllListeners('ready');
    await sub.quit().catch(() => sub.disconnect());
  };
}
