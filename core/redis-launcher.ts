// `npm start` convenience: with no REDIS_URL and nothing on 127.0.0.1:6379, start a local
// redis-server child with append-only persistence under DATA_DIR/redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from './logger.js';

export function isPortOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export class RedisNotFoundError extends Error {
  constructor() {
    super(
      'No Redis answers on 127.0.0.1:6379 and `redis-server` is not on PATH. Install Redis 6+ ' +
        '(Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`) or set REDIS_URL to a running server.',
    );
    this.name = 'RedisNotFoundError';
  }
}

/** Starts redis-server on 127.0.0.1:port; resolves once it accepts connections. */
export async function launchLocalRedis(dataDir: string, logger: Logger, port = 6379): Promise<ChildProcess> {
  const dir = path.resolve(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--dir', dir, '--save', ''],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('spawn', () => resolve(true));
  });
  if (!spawned) throw new RedisNotFoundError();
  for (let i = 0; i < 100; i++) {
    if (await isPortOpen('127.0.0.1', port)) {
      logger.info({ dir, port }, 'started local redis-server (append-only persistence)');
      return child;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`redis-server did not start on port ${port}; see its log or set REDIS_URL`);
}
