// One web-chat reply at a time per visitor, across every server process. A lock belongs to a live
// process: its owner renews it while the reply streams, and a lock whose owner is gone (no renewal
// for STALE_MS, or a process on this host that no longer exists, or this process's previous
// incarnation under the same pid) is taken over at once, giving back the quota its lost reply took.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { guard, type Store } from '../core/redis.js';

/** The renewal period while a reply streams. */
export const RENEW_MS = 5_000;
/** A lock not renewed for this long belongs to a process that is gone. */
export const STALE_MS = 20_000;
// The key outlives a crash long enough for the next request to refund the lost reply's quota.
const KEY_TTL_MS = 3_600_000;
const BOOT_ID = randomBytes(6).toString('hex');
const HOST = hostname();

interface LockValue {
  host: string;
  pid: number;
  boot: string;
  renewedAt: number;
  /** When the reply took its unit of quota (the refund goes to that day). */
  chargedAt?: number;
}

/** Sets KEYS[1] to ARGV[2] (PX ARGV[3]) only while it still holds ARGV[1]. */
const SWAP = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

export class ReplyLock {
  private value: LockValue;
  private text: string;

  constructor(
    private readonly store: Store,
    private readonly key: string,
    value: LockValue,
  ) {
    this.value = value;
    this.text = JSON.stringify(value);
  }

  // Each write compares with the value before it, so they run one after another.
  private queue: Promise<unknown> = Promise.resolve();

  private run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private swap(change: Partial<LockValue>): Promise<void> {
    return this.run(async () => {
      const next = { ...this.value, ...change, renewedAt: Date.now() };
      const text = JSON.stringify(next);
      const ok = await guard(() => this.store.redis.eval(SWAP, 1, this.key, this.text, text, KEY_TTL_MS));
      if (ok === 1) {
        this.value = next;
        this.text = text;
      }
    });
  }

  /** Keeps the lock alive; called every RENEW_MS while the reply streams. */
  renew(): Promise<void> {
    return this.swap({});
  }

  /** Notes that the reply took its unit of quota. */
  charged(): Promise<void> {
    return this.swap({ chargedAt: Date.now() });
  }

  async release(): Promise<void> {
    await this.run(() => guard(() => this.store.redis.eval(RELEASE, 1, this.key, this.text)));
  }
}

export class ReplyLocks {
  constructor(
    private readonly store: Store,
    /** Gives back a lost reply's quota unit. */
    private readonly refund: (userId: string, chargedAt: number) => Promise<void>,
  ) {}

  /** The lock, or null while a live process is replying to this visitor. */
  async acquire(userId: string): Promise<ReplyLock | null> {
    const key = this.store.key('webchat', 'busy', userId);
    const value: LockValue = { host: HOST, pid: process.pid, boot: BOOT_ID, renewedAt: Date.now() };
    const text = JSON.stringify(value);
    const got = await guard(() => this.store.redis.set(key, text, 'PX', KEY_TTL_MS, 'NX'));
    if (got === 'OK') return new ReplyLock(this.store, key, value);
    const held = await guard(() => this.store.redis.get(key));
    if (held === null) return this.acquire(userId);
    const old = parse(held);
    if (old && !ownerGone(old)) return null;
    const taken = await guard(() => this.store.redis.eval(SWAP, 1, key, held, text, KEY_TTL_MS));
    if (taken !== 1) return null;
    if (old?.chargedAt) await this.refund(userId, old.chargedAt);
    return new ReplyLock(this.store, key, value);
  }
}

function parse(text: string): LockValue | null {
  try {
    const v = JSON.parse(text) as Partial<LockValue>;
    return typeof v.pid === 'number' && typeof v.renewedAt === 'number' && typeof v.host === 'string' && typeof v.boot === 'string' ? (v as LockValue) : null;
  } catch {
    // A lock written by an older version ('1'): its owner cannot be checked, so it is stale.
    return null;
  }
}

function ownerGone(v: LockValue): boolean {
  if (Date.now() - v.renewedAt > STALE_MS) return true;
  if (v.host !== HOST) return false;
  if (v.pid === process.pid) return v.boot !== BOOT_ID;
  try {
    process.kill(v.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
