// Banned users: one Redis hash (user id → who banned them, when and why), checked on every
// incoming message on every channel.
import { guard, type Store } from '../core/redis.js';

export interface BanEntry {
  userId: string;
  reason: string;
  by: string;
  at: string;
}

export const bansKey = (store: Store) => store.key('bot', 'bans');

export class Bans {
  constructor(private readonly store: Store) {}

  async isBanned(userId: string): Promise<boolean> {
    return (await guard(() => this.store.redis.hexists(bansKey(this.store), userId))) === 1;
  }

  async ban(userId: string, by: string, reason = ''): Promise<BanEntry> {
    const entry: BanEntry = { userId, reason: reason.slice(0, 500), by, at: new Date().toISOString() };
    await guard(() => this.store.redis.hset(bansKey(this.store), userId, JSON.stringify(entry)));
    return entry;
  }

  /** Returns false when the user was not banned. */
  async unban(userId: string): Promise<boolean> {
    return (await guard(() => this.store.redis.hdel(bansKey(this.store), userId))) === 1;
  }

  async get(userId: string): Promise<BanEntry | null> {
    const raw = await guard(() => this.store.redis.hget(bansKey(this.store), userId));
    return raw ? parseEntry(userId, raw) : null;
  }

  async list(): Promise<BanEntry[]> {
    const all = await guard(() => this.store.redis.hgetall(bansKey(this.store)));
    return Object.entries(all)
      .map(([id, raw]) => parseEntry(id, raw))
      .sort((a, b) => b.at.localeCompare(a.at));
  }
}

function parseEntry(userId: string, raw: string): BanEntry {
  try {
    const e = JSON.parse(raw) as Partial<BanEntry>;
    return { userId, reason: String(e.reason ?? ''), by: String(e.by ?? ''), at: String(e.at ?? '') };
  } catch {
    return { userId, reason: '', by: '', at: '' };
  }
}
