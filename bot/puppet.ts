// Puppet selection from configuration. Wechaty would resolve a puppet name itself, but only logs
// a multi-line hint on a missing module; importing it here gives one clear error instead, and lets
// optional puppets (the official-account one is ~156 MB) stay out of package.json.
import { silentLogger, type Logger } from '../core/logger.js';
import type { BotConfig } from './config.js';
import { ConnectRetry } from './connect-retry.js';
import { guardWechat4u, isWechat4uPuppet } from './wechat4u-guard.js';

export class PuppetNotInstalledError extends Error {
  constructor(readonly moduleName: string, cause?: unknown) {
    super(`The Wechaty puppet "${moduleName}" is not installed: run \`npm install ${moduleName}\` (or change WECHATY_PUPPET)`, { cause });
    this.name = 'PuppetNotInstalledError';
  }
}

type PuppetClass = new (options?: Record<string, unknown>) => unknown;

/** Imports a puppet module by name and returns its puppet class (ESM or CommonJS default export). */
export async function loadPuppetClass(moduleName: string, exportName?: string): Promise<PuppetClass> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(moduleName)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') throw new PuppetNotInstalledError(moduleName, err);
    throw err;
  }
  if (exportName && typeof mod[exportName] === 'function') return mod[exportName] as PuppetClass;
  let candidate: unknown = mod.default;
  for (let i = 0; i < 3 && candidate && typeof candidate !== 'function'; i++) candidate = (candidate as Record<string, unknown>).default;
  if (typeof candidate !== 'function') throw new Error(`"${moduleName}" does not export a Wechaty puppet class`);
  return candidate as PuppetClass;
}

/**
 * The chat bot's puppet from WECHATY_PUPPET and its token variables.
 *
 * wechat4u (the default puppet's library) installs, when loaded, a process-wide
 * `uncaughtException` handler that prints with console.log and keeps the process alive — it
 * relies on that for its own timers (e.g. a restart after stop). The behaviour is kept (a puppet
 * error must not stop the platform), but the handler is replaced by one that logs properly.
 * A wechat4u puppet that cannot reach WeChat waits `retry`'s backoff between tries, and stops
 * cleanly (bot/wechat4u-guard.ts).
 */
export async function createChatPuppet(config: BotConfig, logger: Logger = silentLogger, retry = new ConnectRetry()): Promise<unknown> {
  const before = new Set(process.listeners('uncaughtException'));
  const Puppet = await loadPuppetClass(config.WECHATY_PUPPET);
  const added = process.listeners('uncaughtException').filter((l) => !before.has(l));
  if (added.length > 0) {
    for (const l of added) process.off('uncaughtException', l);
    process.on('uncaughtException', (err) => {
      logger.error({ err: err instanceof Error ? err.stack : String(err) }, 'uncaught exception (kept running: the WeChat puppet needs it)');
    });
  }
  const options: Record<string, unknown> = {};
  if (config.WECHATY_PUPPET_SERVICE_TOKEN) options.token = config.WECHATY_PUPPET_SERVICE_TOKEN;
  if (config.WECHATY_PUPPET_SERVICE_ENDPOINT) options.endpoint = config.WECHATY_PUPPET_SERVICE_ENDPOINT;
  const puppet = new Puppet(options);
  if (isWechat4uPuppet(puppet)) guardWechat4u(puppet, retry);
  return puppet;
}

/** True when every WECHATY_PUPPET_OA_* credential is set, i.e. the key responder should run. */
export function officialAccountConfigured(config: BotConfig): boolean {
  return Boolean(config.WECHATY_PUPPET_OA_APP_ID && config.WECHATY_PUPPET_OA_APP_SECRET && config.WECHATY_PUPPET_OA_TOKEN);
}

/** The official account's puppet (`wechaty-puppet-official-account`, installed separately). */
export async function createOfficialAccountPuppet(config: BotConfig): Promise<unknown> {
  if (!officialAccountConfigured(config)) {
    throw new Error('The official-account key responder needs WECHATY_PUPPET_OA_APP_ID, WECHATY_PUPPET_OA_APP_SECRET and WECHATY_PUPPET_OA_TOKEN');
  }
  const PuppetOA = await loadPuppetClass('wechaty-puppet-official-account', 'PuppetOA');
  return new PuppetOA({
    appId: config.WECHATY_PUPPET_OA_APP_ID,
    appSecret: config.WECHATY_PUPPET_OA_APP_SECRET,
    token: config.WECHATY_PUPPET_OA_TOKEN,
    ...(config.WECHATY_PUPPET_OA_PORT ? { port: config.WECHATY_PUPPET_OA_PORT } : {}),
    ...(config.WECHATY_PUPPET_OA_WEBHOOK_PROXY_URL ? { webhookProxyUrl: config.WECHATY_PUPPET_OA_WEBHOOK_PROXY_URL } : {}),
    ...(config.WECHATY_PUPPET_OA_PERSONAL_MODE ? { personalMode: true } : {}),
  });
}
