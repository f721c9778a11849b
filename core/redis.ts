// Redis connections for every part. One explicit key prefix per deployment (and per test) keeps
// data apart on a shared server. Commands fail fast while Redis is away (no offline queue), and
// ioredis reconnects by itself, so callers can answer politely and resume when Redis returns.
import { Redis, type RedisOptions } from 'ioredis';
import { silentLogger, type Logger } from './logger.js';

/** Thrown (or rejected) by store operations while Redis cannot be reached. */
export class RedisUnavailableError extends Error {
  constructor(message = 'Redis is unavailable', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedisUnavailableError';
  }
}

const UNAVAILABLE_PATTERNS = [
  /Stream isn't writeable/i, /ECONNREFUSED/, /ECONNRESET/, /EPIPE/, /ETIMEDOUT/, /Connection is closed/i,
  /connect ENOENT/, /MaxRetriesPerRequest/i, /LOADING/, /Command timed out/i, /enableOfflineQueue/i,
];

/** Maps connection-level failures to RedisUnavailableError; other errors pass through. */
export function toStoreError(err: unknown): unknown {
  if (err instanceof RedisUnavailableError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (UNAVAILABLE_PATTERNS.some((re) => re.test(msg))) return new RedisUnavailableError(`Redis is unavailable: ${msg}`, { cause: err });
  return err;
}

/** Runs `fn`, turning connection failures into RedisUnavailableError. */
export async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toStoreError(err);
  }
}

export interface StoreOptions {
  url: string;
  prefix: string;
  logger?: Logger;
  /** Per-command timeout, so a hung server does not hang callers. */
  commandTimeoutMs?: number;
}

function parseRedisUrl(url: string): RedisOptions {
  // redis+sentinel://[:password@]host1:port1,host2:port2/masterName[/db]
  if (url.startsWith('redis+sentinel://')) {
    const rest = url.slice('redis+sentinel://'.length);
    const at = rest.lastIndexOf('@');
    const auth = at >= 0 ? rest.slice(0, at) : '';
    const [hostsPart, name = 'mymaster', db = '0'] = (at >= 0 ? rest.slice(at + 1) : rest).split('/');
    const sentinels = hostsPart.split(',').map((hp) => {
      const [host, port = '26379'] = hp.split(':');
      return { host, port: Number(port) };
    });
    const password = auth.includes(':') ? decodeURIComponent(auth.slice(auth.indexOf(':') + 1)) : undefined;
    return { sentinels, name, db: Number(db), password };
  }
  return {};
}

/**
 * A prefixed view of one Redis server: `key()` builds every key name; `redis` runs commands;
 * `duplicate()` gives another connection (pub/sub needs its own).
 */
export class Store {
  readonly redis: Redis;
  readonly prefix: string;
  readonly logger: Logger;
  private readonly options: StoreOptions;
  private readonly extra: Redis[] = [];
  private pipelinedClient: Redis | null = null;
  private closed = false;
  private lastState: 'up' | 'down' | 'init' = 'init';

  constructor(options: StoreOptions) {
    this.options = options;
    this.prefix = options.prefix;
    this.logger = options.logger ?? silentLogger;
    this.redis = this.connect();
  }

  private connect(): Redis {
    const base: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: this.options.commandTimeoutMs ?? 5000,
      connectTimeout: 3000,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
      ...parseRedisUrl(this.options.url),
    };
    const client = this.options.url.startsWith('redis+sentinel://') ? new Redis(base) : new Redis(this.options.url, base);
    client.on('error', (err) => {
      if (this.lastState !== 'down') this.logger.warn({ err: err.message }, 'redis connection error');
      this.lastState = 'down';
    });
    client.on('ready', () => {
      if (this.lastState === 'down') this.logger.info('redis connection restored');
      this.lastState = 'up';
    });
    return client;
  }

  /** Opens the connection; rejects with RedisUnavailableError when the server does not answer. */
  async open(): Promise<this> {
    if (this.redis.status === 'ready') return this;
    try {
      if (this.redis.status === 'wait') await this.redis.connect();
      else await waitReady(this.redis, 5000);
    } catch (err) {
      throw new RedisUnavailableError(`Cannot connect to Redis at ${redactUrl(this.options.url)}: ${(err as Error).message}`, { cause: err });
    }
    return this;
  }

  key(...parts: (string | number)[]): string {
    return this.prefix + parts.join(':');
  }

  get ready(): boolean {
    return this.redis.status === 'ready';
  }

  /**
   * A second connection with ioredis auto-pipelining on, for hot paths with many concurrent
   * independent commands (key verification): commands issued in the same tick share one write.
   * It is opened in the background on the first call; until it is ready (and whenever it is not)
   * this returns the plain `redis` connection, so callers never wait for it. Custom commands
   * (defineCommand) must be defined on the returned connection as well.
   *
   * The shared `redis` connection deliberately stays without auto-pipelining: with one command in
   * flight every command becomes a Pipeline object whose garbage survives young-generation GCs
   * and lengthens their pauses (measured by `npm run bench:bot`, see docs/performance.md).
   */
  pipelined(): Redis {
    if (!this.pipelinedClient && !this.closed) {
      const client = this.redis.duplicate({ enableAutoPipelining: true, lazyConnect: true });
      client.on('error', () => {
        /* reconnects by itself; the main connection logs */
      });
      this.extra.push(client);
      this.pipelinedClient = client;
      client.connect().catch(() => undefined);
    }
    const c = this.pipelinedClient;
    return c && !this.closed && c.status === 'ready' ? c : this.redis;
  }

  /** A separate connection with the same settings (subscribers, blocking commands). */
  async duplicate(): Promise<Redis> {
    const dup = this.redis.duplicate({ enableOfflineQueue: true, lazyConnect: true });
    dup.on('error', () => {
      /* reconnects by itself; the main connection logs */
    });
    this.extra.push(dup);
    await dup.connect().catch((err: Error) => {
      throw new RedisUnavailableError(`Cannot connect to Redis: ${err.message}`, { cause: err });
    });
    return dup;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of [...this.extra, this.redis]) {
      try {
        if (c.status === 'ready') await c.quit();
        else c.disconnect();
      } catch {
        c.disconnect();
      }
    }
  }
}

function waitReady(client: Redis, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (client.status === 'ready') return resolve();
    const t = setTimeout(() => {
      cleanup();
      reject(new Error('timed out'));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(t);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}

/** Hides the password part of a Redis URL for logs and error messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, (_m, auth: string) => (auth ? '//[redacted]@' : '//'));
}
