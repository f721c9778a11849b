// `npm start`: configuration, Redis, the key scheduler, the model, the bots and the HTTP server in
// one process. startNemo() is the whole platform; main() adds the command line and the signals.
import type { ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_REDIS_URL, loadCoreConfig, type CoreConfig } from '../core/config.js';
import { tuneGc } from '../core/gc-tuning.js';
import { ConfigError } from '../core/env.js';
import { AuditLog } from '../core/audit/audit-log.js';
import { KeyService } from '../core/keys/key-service.js';
import { createLogger, partLogger, type Logger } from '../core/logger.js';
import { isPortOpen, launchLocalRedis } from '../core/redis-launcher.js';
import { redactUrl, Store } from '../core/redis.js';
import { loadBotConfig } from '../bot/config.js';
import { createChat, startBots, type RunningBots } from '../bot/launch.js';
import { UserAdmin } from '../bot/user-admin.js';
import { applyChatSettings, defaultChatSettings, RuntimeSettings } from '../core/settings/runtime-settings.js';
import { createGenerator, DEFAULT_MODEL_DIR, modelDirOf, SHIPPED_MODEL, SwitchableGenerator, type TextGenerator } from '../model/index.js';
import { ActiveModel } from './active-model.js';
import { ModelControl } from './model-control.js';
import { ModelDownloads } from './model-downloads.js';
import { UsageRecorder } from '../core/usage/usage-recorder.js';
import { AdminPassword } from './admin-password.js';
import { createApp } from './app.js';
import { loadServerConfig, type ServerConfig } from './config.js';
import { InflightRequests } from './inflight.js';
import { createMetrics, instrumentGenerator, instrumentUsage, type Metrics } from './metrics.js';

const HELP = `Usage: npm start [-- --help]

Starts the nemo platform in one process: configuration, Redis (a local redis-server is started
when REDIS_URL is unset and nothing answers on 127.0.0.1:6379), the access-key scheduler, the
model (MODEL_DIR, default: the shipped model in model/shipped), the WeChat bot (BOT_ENABLED,
default true; the login QR code is printed here and shown in the admin panel; BOT_NAME, default
"main", names it: one running process per name, a second one runs without the bot), and the HTTP server
with the admin panel (ADMIN_PASSWORD or ADMIN_PASSWORD_HASH; without them the first start
prints a one-time password to change at the first sign-in), the web chat at /chat and the
JSON API. All settings come from the environment or .env; see .env.example.`;

async function resolveRedis(config: CoreConfig, log: Logger): Promise<{ url: string; child?: ChildProcess }> {
  if (config.REDIS_URL) return { url: config.REDIS_URL };
  if (await isPortOpen('127.0.0.1', 6379)) return { url: DEFAULT_REDIS_URL };
  if (config.REDIS_AUTOSTART === 'never') {
    throw new Error('Nothing answers on 127.0.0.1:6379 and REDIS_AUTOSTART=never; set REDIS_URL or start Redis');
  }
  const child = await launchLocalRedis(config.DATA_DIR, log);
  return { url: DEFAULT_REDIS_URL, child };
}

/** Loads a model folder as `npm start` serves it (batch and queue sizes, metrics); throws when it cannot. */
export async function loadModelDir(dir: string, serverConfig: ServerConfig, metrics: Metrics, log: Logger): Promise<TextGenerator> {
  const generator = instrumentGenerator(
    await createGenerator({ modelDir: dir, maxBatch: serverConfig.MODEL_MAX_BATCH, maxQueue: serverConfig.MODEL_MAX_QUEUE }),
    metrics,
  );
  const info = generator.info();
  log.info({ model: info.name, parameters: info.parameters, backend: info.backend, chatFormat: info.chatFormat }, 'model loaded');
  return generator;
}

/**
 * Loads the model as `npm start` does: the one chosen on the Models page (kept in Redis), else
 * MODEL_DIR, else the shipped model; undefined, logged, when none loads.
 */
export async function loadModel(
  serverConfig: ServerConfig, metrics: Metrics, log: Logger, chosen?: string | null,
): Promise<{ generator: TextGenerator; name: string; dir: string } | undefined> {
  const configured = path.resolve(serverConfig.MODEL_DIR ?? DEFAULT_MODEL_DIR);
  const tries: Array<{ name: string; dir: string }> = [];
  const chosenDir = chosen ? modelDirOf(chosen, serverConfig.MODELS_DIR) : null;
  if (chosen && chosenDir) tries.push({ name: chosen, dir: chosenDir });
  else if (chosen) log.error({ model: chosen }, `the model chosen on the Models page is not in ${path.resolve(serverConfig.MODELS_DIR)} here`);
  tries.push({ name: serverConfig.MODEL_DIR ? path.basename(configured) : SHIPPED_MODEL, dir: configured });
  for (const t of tries) {
    try {
      return { ...t, generator: await loadModelDir(t.dir, serverConfig, metrics, log) };
    } catch (err) {
      log.error({ model: t.name, err: (err as Error).message }, 'model not loaded');
    }
  }
  log.error('no model loaded: the web chat and the bot cannot reply (set MODEL_DIR, or run `npm run model:download`)');
  return undefined;
}

export interface StartOptions {
  /** Where the settings come from (default process.env, after .env). */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** A Wechaty puppet instance instead of WECHATY_PUPPET (tests). */
  puppet?: unknown;
}

export interface RunningNemo {
  url: string;
  log: Logger;
  /** How long stop() lets streaming replies finish (SHUTDOWN_GRACE_SECONDS). */
  graceMs: number;
  /** Graceful shutdown; resolves when everything is closed. */
  stop(signal: string): Promise<void>;
}

/** Everything `npm start` runs, started in this process. */
export async function startNemo(options: StartOptions = {}): Promise<RunningNemo> {
  const env = options.env ?? process.env;
  const config = loadCoreConfig(env);
  const serverConfig = loadServerConfig(env);
  const botConfig = loadBotConfig(env);
  const log = options.logger ?? createLogger(config.LOG_LEVEL);
  const startedAt = new Date();

  const redis = await resolveRedis(config, log);
  const store = new Store({ url: redis.url, prefix: config.REDIS_PREFIX, logger: partLogger(log, 'redis') });
  await store.open();
  log.info({ redis: redactUrl(redis.url), prefix: config.REDIS_PREFIX }, 'connected to redis');
  // Access keys: scheduled rotation (exactly once across processes), catch-up, pub/sub.
  // One audit log for the panel's actions and the rotations this process makes on schedule.
  const audit = new AuditLog(store, { retentionDays: serverConfig.AUDIT_RETENTION_DAYS });
  const keys = new KeyService(store, config, partLogger(log, 'keys'), { audit });
  await keys.start();

  // HTTP: the admin panel and API, the web chat, health and metrics.
  const metrics = createMetrics();
  const usage = new UsageRecorder(store, config);
  const settings = new RuntimeSettings(store, defaultChatSettings(botConfig), partLogger(log, 'settings'));
  const inflight = new InflightRequests();
  let stopping = false;

  // The model runs in a worker thread. Without a loadable model the platform still runs: the
  // panel works, the web chat and the bot answer that the model is unavailable.
  // The model chosen on the Models page (if any) serves in every process and is switched live.
  const activeModel = new ActiveModel(store, partLogger(log, 'models'));
  const loaded = await loadModel(serverConfig, metrics, log, (await activeModel.get())?.name);
  const generator = loaded ? new SwitchableGenerator(loaded.generator) : undefined;
  const modelControl = loaded && generator
    ? new ModelControl({
      generator, serving: loaded, modelsDir: serverConfig.MODELS_DIR, log: partLogger(log, 'models'),
      load: (dir) => loadModelDir(dir, serverConfig, metrics, log),
    })
    : undefined;
  const unwatchModels = modelControl ? await modelControl.watch(activeModel) : null;

  // One chat (key flow, limits, memory, usage) shared by the WeChat bot and the web chat; the
  // panel's run-time settings are applied to it live, in every process.
  const chat = generator ? createChat({ store, keys, usage: instrumentUsage(usage, metrics), generator, coreConfig: config, botConfig, logger: log }) : null;
  const userAdmin = chat?.userAdmin ?? new UserAdmin(store, botConfig);
  const unwatchSettings = await settings.watch((v) => {
    if (chat) applyChatSettings(v, { config: chat.session.config, limits: chat.session.limits, texts: chat.session.texts });
  });
  let bots: RunningBots | null = null;
  if (chat && generator) {
    bots = await startBots({
      store, keys, usage: instrumentUsage(usage, metrics), generator, coreConfig: config, botConfig, logger: log, session: chat.session,
      ...(options.puppet ? { puppet: options.puppet } : {}),
    });
  }

  // Without ADMIN_PASSWORD(_HASH) the first process on this Redis generates the panel's password.
  const adminPassword = new AdminPassword(store, serverConfig, partLogger(log, 'admin'));
  await adminPassword.ensure();

  const app = createApp({
    store, startedAt, config: serverConfig, adminPassword, audit, coreConfig: config, logger: partLogger(log, 'http'), metrics, generator,
    isStopping: () => stopping,
    admin: { keys, usage, users: { usage, userAdmin }, settings: { settings }, models: { active: activeModel, control: modelControl, speed: () => generator?.info().tokensPerSecond, downloads: new ModelDownloads(store, serverConfig.MODELS_DIR, partLogger(log, 'models')) } },
    chat: { session: chat?.session, keys, settings, inflight, keyLength: config.KEY_LENGTH, keyNumeric: /^[0-9]+$/.test(config.KEY_ALPHABET) },
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
    s.once('error', reject);
  });
  const addr = server.address();
  const url = `http://${config.HOST}:${typeof addr === 'object' && addr ? addr.port : config.PORT}`;
  log.info({ url }, 'http server listening');

  // Graceful shutdown: readiness and new requests turn 503 (the listener stays open meanwhile, so
  // probes get an answer rather than a refused connection); streaming web-chat replies get
  // SHUTDOWN_GRACE_SECONDS to finish and are then cancelled; then the listener and Redis close.
  const graceMs = serverConfig.SHUTDOWN_GRACE_SECONDS * 1000;
  let stopped: Promise<void> | null = null;
  const stop = async (signal: string): Promise<void> => {
    stopping = true;
    log.info({ signal, inFlight: inflight.size, graceSeconds: serverConfig.SHUTDOWN_GRACE_SECONDS }, 'shutting down');
    // Idle keep-alive connections stay open until the end (closing one now can race a request the
    // client is sending on it); every answer from now on closes its connection.
    const cancelled = await inflight.drain(graceMs);
    if (cancelled) log.warn({ cancelled }, 'cancelled in-flight replies at shutdown');
    const closed = new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    await closed;
    await bots?.stop();
    await generator?.close();
    await unwatchSettings();
    await unwatchModels?.();
    await keys.stop();
    await store.close();
    redis.child?.kill('SIGTERM');
    log.info('stopped');
  };
  return { url, log, graceMs, stop: (signal) => (stopped ??= stop(signal)) };
}

async function main(): Promise<void> {
  tuneGc();
  const { values } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const nemo = await startNemo();
  const shutdown = async (signal: string) => {
    const force = setTimeout(() => {
      nemo.log.error('shutdown took too long; exiting anyway');
      process.exit(1);
    }, nemo.graceMs + 10_000);
    force.unref();
    await nemo.stop(signal);
    clearTimeout(force);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

// Imported (tests), this module only exports; run as `npm start`, it starts.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) console.error(err.message);
    else console.error(`nemo failed to start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
