// Where the admin password comes from. ADMIN_PASSWORD_HASH or ADMIN_PASSWORD win; without them the
// first process to start generates a one-time password, keeps only its scrypt hash in Redis (so
// every process on that Redis shares it) and prints the password once. Until the operator
// chooses a new one in the panel, a sign-in can do nothing else.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../core/logger.js';
import { guard, type Store } from '../core/redis.js';
import { MIN_ADMIN_PASSWORD_LENGTH, type ServerConfig } from './config.js';
import { hashPassword, isPasswordHash } from './password.js';

export interface CurrentPassword {
  hash: string;
  /** The generated one-time password is still in use: sign-ins must choose a new one first. */
  mustChange: boolean;
  /** Set by ADMIN_PASSWORD(_HASH): the panel cannot change it. */
  fromEnvironment: boolean;
}

interface StoredPassword {
  hash: string;
  mustChange: boolean;
  changedAt?: string;
}

/** Base64url, no look-alike worries for a copy-pasted value: 20 characters, 120 random bits. */
export function generatePassword(): string {
  return randomBytes(15).toString('base64url');
}

export class AdminPassword {
  private readonly fromEnvironment: Promise<string> | null;
  private ensured: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    config: Pick<ServerConfig, 'ADMIN_PASSWORD' | 'ADMIN_PASSWORD_HASH'>,
    private readonly log: Logger,
  ) {
    // A plain password is hashed once with a random salt so both settings verify the same way.
    this.fromEnvironment = config.ADMIN_PASSWORD_HASH
      ? Promise.resolve(config.ADMIN_PASSWORD_HASH)
      : config.ADMIN_PASSWORD
        ? hashPassword(config.ADMIN_PASSWORD)
        : null;
  }

  /** The Redis key of the stored hash; deleting it makes the next start generate a new password. */
  get redisKey(): string {
    return this.store.key('admin', 'password');
  }

  /** Generates and announces the one-time password if no process has yet (SET NX: exactly one does). */
  ensure(): Promise<void> {
    if (this.fromEnvironment) return Promise.resolve();
    this.ensured ??= (async () => {
      if (await this.read()) return;
      const password = generatePassword();
      const record: StoredPassword = { hash: await hashPassword(password), mustChange: true };
      const won = await guard(() => this.store.redis.set(this.redisKey, JSON.stringify(record), 'NX'));
      if (won !== 'OK') return;
      // Printed in the message text on purpose (the logger redacts `password` fields), this once.
      this.log.warn(
        `first start: generated the admin password ${password} (shown only this once; only its hash is kept). ` +
          'Sign in at /admin/ with it and choose your own; or set ADMIN_PASSWORD or ADMIN_PASSWORD_HASH, which win',
      );
    })().catch((err: unknown) => {
      this.ensured = null;
      throw err;
    });
    return this.ensured;
  }

  async current(): Promise<CurrentPassword> {
    if (this.fromEnvironment) return { hash: await this.fromEnvironment, mustChange: false, fromEnvironment: true };
    await this.ensure();
    const stored = await this.read();
    if (!stored) {
      // Deleted while running: the next ensure() makes a new one.
      this.ensured = null;
      await this.ensure();
      return this.current();
    }
    return { hash: stored.hash, mustChange: stored.mustChange, fromEnvironment: false };
  }

  /** Replaces the stored password (never one set in the environment). */
  async change(next: string): Promise<void> {
    if (this.fromEnvironment) throw new Error('the admin password is set by ADMIN_PASSWORD or ADMIN_PASSWORD_HASH');
    if ([...next].length < MIN_ADMIN_PASSWORD_LENGTH) throw new Error(`the password needs at least ${MIN_ADMIN_PASSWORD_LENGTH} characters`);
    const record: StoredPassword = { hash: await hashPassword(next), mustChange: false, changedAt: new Date().toISOString() };
    await guard(() => this.store.redis.set(this.redisKey, JSON.stringify(record)));
  }

  private async read(): Promise<StoredPassword | null> {
    const raw = await guard(() => this.store.redis.get(this.redisKey));
    if (!raw) return null;
    try {
      const parsed = JSON.parse(raw) as StoredPassword;
      if (typeof parsed.hash === 'string' && isPasswordHash(parsed.hash)) return { hash: parsed.hash, mustChange: parsed.mustChange !== false };
    } catch {
      /* falls through */
    }
    throw new Error(`the stored admin password at ${this.redisKey} is unreadable; delete that key and restart to generate a new one`);
  }
}
