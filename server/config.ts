// Settings of the HTTP server: admin panel authentication, sessions, cookies, shutdown.
// There is no default admin password: without ADMIN_PASSWORD or ADMIN_PASSWORD_HASH the first start
// generates a one-time password (see admin-password.ts).
import { z } from 'zod';
import { envInt, loadDotenvOnce, parseEnv } from '../core/env.js';
import { isPasswordHash } from './password.js';

export const MIN_ADMIN_PASSWORD_LENGTH = 10;

export const serverSchema = z.object({
  ADMIN_PASSWORD: z
    .string()
    .min(MIN_ADMIN_PASSWORD_LENGTH, { message: `expected at least ${MIN_ADMIN_PASSWORD_LENGTH} characters` })
    .optional(),
  ADMIN_PASSWORD_HASH: z
    .string()
    .refine(isPasswordHash, { message: 'expected the output of `npm run admin:hash-password` (scrypt$...)' })
    .optional(),
  // Idle minutes before an admin session expires (every request renews it) …
  ADMIN_SESSION_MINUTES: envInt(60, 1, 7 * 24 * 60),
  // … and the hard limit after login, renewals or not.
  ADMIN_SESSION_MAX_HOURS: envInt(12, 1, 24 * 30),
  // Failed logins allowed per client IP in the window before further attempts get 429.
  ADMIN_LOGIN_MAX_ATTEMPTS: envInt(5, 1, 1000),
  ADMIN_LOGIN_WINDOW_MINUTES: envInt(15, 1, 24 * 60),
  // Failed logins allowed in the window through one trusted proxy address, all clients together
  // (X-Forwarded-For can be made up by whoever reaches the server through that address).
  ADMIN_LOGIN_PROXY_MAX_ATTEMPTS: envInt(50, 1, 100_000),
  // Days administrative actions stay in the audit log (failed and blocked logins: the last 10,000).
  AUDIT_RETENTION_DAYS: envInt(365, 1, 3650),
  // express "trust proxy": false, true, a hop count or a comma-separated list of addresses/subnets.
  TRUST_PROXY: z.string().default('loopback'),
  // auto: Secure cookies when the request came over HTTPS (directly or via a trusted proxy).
  COOKIE_SECURE: z.enum(['auto', 'always', 'never']).default('auto'),
  // Bound on finishing in-flight generations at SIGTERM/SIGINT before they are cancelled.
  SHUTDOWN_GRACE_SECONDS: envInt(10, 0, 600),
  // Milliseconds the dashboard's usage series may be served from memory (0: always fresh).
  USAGE_CACHE_MS: envInt(2000, 0, 600_000),
  // When set, GET /metrics requires `Authorization: Bearer <token>` (for a scraper outside this host).
  METRICS_TOKEN: z.string().min(16, { message: 'expected at least 16 characters' }).optional(),
  // The model `npm start` loads (HF layout or the original GPT-1 release); unset: model/shipped.
  MODEL_DIR: z.string().min(1).optional(),
  // Where the admin panel's Models page finds models to choose from (`npm run model:download` puts them there).
  MODELS_DIR: z.string().min(1).default('models'),
  // Chats decoded together in one batch, and requests that may wait for a slot before "busy".
  MODEL_MAX_BATCH: envInt(8, 1, 64),
  MODEL_MAX_QUEUE: envInt(32, 0, 10_000),
  // Default caption printed on the downloadable key card (the panel lets the operator edit it).
  KEY_CARD_CAPTION: z.string().max(200).default('Send this key to the bot to start chatting'),
});

export type ServerConfig = z.infer<typeof serverSchema>;

export function loadServerConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  loadDotenvOnce();
  return parseEnv(serverSchema, env);
}

/** express's "trust proxy" value from the TRUST_PROXY text. */
export function trustProxyValue(text: string): boolean | number | string {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^\d+$/.test(text)) return Number(text);
  return text;
}
