// Test harness: the real app (real Redis under an isolated prefix, real KeyService, UsageRecorder,
// UserAdmin, RuntimeSettings, optionally the bot's ChatSession) listening on a spare port, and a
// tiny cookie-keeping HTTP client.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { defaultBotConfig, type BotConfig } from '../../bot/config.js';
import { createChat } from '../../bot/launch.js';
import { coreSchema, type CoreConfig } from '../../core/config.js';
import { parseEnv } from '../../core/env.js';
import { KeyService } from '../../core/keys/key-service.js';
import type { Store } from '../../core/redis.js';
import { applyChatSettings, defaultChatSettings, RuntimeSettings } from '../../core/settings/runtime-settings.js';
import { openTestStore } from '../../core/testing.js';
import { UsageRecorder } from '../../core/usage/usage-recorder.js';
import { type ChatFormat, type TextGenerator } from '../../model/index.js';
import { ActiveModel } from '../active-model.js';
import type { ModelControl } from '../model-control.js';
import { ModelDownloads } from '../model-downloads.js';
import { createApp } from '../app.js';
import { serverSchema, type ServerConfig } from '../config.js';
import { InflightRequests } from '../inflight.js';
import { createMetrics, instrumentGenerator, instrumentUsage } from '../metrics.js';

export const TEST_PASSWORD = 'correct horse battery staple';

export interface HarnessOptions {
  env?: Record<string, string>;
  /** Default true: ADMIN_PASSWORD is set. */
  password?: boolean;
  /** A generator turns on the web chat (in the model's own chat format unless `format` is given). */
  generator?: TextGenerator;
  format?: ChatFormat;
  bot?: Partial<BotConfig>;
  core?: Partial<CoreConfig>;
  store?: Store & { cleanup(): Promise<void> };
  /** This process's model switching (the Models page), when the test runs one. */
  modelControl?: ModelControl;
}

export interface Harness {
  url: string;
  store: Store;
  keys: KeyService;
  usage: UsageRecorder;
  settings: RuntimeSettings;
  activeModel: ActiveModel;
  config: ServerConfig;
  coreConfig: CoreConfig;
  botConfig: BotConfig;
  inflight: InflightRequests;
  logLines: string[];
  client(headers?: Record<string, string>): Client;
  /** A client logged in as admin, with its CSRF token. */
  admin(headers?: Record<string, string>): Promise<Client>;
  close(): Promise<void>;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const store = opts.store ?? (await openTestStore('srv'));
  const env: Record<string, string> = { ...(opts.password === false ? {} : { ADMIN_PASSWORD: TEST_PASSWORD }), ...opts.env };
  const config = parseEnv(serverSchema, env);
  const coreConfig = { ...parseEnv(coreSchema, {}), ...opts.core };
  const botConfig = defaultBotConfig(opts.bot);
  const logLines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, cb) {
        logLines.push(String(chunk));
        if (process.env.DEBUG_HTTP) process.stderr.write(chunk);
        cb();
      },
    }),
  );
  const keys = new KeyService(store, coreConfig, logger);
  await keys.start();
  const usage = new UsageRecorder(store, coreConfig);
  const settings = new RuntimeSettings(store, defaultChatSettings(botConfig), logger);
  const metrics = createMetrics({ defaultMetrics: false });
  const inflight = new InflightRequests();
  const generator = opts.generator ? instrumentGenerator(opts.generator, metrics) : undefined;
  const chat =
    generator
      ? createChat({ store, keys, usage: instrumentUsage(usage, metrics), generator, format: opts.format, coreConfig, botConfig, logger })
      : null;
  let unwatch: (() => Promise<void>) | null = null;
  if (chat) unwatch = await settings.watch((v) => applyChatSettings(v, { config: chat.session.config, limits: chat.session.limits, texts: chat.session.texts }));
  const { UserAdmin } = await import('../../bot/user-admin.js');
  const userAdmin = chat?.userAdmin ?? new UserAdmin(store, botConfig);

  const activeModel = new ActiveModel(store, logger);
  const app = createApp({
    store,
    startedAt: new Date(),
    config,
    coreConfig,
    logger,
    metrics,
    generator,
    admin: { keys, usage, users: { usage, userAdmin }, settings: { settings }, models: { active: activeModel, control: opts.modelControl, speed: () => opts.generator?.info().tokensPerSecond, downloads: new ModelDownloads(store, config.MODELS_DIR, logger) } },
    chat: { session: chat?.session, keys, settings, inflight, keyLength: coreConfig.KEY_LENGTH, keyNumeric: /^[0-9]+$/.test(coreConfig.KEY_ALPHABET) },
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const h: Harness = {
    url, store, keys, usage, settings, activeModel, config, coreConfig, botConfig, inflight, logLines,
    client: (headers = {}) => new Client(url, headers),
    async admin(headers = {}) {
      const c = new Client(url, headers);
      const res = await c.post('/api/admin/login', { password: TEST_PASSWORD });
      if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
      c.csrf = (res.body as { csrfToken: string }).csrfToken;
      return c;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      if (unwatch) await unwatch();
      await keys.stop();
      if (!opts.store) await store.cleanup();
    },
  };
  return h;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

/** fetch with a cookie jar and the CSRF header on state-changing requests. */
export class Client {
  cookies = new Map<string, string>();
  csrf = '';
  constructor(
    readonly base: string,
    readonly headers: Record<string, string> = {},
  ) {}

  async request(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<Reply> {
    const headers: Record<string, string> = { Accept: 'application/json', ...this.headers, ...extra };
    if (this.cookies.size) headers.Cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body !== undefined) headers['Content-Type'] ??= 'application/json';
    if (this.csrf && method !== 'GET' && !('X-CSRF-Token' in extra)) headers['X-CSRF-Token'] = this.csrf;
    const res = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body), redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (/Max-Age=0/i.test(c) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  get(path: string, extra?: Record<string, string>) {
    return this.request('GET', path, undefined, extra);
  }
  post(path: string, body: unknown = {}, extra?: Record<string, string>) {
    return this.request('POST', path, body, extra);
  }
  put(path: string, body: unknown = {}, extra?: Record<string, string>) {
    return this.request('PUT', path, body, extra);
  }
}

/** Shorthand for reading a JSON field in assertions. */
export function field<T = unknown>(r: Reply, name: string): T {
  return (r.body as Record<string, T>)[name];
}

/** Runs `one(0)` … `one(n - 1)`, `width` at a time (load from many clients at once). */
export async function inParallel(n: number, width: number, one: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await one(next++);
  }));
}
