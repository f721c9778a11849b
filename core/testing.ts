// Test helpers shared by every part's tests: an isolated key prefix on the real Redis, and a
// private redis-server on a spare port for tests that stop and restart Redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { DEFAULT_REDIS_URL } from './config.js';
import { isPortOpen } from './redis-launcher.js';
import { Store } from './redis.js';

export const TEST_REDIS_URL = process.env.REDIS_URL || DEFAULT_REDIS_URL;

/** A unique prefix per test, so tests can run side by side on one server. */
export function testPrefix(name = 't'): string {
  return `test:${name}:${randomBytes(4).toString('hex')}:`;
}

/** Opens a Store on the test Redis with an isolated prefix; `cleanup()` deletes its keys and closes. */
export async function openTestStore(name = 't', url = TEST_REDIS_URL): Promise<Store & { cleanup(): Promise<void> }> {
  const store = new Store({ url, prefix: testPrefix(name) });
  await store.open();
  return Object.assign(store, {
    async cleanup() {
      try {
        if (store.ready) await deleteByPrefix(store);
      } finally {
        await store.close();
      }
    },
  });
}

export async function deleteByPrefix(store: Store): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await store.redis.scan(cursor, 'MATCH', `${store.prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await store.redis.del(...keys);
  } while (cursor !== '0');
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** A throw-away redis-server (no persistence) that a test may stop and start again on the same port. */
export class TempRedis {
  private child: ChildProcess | null = null;
  constructor(readonly port: number) {}

  static async start(): Promise<TempRedis> {
    const r = new TempRedis(await freePort());
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      if (await isPortOpen('127.0.0.1', this.port, 200)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`temporary redis-server did not start on ${this.port}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
    this.child = null;
  }
}
