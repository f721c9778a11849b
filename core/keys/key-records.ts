// What the rotation and the gate share: the configuration they read, the Redis names under
// `<REDIS_PREFIX>keys:`, the Lua scripts, and the current key's record.
import type { Redis } from 'ioredis';
import type { CoreConfig } from '../config.js';
import { guard, type Store } from '../redis.js';
import { AUTH_LUA, ROTATE_LUA, VERIFY_LUA } from './key-scripts.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** Who caused a rotation. 'init' is the very first key of a deployment. */
export type RotationCause = 'schedule' | 'admin' | 'cli' | 'init';

type KeyConfigFields =
  | 'KEY_LENGTH' | 'KEY_ALPHABET' | 'KEY_ROTATE_CRON' | 'KEY_ROTATE_TZ' | 'KEY_GRACE_MINUTES'
  | 'KEY_MAX_ATTEMPTS' | 'KEY_LOCKOUT_MINUTES' | 'KEY_REAUTH' | 'USAGE_RETENTION_DAYS';

/** The configuration the key service reads: a CoreConfig fits; the breaker limit defaults to 100. */
export type KeyServiceConfig = Pick<CoreConfig, KeyConfigFields> & Partial<Pick<CoreConfig, 'KEY_GLOBAL_FAIL_LIMIT'>>;

/** The current key as stored (without the schedule-derived times). */
export interface StoredKey {
  key: string;
  version: number;
  createdAt: string;
  by: RotationCause;
  actor?: string;
}

export type RedisWithScripts = Redis & {
  nemoKeyRotate(...args: (string | number)[]): Promise<[number, number]>;
  nemoKeyVerify(...args: (string | number)[]): Promise<[string, number | string | undefined, string | undefined]>;
  nemoKeyAuth(current: string, previous: string, user: string): Promise<(string | null)[]>;
};

export function defineKeyScripts(redis: Redis): RedisWithScripts {
  if (typeof (redis as RedisWithScripts).nemoKeyRotate !== 'function') {
    redis.defineCommand('nemoKeyRotate', { numberOfKeys: 4, lua: ROTATE_LUA });
    redis.defineCommand('nemoKeyVerify', { numberOfKeys: 9, lua: VERIFY_LUA });
    redis.defineCommand('nemoKeyAuth', { numberOfKeys: 3, lua: AUTH_LUA });
  }
  return redis as RedisWithScripts;
}

/** How long the previous key stays valid after a rotation. */
export function graceMs(config: KeyServiceConfig): number {
  return config.KEY_GRACE_MINUTES * MINUTE;
}

/** A Redis name of the key service: `<REDIS_PREFIX>keys:<parts joined by ':'>`. */
export function keyName(store: Store, ...parts: (string | number)[]): string {
  return store.key('keys', ...parts);
}

/** The failed-attempt counter for the hour `hour` (hours since the epoch); see VERIFY_LUA. */
export function failedHourName(store: Store, hour: number): string {
  return keyName(store, 'failed', 'h', hour);
}

export async function readCurrentKey(store: Store): Promise<StoredKey | null> {
  const h = await guard(() => store.redis.hgetall(keyName(store, 'current')));
  if (!h.key || !h.version) return null;
  return { key: h.key, version: Number(h.version), createdAt: h.createdAt, by: h.by as RotationCause, ...(h.actor ? { actor: h.actor } : {}) };
}
