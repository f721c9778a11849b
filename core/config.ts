// The platform's shared configuration (HTTP, Redis, logging, access keys, usage).
// Parts with settings of their own (bot, admin, model) extend this with their own schema.
import { z } from 'zod';
import { validate as validateCron } from 'node-cron';
import { envInt, envList, isTimeZone, loadDotenvOnce, parseEnv } from './env.js';

export const coreSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: envInt(3000, 0, 65535),
  DATA_DIR: z.string().min(1).default('./data'),
  REDIS_URL: z
    .string()
    .regex(/^(rediss?|redis\+sentinel):\/\//, { message: 'expected a redis://, rediss:// or redis+sentinel:// URL' })
    .optional(),
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, { message: 'expected 1-64 characters of A-Z a-z 0-9 _ . : -' })
    .default('nemo:'),
  REDIS_AUTOSTART: z.enum(['auto', 'never']).default('auto'),
  KEY_LENGTH: envInt(6, 4, 64),
  KEY_ALPHABET: z
    .string()
    .refine((s) => new Set(s).size === [...s].length && [...s].length >= 2, { message: 'expected at least 2 distinct characters' })
    .default('0123456789'),
  KEY_ROTATE_CRON: z.string().refine((s) => validateCron(s), { message: 'expected a valid cron expression' }).default('0 0 * * *'),
  KEY_ROTATE_TZ: z
    .string()
    .refine(isTimeZone, { message: 'expected an IANA time zone such as Asia/Shanghai' })
    .default('Asia/Shanghai'),
  KEY_GRACE_MINUTES: envInt(10, 0, 7 * 24 * 60),
  KEY_MAX_ATTEMPTS: envInt(5, 1, 1000),
  KEY_LOCKOUT_MINUTES: envInt(15, 1, 7 * 24 * 60),
  // 0: a user must send the new key after every rotation; N > 0: stays authorised N days.
  KEY_REAUTH: envInt(0, 0, 3650),
  // Failed attempts per hour by users never authorised before, above which such users cannot
  // try keys at all (a sybil circuit breaker; see docs/operations.md). 0 turns it off.
  KEY_GLOBAL_FAIL_LIMIT: envInt(100, 0, 1_000_000),
  USAGE_RETENTION_DAYS: envInt(90, 1, 3650),
  // Time zone of the daily usage buckets (what "today" means on the charts).
  USAGE_TZ: z
    .string()
    .refine(isTimeZone, { message: 'expected an IANA time zone such as Asia/Shanghai' })
    .default('Asia/Shanghai'),
  OPERATORS: envList(),
});

export type CoreConfig = z.infer<typeof coreSchema>;

export function loadCoreConfig(env: NodeJS.ProcessEnv = process.env): CoreConfig {
  loadDotenvOnce();
  return parseEnv(coreSchema, env);
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379/0';
